"""Split volume (SegmentEditorExtraEffects' Split volume effect): the op against an independent
numpy model of Slicer's crop + fill (vtkImageConstantPad past the image), world positions on
anisotropic, oblique grids, bit equality across backends, the Editor method and the CLI on files."""

from __future__ import annotations

import numpy as np
import pytest

from gpuseg import Editor, Image, ImageGeometry, Mask, Segmentation
from gpuseg.errors import GeometryMismatchError, InvalidInputError, UnknownSegmentError
from gpuseg.ops.split_volume import split_box, split_volume

from .conftest import ODD_SHAPES
from .parity import available_backends, parity


def oblique(shape, spacing=(0.7, 1.3, 2.1), origin=(12.5, -40.0, 7.25)):
    """An anisotropic grid whose axes are rotated about all three world axes."""
    a, b, c = 0.3, -0.5, 0.8
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return ImageGeometry(shape, spacing, origin, rz @ ry @ rx)


def random_mask(rng, shape, density=0.4):
    """Random voxels inside a random sub-box (at least one voxel set)."""
    lo = [int(rng.integers(0, s)) for s in shape]
    hi = [int(rng.integers(l + 1, s + 1)) for l, s in zip(lo, shape)]
    a = np.zeros(shape, bool)
    box = tuple(slice(l, h) for l, h in zip(lo, hi))
    a[box] = rng.random(a[box].shape) < density
    a[tuple(int(rng.integers(l, h)) for l, h in zip(lo, hi))] = True
    return a


def random_image(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return (rng.random(shape) * 2000 - 1000).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -30000), min(info.max, 30000), size=shape).astype(dtype)


def oracle(x, a, fill, pad, clip=False):
    """Slicer's Split volume in numpy: the bounding box of ``a`` grown by ``pad`` (cut to the image
    only with ``clip``), ``x`` inside ``a`` and ``fill`` elsewhere, including past the image.
    Returns (array, box start (k, j, i))."""
    idx = np.argwhere(a)
    lo = idx.min(axis=0) - pad
    hi = idx.max(axis=0) + 1 + pad
    shape = np.array(x.shape)
    if clip:
        lo, hi = np.maximum(lo, 0), np.minimum(hi, shape)
    out = np.full(tuple(hi - lo), fill, dtype=x.dtype)
    s_lo, s_hi = np.maximum(lo, 0), np.minimum(hi, shape)
    src = tuple(slice(l, h) for l, h in zip(s_lo, s_hi))
    dst = tuple(slice(l - o, h - o) for l, h, o in zip(s_lo, s_hi, lo))
    out[dst] = np.where(a[src], x[src], np.asarray(fill, dtype=x.dtype))
    return out, tuple(int(v) for v in lo)


def world_of_voxels(geometry, kji):
    """World (LPS) centres of (k, j, i) indices, from the 4x4 matrix directly."""
    kji = np.asarray(kji, dtype=float)
    ijk1 = np.c_[kji[:, ::-1], np.ones(len(kji))]
    return (geometry.ijk_to_world @ ijk1.T).T[:, :3]


# --- the op against the model ---------------------------------------------------------------
@pytest.mark.parametrize("shape", ODD_SHAPES)
@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32, np.float32])
def test_matches_the_numpy_model(backend, rng, shape, dtype):
    g = oblique(shape)
    x = random_image(rng, shape, dtype)
    masks = {f"s{n}": random_mask(rng, shape) for n in range(3)}
    fill = 7 if np.dtype(dtype).kind == "u" else -5
    img = Image.from_numpy(x, g, backend=backend)
    for pad in (0, 1, 5):
        for clip in (False, True):
            got = split_volume(img, {k: Mask.from_numpy(a, g, backend=backend) for k, a in masks.items()},
                               fill_value=fill, padding_voxels=pad, clip_to_image=clip)
            assert list(got) == list(masks)
            for k, a in masks.items():
                want, lo = oracle(x, a, fill, pad, clip)
                out = got[k]
                assert out.backend is img.backend and out.dtype == np.dtype(dtype)
                np.testing.assert_array_equal(out.to_numpy(), want, err_msg=f"{k} pad {pad} clip {clip}")
                # spacing and (oblique) directions kept; the origin is the box corner's world position
                np.testing.assert_allclose(out.geometry.ijk_to_world[:3, :3], g.ijk_to_world[:3, :3], atol=1e-12)
                np.testing.assert_allclose(out.geometry.origin, world_of_voxels(g, [lo])[0], atol=1e-9)


