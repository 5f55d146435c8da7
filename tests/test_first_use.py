"""First use (issue 19): terminology and colours, messages that help, CLI effects through the
editor's masking, progress bars, decimation that stays closed, and small speed fixes."""

import json
import subprocess
import sys

import numpy as np
import pytest

import gpuseg
from gpuseg import Mask, Segmentation
from gpuseg.cli import main

from .conftest import shared_file


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gpuseg", *args], capture_output=True, text=True, timeout=600)


def one_line_error(res, msg):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    # one line; argparse's own errors come after its usage block
    assert msg in lines[-1] and (len(lines) == 1 or lines[0].startswith("usage:")), res.stderr
    assert "Traceback" not in res.stderr


# --- terminology --------------------------------------------------------------------------------
def test_totalsegmentator_data_cites_its_source_and_covers_the_total_task():
    from gpuseg.data import totalsegmentator_source, totalsegmentator_terminology

    src = totalsegmentator_source()
    assert src["repository"] == "https://github.com/lassoan/SlicerTotalSegmentator"
    assert "Apache-2.0" in src["license"] and len(src["commit"]) == 40
    assert any(f.endswith("totalsegmentator_snomed_mapping.csv") for f in src["files"])
    kl = totalsegmentator_terminology("kidney_left")
    parts = kl.terminology.split("~")
    assert len(parts) == 7
    assert parts[1] == "SCT^123037004^Anatomical Structure" and parts[2] == "SCT^64033007^Kidney"
    assert parts[3] == "SCT^7771000^Left"
    cyst = totalsegmentator_terminology("kidney_cyst_right").terminology.split("~")
    assert cyst[2] == "SCT^367643001^Cyst" and cyst[5] == "SCT^64033007^Kidney" and cyst[6] == "SCT^24028007^Right"
    # a type of the extension's own context names that context, as the extension does
    assert totalsegmentator_terminology("vertebrae_L1").terminology.startswith(
        "Segmentation category and type - Total Segmentator~")
    assert totalsegmentator_terminology("not_a_class") is None


def test_all_total_classes_are_mapped():
    classes = json.loads(shared_file("totalseg", "total_classes.json").read_text())
    from gpuseg.data import totalsegmentator_terminology

    assert len(classes) == 117
    missing = [n for n in classes.values() if totalsegmentator_terminology(n) is None]
    assert missing == []
    colored = [n for n in classes.values() if totalsegmentator_terminology(n).color is not None]
    assert len(colored) >= 110  # 7 take their colour from Slicer's DICOM master list, not shipped


def test_converted_totalsegmentator_output_carries_snomed_codes_and_colours(tmp_path):
    slicerio = pytest.importorskip("slicerio")
    labels = shared_file("totalseg", "example_seg.nii.gz")
    table = shared_file("totalseg", "total_classes.json")
    out = tmp_path / "ts.seg.nrrd"
    assert main(["convert", str(labels), str(out), "--labels", str(table), "-q"]) == 0
    seg = slicerio.read_segmentation(str(out), skip_voxels=True)
    by = {s["name"]: s for s in seg["segments"]}
    assert len(by) == 41
    liver = by["liver"]
    assert liver["terminology"]["type"] == ["SCT", "10200004", "Liver"]
    assert liver["terminology"]["category"] == ["SCT", "123037004", "Anatomical Structure"]
    kid = by["kidney_right"]["terminology"]
    assert kid["type"][1] == "64033007" and kid["typeModifier"][1] == "24028007"
    from gpuseg.data import totalsegmentator_terminology

    for name, s in by.items():
        t = totalsegmentator_terminology(name)
        assert s["terminology"]["type"][1] == t.terminology.split("~")[2].split("^")[1]
        if t.color is not None:
            np.testing.assert_allclose(s["color"], t.color, atol=1e-5)
    assert not any(s["terminology"]["type"][1] == "85756007" for s in by.values())  # no generic "Tissue"


