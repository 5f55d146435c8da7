"""Smoothing (median majority, opening, closing) against SciPy on every backend."""

import numpy as np
import pytest
from scipy import ndimage

import gpuseg
from gpuseg import ImageGeometry, Mask
from gpuseg.errors import InvalidInputError
from gpuseg.ops.morphology import ball_structure
from gpuseg.ops.smoothing import median_kernel_voxels

from .parity import parity


def majority_reference(a, hk, hj, hi):
    box = np.ones((2 * hk + 1, 2 * hj + 1, 2 * hi + 1), np.int64)
    ones = ndimage.convolve(a.astype(np.int64), box, mode="constant", cval=0)
    inside = ndimage.convolve(np.ones(a.shape, np.int64), box, mode="constant", cval=0)
    return 2 * ones > inside


@pytest.mark.parametrize("shape,spacing,mm", [
    ((7, 9, 45), (1, 1, 1), 3.0),
    ((6, 8, 70), (0.6, 0.8, 2.0), 3.0),
    ((5, 6, 33), (0.5, 1.0, 1.0), 5.0),
    ((4, 5, 100), (0.25, 1.0, 1.0), 7.0),  # 27 voxels along i
])
def test_median_matches_reference(backend, rng, shape, spacing, mm):
    g = ImageGeometry(shape, spacing=spacing)
    a = ndimage.binary_dilation(rng.random(shape) < 0.05, iterations=1) ^ (rng.random(shape) < 0.05)
    hk, hj, hi = median_kernel_voxels(spacing, mm)
    got = gpuseg.smooth(Mask.from_numpy(a, g, backend=backend), "median", mm).to_numpy()
    np.testing.assert_array_equal(got, majority_reference(a, hk, hj, hi))


def test_median_kernel_sizes_follow_slicer():
    # size per axis = nearest odd number of voxels of kernel_mm / spacing
    assert median_kernel_voxels((1, 1, 1), 3) == (1, 1, 1)
    assert median_kernel_voxels((0.5, 1.0, 3.0), 3) == (0, 1, 3)  # i: 6 -> 7, j: 3, k: 1
    assert median_kernel_voxels((1, 1, 1), 1) == (0, 0, 0)


@pytest.mark.parametrize("method", ["opening", "closing"])
def test_opening_closing(backend, rng, method):
    g = ImageGeometry((8, 10, 40), spacing=(1, 1, 1.5))
    a = ndimage.binary_dilation(rng.random(g.shape) < 0.03, iterations=2)
    se = ball_structure(g.spacing, 1.5)
    if method == "opening":
        want = ndimage.binary_dilation(ndimage.binary_erosion(a, se, border_value=1), se)
    else:
        want = ndimage.binary_erosion(ndimage.binary_dilation(a, se), se, border_value=1)
    got = gpuseg.smooth(Mask.from_numpy(a, g, backend=backend), method, 3.0).to_numpy()
    np.testing.assert_array_equal(got, want)


def _median_reference(rng):
    """Majority of the in-grid voxels of the box (scipy sums, independent of the kernels)."""
    g = ImageGeometry((6, 7, 90), spacing=(0.7, 0.7, 1.2))
    a = rng.random(g.shape) < 0.5
    hk, hj, hi = median_kernel_voxels(g.spacing, 2.5)
    box = np.ones((2 * hk + 1, 2 * hj + 1, 2 * hi + 1))
    ones = ndimage.convolve(a.astype(np.int64), box.astype(np.int64), mode="constant", cval=0)
    inside = ndimage.convolve(np.ones(g.shape, np.int64), box.astype(np.int64), mode="constant", cval=0)
    return {"dense": 2 * ones > inside}


@parity(reference=_median_reference)
def test_identical_across_backends(backend, rng):
    g = ImageGeometry((6, 7, 90), spacing=(0.7, 0.7, 1.2))
    a = rng.random(g.shape) < 0.5
    m = gpuseg.smooth(Mask.from_numpy(a, g, backend=backend), "median", 2.5)
    return {"dense": m.to_numpy(), "words": m.words_numpy()}