def test_world_positions_of_the_cropped_voxels_are_unchanged(rng):
    g = oblique((9, 11, 37), spacing=(0.45, 1.7, 3.2), origin=(-101.0, 33.3, 250.0))
    x = random_image(rng, g.shape, np.float32)
    a = random_mask(rng, g.shape)
    out = split_volume(Image.from_numpy(x, g, backend="cpu"), {"s": Mask.from_numpy(a, g, backend="cpu")},
                       padding_voxels=3)["s"]
    _, lo = oracle(x, a, 0, 3)
    kji = np.argwhere(np.ones(out.shape, bool))
    np.testing.assert_allclose(world_of_voxels(out.geometry, kji), world_of_voxels(g, kji + np.array(lo)),
                               atol=1e-6)
    # and through the geometry's own transforms: each output voxel maps back to its source index
    src = g.world_to_ijk_points(out.geometry.ijk_to_world_points(kji[:, ::-1]))
    np.testing.assert_allclose(src, kji[:, ::-1] + np.array(lo[::-1]), atol=1e-6)
    inside = out.to_numpy() != 0
    assert inside.sum() > 0


def test_box_past_the_image_borders_is_filled_unless_clipped():
    g = ImageGeometry((4, 5, 33), spacing=(0.5, 1.0, 2.0), origin=(1.0, 2.0, 3.0))
    x = np.arange(g.n_voxels, dtype=np.int16).reshape(g.shape) + 1
    a = np.zeros(g.shape, bool)
    a[0, 0, 0] = a[3, 4, 32] = True  # opposite corners: the box is the whole image
    a[1, 2, 10] = True
    m = Mask.from_numpy(a, g, backend="cpu")
    img = Image.from_numpy(x, g, backend="cpu")
    out = split_volume(img, {"s": m}, fill_value=-9, padding_voxels=2)["s"]
    assert out.shape == (8, 9, 37)
    assert split_box(m, 2) == g.extent.pad(2)
    o = out.to_numpy()
    inner = o[2:-2, 2:-2, 2:-2]
    np.testing.assert_array_equal(inner, np.where(a, x, -9))
    rim = np.ones(o.shape, bool)
    rim[2:-2, 2:-2, 2:-2] = False
    assert (o[rim] == -9).all()
    np.testing.assert_allclose(out.geometry.origin, (1.0 - 2 * 0.5, 2.0 - 2 * 1.0, 3.0 - 2 * 2.0))
    clipped = split_volume(img, {"s": m}, fill_value=-9, padding_voxels=2, clip_to_image=True)["s"]
    assert clipped.geometry.is_same_grid(g)
    np.testing.assert_array_equal(clipped.to_numpy(), np.where(a, x, -9))
    # one border only: a segment on the last i column pads past it, and before it inside the image
    b = np.zeros(g.shape, bool)
    b[2, 1:3, 32] = True
    e = split_box(Mask.from_numpy(b, g, backend="cpu"), 5)
    assert (e.k0, e.k1, e.j0, e.j1, e.i0, e.i1) == (-3, 8, -4, 8, 27, 38)
    e = split_box(Mask.from_numpy(b, g, backend="cpu"), 5, clip_to_image=True)
    assert (e.k0, e.k1, e.j0, e.j1, e.i0, e.i1) == (0, 4, 0, 5, 27, 33)


def test_fill_values_and_types():
    g = ImageGeometry((3, 4, 5))
    a = np.zeros(g.shape, bool)
    a[1, 1:3, 1:4] = True
    m = Mask.from_numpy(a, g, backend="cpu")
    xf = np.linspace(-3, 3, g.n_voxels, dtype=np.float32).reshape(g.shape)
    out = split_volume(Image.from_numpy(xf, g, backend="cpu"), {"s": m}, fill_value=-1.25, padding_voxels=1)["s"]
    want, _ = oracle(xf, a, np.float32(-1.25), 1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.to_numpy(), want)
    xu = np.full(g.shape, 40000, np.uint16)
    out = split_volume(Image.from_numpy(xu, g, backend="cpu"), {"s": m}, fill_value=65535, padding_voxels=0)["s"]
    np.testing.assert_array_equal(out.to_numpy(), np.where(a[1:2, 1:3, 1:4], 40000, 65535))
    # Slicer's default: fill 0, padding 5
    xi = np.full(g.shape, 3, np.int32)
    out = split_volume(Image.from_numpy(xi, g, backend="cpu"), {"s": m})["s"]
    assert out.shape == (11, 12, 13) and out.to_numpy().sum() == 3 * a.sum()


