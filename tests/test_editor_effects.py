"""Whole-segment effects through the Editor's masking (Slicer's Set mode): margin, hollow,
smoothing, islands and logical operators, against a numpy model, with undo."""

from __future__ import annotations

import numpy as np
import pytest

import gpuseg
from gpuseg import Editor, ImageGeometry, Masking, Segmentation
from gpuseg.errors import InvalidInputError

G = ImageGeometry((14, 20, 37), spacing=(0.9, 1.1, 1.6))


def _scene(backend):
    rng = np.random.default_rng(8)
    a = np.zeros(G.shape, bool)
    a[4:10, 5:14, 8:20] = True
    a[5:8, 7:11, 12:15] = False  # a hole
    a[1, 1, 30] = True  # a small island
    b = np.zeros(G.shape, bool)
    b[3:11, 10:18, 15:30] = True
    x = rng.random(G.shape) < 0.5
    seg = Segmentation(G, backend=backend)
    for name, arr in (("a", a), ("b", b), ("x", x)):
        seg.add_segment(gpuseg.Mask.from_numpy(arr, G, backend=backend), name=name)
    return seg, a, b, x


def test_margin_inside_x_with_overwrite_and_undo(backend):
    seg, a, b, x = _scene(backend)
    ed = Editor(seg)
    ed.masking = Masking("inside", "x", overwrite="overwrite_all")
    grown = gpuseg.margin(seg["a"].mask, 2.0).to_numpy()
    n = ed.margin("a", 2.0)
    editable = x | a  # inside x, and the edited segment's own voxels
    want_a = np.where(editable, grown, a)
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want_a)
    want_b = b & ~(editable & grown)  # overwrite: b loses what a now holds in the editable area
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), want_b)
    np.testing.assert_array_equal(seg["x"].mask.to_numpy(), x & ~(editable & grown))
    assert n == int((want_a != a).sum() + (want_b != b).sum() + ((x & ~(editable & grown)) != x).sum())
    assert ed.undo()
    for name, arr in (("a", a), ("b", b), ("x", x)):
        np.testing.assert_array_equal(seg[name].mask.to_numpy(), arr)


def test_allow_overlap_and_shrink(backend):
    seg, a, b, x = _scene(backend)
    ed = Editor(seg)
    ed.masking = Masking(overwrite="allow_overlap")
    ed.margin("a", 2.0)
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), b)
    shrunk = gpuseg.margin(seg["b"].mask, -1.5).to_numpy()
    ed.margin("b", -1.5)
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), shrunk)


def test_hollow_smooth_islands(backend):
    seg, a, b, x = _scene(backend)
    ed = Editor(seg)
    ed.masking = Masking(overwrite="allow_overlap")
    ref = gpuseg.keep_largest_island(seg["a"].mask).to_numpy()
    ed.islands("a", "keep_largest", min_size=1)  # the default 1000 would clear it (the largest has 612)
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), ref)
    assert not seg["a"].mask.to_numpy()[1, 1, 30]
    assert ed.undo() and seg["a"].mask.to_numpy()[1, 1, 30]
    ed.islands("a", "remove_small", min_size=5)
    assert not seg["a"].mask.to_numpy()[1, 1, 30]
    hole = G.ijk_to_world_points([[13, 9, 6]])  # (i, j, k) inside the hole
    seg["b"].visible = seg["x"].visible = False  # add_selected is bounded by every visible segment
    ed.islands("a", "add_selected", point=hole)
    assert seg["a"].mask.to_numpy()[5:8, 7:11, 12:15].all()
    ed.islands("a", "keep_selected", point=[[10, 6, 5]], space="ijk")
    assert seg["a"].mask.count() > 0
    ref = gpuseg.hollow(seg["a"].mask, 1.5, "inside").to_numpy()
    ed.hollow("a", 1.5)
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), ref)
    ref = gpuseg.smooth(seg["b"].mask, "median", 3.0).to_numpy()
    ed.smooth("b", "median", 3.0)
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), ref)


