"""``all_visible`` (Slicer's ApplyToAllVisibleSegments) for margin, hollow and smoothing: each
visible segment in turn, through masking, as one undo level; hidden segments untouched."""

import numpy as np
import pytest
from scipy import ndimage

from gpuseg import Editor, ImageGeometry, Mask, Segmentation
from gpuseg.errors import InvalidInputError
from gpuseg.ops.morphology import ball_structure
from gpuseg.steps import run_steps, validate_step

G = ImageGeometry((10, 14, 45), spacing=(1.0, 0.8, 1.5))


def three(rng):
    """Three blobs far apart (so a 2 mm margin of one never meets another) plus a hidden one."""
    out = []
    for i0 in (2, 17, 32):
        a = np.zeros(G.shape, bool)
        a[3:7, 4:10, i0:i0 + 8] = rng.random((4, 6, 8)) < 0.7
        out.append(a)
    return out


def build(backend, arrays, hidden=(3,)):
    seg = Segmentation(G, backend=backend)
    for n, a in enumerate(arrays):
        seg.add_segment(name=f"s{n}", mask=Mask.from_numpy(a, G, backend=backend), visible=n not in hidden)
    return seg


def dense(seg):
    return [s.mask.to_numpy() for s in seg]


@pytest.mark.parametrize("effect,kw", [
    ("margin", {"margin_mm": 2.0}),
    ("margin", {"margin_mm": -1.5}),
    ("hollow", {"thickness_mm": 1.5, "mode": "medial"}),
    ("smooth", {"method": "median", "kernel_mm": 3.0}),
    ("smooth", {"method": "gaussian", "gaussian_sigma_mm": 1.5}),
])
def test_all_visible_equals_each_in_turn_and_undoes_at_once(backend, rng, effect, kw):
    arrays = three(rng)
    hidden = np.zeros(G.shape, bool)
    hidden[0:2, 0:3, 0:40] = True  # overlaps nothing, and is not visible: must not change
    arrays.append(hidden)
    seg = build(backend, arrays)
    ed = Editor(seg)
    changed = ed.__getattribute__(effect)(None, all_visible=True, **kw)
    got = dense(seg)
    # the same effect on each visible segment in turn, each its own edit
    ref = build(backend, arrays)
    ed2 = Editor(ref)
    want_changed = sum(getattr(ed2, effect)(f"s{n}", **kw) for n in range(3))
    for g_, w_ in zip(got, dense(ref)):
        np.testing.assert_array_equal(g_, w_)
    assert changed == want_changed > 0
    np.testing.assert_array_equal(got[3], hidden)
    assert len(ed.history.undo_levels) == 1
    assert ed.undo()
    for g_, a in zip(dense(seg), arrays):
        np.testing.assert_array_equal(g_, a)
    assert ed.redo()
    for g_, w_ in zip(dense(seg), got):
        np.testing.assert_array_equal(g_, w_)


def test_all_visible_margin_matches_scipy(backend, rng):
    arrays = three(rng)
    seg = build(backend, arrays, hidden=())
    Editor(seg).margin("s0", 2.0, all_visible=True)
    se = ball_structure(G.spacing, 2.0)
    for s, a in zip(seg, arrays):
        np.testing.assert_array_equal(s.mask.to_numpy(), ndimage.binary_dilation(a, se))


def test_all_visible_is_sequential_through_overwrite(backend):
    # s0 grows into s1 first (overwrite all takes those voxels from s1); s1 then grows from what is left
    a = np.zeros(G.shape, bool)
    b = np.zeros(G.shape, bool)
    a[4:6, 5:8, 10:14] = True
    b[4:6, 5:8, 15:19] = True
    seg = build(backend, [a, b], hidden=())
    Editor(seg).margin(None, 1.5, all_visible=True)
    se = ball_structure(G.spacing, 1.5)
    a1 = ndimage.binary_dilation(a, se)
    b0 = b & ~a1
    b1 = ndimage.binary_dilation(b0, se)
    np.testing.assert_array_equal(seg[seg.segment_ids[1]].mask.to_numpy(), b1)
    np.testing.assert_array_equal(seg[seg.segment_ids[0]].mask.to_numpy(), a1 & ~b1)


def test_all_visible_honours_masking(backend, rng):
    arrays = three(rng)
    seg = build(backend, arrays, hidden=())
    ed = Editor(seg)
    area = np.zeros(G.shape, bool)
    area[:, :, :20] = True
    seg.add_segment(name="area", mask=Mask.from_numpy(area, G, backend=backend), visible=False)
    ed.masking.editable_area = "inside"
    ed.masking.mask_segment = "area"
    ed.margin(None, 2.0, all_visible=True)
    se = ball_structure(G.spacing, 2.0)
    for s, a in zip(list(seg)[:3], arrays):
        want = np.where(area | a, ndimage.binary_dilation(a, se), a)
        np.testing.assert_array_equal(s.mask.to_numpy(), want)


def test_all_visible_errors_and_steps(backend, rng):
    arrays = three(rng)
    seg = build(backend, arrays, hidden=(0, 1, 2))
    ed = Editor(seg)
    with pytest.raises(InvalidInputError, match="no segment is visible"):
        ed.margin(None, 2.0, all_visible=True)
    with pytest.raises(InvalidInputError, match="needs a segment"):
        ed.hollow(None, 2.0)
    with pytest.raises(InvalidInputError, match="missing required key 'segment'"):
        validate_step({"effect": "margin", "margin_mm": 2})
    validate_step({"effect": "smooth", "all_visible": True})
    for s in seg:
        s.visible = True
    run_steps(ed, [{"effect": "hollow", "thickness_mm": 1.5, "all_visible": True}])
    ref = build(backend, arrays, hidden=())
    e2 = Editor(ref)
    for n in range(3):
        e2.hollow(f"s{n}", 1.5)
    for g_, w_ in zip(dense(seg), dense(ref)):
        np.testing.assert_array_equal(g_, w_)
    assert len(ed.history.undo_levels) == 1
