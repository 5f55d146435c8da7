"""The Watershed effect against SimpleITK (its definition): the flood alone on tie-heavy
random inputs, and the whole effect on real CT with TotalSegmentator seeds, on every backend,
through masking and undo."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import gpuseg
from gpuseg import Editor, Masking, Segmentation
from gpuseg.errors import InvalidInputError
from gpuseg.ops.watershed import watershed_from_markers
from gpuseg.steps import run_steps, validate_steps

from .conftest import ODD_SHAPES, shared_file

sitk = pytest.importorskip("SimpleITK")  # the watershed's gradient is SimpleITK's (the itk extra)


def _itk_watershed(feature, markers, spacing=(1.0, 1.0, 1.0)):
    f = sitk.GetImageFromArray(feature)
    m = sitk.GetImageFromArray(markers.astype(np.uint32))
    f.SetSpacing(spacing)
    m.SetSpacing(spacing)
    out = sitk.MorphologicalWatershedFromMarkers(f, m, markWatershedLine=False, fullyConnected=False)
    return sitk.GetArrayFromImage(out).astype(np.int32)


@pytest.mark.parametrize("shape", ODD_SHAPES + [(9, 14, 23)])
def test_flood_is_itks_with_ties(shape):
    rng = np.random.default_rng(sum(shape))
    for levels in (3, 1000):  # few levels: most priorities tie, so the queue order decides
        feature = rng.integers(0, levels, shape).astype(np.float32)
        markers = np.zeros(shape, np.int32)
        n = max(1, feature.size // 40)
        markers.ravel()[rng.integers(0, feature.size, n)] = rng.integers(1, 7, n)
        np.testing.assert_array_equal(watershed_from_markers(feature, markers), _itk_watershed(feature, markers))
    assert not watershed_from_markers(feature, np.zeros(shape, np.int32)).any()  # no markers: nothing


def _ct(backend):
    import nibabel as nib

    path = shared_file("totalseg", "example_ct_sm.nii.gz")
    img = gpuseg.read_image(path, backend=backend)
    lab = np.asarray(nib.load(str(shared_file("totalseg", "example_seg.nii.gz"))).dataobj).transpose(2, 1, 0)
    seg = Segmentation(img.geometry, backend=backend)
    seeds = {}
    for value in (5, 2, 3):  # liver, right and left kidney: seeds well inside each
        seeds[value] = ndimage.binary_erosion(lab == value, iterations=2)
        seg.add_segment(gpuseg.Mask.from_numpy(seeds[value], img.geometry, backend=backend), name=f"l{value}")
    body = np.zeros(lab.shape, bool)  # a background seed around the organs
    body[:, 40:44, 20:100] = True
    body &= lab == 0
    seg.add_segment(gpuseg.Mask.from_numpy(body, img.geometry, backend=backend), name="bg")
    return img, seg, [seeds[5], seeds[2], seeds[3], body]


def _reference(img, seeds, sigma, editable=None):
    """The effect by hand with SimpleITK over grow from seeds' region."""
    ext = gpuseg.Extent.empty()
    for s in seeds:
        ext = ext.union(gpuseg.Mask.from_numpy(s, img.geometry).extent())
    # Slicer's auto-complete region: int(max(3, 0.1 * (last - first))) per axis, inclusive bounds
    ext = ext.pad([int(max(3, 0.1 * (n - 1))) for n in ext.shape]).clip(img.shape)
    a = img.to_numpy()[ext.slices]
    im = sitk.GetImageFromArray(a)
    im.SetSpacing(img.geometry.spacing)
    feature = sitk.GradientMagnitudeRecursiveGaussian(im, sigma)
    markers = np.zeros(ext.shape, np.int32)
    for n, s in enumerate(seeds, start=1):
        markers[s[ext.slices]] = n
    if editable is not None:
        markers[~editable[ext.slices] & (markers == 0)] = len(seeds) + 1
    m = sitk.GetImageFromArray(markers.astype(np.uint32))
    m.CopyInformation(feature)
    labels = sitk.GetArrayFromImage(sitk.MorphologicalWatershedFromMarkers(feature, m, markWatershedLine=False,
                                                                           fullyConnected=False))
    out = []
    for n, s in enumerate(seeds, start=1):
        full = s.copy()
        region = full[ext.slices]
        keep = editable[ext.slices] if editable is not None else np.ones(ext.shape, bool)
        region[keep] = labels[keep] == n
        out.append(full)
    return out


@pytest.mark.parametrize("sigma", [2.0, 4.5])
def test_watershed_is_sitk_on_real_ct(backend, sigma):
    img, seg, seeds = _ct(backend)
    ed = Editor(seg, img)
    p = ed.watershed_preview(object_scale_mm=sigma)
    assert p.segment_ids == [s.id for s in seg]
    want = _reference(img, seeds, sigma)
    n = ed.commit_grow(p)
    for s, w in zip(seg, want):
        np.testing.assert_array_equal(s.mask.to_numpy(), w)
    assert n == sum(int((w != s0).sum()) for w, s0 in zip(want, seeds))
    assert want[0].sum() > 2 * seeds[0].sum()  # the liver grew
    assert ed.undo()
    for s, s0 in zip(seg, seeds):
        np.testing.assert_array_equal(s.mask.to_numpy(), s0)


def test_watershed_with_intensity_masking_and_hidden_segment(backend):
    img, seg, seeds = _ct(backend)
    seg["bg"].visible = False  # seeds: the visible segments only
    ed = Editor(seg, img)
    ed.masking = Masking(intensity_range=(-200.0, 400.0))
    a = img.to_numpy()
    editable = (a >= -200) & (a <= 400)
    own = seeds[0] | seeds[1] | seeds[2]
    want = _reference(img, seeds[:3], 2.0, editable | own)
    ed.watershed()
    for s, w in zip(list(seg)[:3], want):
        np.testing.assert_array_equal(s.mask.to_numpy(), w)
    np.testing.assert_array_equal(seg["bg"].mask.to_numpy(), seeds[3])
    # the step runs the same
    img2, seg2, _ = _ct(backend)
    seg2["bg"].visible = False
    ed2 = Editor(seg2, img2)
    run_steps(ed2, [{"effect": "masking", "intensity_range": [-200, 400]},
                          {"effect": "watershed", "object_scale_mm": 2.0}])
    for s, s2 in zip(seg, seg2):
        assert s.mask.equals(s2.mask)


def test_watershed_errors(backend):
    g = gpuseg.ImageGeometry((5, 6, 7))
    seg = Segmentation(g, backend=backend)
    img = gpuseg.Image.from_numpy(np.zeros(g.shape, np.int16), g, backend=backend)
    with pytest.raises(InvalidInputError, match="source image"):
        Editor(seg).watershed()
    with pytest.raises(InvalidInputError, match="no segment is visible"):
        Editor(seg, img).watershed()
    seg.add_segment(name="a")
    with pytest.raises(InvalidInputError, match="empty"):
        Editor(seg, img).watershed()
    a = np.zeros(g.shape, bool)
    a[2, 3, 3] = True
    seg.add_segment(gpuseg.Mask.from_numpy(a, g, backend=backend), name="b")
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(InvalidInputError, match="object_scale_mm"):
            Editor(seg, img).watershed(object_scale_mm=bad)
    with pytest.raises(InvalidInputError, match="object_scale_mm"):
        validate_steps([{"effect": "watershed", "object_scale_mm": 0}])
    with pytest.raises(InvalidInputError, match="same shape|one shape"):
        watershed_from_markers(np.zeros((2, 2, 2), np.float32), np.zeros((2, 2, 3), np.int32))
