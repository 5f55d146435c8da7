"""Slicer's Local threshold effect: the Masking pipeline against VTK's filters run as the effect
runs them (vtkImageThreshold, vtkImageDilateErode3D, island removal (cc3d, for vtkITKIslandMath),
vtkImageThresholdConnectivity, vtkImageMask), GrowCut's seeds and result, the ROI, the Editor
effect with masking, undo and steps; identical on every backend."""

from __future__ import annotations

import math
import warnings

import cc3d
import numpy as np
import pytest

vtk = pytest.importorskip("vtk")
from vtk.util import numpy_support  # noqa: E402

import gpuseg  # noqa: E402
from gpuseg import Editor, Extent, ImageGeometry, Mask, Masking, Segmentation  # noqa: E402
from gpuseg.errors import InvalidInputError  # noqa: E402
from gpuseg.ops.regions import local_threshold, local_threshold_kernel_size  # noqa: E402
from gpuseg.steps import run_steps  # noqa: E402

from .test_flood_filling import VTK_TYPES  # noqa: E402


def _vtk_image(a, spacing, vtype):
    im = vtk.vtkImageData()
    im.SetDimensions(a.shape[2], a.shape[1], a.shape[0])
    im.SetSpacing(*spacing)
    im.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(a).ravel(), deep=1,
                                                            array_type=vtype))
    return im


def _np(im, shape):
    return numpy_support.vtk_to_numpy(im.GetPointData().GetScalars()).reshape(shape)


def _flood(labels, spacing, seed, value, in_value=1, replace_out=True):
    f = vtk.vtkImageThresholdConnectivity()
    f.SetInputData(_vtk_image(labels.astype(np.uint8), spacing, vtk.VTK_UNSIGNED_CHAR))
    pts = vtk.vtkPoints()
    pts.InsertNextPoint(seed[2] * spacing[0], seed[1] * spacing[1], seed[0] * spacing[2])
    f.SetSeedPoints(pts)
    f.ThresholdBetween(value, value)
    f.SetInValue(in_value)
    f.ReplaceInOn()
    if replace_out:
        f.SetOutValue(0)
    else:
        f.ReplaceOutOff()
    f.Update()
    return _np(f.GetOutput(), labels.shape)


def _dilate_erode(a, spacing, ks, dilate_value, erode_value):
    f = vtk.vtkImageDilateErode3D()
    f.SetInputData(_vtk_image(a.astype(np.uint8), spacing, vtk.VTK_UNSIGNED_CHAR))
    f.SetDilateValue(dilate_value)
    f.SetErodeValue(erode_value)
    f.SetKernelSize(*ks)
    f.Update()
    return _np(f.GetOutput(), a.shape)


def slicer_masking(arr, spacing, seed, lo, hi, diameter):
    """The effect's Masking pipeline with VTK's filters (SegmentEditorLocalThreshold's apply and
    runMasking), on the whole image."""
    ks = [int(round((abs(diameter) / spacing[c] + 1) / 2) * 2 - 1) for c in range(3)]
    with warnings.catch_warnings():  # deprecated in VTK 9.7; Slicer's effect uses it
        warnings.simplefilter("ignore", DeprecationWarning)
        th = vtk.vtkImageThreshold()
    th.SetInputData(_vtk_image(arr, spacing, VTK_TYPES[arr.dtype]))
    th.ThresholdBetween(lo, hi)
    th.SetInValue(1)
    th.SetOutValue(0)
    th.SetOutputScalarTypeToUnsignedChar()
    th.Update()
    thresh = _np(th.GetOutput(), arr.shape)
    eroded = _dilate_erode(thresh, spacing, ks, 0, 1)
    lab = cc3d.connected_components(eroded, connectivity=6)
    sizes = np.bincount(lab.ravel())
    cleaned = (lab > 0) & (sizes[lab] >= 125)
    off = [int(math.ceil(ks[c] - 1) / 2) for c in range(3)]
    best, snapped = None, None
    for dk in range(-off[2], off[2] + 1):
        k = seed[0] + dk
        for dj in range(-off[1], off[1] + 1):
            j = seed[1] + dj
            for di in range(-off[0], off[0] + 1):
                i = seed[2] + di
                if not (0 <= k < arr.shape[0] and 0 <= j < arr.shape[1] and 0 <= i < arr.shape[2]):
                    continue
                if not cleaned[k, j, i]:
                    continue
                d2 = (i - seed[2]) ** 2 + (j - seed[1]) ** 2 + (k - seed[0]) ** 2
                if best is None or d2 < best:
                    best, snapped = d2, (k, j, i)
    if snapped is None:
        return np.zeros(arr.shape, bool), None
    others = _flood(cleaned, spacing, snapped, 1, in_value=0, replace_out=False)  # the selected island -> 0
    grown = _dilate_erode(others, spacing, [2 * k - 1 for k in ks], 1, 0)
    masked = thresh.astype(bool) & ~grown.astype(bool)
    return _flood(masked, spacing, snapped, 1) == 1, (snapped, cleaned, thresh)