def test_smoothing_errors_and_empty(backend):
    g = ImageGeometry((3, 3, 3))
    m = Mask.full(g, backend=backend)
    assert gpuseg.smooth(Mask.empty(g, backend=backend)).count() == 0
    assert gpuseg.smooth(m, "median", 3).count() == 27
    with pytest.raises(InvalidInputError, match="unknown smoothing method"):
        gpuseg.smooth(m, "bilateral")
    with pytest.raises(InvalidInputError, match="positive"):
        gpuseg.smooth(m, "median", -1)
    with pytest.raises(InvalidInputError, match="at most 63"):
        gpuseg.smooth(Mask.full(ImageGeometry((3, 3, 3), spacing=(0.01, 1, 1)), backend=backend), "median", 3)


@pytest.mark.parametrize("method", ["median", "opening", "closing", "gaussian"])
def test_smoothing_brush_changes_only_the_painted_region(backend, method):
    """Slicer's smoothing brush: inside the stroke, the whole-segment smoothing; outside, the
    segment as it was (SegmentEditorSmoothingEffect.modifySelectedSegmentByLabelmap)."""
    from gpuseg import Editor, ImageGeometry, Mask, Segmentation
    from gpuseg.editor.brush import rasterize_stroke
    from gpuseg.ops.smoothing import smooth

    rng = np.random.default_rng(11)
    g = ImageGeometry((24, 30, 41), (0.9, 1.1, 1.6), (3.0, -2.0, 1.0))
    a = ndimage.binary_opening(rng.random(g.shape) < 0.55, iterations=1)
    seg = Segmentation(g, backend=backend)
    seg.add_segment(Mask.from_numpy(a, g, backend=backend), name="s")
    ed = Editor(seg)
    pts = g.ijk_to_world_points([[10.0, 12.0, 9.0], [25.0, 16.0, 12.0]])
    whole = smooth(Mask.from_numpy(a, g, backend=backend), method, 3.0, gaussian_sigma_mm=1.5).to_numpy()
    ext, dense = rasterize_stroke(g, g.world_to_ijk_points(pts), 9.0, "sphere", 0, None)
    brush = np.zeros(g.shape, bool)
    brush[ext.slices] = dense
    expect = np.where(brush, whole, a)
    changed = ed.smooth("s", method, 3.0, gaussian_sigma_mm=1.5, points=pts, diameter_mm=9.0)
    got = seg.segment("s").mask.to_numpy()
    assert np.array_equal(got, expect)
    assert changed == int(np.count_nonzero(got != a)) > 0
    assert ed.undo() and np.array_equal(seg.segment("s").mask.to_numpy(), a)
    with pytest.raises(gpuseg.InvalidInputError, match="joint"):
        ed.smooth("s", "joint_taubin", points=pts)


def test_smoothing_brush_step():
    from gpuseg import Editor, ImageGeometry, Mask, Segmentation
    from gpuseg.steps import run_steps, validate_steps

    g = ImageGeometry((10, 12, 14))
    a = np.zeros(g.shape, bool)
    a[2:8, 3:9, 3:11] = True
    a[5, 6, 11:13] = True  # a spur that median smoothing removes
    seg = Segmentation(g)
    seg.add_segment(Mask.from_numpy(a, g), name="s")
    ed = Editor(seg)
    far = [[0.0, 0.0, 0.0]]  # a stroke far from the spur changes nothing there
    run_steps(ed, validate_steps([{"effect": "smooth", "segment": "s", "points": far, "diameter_mm": 2.0}]))
    assert seg.segment("s").mask.to_numpy()[5, 6, 11:13].all()
    near = [[12.0, 6.0, 5.0]]
    run_steps(ed, validate_steps([{"effect": "smooth", "segment": "s", "points": near, "diameter_mm": 4.0}]))
    assert not seg.segment("s").mask.to_numpy()[5, 6, 11:13].any()