def test_empty_segments_are_left_out(backend):
    g = ImageGeometry((3, 4, 40))
    img = Image.from_numpy(np.ones(g.shape, np.int16), g, backend=backend)
    a = np.zeros(g.shape, bool)
    a[2, 3, 39] = True
    got = split_volume(img, {"e": Mask.empty(g, backend=backend), "z": Mask.zeros(g, backend=backend),
                             "one": Mask.from_numpy(a, g, backend=backend)}, padding_voxels=0)
    assert list(got) == ["one"]
    assert got["one"].shape == (1, 1, 1) and got["one"].to_numpy()[0, 0, 0] == 1
    assert split_volume(img, {"e": Mask.empty(g, backend=backend)}) == {}
    assert split_volume(img, {}) == {}
    assert split_box(Mask.empty(g, backend=backend)).is_empty


def test_nan_flag_follows_the_kept_voxels():
    g = ImageGeometry((2, 3, 4))
    x = np.zeros(g.shape, np.float32)
    x[0, 0, 0] = np.nan
    img = Image.from_numpy(x, g, backend="cpu")
    a = np.zeros(g.shape, bool)
    a[1, 1, 1] = True
    out = split_volume(img, {"s": Mask.from_numpy(a, g, backend="cpu")}, padding_voxels=1)["s"]
    assert not out.has_nan  # the NaN voxel lies in the box, but outside the segment: filled
    a[0, 0, 0] = True
    out = split_volume(img, {"s": Mask.from_numpy(a, g, backend="cpu")}, padding_voxels=0)["s"]
    assert out.has_nan and np.isnan(out.to_numpy()[0, 0, 0])


def _parity_case(rng):
    g = oblique((7, 9, 70))
    x = random_image(rng, g.shape, np.float32)
    masks = {f"s{n}": random_mask(rng, g.shape, 0.3) for n in range(4)}
    return g, x, masks


def _parity_ref(rng):
    g, x, masks = _parity_case(rng)
    out = {}
    for k, a in masks.items():
        for pad in (0, 3):
            out[f"{k}/{pad}"] = oracle(x, a, -77.5, pad)[0]
            out[f"{k}/{pad}/clip"] = oracle(x, a, -77.5, pad, clip=True)[0]
    return out


@parity(reference=_parity_ref)
def test_identical_across_backends(backend, rng):
    g, x, masks = _parity_case(rng)
    img = Image.from_numpy(x, g, backend=backend)
    mk = {k: Mask.from_numpy(a, g, backend=backend) for k, a in masks.items()}
    out = {}
    for pad in (0, 3):
        for k, im in split_volume(img, mk, fill_value=-77.5, padding_voxels=pad).items():
            out[f"{k}/{pad}"] = im.to_numpy()
            out[f"{k}/{pad}/origin"] = np.asarray(im.geometry.origin)
        for k, im in split_volume(img, mk, fill_value=-77.5, padding_voxels=pad, clip_to_image=True).items():
            out[f"{k}/{pad}/clip"] = im.to_numpy()
    return out


