"""Level tracing: against a plain scipy definition, Slicer's start rule, the editor, errors."""

from __future__ import annotations

import numpy as np
import pytest

import gpuseg
from gpuseg.errors import InvalidInputError, OutOfBoundsError
from gpuseg.ops.level_tracing import level_trace, trace_level_curve

from .conftest import shared_file

ndimage = pytest.importorskip("scipy.ndimage")
FOUR = [(-1, 0), (0, 1), (1, 0), (0, -1)]  # (dx, dy) in the filter's order


def reference(plane: np.ndarray, r: int, c: int) -> np.ndarray | None:
    """The 8-connected region of pixels >= the click's value, holes filled; None when the click's
    first background 4-neighbour (in the filter's order) is a hole, not the outside."""
    t = plane[r, c]
    lab, _ = ndimage.label(plane >= t, structure=np.ones((3, 3)))
    region = lab == lab[r, c]
    pad = np.pad(~region, 1, constant_values=True)
    bl, _ = ndimage.label(pad)
    outside = (bl == bl[0, 0])[1:-1, 1:-1]
    for dx, dy in FOUR:
        y, x = r + dy, c + dx
        if not (0 <= y < plane.shape[0] and 0 <= x < plane.shape[1]):
            return ndimage.binary_fill_holes(region)
        if plane[y, x] < t:
            return ndimage.binary_fill_holes(region) if outside[y, x] else None
    return None


def test_random_smooth_images_match_the_reference():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(200):
        img = (ndimage.gaussian_filter(rng.normal(size=(37, 45)), 2.5) * 1000).astype(np.int16)
        r, c = int(rng.integers(0, 37)), int(rng.integers(0, 45))
        exp = reference(img, r, c)
        if exp is None:
            continue
        got = level_trace(gpuseg.Image.from_numpy(img[None], backend="cpu"), (0, r, c)).to_numpy()[0]
        np.testing.assert_array_equal(got, exp)
        checked += 1
    assert checked > 100


def test_one_pixel_neck_is_traced_round():
    """Where the start pixel is visited twice, the trace goes on (Slicer's filter stops early)."""
    img = np.zeros((9, 12), np.int16)
    img[2:7, 1:5] = 10
    img[4, 5] = 10  # the neck
    img[2:7, 6:10] = 10
    got = level_trace(gpuseg.Image.from_numpy(img[None], backend="cpu"), (0, 4, 5)).to_numpy()[0]
    np.testing.assert_array_equal(got, img > 0)


def test_hole_boundary_and_uniform_area_and_moved_seed():
    img = np.zeros((1, 10, 12), np.int16)
    img[0, 2:8, 3:9] = 100
    img[0, 4:6, 5:7] = 0
    im = gpuseg.Image.from_numpy(img, backend="cpu")
    outer = level_trace(im, (0, 2, 4)).to_numpy()[0]
    np.testing.assert_array_equal(outer, np.pad(np.ones((6, 6), bool), ((2, 2), (3, 3))))
    hole = level_trace(im, (0, 4, 4)).to_numpy()[0]  # the click touches the hole first
    assert hole[4:6, 5:7].all() and hole.sum() == 12 and not hole[2, 3]
    whole = level_trace(im, (0, 0, 0)).to_numpy()[0]  # every pixel is >= 0: the whole slice
    assert whole.all()
    flat = gpuseg.Image.from_numpy(np.full((1, 5, 5), 7, np.int16), backend="cpu")
    assert level_trace(flat, (0, 2, 2)).is_empty()  # uniform area: nothing to trace
    diag = np.full((5, 5), 5, np.int16)
    diag[1, 1] = 0  # only a diagonal neighbour of (2, 2) is background: the start moves
    chain = trace_level_curve(diag, 2, 2)
    assert chain.shape[0] > 1 and tuple(chain[0]) != (2, 2)


def test_slices_along_each_axis(backend):
    rng = np.random.default_rng(5)
    vol = (ndimage.gaussian_filter(rng.normal(size=(20, 24, 40)), 2) * 1000).astype(np.int16)
    img = gpuseg.Image.from_numpy(vol, backend=backend)
    seed = (10, 12, 20)
    for axis in range(3):
        m = level_trace(img, seed, axis)
        plane = np.take(vol, seed[axis], axis=axis)
        rc = [v for a, v in enumerate(seed) if a != axis]
        exp = reference(plane, *rc)
        got = np.take(m.to_numpy(), seed[axis], axis=axis)
        if exp is not None:
            np.testing.assert_array_equal(got, exp)
        assert m.count() == got.sum()  # nothing outside the slice


def test_real_ct_bone_boundary():
    nib = pytest.importorskip("nibabel")
    ct = np.asarray(nib.load(shared_file("totalseg", "example_ct.nii.gz")).dataobj).transpose(2, 1, 0)
    ct = ct.astype(np.int16)
    k = ct.shape[0] // 2
    plane = ct[k]
    edge = np.argwhere((plane >= 300) & (ndimage.minimum_filter(plane, 3) < 300))
    img = gpuseg.Image.from_numpy(ct, backend="cpu")
    done = 0
    for r, c in edge[:: max(1, len(edge) // 15)]:
        exp = reference(plane, int(r), int(c))
        if exp is None:
            continue
        np.testing.assert_array_equal(level_trace(img, (k, int(r), int(c))).to_numpy()[k], exp)
        done += 1
    assert done >= 5


def test_editor_level_trace_with_masking_and_undo():
    img = np.zeros((3, 10, 40), np.int16)
    img[1, 2:8, 3:30] = 100
    g = gpuseg.ImageGeometry(img.shape)
    seg = gpuseg.Segmentation(g, backend="cpu")
    a = seg.add_segment(name="a")
    wall = np.zeros(img.shape, bool)
    wall[:, :, 20:] = True
    seg.add_segment(gpuseg.Mask.from_numpy(wall, g, backend="cpu"), name="wall")
    ed = gpuseg.Editor(seg, gpuseg.Image.from_numpy(img, g, backend="cpu"))
    ed.masking = gpuseg.Masking("outside_all")  # may not paint over "wall"
    n = ed.level_trace(a.id, (3, 2, 1), space="ijk")
    assert n == 6 * 17
    got = seg[a.id].mask.to_numpy()
    assert got[1, 2:8, 3:20].all() and not got[:, :, 20:].any() and got.sum() == n
    assert ed.undo() and seg[a.id].mask.count() == 0
    # slice 0 is uniform, but outside the slice counts as background: a border click takes the
    # whole slice, of which masking leaves the 10 x 20 voxels left of "wall"
    assert ed.level_trace(a.id, (0, 0, 0), space="ijk") == 200
    assert ed.level_trace(a.id, (5, 5, 2), space="ijk") == 0  # inside a uniform area: nothing
    with pytest.raises(InvalidInputError, match="one point"):
        ed.level_trace(a.id, [(1, 1, 1), (2, 2, 1)], space="ijk")


def test_errors():
    im = gpuseg.Image.from_numpy(np.zeros((2, 3, 4), np.float32), backend="cpu")
    with pytest.raises(OutOfBoundsError):
        level_trace(im, (5, 0, 0))
    with pytest.raises(InvalidInputError, match="axis"):
        level_trace(im, (0, 0, 0), axis=3)
    nan = np.zeros((1, 3, 4), np.float32)
    nan[0, 1, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        level_trace(gpuseg.Image.from_numpy(nan, backend="cpu"), (0, 1, 1))
    with pytest.raises(InvalidInputError, match="2D"):
        trace_level_curve(np.zeros((2, 2, 2)), 0, 0)