def _scene(shape=(12, 30, 50), seed=0, dtype=np.int16):
    """Bright blobs joined by thin bridges, in noise."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    img = rng.normal(20, 8, shape)
    for (cz, cy, cx, r) in ((6, 10, 12, 5.5), (6, 18, 34, 6.5), (5, 25, 10, 3.5)):
        img[(zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 < r * r] += 120
    img[6, 10:19, 12:34] += 120  # a one-voxel bridge
    return np.round(img).astype(dtype)


@pytest.mark.parametrize("spacing,diameter", [((1.0, 1.0, 1.0), 3.0), ((0.8, 1.1, 1.7), 3.0),
                                              ((1.0, 1.0, 1.0), 5.0), ((0.6, 0.6, 2.5), 2.2)])
def test_masking_matches_vtk_pipeline(backend, spacing, diameter):
    arr = _scene()
    g = ImageGeometry(arr.shape, spacing=spacing)
    img = gpuseg.Image.from_numpy(arr, g, backend=backend)
    for seed in ((6, 10, 12), (6, 18, 34), (5, 25, 10), (6, 14, 22)):
        want, info = slicer_masking(arr, spacing, seed, 90, 400, diameter)
        got = local_threshold(img, seed, 90, 400, minimum_diameter_mm=diameter,
                              segmentation_algorithm="Masking").to_numpy()
        np.testing.assert_array_equal(got, want, err_msg=f"{spacing} {diameter} {seed}")
        if seed == (6, 10, 12):
            assert want.sum() > 500
    flood = cc3d.connected_components((arr >= 90) & (arr <= 400), connectivity=6)
    whole = flood == flood[6, 10, 12]
    got = local_threshold(img, (6, 10, 12), 90, 400, segmentation_algorithm="Masking").to_numpy()
    if spacing == (1.0, 1.0, 1.0) and diameter == 3.0:
        assert got.sum() < whole.sum()  # the bridge does not leak into the next blob


def test_kernel_size_is_slicers():
    assert local_threshold_kernel_size(3.0, (1.0, 0.8, 2.0)) == (3, 3, 1)
    assert local_threshold_kernel_size(3.0, (0.5, 0.6, 3.0)) == (7, 5, 1)
    assert local_threshold_kernel_size(-5.0, (1.0, 1.0, 1.0)) == (5, 5, 5)  # Slicer takes abs()


def test_growcut_seeds_and_result(backend):
    """GrowCut: the seed's island grows over the in-range voxels the erosion removed, competing with
    the other islands; the out-of-range voxels are not editable. The seeds are checked against the
    VTK pipeline; the growing is gpuseg's grow from seeds (tested against its own reference)."""
    arr = _scene(seed=3)
    spacing = (1.0, 1.0, 1.0)
    g = ImageGeometry(arr.shape, spacing=spacing)
    img = gpuseg.Image.from_numpy(arr, g, backend=backend)
    seed = (6, 10, 12)
    got = local_threshold(img, seed, 90, 400).to_numpy()
    _, (snapped, cleaned, thresh) = slicer_masking(arr, spacing, seed, 90, 400, 3.0)
    lab = cc3d.connected_components(cleaned.astype(np.uint8), connectivity=6)
    sel = lab == lab[snapped]
    others = cleaned & ~sel
    seeds = [Mask.from_numpy(m, g, backend=backend) for m in (others, sel, ~thresh.astype(bool))]
    want = gpuseg.grow_from_seeds(img, seeds, mask=Mask.from_numpy(thresh.astype(bool), g, backend=backend),
                                  region=g.extent)[1].to_numpy()
    np.testing.assert_array_equal(got, want)
    assert sel.sum() < got.sum() <= thresh.sum() and not (got & others).any()
    assert not (got & ~thresh.astype(bool)).any()