def test_logical_operators(backend):
    seg, a, b, x = _scene(backend)
    ed = Editor(seg)
    ed.masking = Masking("inside", "x")  # bypassed by default, as in Slicer
    cases = [("union", a | b), ("subtract", a & ~b), ("intersect", a & b), ("copy", b), ("invert", ~a),
             ("clear", np.zeros_like(a)), ("fill", np.ones_like(a))]
    for op, want in cases:
        ed.logical("a", op, "b" if op in ("union", "subtract", "intersect", "copy") else None)
        np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want, err_msg=op)
        np.testing.assert_array_equal(seg["b"].mask.to_numpy(), b, err_msg=op)  # only the selected segment
        assert ed.undo()
        np.testing.assert_array_equal(seg["a"].mask.to_numpy(), a)
    ed.logical("a", "fill", bypass_masking=False)  # with masking: only inside x
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), a | x)


def test_errors():
    seg, a, b, x = _scene("cpu")
    ed = Editor(seg)
    with pytest.raises(InvalidInputError, match="unknown islands operation"):
        ed.islands("a", "keep_smallest")
    with pytest.raises(InvalidInputError, match="needs a point"):
        ed.islands("a", "keep_selected")
    with pytest.raises(InvalidInputError, match="modifier"):
        ed.logical("a", "union")
    with pytest.raises(InvalidInputError, match="unknown logical operation"):
        ed.logical("a", "nand", "b")
    with pytest.raises(InvalidInputError, match="expected a Mask"):
        ed.set_mask("a", np.ones(G.shape, bool))
    with pytest.raises(gpuseg.UnknownSegmentError):
        ed.margin("nope", 1.0)
    before = [s.mask.to_numpy() for s in seg]
    with pytest.raises(InvalidInputError):
        ed.margin("a", float("nan"))
    for s, arr in zip(seg, before):  # a failed edit changes nothing
        np.testing.assert_array_equal(s.mask.to_numpy(), arr)


def test_edit_script_effects(tmp_path):
    import json

    from gpuseg.cli import main

    seg, a, b, x = _scene("cpu")
    src = tmp_path / "in.seg.nrrd"
    gpuseg.write_segmentation(seg, src)
    image = tmp_path / "img.nrrd"
    gpuseg.write_labelmap(image, np.zeros(G.shape, np.int16), G)
    steps = [{"effect": "masking", "overwrite": "allow_overlap"},
             {"effect": "islands", "segment": "a", "operation": "keep_largest", "min_size": 1},
             {"effect": "margin", "segment": "a", "margin_mm": 1.5},
             {"effect": "logical", "segment": "b", "operation": "subtract", "modifier": "a"}]
    script = tmp_path / "s.json"
    script.write_text(json.dumps(steps))
    out = tmp_path / "out.seg.nrrd"
    assert main(["edit", str(src), "--image", str(image), "--script", str(script), "-o", str(out)]) == 0
    got = gpuseg.read_segmentation(out)
    want_a = gpuseg.margin(gpuseg.keep_largest_island(seg["a"].mask), 1.5).to_numpy()
    np.testing.assert_array_equal(got["a"].mask.to_numpy(), want_a)
    np.testing.assert_array_equal(got["b"].mask.to_numpy(), b & ~want_a)


def _image(backend):
    rng = np.random.default_rng(21)
    img = rng.integers(0, 40, G.shape).astype(np.int16)
    img[2:12, 3:17, 5:30] += 100  # a bright block, noisy
    return img, gpuseg.Image.from_numpy(img, G, backend=backend)


def test_local_threshold_effect_equals_the_op_through_masking(backend):
    seg, a, b, x = _scene(backend)
    arr, img = _image(backend)
    ed = Editor(seg, img)
    ed.masking = Masking("outside_all", overwrite="allow_overlap")
    seed = (6, 9, 20)
    region = gpuseg.local_threshold(img, seed, 100, 200, minimum_diameter_mm=2.0).to_numpy()
    assert region.any()
    ed.local_threshold("x", seed[::-1], 100, 200, minimum_diameter_mm=2.0, space="ijk")
    editable = ~(a | b) | x
    np.testing.assert_array_equal(seg["x"].mask.to_numpy(), x | (region & editable))
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), a)
    assert ed.undo()
    np.testing.assert_array_equal(seg["x"].mask.to_numpy(), x)