def test_dicom_seg_export_carries_type_modifier_and_region(tmp_path):
    pytest.importorskip("highdicom")
    pydicom = pytest.importorskip("pydicom")
    from gpuseg.io.labels import read_label_table, segmentation_from_labelmap

    from .test_dicom import write_series

    vol = np.zeros((4, 12, 10), np.uint16)
    write_series(tmp_path / "ct", vol)
    img = gpuseg.read_image(tmp_path / "ct", backend="cpu")
    (tmp_path / "t.json").write_text(json.dumps({"1": "kidney_left", "2": "kidney_cyst_left", "3": "liver"}))
    table = read_label_table(tmp_path / "t.json")
    lab = np.zeros(img.shape, np.uint8)
    lab[1:3, 2:5, 2:5] = 1
    lab[1:3, 6:9, 2:5] = 2
    lab[0:2, 2:9, 6:9] = 3
    seg = segmentation_from_labelmap(lab, img.geometry, backend="cpu", table=table)
    out = tmp_path / "seg.dcm"
    gpuseg.write_segmentation(seg, out, reference=tmp_path / "ct")
    ds = pydicom.dcmread(str(out))
    items = {str(d.SegmentLabel): d for d in ds.SegmentSequence}
    k = items["kidney_left"]
    assert k.SegmentedPropertyTypeCodeSequence[0].CodeValue == "64033007"
    assert k.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == "7771000"
    c = items["kidney_cyst_left"]
    assert c.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert c.SegmentedPropertyTypeCodeSequence[0].CodeValue == "367643001"
    assert c.AnatomicRegionSequence[0].CodeValue == "64033007"
    assert c.AnatomicRegionSequence[0].AnatomicRegionModifierSequence[0].CodeValue == "7771000"
    assert items["liver"].SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"
    back = gpuseg.read_segmentation(out, backend="cpu", reference=img.geometry)
    term = {s.name: s.terminology.split("~") for s in back}
    assert term["kidney_left"][3] == "SCT^7771000^Left"
    assert term["kidney_cyst_left"][5] == "SCT^64033007^Kidney" and term["kidney_cyst_left"][6] == "SCT^7771000^Left"


# --- colours ------------------------------------------------------------------------------------
def test_new_segments_take_slicers_colour_cycle():
    from gpuseg.colors import GENERIC_ANATOMY_COLORS, segment_color

    seg = Segmentation(gpuseg.ImageGeometry((2, 3, 4)), backend="cpu")
    got = [seg.add_segment().color for _ in range(12)]
    want = [tuple(round(c / 255, 6) for c in rgb) for _, rgb in GENERIC_ANATOMY_COLORS]
    assert got[:9] == want
    assert got[0] == (round(128 / 255, 6), round(174 / 255, 6), round(128 / 255, 6))  # Slicer's first: tissue
    assert len(set(got)) == 12 and all(0 <= c <= 1 for rgb in got for c in rgb)
    assert all(seg[i].color_auto_generated for i in range(12))
    assert segment_color(100) != segment_color(101)


def test_split_islands_get_distinct_colours(tmp_path):
    g = gpuseg.ImageGeometry((3, 10, 40))
    a = np.zeros(g.shape, bool)
    for x in range(0, 40, 5):
        a[1, 2:5, x:x + 2] = True  # 8 separate islands
    seg = Segmentation(g, backend="cpu")
    seg.add_segment(Mask.from_numpy(a, g, backend="cpu"), name="bits", color=(1.0, 0.0, 0.0))
    src, out = tmp_path / "in.seg.nrrd", tmp_path / "out.seg.nrrd"
    gpuseg.write_segmentation(seg, src)
    assert main(["islands", str(src), "--segment", "bits", "--split", "-o", str(out)]) == 0
    back = gpuseg.read_segmentation(out, backend="cpu")
    assert len(back) == 8
    assert len({s.color for s in back}) == 8


# --- names and messages -------------------------------------------------------------------------
def test_unknown_segment_suggests_close_names_case_insensitively():
    g = gpuseg.ImageGeometry((2, 2, 2))
    seg = Segmentation(g, backend="cpu")
    for n in ["liver", "spleen", "kidney_left", "kidney_right"] + [f"rib_left_{i}" for i in range(1, 13)]:
        seg.add_segment(name=n)
    with pytest.raises(gpuseg.UnknownSegmentError, match="did you mean 'liver'"):
        seg.segment("Liver")
    with pytest.raises(gpuseg.UnknownSegmentError, match="did you mean 'kidney_left', 'kidney_right'"):
        seg.segment("kidney_lft")
    with pytest.raises(gpuseg.UnknownSegmentError, match=r"rib_left_12"):  # close matches reach past the first 10
        seg.segment("rib_left_12 ")
    with pytest.raises(gpuseg.UnknownSegmentError, match=r"\.\.\. 6 more"):
        seg.segment("zzzz")
    with pytest.raises(gpuseg.UnknownSegmentError, match="no segments"):
        Segmentation(g, backend="cpu").segment("x")


