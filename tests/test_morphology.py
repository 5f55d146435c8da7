"""Margin and hollow against SciPy on every backend (exact), and against a distance transform."""

import numpy as np
import pytest
from scipy import ndimage

import gpuseg
from gpuseg import Extent, ImageGeometry, Mask
from gpuseg.errors import InvalidInputError
from gpuseg.ops.morphology import ball_row_runs, ball_structure

from .parity import parity


def blobs(rng, shape, p=0.02, grow=2):
    a = rng.random(shape) < p
    return ndimage.binary_dilation(a, iterations=grow)


@pytest.mark.parametrize("shape,spacing,r", [
    ((9, 11, 45), (1.0, 1.0, 1.0), 2.0),
    ((8, 10, 70), (0.7, 0.8, 2.5), 3.0),
    ((6, 7, 33), (0.5, 0.5, 1.0), 1.2),
    ((5, 6, 100), (0.2, 1.0, 1.0), 7.0),  # 35 voxels along i: more than one word of shift
])
def test_grow_and_shrink_match_scipy(backend, rng, shape, spacing, r):
    g = ImageGeometry(shape, spacing=spacing)
    a = blobs(rng, shape)
    se = ball_structure(spacing, r)
    m = Mask.from_numpy(a, g, backend=backend).shrink_()
    grown = gpuseg.margin(m, r)
    np.testing.assert_array_equal(grown.to_numpy(), ndimage.binary_dilation(a, structure=se))
    shrunk = gpuseg.margin(m, -r)
    np.testing.assert_array_equal(shrunk.to_numpy(), ndimage.binary_erosion(a, structure=se, border_value=1))


def test_grow_equals_distance_threshold(backend, rng):
    spacing = (0.7, 0.9, 1.6)
    g = ImageGeometry((10, 12, 40), spacing=spacing)
    a = blobs(rng, g.shape, 0.01, 1)
    r = 2.95  # no voxel lies exactly at this distance
    dist = ndimage.distance_transform_edt(~a, sampling=g.spacing_kji)
    got = gpuseg.margin(Mask.from_numpy(a, g, backend=backend), r).to_numpy()
    np.testing.assert_array_equal(got, dist <= r)


def test_border_and_empty_and_full(backend):
    g = ImageGeometry((4, 5, 33))
    full = Mask.full(g, backend=backend)
    assert gpuseg.margin(full, -1.0).count() == full.count()  # the grid border does not erode
    assert gpuseg.margin(full, 2.0).count() == full.count()
    empty = Mask.empty(g, backend=backend)
    assert gpuseg.margin(empty, 3).count() == 0 and gpuseg.margin(empty, -3).count() == 0
    corner = Mask.full(g, Extent(0, 1, 0, 1, 0, 1), backend=backend)
    grown = gpuseg.margin(corner, 1.0)
    assert grown.count() == 4 and grown.extent() == Extent(0, 2, 0, 2, 0, 2)
    assert gpuseg.margin(corner, 0).equals(corner)


@pytest.mark.parametrize("mode", ["inside", "medial", "outside"])
def test_hollow(backend, rng, mode):
    g = ImageGeometry((10, 12, 40), spacing=(1, 1, 2))
    a = blobs(rng, g.shape, 0.01, 3)
    m = Mask.from_numpy(a, g, backend=backend)
    t = 2.0
    shell = gpuseg.hollow(m, t, mode).to_numpy()

    def grow(x, r):
        return ndimage.binary_dilation(x, structure=ball_structure(g.spacing, r))

    def shrink(x, r):
        return ndimage.binary_erosion(x, structure=ball_structure(g.spacing, r), border_value=1)

    want = {"inside": a & ~shrink(a, t), "outside": grow(a, t) & ~a,
            "medial": grow(a, t / 2) & ~shrink(a, t / 2)}[mode]
    np.testing.assert_array_equal(shell, want)


def _margin_reference(rng):
    """Growing by r mm = thresholding the Euclidean distance map of the background at r."""
    g = ImageGeometry((8, 9, 77), spacing=(0.6, 0.7, 1.5))
    a = blobs(rng, g.shape)
    return {"dense": ndimage.distance_transform_edt(~a, sampling=(1.5, 0.7, 0.6)) <= 2.5}


@parity(reference=_margin_reference)
def test_identical_across_backends(backend, rng):
    g = ImageGeometry((8, 9, 77), spacing=(0.6, 0.7, 1.5))
    a = blobs(rng, g.shape)
    m = gpuseg.margin(Mask.from_numpy(a, g, backend=backend), 2.5)
    return {"dense": m.to_numpy(), "words": m.words_numpy()}


def test_ball_runs():
    runs = ball_row_runs((1, 1, 1), 1.0)
    assert runs == {0: [(-1, 0), (0, -1), (0, 1), (1, 0)], 1: [(0, 0)]}
    assert ball_structure((1, 1, 1), 1.0).sum() == 7


@pytest.mark.parametrize("args,msg", [((np.nan,), "finite"), (("x",), "number of mm"), ((1e6,), "limit")])
def test_margin_errors(backend, args, msg):
    m = Mask.full(ImageGeometry((2, 2, 2)), backend=backend)
    with pytest.raises(InvalidInputError, match=msg):
        gpuseg.margin(m, *args)


def test_hollow_errors(backend):
    m = Mask.full(ImageGeometry((2, 2, 2)), backend=backend)
    with pytest.raises(InvalidInputError, match="positive"):
        gpuseg.hollow(m, 0)
    with pytest.raises(InvalidInputError, match="unknown hollow mode"):
        gpuseg.hollow(m, 1, "sideways")
