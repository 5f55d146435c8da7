"""Flood filling with VTK's vtkImageThresholdConnectivity rule (Slicer's Flood filling effect),
against VTK itself: neighbourhood fraction, radius per axis, stencil (editable mask), ROI, every
image type; identical on every backend; the Editor effect with masking, undo, preview and steps."""

from __future__ import annotations

import numpy as np
import pytest

vtk = pytest.importorskip("vtk")
from vtk.util import numpy_support  # noqa: E402

import gpuseg  # noqa: E402
from gpuseg import Editor, Extent, ImageGeometry, Mask, Masking, Segmentation  # noqa: E402
from gpuseg.errors import InvalidInputError, OutOfBoundsError  # noqa: E402
from gpuseg.ops.regions import flood_filling, threshold_connectivity, vtk_neighborhood  # noqa: E402
from gpuseg.steps import run_steps  # noqa: E402

VTK_TYPES = {np.dtype(np.int16): vtk.VTK_SHORT, np.dtype(np.uint16): vtk.VTK_UNSIGNED_SHORT,
             np.dtype(np.int32): vtk.VTK_INT, np.dtype(np.float32): vtk.VTK_FLOAT}


def vtk_flood(arr, spacing, seed, lo, hi, radius=(0, 0, 0), fraction=0.5, editable=None, roi=None):
    """vtkImageThresholdConnectivity on a (k, j, i) array; roi = (k0, k1, j0, j1, i0, i1) clips it."""
    def image(a, vtype):
        im = vtk.vtkImageData()
        im.SetDimensions(a.shape[2], a.shape[1], a.shape[0])
        im.SetSpacing(*spacing)
        im.SetOrigin(0, 0, 0)
        im.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(a).ravel(), deep=1,
                                                                array_type=vtype))
        return im

    src = image(arr, VTK_TYPES[arr.dtype])
    f = vtk.vtkImageThresholdConnectivity()
    if roi is not None:
        clip = vtk.vtkImageClip()
        clip.SetInputData(src)
        clip.SetOutputWholeExtent(roi[4], roi[5] - 1, roi[2], roi[3] - 1, roi[0], roi[1] - 1)
        clip.ClipDataOn()
        f.SetInputConnection(clip.GetOutputPort())
    else:
        f.SetInputData(src)
    pts = vtk.vtkPoints()
    k, j, i = seed
    pts.InsertNextPoint(i * spacing[0], j * spacing[1], k * spacing[2])
    f.SetSeedPoints(pts)
    if editable is not None:
        st = vtk.vtkImageToImageStencil()
        st.SetInputData(image((~editable).astype(np.uint8), vtk.VTK_UNSIGNED_CHAR))
        st.ThresholdByLower(0)
        st.Update()
        f.SetStencilData(st.GetOutput())
    f.SetNeighborhoodRadius(*radius)
    f.SetNeighborhoodFraction(fraction)
    f.ThresholdBetween(lo, hi)
    f.SetInValue(1)
    f.SetOutValue(0)
    f.Update()
    out = f.GetOutput()
    e = out.GetExtent()
    got = numpy_support.vtk_to_numpy(out.GetPointData().GetScalars()).reshape(
        e[5] - e[4] + 1, e[3] - e[2] + 1, e[1] - e[0] + 1)
    full = np.zeros(arr.shape, bool)
    full[e[4]:e[5] + 1, e[2]:e[3] + 1, e[0]:e[1] + 1] = got == 1
    return full


def _image(dtype, shape=(7, 19, 45), seed=0):
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    base = 100 + 60 * (xx ** 2 + yy ** 2 + zz ** 2 < 0.5) + rng.normal(0, 12, shape)
    if np.dtype(dtype).kind == "f":
        return (base / 7.3).astype(dtype)
    return np.round(base).astype(dtype)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32, np.float32])
@pytest.mark.parametrize("radius", [(0, 0, 0), (1, 1, 1), (1.6, 1, 2.4), (2, 2, 2), (0.4, 3, 3)])
def test_threshold_connectivity_matches_vtk(backend, dtype, radius):
    arr = _image(dtype)
    spacing = (0.8, 1.3, 2.5)
    g = ImageGeometry(arr.shape, spacing=spacing)
    img = gpuseg.Image.from_numpy(arr, g, backend=backend)
    seed = (3, 9, 22)
    v = float(arr[seed])
    scale = 1 / 7.3 if np.dtype(dtype).kind == "f" else 1.0
    for tol, frac in ((25.5 * scale, 0.5), (15 * scale, 0.3), (30 * scale, 0.75)):
        want = vtk_flood(arr, spacing, seed, v - tol, v + tol, radius, frac)
        got = threshold_connectivity(img, seed, v - tol, v + tol, neighborhood_radius=radius,
                                     neighborhood_fraction=frac).to_numpy()
        assert want.sum() > 10
        np.testing.assert_array_equal(got, want, err_msg=f"{dtype} {radius} {tol} {frac}")