def test_info_marks_cut_names_with_an_ellipsis(tmp_path, capsys):
    g = gpuseg.ImageGeometry((2, 2, 2))
    seg = Segmentation(g, backend="cpu")
    long = "a segment name that is much longer than the column"
    seg.add_segment(name=long, segment_id="an_identifier_longer_than_24_characters")
    seg.add_segment(name="short", segment_id="short_id")
    gpuseg.write_segmentation(seg, tmp_path / "s.seg.nrrd")
    assert main(["info", str(tmp_path / "s.seg.nrrd")]) == 0
    out = capsys.readouterr().out
    assert long[:27] + "\u2026" in out and "an_identifier_longer_th\u2026" in out
    assert " short " in out and "short_id " in out


@pytest.fixture
def small_seg(tmp_path):
    g = gpuseg.ImageGeometry((6, 12, 12))
    seg = Segmentation(g, backend="cpu")
    a = np.zeros(g.shape, bool)
    a[2:4, 3:6, 3:6] = True
    b = np.zeros(g.shape, bool)
    b[2:4, 6:9, 3:6] = True  # touches a
    seg.add_segment(Mask.from_numpy(a, g, backend="cpu"), name="a")
    seg.add_segment(Mask.from_numpy(b, g, backend="cpu"), name="b")
    c = np.zeros(g.shape, bool)
    c[2:4, 4:8, 3:6] = True  # overlaps a and b
    seg.add_segment(Mask.from_numpy(c, g, backend="cpu"), name="c")
    p = tmp_path / "s.seg.nrrd"
    gpuseg.write_segmentation(seg, p)
    return p, a, b, c


@pytest.mark.parametrize("args,msg", [
    (["convert", "{seg}", "{tmp}/out.txt"], "unsupported output format; expected .seg.nrrd, .nrrd, .nii, .nii.gz, .h5, "
                                            ".dcm (DICOM SEG) or a folder"),
    (["convert", "{seg}", "{tmp}/afile/x.seg.nrrd"], "afile is a file, not a folder"),
    (["convert", "{seg}", "{tmp}/nowhere/x.seg.nrrd"], "folder {tmp}/nowhere does not exist"),
    (["convert", "{seg}", "{tmp}/x.dcm"], "needs --reference"),
    (["convert", "{seg}", "{tmp}/x.nii.gz", "--overlap", "error"], "use --overlap later or --overlap earlier"),
    # the output is checked before the input is even read (no meshing of every segment first)
    (["surface", "{tmp}/missing.seg.nrrd", "-o", "{tmp}/out.xyz"], "expected .stl, .obj, .ply, .vtp, .glb or .gltf"),
    (["margin", "{seg}", "--segment", "a", "--mm", "1", "-o", "{tmp}/x.stl"], "unsupported output format"),
    (["islands", "{seg}", "--segment", "a", "--split", "--min-size", "-1", "-o", "{tmp}/x.seg.nrrd"],
     "--min-size must not be negative"),
    (["islands", "{seg}", "--segment", "a", "--remove-small", "3", "--min-size", "3", "-o", "{tmp}/x.seg.nrrd"],
     "--min-size goes with --split or --keep-largest"),
    (["islands", "{seg}", "--segment", "a", "--remove-small", "-2", "-o", "{tmp}/x.seg.nrrd"],
     "--remove-small must not be negative"),
    (["stats", "{seg}", "--json", "--csv", "{tmp}/x.csv"], "not allowed with argument --json"),
    (["stats", "{seg}", "--csv", "{tmp}/x.txt"], "--csv {tmp}/x.txt: unsupported output format"),
    (["margin", "{seg}", "--segment", "A", "--mm", "1", "-o", "{tmp}/x.seg.nrrd"], "did you mean 'a'"),
    (["margin", "{seg}", "--segment", "a", "--mm", "1", "--editable-area", "inside", "-o", "{tmp}/x.seg.nrrd"],
     "needs --mask-segment"),
    (["margin", "{seg}", "--segment", "a", "--mm", "1", "--intensity-range", "0", "1", "-o", "{tmp}/x.seg.nrrd"],
     "needs --image"),
])
def test_cli_messages(tmp_path, small_seg, args, msg):
    (tmp_path / "afile").write_text("not a folder")
    fill = {"seg": small_seg[0], "tmp": tmp_path}
    res = run_cli(*[a.format(**fill) for a in args])
    one_line_error(res, msg.format(**fill))
    assert not any(p.name.startswith("x.") for p in tmp_path.iterdir())