def test_errors(backend):
    g = ImageGeometry((3, 4, 5))
    img = Image.from_numpy(np.zeros(g.shape, np.int16), g, backend=backend)
    m = {"s": Mask.full(g, backend=backend)}
    for bad in (-1, 1001, 1.5, float("inf"), float("nan"), True, "2", None):
        with pytest.raises(InvalidInputError, match="padding voxels"):
            split_volume(img, m, padding_voxels=bad)
    with pytest.raises(InvalidInputError, match="padding voxels"):
        split_box(m["s"], -2)
    assert split_volume(img, m, padding_voxels=2.0)["s"].shape == (7, 8, 9)  # an integral float is an integer
    with pytest.raises(InvalidInputError, match="not a int16 value"):
        split_volume(img, m, fill_value=40000)
    with pytest.raises(InvalidInputError, match="not a int16 value"):
        split_volume(img, m, fill_value=0.5)
    with pytest.raises(InvalidInputError, match="finite"):
        split_volume(img, m, fill_value=float("nan"))
    with pytest.raises(InvalidInputError, match="not a Mask"):
        split_volume(img, {"s": np.ones(g.shape, bool)})
    with pytest.raises(InvalidInputError, match="mapping"):
        split_volume(img, [m["s"]])
    with pytest.raises(InvalidInputError, match="needs an Image"):
        split_volume(np.zeros(g.shape, np.int16), m)
    with pytest.raises(GeometryMismatchError, match="segment 'other'"):
        split_volume(img, {"s": m["s"], "other": Mask.full(ImageGeometry((3, 4, 6)), backend=backend)})
    with pytest.raises(GeometryMismatchError):
        split_volume(img, {"s": Mask.full(ImageGeometry((3, 4, 5), spacing=(1, 1, 2)), backend=backend)})
    others = [b for b in available_backends() if b is not img.backend]
    if others:
        with pytest.raises(InvalidInputError, match="same backend"):
            split_volume(img, {"s": Mask.full(g, backend=others[0])})


# --- the Editor ---------------------------------------------------------------------------------
def _editor(rng, backend="cpu"):
    g = oblique((5, 6, 40))
    x = random_image(rng, g.shape, np.int16)
    seg = Segmentation(g, backend=backend)
    arrays = {}
    for name, visible in (("liver", True), ("spleen", True), ("hidden", False)):
        arrays[name] = random_mask(rng, g.shape)
        seg.add_segment(name=name, mask=Mask.from_numpy(arrays[name], g, backend=backend), visible=visible)
    seg.add_segment(name="empty")
    return Editor(seg, Image.from_numpy(x, g, backend=backend)), x, arrays


def test_editor_split_volume(backend, rng):
    ed, x, arrays = _editor(rng, backend)
    seg = ed.segmentation
    before = {s.id: s.mask.to_numpy() for s in seg}
    ed.masking.editable_area = "inside_all"  # masking does not apply (as in Slicer)
    got = ed.split_volume(fill_value=-100, padding_voxels=2)
    ids = {s.name: s.id for s in seg}
    assert list(got) == [ids["liver"], ids["spleen"]]  # visible, non-empty, in segmentation order
    for name in ("liver", "spleen"):
        np.testing.assert_array_equal(got[ids[name]].to_numpy(), oracle(x, arrays[name], -100, 2)[0])
    # named segments are taken whether visible or not; a name twice counts once
    got = ed.split_volume(["hidden", "liver", "hidden"], padding_voxels=0)
    assert list(got) == [ids["hidden"], ids["liver"]]
    np.testing.assert_array_equal(got[ids["hidden"]].to_numpy(), oracle(x, arrays["hidden"], 0, 0)[0])
    assert list(ed.split_volume("spleen")) == [ids["spleen"]]
    assert ed.split_volume("empty") == {}
    assert not ed.can_undo  # the segmentation did not change
    for s in seg:
        np.testing.assert_array_equal(s.mask.to_numpy(), before[s.id])
    # another image on the same grid
    other = Image.from_numpy(np.full(x.shape, 4, np.int16), ed.image.geometry, backend=backend)
    assert ed.split_volume("liver", padding_voxels=0, image=other)[ids["liver"]].to_numpy().max() == 4


def test_editor_split_volume_errors(rng):
    ed, _, _ = _editor(rng)
    with pytest.raises(UnknownSegmentError):
        ed.split_volume(["liver", "nope"])
    with pytest.raises(InvalidInputError, match="list of segments is empty"):
        ed.split_volume([])
    with pytest.raises(InvalidInputError, match="padding"):
        ed.split_volume(padding_voxels=-1)
    with pytest.raises(InvalidInputError, match="needs the source image"):
        Editor(ed.segmentation).split_volume()
    for s in ed.segmentation:
        s.visible = False
    with pytest.raises(InvalidInputError, match="no segment is visible"):
        ed.split_volume()


