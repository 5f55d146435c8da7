"""Grow from seeds through the Editor: seeds = visible segments, masking, preview, apply, undo."""

from __future__ import annotations

import numpy as np
import pytest

import gpuseg
from gpuseg import Editor, ImageGeometry, Masking, Segmentation
from gpuseg.errors import InvalidInputError
from gpuseg.ops.grow import GrowCut, grow_region


def _scene(backend):
    """Two plateaus (0 and 100) with noise, a seed in each, and an unseeded third segment."""
    rng = np.random.default_rng(3)
    g = ImageGeometry((12, 30, 45), spacing=(1.0, 1.0, 2.0))
    img = np.zeros(g.shape, np.int16)
    img[:, :, 22:] = 100
    img += rng.integers(-5, 6, g.shape).astype(np.int16)
    seg = Segmentation(g, backend=backend)
    a = np.zeros(g.shape, bool)
    a[4:8, 10:14, 5:9] = True
    b = np.zeros(g.shape, bool)
    b[4:8, 10:14, 30:36] = True
    seg.add_segment(gpuseg.Mask.from_numpy(a, g, backend=backend), name="dark")
    seg.add_segment(gpuseg.Mask.from_numpy(b, g, backend=backend), name="bright")
    keep = np.zeros(g.shape, bool)
    keep[0, 0, 0:3] = True
    seg.add_segment(gpuseg.Mask.from_numpy(keep, g, backend=backend), name="hidden")
    seg["hidden"].visible = False
    return g, gpuseg.Image.from_numpy(img, g, backend=backend), seg, a, b, keep


def test_preview_apply_undo(backend):
    g, img, seg, a, b, keep = _scene(backend)
    ed = Editor(seg, img)
    p = ed.grow_from_seeds_preview()
    assert p.segment_ids == [seg["dark"].id, seg["bright"].id]  # the visible segments
    assert seg["dark"].mask.count() == a.sum()  # a preview changes nothing
    labels = p.labels_slice(0, 6)
    assert labels is not None and set(np.unique(labels)) <= {0, 1, 2}
    assert p.region == grow_region([seg["dark"].mask, seg["bright"].mask], g.shape)  # Slicer's region
    ref = GrowCut(img, [seg["dark"].mask, seg["bright"].mask]).result()
    n = ed.commit_grow(p)
    region = p.region
    inside = np.zeros(g.shape, bool)
    inside[region.slices] = True
    for name, r, seed in (("dark", ref[0], a), ("bright", ref[1], b)):
        got = seg[name].mask.to_numpy()
        np.testing.assert_array_equal(got & inside, r.to_numpy() & inside)
        np.testing.assert_array_equal(got & ~inside, seed & ~inside)  # nothing outside the region
    assert n == int(ref[0].count() + ref[1].count() - a.sum() - b.sum())
    assert seg["dark"].mask.to_numpy()[:, :, :20][inside[:, :, :20]].mean() > 0.99  # the dark side
    np.testing.assert_array_equal(seg["hidden"].mask.to_numpy(), keep)  # not a seed, untouched
    assert ed.undo()
    np.testing.assert_array_equal(seg["dark"].mask.to_numpy(), a)
    np.testing.assert_array_equal(seg["bright"].mask.to_numpy(), b)
    assert ed.redo()
    np.testing.assert_array_equal(seg["dark"].mask.to_numpy() & inside, ref[0].to_numpy() & inside)


def test_masking_is_honoured(backend):
    g, img, seg, a, b, keep = _scene(backend)
    ed = Editor(seg, img)
    ed.masking = Masking(intensity_range=(-20, 50))  # only the dark side may change
    ed.grow_from_seeds()
    bright = seg["bright"].mask.to_numpy()
    dark = seg["dark"].mask.to_numpy()
    np.testing.assert_array_equal(bright, b)  # the bright side is masked: nothing grows there
    assert dark.sum() > a.sum() and not (dark & (img.to_numpy() > 50)).any()


def test_incremental_preview_equals_a_fresh_one():
    g, img, seg, a, b, keep = _scene("cpu")
    ed = Editor(seg, img)
    ed.grow_from_seeds_preview()
    ed.paint("bright", [[20, 5, 6]], 3.0, space="ijk")  # another stroke on the bright seed
    again = ed.grow_from_seeds_preview()
    fresh = Editor(seg, img).grow_from_seeds_preview()
    assert again.region == fresh.region
    for x, y in zip(again.grown, fresh.grown):
        np.testing.assert_array_equal(x, y)


def test_errors():
    g, img, seg, a, b, keep = _scene("cpu")
    for s in seg:
        s.visible = False
    with pytest.raises(InvalidInputError, match="no segment is visible"):
        Editor(seg, img).grow_from_seeds_preview()
    seg["dark"].visible = True
    with pytest.raises(InvalidInputError, match="at least two seed segments"):
        Editor(seg, img).grow_from_seeds_preview()
    with pytest.raises(InvalidInputError, match="source image"):
        Editor(seg).grow_from_seeds_preview()
    # one seed with masking is allowed (Slicer: >= 1 seed when an editable mask is set)
    ed = Editor(seg, img)
    ed.masking = Masking(intensity_range=(-20, 50))
    assert ed.grow_from_seeds() > 0


def test_edit_script_step(tmp_path):
    import json

    from gpuseg.cli import main

    g, img, seg, a, b, keep = _scene("cpu")
    src = tmp_path / "seeds.seg.nrrd"
    gpuseg.write_segmentation(seg, src)
    image = tmp_path / "img.nrrd"
    gpuseg.write_labelmap(image, img.to_numpy(), g)
    script = tmp_path / "grow.json"
    script.write_text(json.dumps([{"effect": "grow_from_seeds", "segments": ["dark", "bright"]}]))
    out = tmp_path / "grown.seg.nrrd"
    assert main(["edit", str(src), "--image", str(image), "--script", str(script), "-o", str(out)]) == 0
    got = gpuseg.read_segmentation(out)
    ed = Editor(seg, img)
    ed.grow_from_seeds(segments=["dark", "bright"])
    for name in ("dark", "bright"):
        np.testing.assert_array_equal(got[name].mask.to_numpy(), seg[name].mask.to_numpy())


def test_strokes_inside_the_region_update_incrementally():
    g, img, seg, a, b, keep = _scene("cpu")
    ed = Editor(seg, img)
    ed.masking = Masking(intensity_range=(-20, 150))
    first = ed.grow_from_seeds_preview()
    gc = ed._grow.growcut
    ed.paint("bright", [[33, 11, 5]], 2.0, space="ijk")  # inside the bright seed's extent
    again = ed.grow_from_seeds_preview()
    assert ed._grow.growcut is gc and again.region == first.region  # the same computation, updated
    fresh = Editor(seg, img)
    fresh.masking = ed.masking
    want = fresh.grow_from_seeds_preview()
    for x, y in zip(again.grown, want.grown):
        np.testing.assert_array_equal(x, y)
    ed.paint("dark", [[2, 2, 1]], 2.0, space="ijk")  # outside: the region grows, a fresh start
    grown_region = ed.grow_from_seeds_preview()
    assert ed._grow.growcut is not gc and grown_region.region != first.region