def test_help_texts_name_formats_and_options():
    import argparse

    from gpuseg.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    conv = sub.choices["convert"].format_help()
    assert ".dcm" in conv and "SNOMED-CT" in conv
    assert "DICOM folder" in " ".join(sub.choices["threshold"].format_help().split())
    assert "Overwrite all" in " ".join(sub.choices["margin"].format_help().split())
    for name in ("margin", "hollow", "smooth", "islands", "stats", "convert", "grow", "import-mesh", "surface",
                 "threshold", "info", "demo"):
        for act in sub.choices[name]._actions:
            if not isinstance(act, argparse._HelpAction):
                assert act.help, f"gpuseg {name} {act.option_strings or act.dest} has no help text"


def test_cli_masking_choices_are_the_editors():
    from gpuseg import Masking
    from gpuseg.cli._checks import EDITABLE_AREAS, OVERWRITE_MODES

    seg = Segmentation(gpuseg.ImageGeometry((2, 2, 2)), backend="cpu")
    seg.add_segment(name="m")
    for area in EDITABLE_AREAS:
        for ow in OVERWRITE_MODES:
            Masking(area, "m" if area == "inside" else None, overwrite=ow).check(seg)


# --- CLI effects through the editor -------------------------------------------------------------
@pytest.mark.parametrize("backend", ["cpu", "opencl"])
def test_margin_takes_voxels_from_neighbours_as_slicer_does(tmp_path, small_seg, backend):
    from gpuseg.ops.morphology import margin

    path, a, b, c = small_seg
    g = gpuseg.read_segmentation(path, backend="cpu").geometry
    grown = margin(Mask.from_numpy(a, g, backend="cpu"), 2.0).to_numpy()
    out = tmp_path / "o.seg.nrrd"
    # default: Slicer's masking (everywhere, overwrite all): the others lose what a gains
    assert main(["margin", str(path), "--segment", "a", "--mm", "2", "-o", str(out), "--backend", backend]) == 0
    r = gpuseg.read_segmentation(out, backend="cpu")
    np.testing.assert_array_equal(r["a"].mask.to_numpy(), grown)
    np.testing.assert_array_equal(r["b"].mask.to_numpy(), b & ~grown)
    np.testing.assert_array_equal(r["c"].mask.to_numpy(), c & ~grown)
    # allow overlap: the others keep their voxels
    assert main(["margin", str(path), "--segment", "a", "--mm", "2", "-o", str(out), "--overwrite", "allow_overlap",
                 "--backend", backend]) == 0
    r = gpuseg.read_segmentation(out, backend="cpu")
    np.testing.assert_array_equal(r["a"].mask.to_numpy(), grown)
    np.testing.assert_array_equal(r["b"].mask.to_numpy(), b)
    # editable area inside c: a grows only into c's voxels, and takes them from c (and b) there
    assert main(["margin", str(path), "--segment", "a", "--mm", "2", "-o", str(out), "--editable-area", "inside",
                 "--mask-segment", "c", "--backend", backend]) == 0
    r = gpuseg.read_segmentation(out, backend="cpu")
    want_a = a | (grown & c)
    np.testing.assert_array_equal(r["a"].mask.to_numpy(), want_a)
    np.testing.assert_array_equal(r["b"].mask.to_numpy(), b & ~(want_a & ~a))