# --- the command line ---------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path, rng):
    from gpuseg import write_segmentation
    from gpuseg.io import write_labelmap

    g = oblique((6, 7, 35), spacing=(0.8, 1.1, 2.5))
    x = random_image(rng, g.shape, np.int16)
    write_labelmap(tmp_path / "ct scan.nii.gz", x, g)
    seg = Segmentation(g, backend="cpu")
    arrays = {}
    for name, visible in (("Liver / left", True), ("Liver_left", True), ("kidney", False)):
        arrays[name] = random_mask(rng, g.shape)
        seg.add_segment(name=name, mask=Mask.from_numpy(arrays[name], g, backend="cpu"), visible=visible)
    seg.add_segment(name="empty")
    write_segmentation(seg, tmp_path / "s.h5")
    return tmp_path, g, x, arrays


def _ras(geometry_lps_matrix):
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ geometry_lps_matrix


@pytest.mark.parametrize("backend", ["cpu", "opencl"])
def test_cli_round_trip_nifti_and_nrrd(files, capsys, backend):
    import nibabel as nib
    import nrrd

    from gpuseg.cli import main

    from .parity import backend_or_skip

    backend_or_skip(backend)
    tmp, g, x, arrays = files
    out = tmp / "out"
    assert main(["split-volume", str(tmp / "ct scan.nii.gz"), str(tmp / "s.h5"), "-o", str(out),
                 "--fill-value", "-1024", "--padding-voxels", "3", "--backend", backend]) == 0
    text = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["ct_scan_Liver_left.nii.gz", "ct_scan_Liver_left_2.nii.gz"]
    assert "skipped 'empty': the segment is empty" in text and "wrote" in text
    for name, fname in (("Liver / left", "ct_scan_Liver_left.nii.gz"), ("Liver_left", "ct_scan_Liver_left_2.nii.gz")):
        want, lo = oracle(x, arrays[name], -1024, 3)
        img = nib.load(str(out / fname))
        assert img.get_data_dtype() == np.int16
        np.testing.assert_array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), want)
        # the voxel centres stay where they were (NIfTI is RAS)
        sub = np.array(g.ijk_to_world)
        sub[:3, 3] = world_of_voxels(g, [lo])[0]
        np.testing.assert_allclose(img.affine, _ras(sub), atol=1e-4)
    # nrrd, named segments (a hidden one too), clipped, replacing nothing: a new folder
    out2 = tmp / "nrrd"
    assert main(["split-volume", str(tmp / "ct scan.nii.gz"), str(tmp / "s.h5"), "-o", str(out2),
                 "--segment", "kidney", "--segment", "Liver_left", "--format", "nrrd", "--clip-to-image",
                 "--padding-voxels", "1", "--backend", backend]) == 0
    assert sorted(p.name for p in out2.iterdir()) == ["ct_scan_Liver_left.nrrd", "ct_scan_kidney.nrrd"]
    for name, fname in (("kidney", "ct_scan_kidney.nrrd"), ("Liver_left", "ct_scan_Liver_left.nrrd")):
        want, lo = oracle(x, arrays[name], 0, 1, clip=True)
        data, header = nrrd.read(str(out2 / fname), index_order="C")
        assert data.dtype == np.int16
        np.testing.assert_array_equal(data, want)
        assert header["space"] == "left-posterior-superior"
        np.testing.assert_allclose(header["space origin"], world_of_voxels(g, [lo])[0], atol=1e-6)
        np.testing.assert_allclose(np.asarray(header["space directions"]).T, g.ijk_to_world[:3, :3], atol=1e-9)
    # a second run replaces the files atomically, and says so
    capsys.readouterr()
    assert main(["split-volume", str(tmp / "ct scan.nii.gz"), str(tmp / "s.h5"), "-o", str(out2),
                 "--segment", "kidney", "--format", "nrrd", "--backend", backend]) == 0
    assert "replaced" in capsys.readouterr().out
    assert not [p for p in out2.iterdir() if p.name.startswith(".")]  # no temporary left behind
    want, _ = oracle(x, arrays["kidney"], 0, 5)
    np.testing.assert_array_equal(nrrd.read(str(out2 / "ct_scan_kidney.nrrd"), index_order="C")[0], want)