def test_roi_clips_the_pipeline(backend):
    arr = _scene(seed=5)
    spacing = (1.0, 1.0, 1.0)
    g = ImageGeometry(arr.shape, spacing=spacing)
    img = gpuseg.Image.from_numpy(arr, g, backend=backend)
    roi = Extent(2, 11, 4, 22, 3, 40)
    sub = arr[roi.k0:roi.k1, roi.j0:roi.j1, roi.i0:roi.i1]
    seed = (6, 18, 34)
    want, _ = slicer_masking(sub, spacing, (seed[0] - 2, seed[1] - 4, seed[2] - 3), 90, 400, 3.0)
    got = local_threshold(img, seed, 90, 400, segmentation_algorithm="Masking", roi=roi).to_numpy()
    full = np.zeros(arr.shape, bool)
    full[roi.k0:roi.k1, roi.j0:roi.j1, roi.i0:roi.i1] = want
    np.testing.assert_array_equal(got, full)
    assert local_threshold(img, (0, 0, 0), 90, 400, roi=roi).count() == 0  # click outside the ROI


def test_effect_masking_intensity_range_undo_steps(backend):
    arr = _scene(seed=1)
    g = ImageGeometry(arr.shape, spacing=(0.9, 1.0, 1.2))
    img = gpuseg.Image.from_numpy(arr, g, backend=backend)
    seg = Segmentation(g, backend=backend)
    wall = np.zeros(arr.shape, bool)
    wall[:, :, 30:] = True
    seg.add_segment(name="a")
    seg.add_segment(Mask.from_numpy(wall, g, backend=backend), name="w")
    ed = Editor(seg, img)
    seed = (6, 18, 34)
    ed.masking = Masking(intensity_range=(0, 150), overwrite="allow_overlap")
    region = local_threshold(img, seed, 90, 400, segmentation_algorithm="Masking").to_numpy()
    p = ed.local_threshold_preview("a", [34, 18, 6], 90, 400, segmentation_algorithm="Masking", space="ijk")
    assert p is not None and seg["a"].mask.count() == 0
    ed.commit(p)
    want = region & (arr >= 90) & (arr <= 150)  # the effect's range meets the editable one
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want)
    assert ed.masking.intensity_range == (0, 150)  # restored
    assert ed.undo() and seg["a"].mask.count() == 0
    ed.masking = Masking()  # overwrite_all: w loses what a gains
    ed.local_threshold("a", g.ijk_to_world_points([[34, 18, 6]]), 90, 400)
    grown = local_threshold(img, seed, 90, 400).to_numpy()
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), grown)
    np.testing.assert_array_equal(seg["w"].mask.to_numpy(), wall & ~grown)
    assert ed.undo()
    run_steps(ed, [{"effect": "local_threshold", "segment": "a", "point": [34, 18, 6], "space": "ijk",
                    "min": 90, "max": 400, "segmentation_algorithm": "Masking", "roi": [[3, 4, 2], [39, 21, 10]]}])
    np.testing.assert_array_equal(
        seg["a"].mask.to_numpy(),
        local_threshold(img, seed, 90, 400, segmentation_algorithm="Masking", roi=Extent(2, 11, 4, 22, 3, 40)).to_numpy())


def test_errors():
    arr = _scene()
    g = ImageGeometry(arr.shape)
    img = gpuseg.Image.from_numpy(arr, g, backend="cpu")
    seg = Segmentation(g, backend="cpu")
    seg.add_segment(name="a")
    ed = Editor(seg, img)
    with pytest.raises(InvalidInputError, match="WaterShed is not implemented"):
        local_threshold(img, (0, 0, 0), 0, 1, segmentation_algorithm="WaterShed")
    with pytest.raises(InvalidInputError, match="minimum diameter"):
        local_threshold(img, (0, 0, 0), 0, 1, minimum_diameter_mm=float("inf"))
    with pytest.raises(InvalidInputError, match="lo <= hi"):
        ed.local_threshold("a", [0, 0, 0], 5, 1)
    with pytest.raises(InvalidInputError, match="feature_size_mm"):
        ed.local_threshold("a", [0, 0, 0], 0, 1, feature_size_mm=-1)
    with pytest.raises(InvalidInputError, match="two corner points"):
        ed.local_threshold("a", [0, 0, 0], 0, 1, roi=[[0, 0, 0]])
    with pytest.raises(InvalidInputError, match="min 5 > max 1"):
        run_steps(ed, [{"effect": "local_threshold", "segment": "a", "point": [0, 0, 0], "min": 5, "max": 1}])
    assert local_threshold(img, (0, 0, 0), 1000, 2000).count() == 0  # nothing in range