def test_islands_keep_largest_goes_through_masking(tmp_path):
    g = gpuseg.ImageGeometry((3, 8, 20))
    a = np.zeros(g.shape, bool)
    a[1, 1:6, 1:8] = True
    a[1, 2:4, 12:14] = True  # small island
    mask = np.zeros(g.shape, bool)
    mask[:, :, :10] = True  # editable area: the big island's half only
    seg = Segmentation(g, backend="cpu")
    seg.add_segment(Mask.from_numpy(a, g, backend="cpu"), name="a")
    seg.add_segment(Mask.from_numpy(mask, g, backend="cpu"), name="left", visible=False)
    src, out = tmp_path / "s.seg.nrrd", tmp_path / "o.seg.nrrd"
    gpuseg.write_segmentation(seg, src)
    assert main(["islands", str(src), "--segment", "a", "--keep-largest", "-o", str(out)]) == 0
    np.testing.assert_array_equal(gpuseg.read_segmentation(out, backend="cpu")["a"].mask.to_numpy(),
                                  a & (np.arange(20) < 10))
    # with other masking options the CLI gives what the Editor gives
    from gpuseg import Editor, Masking

    for area in ("inside", "outside_visible", "inside_all"):
        assert main(["islands", str(src), "--segment", "a", "--keep-largest", "--editable-area", area]
                    + (["--mask-segment", "left"] if area == "inside" else []) + ["-o", str(out)]) == 0
        ed = Editor(gpuseg.read_segmentation(src, backend="cpu"))
        ed.masking = Masking(area, "left" if area == "inside" else None)
        ed.islands("a", "keep_largest", min_size=0)  # the CLI's default MinimumSize is 0
        np.testing.assert_array_equal(gpuseg.read_segmentation(out, backend="cpu")["a"].mask.to_numpy(),
                                      ed.segmentation["a"].mask.to_numpy())


# --- progress bars ------------------------------------------------------------------------------
def test_progress_only_on_a_terminal_and_not_with_quiet(monkeypatch):
    import argparse

    from gpuseg.cli._checks import progress, show_progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert show_progress(argparse.Namespace(quiet=False)) is True
    assert show_progress(argparse.Namespace(quiet=True)) is False
    assert show_progress(argparse.Namespace(quiet=False, json=True)) is False
    bar = progress(argparse.Namespace(quiet=False), total=3, unit="segment")
    assert not bar.disable and bar.unit == "segment"
    bar.close()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert show_progress(argparse.Namespace(quiet=False)) is False


def test_no_progress_output_when_not_a_terminal(tmp_path, small_seg):
    res = run_cli("stats", str(small_seg[0]))
    assert res.returncode == 0 and res.stderr == ""
    res = run_cli("convert", str(small_seg[0]), str(tmp_path / "x.h5"))
    assert res.returncode == 0 and res.stderr == ""


# --- decimation ---------------------------------------------------------------------------------
def _slicer_surfaces():
    path = shared_file("slicer", "Segmentation.seg.nrrd")
    from gpuseg.surface import segment_surfaces

    seg = gpuseg.read_segmentation(path, backend="cpu")
    return segment_surfaces(seg, None, smoothing=0.5, decimation=0.0)


def test_bounded_decimation_keeps_real_segments_closed():
    pytest.importorskip("fast_simplification")
    pytest.importorskip("trimesh")
    from gpuseg.demo import bounded_decimation

    surfaces = _slicer_surfaces()
    removed = 0
    for s in surfaces:
        assert s.is_watertight()
        d, frac = bounded_decimation(s, reductions=(0.8, 0.5, 0.2), max_volume_change=0.01)
        assert d.is_watertight(), s.name
        assert abs(d.volume() - s.volume()) <= 0.01 * abs(s.volume()), s.name
        assert d.n_faces <= s.n_faces
        removed += s.n_faces - d.n_faces
    assert removed > 0