def test_cli_uncompressed_nifti_and_names(files):
    import nibabel as nib

    from gpuseg.cli import main
    from gpuseg.cli.split_volume import image_stem, output_names

    tmp, g, x, arrays = files
    assert main(["split-volume", str(tmp / "ct scan.nii.gz"), str(tmp / "s.h5"), "-o", str(tmp / "n"),
                 "--segment", "kidney", "--format", "nii", "--backend", "cpu"]) == 0
    img = nib.load(str(tmp / "n" / "ct_scan_kidney.nii"))
    np.testing.assert_array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), oracle(x, arrays["kidney"], 0, 5)[0])
    assert image_stem("a/b/CT.NII.GZ") == "CT" and image_stem("x.nrrd") == "x" and image_stem("dicom/") == "dicom"
    assert output_names("ct", ["a b", "A_B", "..", "x" * 300], ".nrrd") == [
        "ct_a_b.nrrd", "ct_A_B_2.nrrd", "ct_segment3.nrrd", "ct_" + "x" * 120 + ".nrrd"]


def test_cli_errors(files, capsys):
    from gpuseg.cli import main

    tmp, g, x, arrays = files
    (tmp / "afile").write_text("not a folder")
    ct, s = str(tmp / "ct scan.nii.gz"), str(tmp / "s.h5")
    cases = [
        (["-o", str(tmp / "afile")], "is a file, expected a folder"),
        (["-o", str(tmp / "missing" / "out")], "does not exist"),
        (["-o", str(tmp / "o"), "--segment", "nope"], "nope"),
        (["-o", str(tmp / "o"), "--fill-value", "1e6"], "int16"),
        (["-o", str(tmp / "o"), "--fill-value", "0.5"], "int16"),
        (["-o", str(tmp / "o"), "--padding-voxels", "-1"], "padding voxels"),
        (["-o", str(tmp / "o"), "--segment", "empty"], "every chosen segment is empty"),
    ]
    for extra, msg in cases:
        capsys.readouterr()
        assert main(["split-volume", ct, s, *extra, "--backend", "cpu"]) == 2, extra
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (extra, err)
    assert not (tmp / "o").exists()  # nothing written on any error
    # an output that would replace an input: the labelmap's segment "Segment_1" -> ct_Segment_1.nii.gz
    from gpuseg.io import write_labelmap

    write_labelmap(tmp / "ct.nii.gz", x, g)
    write_labelmap(tmp / "ct_Segment_1.nii.gz", arrays["kidney"].astype(np.uint8), g)
    capsys.readouterr()
    rc = main(["split-volume", str(tmp / "ct.nii.gz"), str(tmp / "ct_Segment_1.nii.gz"), "-o", str(tmp),
               "--backend", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "would replace an input file" in err, err
    with pytest.raises(SystemExit):  # argparse: not an integer
        main(["split-volume", ct, s, "-o", str(tmp / "o"), "--padding-voxels", "2.5"])
    with pytest.raises(SystemExit):
        main(["split-volume", ct, s, "-o", str(tmp / "o"), "--format", "mha"])


def test_cli_segmentation_on_another_grid_is_resampled_onto_the_image(files):
    import nibabel as nib

    from gpuseg import write_segmentation
    from gpuseg.cli import main
    from gpuseg.ops.segmentation_geometry import oversampled_geometry

    tmp, g, x, arrays = files
    # the segments on a grid twice as fine: nearest neighbour back onto the image's grid gives
    # each image voxel its own fine voxel at -1/4 .. +1/4, i.e. the original bits
    fine_g = oversampled_geometry(g, 2)
    fine = Segmentation(fine_g, backend="cpu")
    a = arrays["Liver / left"]
    up = np.repeat(np.repeat(np.repeat(a, 2, 0), 2, 1), 2, 2)
    fine.add_segment(name="liver", mask=Mask.from_numpy(up, fine_g, backend="cpu"))
    write_segmentation(fine, tmp / "fine.seg.nrrd")
    out = tmp / "resampled"
    assert main(["split-volume", str(tmp / "ct scan.nii.gz"), str(tmp / "fine.seg.nrrd"), "-o", str(out),
                 "--padding-voxels", "2", "--backend", "cpu", "--fill-value", "-5"]) == 0
    want, _ = oracle(x, a, -5, 2)
    got = np.asarray(nib.load(str(out / "ct_scan_liver.nii.gz")).dataobj).transpose(2, 1, 0)
    np.testing.assert_array_equal(got, want)
