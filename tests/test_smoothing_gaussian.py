"""Gaussian smoothing (vtkImageGaussianSmooth semantics) and Mask volume, against VTK and a
numpy model of Slicer's effects, on every backend and bit for bit across them."""

import numpy as np
import pytest

import gpuseg
from gpuseg import Editor, Image, ImageGeometry, Mask, Segmentation
from gpuseg.errors import GeometryMismatchError, InvalidInputError
from gpuseg.ops.mask_volume import mask_volume

from .parity import parity

vtk = pytest.importorskip("vtk")
from vtk.util import numpy_support as vtk_np  # noqa: E402


def vtk_gaussian(a_uchar: np.ndarray, spacing_ijk, sigma_mm: float) -> np.ndarray:
    """vtkImageGaussianSmooth of a (k, j, i) uint8 volume, std = sigma / spacing, radius factor 4."""
    img = vtk.vtkImageData()
    img.SetDimensions(a_uchar.shape[2], a_uchar.shape[1], a_uchar.shape[0])
    img.GetPointData().SetScalars(vtk_np.numpy_to_vtk(np.ascontiguousarray(a_uchar).ravel(), deep=1,
                                                      array_type=vtk.VTK_UNSIGNED_CHAR))
    f = vtk.vtkImageGaussianSmooth()
    f.SetInputData(img)
    f.SetDimensionality(3)
    f.SetStandardDeviations(*[sigma_mm / s for s in spacing_ijk])
    f.SetRadiusFactors(4.0, 4.0, 4.0)
    f.Update()
    return vtk_np.vtk_to_numpy(f.GetOutput().GetPointData().GetScalars()).reshape(a_uchar.shape)


def slicer_gaussian(a: np.ndarray, spacing_ijk, sigma_mm: float) -> np.ndarray:
    """Slicer's Gaussian smoothing method: 0/255 -> vtkImageGaussianSmooth -> >= 127."""
    return vtk_gaussian(a.astype(np.uint8) * 255, spacing_ijk, sigma_mm) >= 127


def blob(rng, shape, density=0.8):
    a = np.zeros(shape, bool)
    k, j, i = shape
    a[1:k - 2, 2:j - 2, 3:i - 5] = rng.random((k - 3, j - 4, i - 8)) < density
    return a


@pytest.mark.parametrize("shape,spacing,sigma", [
    ((9, 11, 45), (0.7, 1.1, 2.0), 1.5),      # anisotropic, odd sizes
    ((12, 14, 70), (1.0, 1.0, 1.0), 3.0),     # Slicer's default sigma, kernel wider than the block
    ((5, 40, 33), (0.5, 0.5, 3.0), 2.0),      # thick slices
])
def test_gaussian_matches_vtk(backend, rng, shape, spacing, sigma):
    g = ImageGeometry(shape, spacing=spacing)
    a = blob(rng, shape)
    got = gpuseg.smooth(Mask.from_numpy(a, g, backend=backend), "gaussian", gaussian_sigma_mm=sigma)
    want = slicer_gaussian(a, spacing, sigma)
    assert want.any() and not want.all()
    np.testing.assert_array_equal(got.to_numpy(), want)


def test_gaussian_touching_the_grid_border(backend, rng):
    # the kernel is clipped and renormalised at the grid border, as VTK does
    g = ImageGeometry((6, 8, 35), spacing=(1.0, 0.8, 1.3))
    a = rng.random(g.shape) < 0.6
    got = gpuseg.smooth(Mask.from_numpy(a, g, backend=backend), "gaussian", gaussian_sigma_mm=1.2)
    np.testing.assert_array_equal(got.to_numpy(), slicer_gaussian(a, g.spacing, 1.2))


def _gauss_ref(rng):
    g = ImageGeometry((7, 9, 66), spacing=(0.9, 1.3, 1.1))
    return {"dense": slicer_gaussian(blob(rng, g.shape, 0.5), g.spacing, 1.7)}


@parity(reference=_gauss_ref)
def test_gaussian_identical_across_backends(backend, rng):
    g = ImageGeometry((7, 9, 66), spacing=(0.9, 1.3, 1.1))
    m = gpuseg.smooth(Mask.from_numpy(blob(rng, g.shape, 0.5), g, backend=backend), "gaussian",
                      gaussian_sigma_mm=1.7)
    return {"dense": m.to_numpy(), "words": m.words_numpy()}


def test_gaussian_empty_full_and_errors(backend):
    g = ImageGeometry((4, 5, 6))
    assert gpuseg.smooth(Mask.empty(g, backend=backend), "gaussian").count() == 0
    full = gpuseg.smooth(Mask.full(g, backend=backend), "gaussian", gaussian_sigma_mm=1.0)
    assert full.count() == 4 * 5 * 6  # renormalised at the border: stays full
    for bad in (0, -1, float("nan"), "x"):
        with pytest.raises(InvalidInputError, match="standard deviation"):
            gpuseg.smooth(Mask.full(g, backend=backend), "gaussian", gaussian_sigma_mm=bad)


