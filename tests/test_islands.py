"""Islands against scipy.ndimage.label and cc3d on every backend, bit for bit."""

import cc3d
import numpy as np
import pytest
from scipy import ndimage

import gpuseg
from gpuseg import ImageGeometry, Mask
from gpuseg.errors import InvalidInputError, OutOfBoundsError

from .conftest import ODD_SHAPES, shared_file
from .parity import parity

STRUCT = {6: ndimage.generate_binary_structure(3, 1), 26: ndimage.generate_binary_structure(3, 3)}


def assert_same_partition(a, b):
    """Two labelings with the same components (cc3d may number them differently)."""
    assert (a > 0).sum() == (b > 0).sum()
    pairs = np.unique(np.stack([a[a > 0], b[a > 0]]), axis=1)
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


@pytest.mark.parametrize("connectivity", [6, 26])
@pytest.mark.parametrize("shape", ODD_SHAPES + [(9, 17, 70)])
@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 1.0])
def test_label_matches_scipy_and_cc3d(backend, rng, shape, connectivity, p):
    a = rng.random(shape) < p
    m = Mask.from_numpy(a, ImageGeometry(shape), backend=backend).shrink_()
    got, n = gpuseg.label(m, connectivity)
    want, wn = ndimage.label(a, STRUCT[connectivity])
    assert n == wn
    np.testing.assert_array_equal(got, want)  # same numbering: first voxel in raster order
    assert_same_partition(got, cc3d.connected_components(a.astype(np.uint8), connectivity=connectivity))


def test_sizes_and_operations(backend, rng):
    shape = (12, 20, 75)
    g = ImageGeometry(shape, spacing=(0.7, 0.7, 2.0))
    a = ndimage.binary_dilation(rng.random(shape) < 0.01, iterations=1)
    lab, n = ndimage.label(a)
    sizes = np.bincount(lab.ravel())
    m = Mask.from_numpy(a, g, backend=backend)
    isl = gpuseg.connected_components(m)
    np.testing.assert_array_equal(isl.sizes[1:], sizes[1:])
    largest = int(np.argmax(sizes[1:]) + 1)
    np.testing.assert_array_equal(gpuseg.keep_largest_island(m).to_numpy(), lab == largest)
    np.testing.assert_array_equal(gpuseg.remove_small_islands(m, 10).to_numpy(),
                                  np.isin(lab, np.nonzero(sizes >= 10)[0][1:]))
    parts = gpuseg.split_islands(m, 5)
    order = [v for v in np.argsort(-sizes[1:], kind="stable") + 1 if sizes[v] >= 5]
    assert len(parts) == len(order)
    for part, v in zip(parts, order):
        np.testing.assert_array_equal(part.to_numpy(), lab == v)
    k, j, i = (int(x[0]) for x in np.nonzero(lab == 3))
    np.testing.assert_array_equal(gpuseg.keep_selected_island(m, (k, j, i)).to_numpy(), lab == 3)
    np.testing.assert_array_equal(gpuseg.remove_selected_island(m, (k, j, i)).to_numpy(), a & (lab != 3))
    with pytest.raises(InvalidInputError, match="not in the mask"):
        gpuseg.keep_selected_island(m, tuple(int(x[0]) for x in np.nonzero(~a)))
    with pytest.raises(OutOfBoundsError):
        gpuseg.keep_selected_island(m, (0, 0, 999))


def test_fill_hole(backend):
    g = ImageGeometry((7, 7, 40))
    a = np.zeros(g.shape, bool)
    a[1:6, 1:6, 30:35] = True
    a[2:5, 2:5, 31:34] = False  # a closed cavity
    m = Mask.from_numpy(a, g, backend=backend)
    filled = gpuseg.add_selected_island(m, (3, 3, 32))
    want = a.copy()
    want[2:5, 2:5, 31:34] = True
    np.testing.assert_array_equal(filled.to_numpy(), want)
    with pytest.raises(InvalidInputError, match="already in the mask"):
        gpuseg.add_selected_island(m, (1, 1, 30))


def _bone_reference():
    ct = shared_file("totalseg", "example_ct.nii.gz")
    a = gpuseg.read_image(ct, backend="cpu").to_numpy()
    labels, n = ndimage.label((a >= 200) & (a <= 3000), np.ones((3, 3, 3), bool))
    return {"labels": labels.astype(np.int32)}


@parity(reference=_bone_reference)
def test_identical_across_backends_on_real_bone(backend):
    ct = shared_file("totalseg", "example_ct.nii.gz")
    bone = gpuseg.threshold(gpuseg.read_image(ct, backend=backend), 200, 3000)
    isl = gpuseg.connected_components(bone, 26)
    assert isl.sizes.shape[0] > 2  # real anatomy has several islands
    return {"labels": isl.to_numpy(), "sizes": isl.sizes, "largest": gpuseg.keep_largest_island(bone)}


def test_bad_connectivity(backend):
    m = Mask.full(ImageGeometry((2, 2, 2)), backend=backend)
    with pytest.raises(InvalidInputError, match="6 or 26"):
        gpuseg.connected_components(m, 18)
    with pytest.raises(InvalidInputError, match="negative"):
        gpuseg.remove_small_islands(m, -1)
