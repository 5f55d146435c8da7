"""The command line: real CT threshold, backends listing, demo, and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

from gpuseg.backends import NAMES
from gpuseg.cli import main

from .conftest import shared_file
from .parity import backend_or_skip


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gpuseg", *args], capture_output=True, text=True, timeout=600)


def test_backends_json(capsys):
    assert main(["backends", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {r["backend"]: r for r in rows}
    assert set(by) == {"cpu", "opencl", "cuda"}
    assert by["cpu"]["usable"] is True
    for r in rows:
        assert r["usable"] or r["reason"]  # an unusable backend says why
    assert sum(r["auto"] for r in rows) == 1


@pytest.mark.parametrize("backend", NAMES)
def test_threshold_real_ct(tmp_path, capsys, backend):
    ct = shared_file("totalseg", "example_ct.nii.gz")
    backend_or_skip(backend)
    out = tmp_path / "bone.nii.gz"
    assert main(["threshold", str(ct), "--min", "200", "--max", "3000", "-o", str(out),
                 "--backend", backend, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    src = nib.load(str(ct))
    ref = np.asarray(src.dataobj)
    got = nib.load(str(out))
    np.testing.assert_array_equal(np.asarray(got.dataobj), ((ref >= 200) & (ref <= 3000)).astype(np.uint8))
    np.testing.assert_allclose(got.affine, src.affine, atol=1e-4)
    assert summary["voxels"] == int(((ref >= 200) & (ref <= 3000)).sum())


def test_threshold_nrrd_output_keeps_geometry(tmp_path):
    from gpuseg import ImageGeometry, write_labelmap

    g = ImageGeometry((4, 5, 6), spacing=(0.5, 0.7, 2.0), origin=(10, -20, 30))
    a = np.arange(120, dtype=np.int16).reshape(4, 5, 6)
    src = tmp_path / "img.nrrd"
    write_labelmap(src, a, g)
    out = tmp_path / "m.nrrd"
    assert main(["threshold", str(src), "--min", "10", "--max", "50", "-o", str(out), "--backend", "cpu"]) == 0
    data, header = nrrd.read(str(out), index_order="C")
    np.testing.assert_array_equal(data, ((a >= 10) & (a <= 50)).astype(np.uint8))
    np.testing.assert_allclose(header["space directions"], g.ijk_to_world[:3, :3].T)
    np.testing.assert_allclose(header["space origin"], g.origin)


@pytest.mark.parametrize("args,msg", [
    (["threshold", "missing.nii.gz", "--min", "0", "--max", "1", "-o", "x.nii.gz"], "file not found"),
    (["threshold", "{ct}", "--min", "5", "--max", "1", "-o", "{tmp}/x.nii.gz"], "lower bound 5.0 > upper bound 1.0"),
    (["threshold", "{ct}", "--min", "nan", "--max", "1", "-o", "{tmp}/x.nii.gz"], "NaN"),
    (["threshold", "{ct}", "--min", "0", "--max", "1", "-o", "{tmp}/x.png"], "unsupported output format; expected .seg.nrrd or .h5"),
    (["threshold", "{bad}", "--min", "0", "--max", "1", "-o", "{tmp}/x.nii.gz"], "cannot read NIfTI"),
    (["demo", "--size", "10x10"], "size must look like"),
    (["demo", "--size", "2x2x2", "-o", "{tmp}/d"], "too small: the demo needs at least 16x32x32"),
    (["demo", "--size", "100000x100000x100000", "-o", "{tmp}/d"], "too large"),
    (["demo", "--backends", "foo", "-o", "{tmp}/d"], "unknown backend 'foo'"),
])
def test_errors_are_one_line_without_traceback(tmp_path, args, msg):
    ct = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)), str(ct))
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08 this is not a nifti file")
    args = [a.format(ct=ct, tmp=tmp_path, bad=bad) for a in args]
    res = run_cli(*args)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0], res.stderr
    assert not (tmp_path / "d").exists()  # a rejected demo leaves no (empty) output folder


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    from gpuseg import ImageGeometry, write_labelmap

    g = ImageGeometry((2, 2, 2))
    out = tmp_path / "keep.nrrd"
    write_labelmap(out, np.ones((2, 2, 2), np.uint8), g)
    before = out.read_bytes()
    import nrrd as nrrd_mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(nrrd_mod, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        write_labelmap(out, np.zeros((2, 2, 2), np.uint8), g)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.nrrd"]  # no temporary file left behind


def test_demo_small(tmp_path):
    res = run_cli("demo", "--size", "24x64x70", "-o", str(tmp_path / "d"), "--backends", "cpu,opencl", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    b = summary["backends"]
    assert b["cpu"]["bone_voxels"] > 0
    assert b["opencl"]["identical_to_first_backend"] is True
    assert summary["bone_dice_vs_truth"] > 0.95
    for p in summary["outputs"].values():
        assert (tmp_path / "d" / p.split("/")[-1]).exists()
    import gpuseg
    import slicerio

    info = slicerio.read_segmentation(str(tmp_path / "d" / "phantom.seg.nrrd"))
    names = [s["name"] for s in info["segments"]]
    assert "liver" in names and any(n.startswith("bone") for n in names) and names[-2:] == ["lesion (brush)", "aorta (grown from seeds)"]
    seg = gpuseg.read_segmentation(tmp_path / "d" / "phantom.h5")
    assert [s.name for s in seg] == names
    assert summary["editing"]["brush_voxels"] > 0 and summary["editing"]["scissors_voxels"] > 0
    lesion, liver = seg["lesion (brush)"].mask, seg["liver"].mask
    assert (lesion - liver).count() == 0  # painted only inside the liver (the editable area)
    assert summary["grow"]["aorta_dice"] > 0.9
    surf = summary["surfaces"]
    assert surf["watertight"] is True and surf["triangles"] > 1000
    import trimesh

    scene = trimesh.load(tmp_path / "d" / "phantom.glb")
    assert "liver" in scene.geometry or any("liver" in n for n in scene.graph.nodes)
    assert (tmp_path / "d" / "surfaces.png").stat().st_size > 10_000
    # what CI checks after the Quick start (ci/check_demo.py): CT on the segmentation's grid,
    # statistics of every segment, closed GLB meshes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ci"))
    try:
        import check_demo
    finally:
        sys.path.pop(0)
    assert check_demo.check(tmp_path / "d") == []
    assert surf["glb_watertight"] is True and surf["glb_max_volume_change"] <= 0.01
    assert surf["glb_triangles"] < surf["triangles"]
    # the CT read by an independent reader (SimpleITK, as Slicer's ITK reader) is on the segmentation's grid
    sitk = pytest.importorskip("SimpleITK")
    ct = sitk.ReadImage(str(tmp_path / "d" / "phantom_ct.nrrd"))
    assert ct.GetSize()[::-1] == seg.geometry.shape
    np.testing.assert_allclose(ct.GetOrigin(), seg.geometry.origin, atol=1e-6)
    np.testing.assert_allclose(ct.GetSpacing(), seg.geometry.spacing, atol=1e-6)
    rows = (tmp_path / "d" / "statistics.csv").read_text().splitlines()
    assert any(r.startswith("lesion (brush),") for r in rows) and any(r.startswith("aorta (grown") for r in rows)


def test_surface_and_import_mesh(tmp_path, capsys):
    import gpuseg
    from gpuseg import ImageGeometry
    from gpuseg.io.meshes import read_meshes

    g = ImageGeometry((20, 30, 40), spacing=(0.9, 0.8, 1.5), origin=(-10.0, 5.0, 2.0))
    k, j, i = np.ogrid[:20, :30, :40]
    ball = (k - 10) ** 2 + (j - 15) ** 2 + (i - 14) ** 2 <= 36
    box = np.zeros(g.shape, bool)
    box[4:15, 5:25, 26:37] = True
    seg = gpuseg.Segmentation(g, backend="cpu")
    seg.add_segment(gpuseg.Mask.from_numpy(ball, g, backend="cpu"), name="ball", color=(1.0, 0.0, 0.0))
    seg.add_segment(gpuseg.Mask.from_numpy(box, g, backend="cpu"), name="box", color=(0.0, 0.0, 1.0))
    src = tmp_path / "two.seg.nrrd"
    gpuseg.write_segmentation(seg, src)
    vtp = tmp_path / "two.vtp"
    assert main(["surface", str(src), "-o", str(vtp), "--smoothing", "0", "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in summary["segments"]] == ["ball", "box"]
    meshes = read_meshes(vtp)
    assert [m.name for m in meshes] == ["ball", "box"]
    assert meshes[0].color == pytest.approx((1.0, 0.0, 0.0))
    # each format; one file per segment for STL
    for suffix in (".obj", ".ply", ".glb"):
        assert main(["surface", str(src), "-o", str(tmp_path / f"s{suffix}"), "--segment", "box",
                     "--decimation", "0.5", "--no-progress"]) == 0
        assert (tmp_path / f"s{suffix}").exists()
    assert main(["surface", str(src), "-o", str(tmp_path / "each.stl"), "--per-segment", "--method",
                 "surface-nets", "--joint-smoothing", "--no-progress"]) == 0
    assert (tmp_path / "each_ball.stl").exists() and (tmp_path / "each_box.stl").exists()
    capsys.readouterr()
    # mesh -> segment: the unsmoothed flying-edges surface voxelizes back to the same voxels
    stl = tmp_path / "box_only.stl"
    assert main(["surface", str(src), "-o", str(stl), "--segment", "box", "--smoothing", "0", "--no-progress"]) == 0
    img = tmp_path / "ref.nrrd"
    gpuseg.write_labelmap(img, np.zeros(g.shape, np.int16), g)
    out = tmp_path / "imported.seg.nrrd"
    assert main(["import-mesh", str(stl), "--reference", str(img), "-o", str(out)]) == 0
    back = gpuseg.read_segmentation(out)
    np.testing.assert_array_equal(back["box_only"].mask.to_numpy(), box)
    # bad input: one line, exit 2
    res = run_cli("surface", str(src), "-o", str(tmp_path / "x.stl"), "--smoothing", "3")
    assert res.returncode == 2 and "smoothing factor" in res.stderr.lower() and "Traceback" not in res.stderr
    res = run_cli("surface", str(src), "-o", str(tmp_path / "x.xyz"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    open_mesh = tmp_path / "open.obj"
    open_mesh.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    res = run_cli("import-mesh", str(open_mesh), "--reference", str(img), "-o", str(tmp_path / "y.seg.nrrd"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert not (tmp_path / "y.seg.nrrd").exists()


def test_info_convert_stats_effects(tmp_path, capsys):
    seg_nii = shared_file("totalseg", "example_seg.nii.gz")
    classes = shared_file("totalseg", "total_classes.json")
    ct = shared_file("totalseg", "example_ct_sm.nii.gz")
    out = tmp_path / "ts.seg.nrrd"
    assert main(["convert", str(seg_nii), str(out), "--labels", str(classes), "--reference", str(ct)]) == 0
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert len(info["segments"]) == 41 and info["layers"] == 1
    liver = next(r for r in info["segments"] if r["name"] == "liver")
    lab = np.asarray(nib.load(str(seg_nii)).dataobj)
    assert liver["voxels"] == int((lab == 5).sum()) and liver["label"] == 5
    assert main(["stats", str(out), "--image", str(ct), "--segment", "liver", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    ctv = np.asarray(nib.load(str(ct)).dataobj)
    assert rows[0]["mean"] == pytest.approx(float(ctv[lab == 5].mean()))
    grown = tmp_path / "grown.h5"
    assert main(["margin", str(out), "--segment", "liver", "--mm", "3", "-o", str(grown)]) == 0
    import gpuseg

    a, b = gpuseg.read_segmentation(out, segments=["liver"]), gpuseg.read_segmentation(grown, segments=["liver"])
    assert b[0].mask.count() > a[0].mask.count()
    assert gpuseg.margin(a[0].mask, 3).equals(b[0].mask.to(a[0].mask.backend))


def test_convert_errors(tmp_path):
    seg_nii = shared_file("totalseg", "example_seg.nii.gz")
    res = run_cli("convert", str(seg_nii), str(tmp_path / "x.seg.nrrd"), "--reference",
                  str(shared_file("totalseg", "example_ct.nii.gz")))
    assert res.returncode == 2 and "different grids" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("margin", str(seg_nii), "--segment", "no such organ", "--mm", "2", "-o", str(tmp_path / "y.h5"))
    assert res.returncode == 2 and "no segment with id or name 'no such organ'" in res.stderr
    assert not (tmp_path / "y.h5").exists()


def test_islands_and_grow_commands(tmp_path):
    import gpuseg
    from gpuseg import ImageGeometry, Mask, Segmentation

    g = ImageGeometry((6, 20, 40))
    a = np.zeros(g.shape, np.int16)
    a[:, :, 20:] = 300
    img_path = tmp_path / "img.nrrd"
    gpuseg.write_labelmap(img_path, a, g)
    seg = Segmentation(g, backend="cpu")
    m = np.zeros(g.shape, bool)
    m[1:3, 2:5, 2:5] = True
    m[1:3, 10:18, 2:10] = True  # the larger island
    seg.add_segment(Mask.from_numpy(m, g, backend="cpu"), name="dark")
    b = np.zeros(g.shape, bool)
    b[2, 10, 30] = True
    seg.add_segment(Mask.from_numpy(b, g, backend="cpu"), name="bright")
    src = tmp_path / "seeds.seg.nrrd"
    gpuseg.write_segmentation(seg, src)
    assert main(["islands", str(src), "--segment", "dark", "--keep-largest", "-o", str(tmp_path / "k.h5")]) == 0
    assert gpuseg.read_segmentation(tmp_path / "k.h5")["dark"].mask.count() == 2 * 8 * 8
    assert main(["islands", str(src), "--segment", "dark", "--split", "-o", str(tmp_path / "s.h5")]) == 0
    assert [s.name for s in gpuseg.read_segmentation(tmp_path / "s.h5")] == ["dark", "bright", "dark_2"]
    assert main(["grow", str(img_path), str(src), "-o", str(tmp_path / "g.seg.nrrd"), "--whole-volume"]) == 0
    grown = gpuseg.read_segmentation(tmp_path / "g.seg.nrrd")
    np.testing.assert_array_equal(grown["bright"].mask.to_numpy(), a == 300)
    np.testing.assert_array_equal(grown["dark"].mask.to_numpy(), a == 0)


def test_edit_script(tmp_path):
    import gpuseg
    from gpuseg import ImageGeometry

    g = ImageGeometry((8, 20, 40), spacing=(1, 1, 2))
    a = np.zeros(g.shape, np.int16)
    a[:, :, 20:] = 300
    img = tmp_path / "img.nrrd"
    gpuseg.write_labelmap(img, a, g)
    steps = [
        {"effect": "add_segment", "name": "bright"},
        {"effect": "add_segment", "name": "brush"},
        {"effect": "threshold", "segment": "bright", "min": 200, "max": 400},
        {"effect": "masking", "overwrite": "allow_overlap"},
        {"effect": "paint", "segment": "brush", "points": [[10, 10, 4]], "diameter_mm": 5, "space": "ijk"},
        {"effect": "scissors", "segment": "bright", "points": [[19.5, -1, 4], [40, 21, 4]], "shape": "rectangle",
         "operation": "erase_inside", "space": "ijk", "extrusion": "symmetric", "depth_mm": 2},
        {"effect": "undo"}, {"effect": "redo"},
        {"effect": "add_segment", "name": "traced"},
        {"effect": "level_trace", "segment": "traced", "point": [20, 10, 2], "space": "ijk"},
    ]
    script = tmp_path / "edits.json"
    script.write_text(json.dumps(steps))
    out = tmp_path / "out.seg.nrrd"
    assert main(["edit", "-", "--image", str(img), "--script", str(script), "-o", str(out)]) == 0
    seg = gpuseg.read_segmentation(out)
    want = a >= 200
    want[4] = False  # a symmetric 2 mm cut around slice 4 of 2 mm slices is that slice alone
    np.testing.assert_array_equal(seg["bright"].mask.to_numpy(), want)
    assert seg["brush"].mask.count() > 0
    traced = np.zeros(g.shape, bool)
    traced[2, :, 20:] = True  # the bright half of slice 2, traced from a voxel on its edge
    np.testing.assert_array_equal(seg["traced"].mask.to_numpy(), traced)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"effect": "paint", "segment": "nope", "points": [[1, 1, 1]]}]))
    res = run_cli("edit", "-", "--image", str(img), "--script", str(bad), "-o", str(tmp_path / "x.seg.nrrd"))
    assert res.returncode == 2 and "step 1 (paint)" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "x.seg.nrrd").exists()
    bad.write_text(json.dumps([{"effect": "paint", "segmnt": "a"}]))
    res = run_cli("edit", "-", "--image", str(img), "--script", str(bad), "-o", str(tmp_path / "x.seg.nrrd"))
    assert res.returncode == 2 and "unknown keys" in res.stderr