def test_editor_gaussian_through_masking_and_undo(backend, rng):
    g = ImageGeometry((8, 10, 40), spacing=(1.0, 1.0, 1.5))
    seg = Segmentation(g, backend=backend)
    a = blob(rng, g.shape)
    other = np.zeros(g.shape, bool)
    other[:, :, :12] = True
    sa = seg.add_segment(name="a", mask=Mask.from_numpy(a, g, backend=backend))
    sb = seg.add_segment(name="b", mask=Mask.from_numpy(other, g, backend=backend))
    ed = Editor(seg)
    ed.masking.editable_area = "outside_all"  # may not touch "b"
    ed.masking.overwrite = "allow_overlap"
    changed = ed.smooth("a", "gaussian", gaussian_sigma_mm=1.5)
    sm = slicer_gaussian(a, g.spacing, 1.5)
    want = np.where(~other | a, sm, a)  # the segment's own voxels are always editable
    np.testing.assert_array_equal(sa.mask.to_numpy(), want)
    assert changed == int((want != a).sum())
    assert ed.undo()
    np.testing.assert_array_equal(sa.mask.to_numpy(), a)
    np.testing.assert_array_equal(sb.mask.to_numpy(), other)


# --- mask volume -----------------------------------------------------------------------------
def slicer_mask_volume(x, a, op, fill, inside, outside, soft_mm, spacing):
    """Slicer's Mask volume as numpy (soft edge: VTK Gaussian of the 0/255 segment, blended)."""
    if soft_mm == 0:
        if op == "fill_outside":
            return np.where(a, x, fill).astype(x.dtype)
        if op == "fill_inside":
            return np.where(a, fill, x).astype(x.dtype)
        return np.where(a, inside, outside).astype(x.dtype)
    w = vtk_gaussian(a.astype(np.uint8) * 255, spacing, soft_mm).astype(float) / 255
    if op == "fill_outside":
        v = x * w + fill * (1 - w)
    elif op == "fill_inside":
        v = x * (1 - w) + fill * w
    else:
        v = inside * w + outside * (1 - w)
    return v.astype(x.dtype)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32, np.float32])
@pytest.mark.parametrize("soft", [0.0, 1.5])
def test_mask_volume_matches_slicer(backend, rng, dtype, soft):
    g = ImageGeometry((7, 9, 37), spacing=(0.8, 1.2, 2.0))
    a = blob(rng, g.shape, 0.4)
    x = (rng.random(g.shape) * 1000 - (0 if dtype == np.uint16 else 300)).astype(dtype)
    img = Image.from_numpy(x, g, backend=backend)
    m = Mask.from_numpy(a, g, backend=backend)
    for op in ("fill_outside", "fill_inside", "fill_inside_and_outside"):
        got = mask_volume(img, m, op, fill_value=7, inside_value=3, outside_value=900, soft_edge_mm=soft)
        out = got.to_numpy()
        assert out.dtype == x.dtype and got.geometry == g
        np.testing.assert_array_equal(out, slicer_mask_volume(x, a, op, 7, 3, 900, soft, g.spacing), err_msg=op)


def _mv_ref(rng):
    g = ImageGeometry((6, 8, 41), spacing=(1.1, 0.9, 1.4))
    a = blob(rng, g.shape, 0.5)
    x = (rng.random(g.shape) * 400 - 100).astype(np.float32)
    return {"out": slicer_mask_volume(x, a, "fill_outside", -50, 1, 0, 2.0, g.spacing)}


@parity(reference=_mv_ref)
def test_mask_volume_identical_across_backends(backend, rng):
    g = ImageGeometry((6, 8, 41), spacing=(1.1, 0.9, 1.4))
    a = blob(rng, g.shape, 0.5)
    x = (rng.random(g.shape) * 400 - 100).astype(np.float32)
    img = Image.from_numpy(x, g, backend=backend)
    out = mask_volume(img, Mask.from_numpy(a, g, backend=backend), fill_value=-50, soft_edge_mm=2.0)
    return {"out": out.to_numpy()}


def test_mask_volume_empty_and_nan(backend):
    g = ImageGeometry((3, 4, 5))
    x = np.arange(60, dtype=np.float32).reshape(g.shape)
    x[0, 0, 0] = np.nan
    img = Image.from_numpy(x, g, backend=backend)
    out = mask_volume(img, Mask.empty(g, backend=backend), "fill_outside", fill_value=-1)
    assert (out.to_numpy() == -1).all() and not out.has_nan
    out = mask_volume(img, Mask.full(g, backend=backend), "fill_outside", fill_value=-1)
    assert out.has_nan and np.isnan(out.to_numpy()[0, 0, 0])