def test_plain_decimation_opens_closed_segments_as_vtk_decimate_pro_does():
    """The truth the README states: neither gpuseg's quadric decimation nor Slicer's
    vtkDecimatePro (with Slicer's settings) keeps these closed segments closed."""
    pytest.importorskip("fast_simplification")
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray, vtk_to_numpy

    from gpuseg.surface.mesh import Surface
    from gpuseg.surface.postprocess import decimate

    def decimate_pro(v, f, r):
        pts = vtk.vtkPoints()
        pts.SetData(numpy_to_vtk(np.ascontiguousarray(v, np.float64), deep=True))
        ca = vtk.vtkCellArray()
        ca.SetData(numpy_to_vtkIdTypeArray(np.arange(0, 3 * len(f) + 1, 3, dtype=np.int64), deep=True),
                   numpy_to_vtkIdTypeArray(np.ascontiguousarray(f, np.int64).ravel(), deep=True))
        pd = vtk.vtkPolyData()
        pd.SetPoints(pts)
        pd.SetPolys(ca)
        d = vtk.vtkDecimatePro()  # as Slicer's labelmap-to-surface conversion sets it up
        d.SetInputData(pd)
        d.SetFeatureAngle(60)
        d.SplittingOff()
        d.PreserveTopologyOn()
        d.SetMaximumError(1)
        d.SetTargetReduction(r)
        d.Update()
        o = d.GetOutput()
        return (vtk_to_numpy(o.GetPoints().GetData()),
                vtk_to_numpy(o.GetPolys().GetConnectivityArray()).reshape(-1, 3))

    surfaces = _slicer_surfaces()
    ours = [Surface(*decimate(s.vertices, s.faces, 0.5)).is_watertight() for s in surfaces]
    theirs = [Surface(*decimate_pro(s.vertices, s.faces, 0.5)).is_watertight() for s in surfaces]
    assert not all(ours) and not all(theirs)


# --- small things that cost seconds ---------------------------------------------------------------
def test_voxelizer_kernels_are_cached():
    from gpuseg.surface import voxelize

    assert voxelize._voxelize_kernel._cache.__class__.__name__ != "NullCache"
    assert voxelize._orient._cache.__class__.__name__ != "NullCache"


@pytest.mark.parametrize("n_sub", [1, 3])
def test_serial_and_parallel_smoothing_are_identical(monkeypatch, n_sub):
    trimesh = pytest.importorskip("trimesh")
    from gpuseg.surface import postprocess as pp

    m = trimesh.creation.icosphere(subdivisions=n_sub)
    v = m.vertices * 10 + np.random.default_rng(n_sub).normal(0, 0.3, m.vertices.shape)
    f = m.faces.astype(np.int64)
    monkeypatch.setattr(pp, "SERIAL_BELOW_VERTICES", 10**12)
    serial = pp.windowed_sinc(v, f, passband=0.05, iterations=20)
    monkeypatch.setattr(pp, "SERIAL_BELOW_VERTICES", 0)
    parallel = pp.windowed_sinc(v, f, passband=0.05, iterations=20)
    np.testing.assert_array_equal(serial, parallel)
    assert not np.array_equal(serial, v)


@pytest.mark.parametrize("size", ["16x32x32", "17x33x48"])
def test_demo_runs_at_its_minimum_size(tmp_path, size):
    from gpuseg.demo import parse_size, run_demo

    summary = run_demo(parse_size(size), tmp_path / "d", backends="cpu", progress=False, log=lambda *a: None)
    assert summary["editing"]["brush_voxels"] > 0 and summary["editing"]["scissors_voxels"] > 0
    assert (tmp_path / "d" / "phantom_ct.nrrd").is_file()


def test_closed_oriented_is_surface_is_watertight():
    pytest.importorskip("fast_simplification")
    from gpuseg.demo import closed_oriented
    from gpuseg.surface.mesh import Surface
    from gpuseg.surface.postprocess import decimate

    rng = np.random.default_rng(3)
    for s in _slicer_surfaces():
        for r in (0.0, 0.5, 0.9):
            v, f = decimate(s.vertices, s.faces, r)
            assert closed_oriented(f) == Surface(v, f).is_watertight()
        flipped = s.faces.copy()
        flipped[rng.integers(len(flipped))] = flipped[0, ::-1] if len(flipped) else flipped[0]
        assert closed_oriented(flipped) == Surface(s.vertices, flipped).is_watertight()
        assert closed_oriented(s.faces[1:]) is False  # a hole
    assert closed_oriented(np.zeros((0, 3), np.int64)) is True