def test_stencil_and_roi_match_vtk(backend):
    arr = _image(np.int16, (6, 21, 70), seed=4)
    spacing = (1.0, 0.7, 1.9)
    g = ImageGeometry(arr.shape, spacing=spacing)
    img = gpuseg.Image.from_numpy(arr, g, backend=backend)
    rng = np.random.default_rng(2)
    editable = rng.random(arr.shape) < 0.9
    seed = (3, 10, 35)
    editable[seed] = True
    v = float(arr[seed])
    want = vtk_flood(arr, spacing, seed, v - 40, v + 40, (1, 1, 1), 0.5, editable=editable)
    got = threshold_connectivity(img, seed, v - 40, v + 40, neighborhood_radius=(1, 1, 1),
                                 mask=Mask.from_numpy(editable, g, backend=backend)).to_numpy()
    np.testing.assert_array_equal(got, want)
    roi = (1, 5, 3, 18, 7, 61)  # the neighbourhood is clipped at the ROI's faces too
    want = vtk_flood(arr, spacing, seed, v - 40, v + 40, (1, 1, 1), 0.5, roi=roi)
    got = threshold_connectivity(img, seed, v - 40, v + 40, neighborhood_radius=(1, 1, 1),
                                 roi=Extent(*roi)).to_numpy()
    assert want.sum() > 10
    np.testing.assert_array_equal(got, want)
    assert threshold_connectivity(img, (0, 0, 0), -1e9, 1e9, roi=Extent(*roi)).count() == 0  # seed outside


def test_flood_filling_defaults_match_slicer_pipeline(backend):
    """Slicer: range value ± IntensityTolerance (10), NeighborhoodRadius = NeighborhoodSizeMm (1.0)
    passed unchanged, fraction 0.5; non-integer bounds truncate on integer images as VTK casts."""
    arr = _image(np.int16, seed=7)
    spacing = (0.5, 0.9, 3.0)
    g = ImageGeometry(arr.shape, spacing=spacing)
    img = gpuseg.Image.from_numpy(arr, g, backend=backend)
    seed = (3, 9, 22)
    v = float(arr[seed])
    for tol, size in ((10.0, 1.0), (12.5, 1.0), (20.0, 2.0), (8.0, 0.0)):
        want = vtk_flood(arr, spacing, seed, v - tol, v + tol, (size, size, size), 0.5)
        got = flood_filling(img, seed, intensity_tolerance=tol, neighborhood_size_mm=size).to_numpy()
        np.testing.assert_array_equal(got, want, err_msg=f"{tol} {size}")
    n0 = flood_filling(img, seed, intensity_tolerance=10, neighborhood_size_mm=0).count()
    assert n0 > flood_filling(img, seed, intensity_tolerance=10).count() > 0  # the rule matters here
    assert len(vtk_neighborhood((1, 1, 1))) == 7 and len(vtk_neighborhood((0.4, 1, 1))) == 0


def test_flood_fill_effect(backend):
    arr = _image(np.int16, seed=9)
    g = ImageGeometry(arr.shape, spacing=(0.8, 1.3, 2.5))
    img = gpuseg.Image.from_numpy(arr, g, backend=backend)
    seg = Segmentation(g, backend=backend)
    other = np.zeros(arr.shape, bool)
    other[:, :, 25:] = True
    seg.add_segment(name="a")
    seg.add_segment(Mask.from_numpy(other, g, backend=backend), name="b")
    ed = Editor(seg, img)
    seed = (3, 9, 20)
    v = float(arr[seed])
    # masking: outside b only; overwrite does not matter there. Slicer's stencil stops the flood.
    ed.masking = Masking("outside_all")
    p = ed.flood_fill_preview("a", [20, 9, 3], space="ijk", intensity_tolerance=30)
    assert p is not None and seg["a"].mask.count() == 0
    n = ed.commit(p)
    want = vtk_flood(arr, g.spacing, seed, v - 30, v + 30, (1, 1, 1), 0.5, editable=~other)
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want)
    assert n == int(want.sum())
    assert ed.undo() and seg["a"].mask.count() == 0
    ed.masking = Masking()  # everywhere, overwrite_all: b loses what a gains
    ed.flood_fill("a", g.ijk_to_world_points([[20, 9, 3]]), intensity_tolerance=30)
    want = vtk_flood(arr, g.spacing, seed, v - 30, v + 30, (1, 1, 1), 0.5)
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want)
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), other & ~want)
    assert ed.undo()
    run_steps(ed, [{"effect": "flood_fill", "segment": "a", "point": [20, 9, 3], "space": "ijk",
                    "intensity_tolerance": 30, "neighborhood_size_mm": 1.0}])
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want)


def test_flood_fill_errors():
    arr = _image(np.int16)
    g = ImageGeometry(arr.shape)
    img = gpuseg.Image.from_numpy(arr, g, backend="cpu")
    seg = Segmentation(g, backend="cpu")
    seg.add_segment(name="a")
    with pytest.raises(InvalidInputError, match="tolerance"):
        flood_filling(img, (0, 0, 0), intensity_tolerance=-1)
    with pytest.raises(InvalidInputError, match="neighbourhood size"):
        flood_filling(img, (0, 0, 0), neighborhood_size_mm=float("nan"))
    with pytest.raises(InvalidInputError, match="fraction"):
        threshold_connectivity(img, (0, 0, 0), 0, 1, neighborhood_fraction=1.5)
    with pytest.raises(OutOfBoundsError):
        flood_filling(img, (0, 0, 99))
    with pytest.raises(InvalidInputError, match="roi"):
        threshold_connectivity(img, (0, 0, 0), 0, 1, roi=(0, 1, 0, 1, 0, 1))
    with pytest.raises(InvalidInputError, match="source image"):
        Editor(seg).flood_fill("a", [0, 0, 0])
    with pytest.raises(InvalidInputError, match="one point"):
        Editor(seg, img).flood_fill("a", [[0, 0, 0], [1, 1, 1]])
    with pytest.raises(InvalidInputError, match="intensity_tolerance"):
        run_steps(Editor(seg, img), [{"effect": "flood_fill", "segment": "a", "point": [0, 0, 0],
                                      "intensity_tolerance": -2}])