def test_mask_volume_errors(backend):
    g = ImageGeometry((3, 4, 5))
    img = Image.from_numpy(np.zeros(g.shape, np.int16), g, backend=backend)
    m = Mask.full(g, backend=backend)
    with pytest.raises(InvalidInputError, match="unknown mask volume operation"):
        mask_volume(img, m, "fill_everything")
    with pytest.raises(InvalidInputError, match="not a int16 value"):
        mask_volume(img, m, fill_value=40000)
    with pytest.raises(InvalidInputError, match="not a int16 value"):
        mask_volume(img, m, fill_value=0.5)
    with pytest.raises(InvalidInputError, match="soft edge"):
        mask_volume(img, m, soft_edge_mm=-1)
    with pytest.raises(InvalidInputError, match="needs a Mask"):
        mask_volume(img, "m")
    with pytest.raises(GeometryMismatchError):
        mask_volume(img, Mask.full(ImageGeometry((3, 4, 6)), backend=backend))


def test_editor_and_step_mask_volume(backend, rng):
    from gpuseg.steps import run_steps

    g = ImageGeometry((5, 6, 40), spacing=(1.0, 1.0, 2.0))
    x = (rng.random(g.shape) * 100).astype(np.int16)
    a = blob(rng, g.shape, 0.5)
    seg = Segmentation(g, backend=backend)
    seg.add_segment(name="liver", mask=Mask.from_numpy(a, g, backend=backend))
    ed = Editor(seg, Image.from_numpy(x, g, backend=backend))
    ed.masking.editable_area = "inside_all"  # masking does not apply to mask volume (as in Slicer)
    out = ed.mask_volume("liver", "fill_inside", fill_value=-5)
    np.testing.assert_array_equal(out.to_numpy(), np.where(a, -5, x))
    assert not ed.can_undo  # the segmentation did not change
    np.testing.assert_array_equal(ed.image.to_numpy(), x)  # the source image is kept
    # the edit step makes the masked volume the source image of the following steps
    run_steps(ed, [{"effect": "masking"},
                   {"effect": "mask_volume", "segment": "liver", "fill_value": -1000},
                   {"effect": "add_segment", "name": "t"},
                   {"effect": "threshold", "segment": "t", "min": -1000, "max": -1000}])
    np.testing.assert_array_equal(ed.image.to_numpy(), np.where(a, x, -1000))
    np.testing.assert_array_equal(seg.segment("t").mask.to_numpy(), ~a)
    with pytest.raises(InvalidInputError, match="needs the source image"):
        Editor(seg).mask_volume("liver")


def test_cli_mask_volume(tmp_path, capsys, rng):
    import nibabel as nib

    from gpuseg import read_image, write_segmentation
    from gpuseg.cli import main
    from gpuseg.io import write_labelmap

    g = ImageGeometry((4, 5, 33), spacing=(0.9, 0.9, 2.5), origin=(3.0, -4.0, 10.0))
    x = (rng.random(g.shape) * 500).astype(np.int16)
    a = blob(rng, g.shape, 0.5)
    write_labelmap(tmp_path / "ct.nii.gz", x, g)
    seg = Segmentation(g, backend="cpu")
    seg.add_segment(name="organ", mask=Mask.from_numpy(a, g, backend="cpu"))
    write_segmentation(seg, tmp_path / "s.seg.nrrd")
    out = tmp_path / "masked.nii.gz"
    assert main(["mask-volume", str(tmp_path / "ct.nii.gz"), str(tmp_path / "s.seg.nrrd"), "--segment", "organ",
                 "--fill-value", "-1024", "-o", str(out), "--backend", "cpu"]) == 0
    back = read_image(out, backend="cpu")
    assert nib.load(str(out)).get_data_dtype() == np.int16
    np.testing.assert_array_equal(back.to_numpy(), np.where(a, x, -1024))
    assert np.allclose(back.geometry.ijk_to_world, g.ijk_to_world)
    assert main(["mask-volume", str(tmp_path / "ct.nii.gz"), str(tmp_path / "s.seg.nrrd"), "--segment", "organ",
                 "--operation", "fill_inside_and_outside", "--inside-value", "5", "--soft-edge-mm", "2",
                 "-o", str(tmp_path / "bin.nrrd"), "--backend", "cpu"]) == 0
    want = slicer_mask_volume(x, a, "fill_inside_and_outside", 0, 5, 0, 2.0, g.spacing)
    np.testing.assert_array_equal(read_image(tmp_path / "bin.nrrd", backend="cpu").to_numpy(), want)
    capsys.readouterr()
    assert main(["mask-volume", str(tmp_path / "ct.nii.gz"), str(tmp_path / "s.seg.nrrd"), "--segment", "nope",
                 "-o", str(out)]) == 2
    assert main(["mask-volume", str(tmp_path / "ct.nii.gz"), str(tmp_path / "s.seg.nrrd"), "--segment", "organ",
                 "--fill-value", "1e6", "-o", str(out)]) == 2
    assert main(["mask-volume", str(tmp_path / "ct.nii.gz"), str(tmp_path / "s.seg.nrrd"), "--segment", "organ",
                 "-o", str(tmp_path / "x.stl")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "int16" in err and "unsupported output format" in err and "Traceback" not in err
