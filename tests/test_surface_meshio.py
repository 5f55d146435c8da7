"""Mesh files: round trips, names/colours, VTK and trimesh interoperability, atomic writes, errors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from gpuseg.errors import FileFormatError, InvalidInputError
from gpuseg.io import meshes as meshio
from gpuseg.surface.postprocess import vertex_normals
from gpuseg.io.meshes import (LPS_MM_TO_GLTF, NamedMesh, check_closed, read_mesh, read_meshes,
                                   write_meshes)


# --------------------------------------------------------------------------------------
# fixtures: small closed meshes built here (no trimesh needed)
# --------------------------------------------------------------------------------------

def box_mesh(lo=(0.0, 0.0, 0.0), hi=(1.0, 1.0, 1.0), dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box, 8 vertices, 12 outward triangles."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    corners = np.array([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], float)
    v = lo + corners * (hi - lo)
    f = np.array([[0, 2, 1], [1, 2, 3],   # z = lo
                  [4, 5, 6], [5, 7, 6],   # z = hi
                  [0, 1, 4], [1, 5, 4],   # y = lo
                  [2, 6, 3], [3, 6, 7],   # y = hi
                  [0, 4, 2], [2, 4, 6],   # x = lo
                  [1, 3, 5], [3, 7, 5]],  # x = hi
                 np.int64)
    return v.astype(dtype), f


def octa_sphere(radius: float = 10.0, level: int = 2, center=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """A subdivided octahedron projected on a sphere (closed, outward, shared vertices)."""
    v = [np.array(p, float) for p in [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]]
    f = [(0, 2, 4), (2, 1, 4), (1, 3, 4), (3, 0, 4), (2, 0, 5), (1, 2, 5), (3, 1, 5), (0, 3, 5)]
    for _ in range(level):
        cache: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = v[a] + v[b]
                v.append(m / np.linalg.norm(m))
                cache[key] = len(v) - 1
            return cache[key]

        nf = []
        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            nf += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        f = nf
    return np.array(v) * radius + np.asarray(center, float), np.array(f, np.int64)


def signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    t = v[f]
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


@pytest.fixture
def scene() -> list[NamedMesh]:
    sv, sf = octa_sphere(10.0, 2, (-5.0, 3.0, 7.0))
    bv, bf = box_mesh((20, 21, 22), (25, 27, 30), dtype=np.float32)
    bn = vertex_normals(bv, bf)
    return [NamedMesh("Left kidney", (0.9, 0.2, 0.1), sv, sf),
            NamedMesh("Liver & <gall>", (0.1, 0.8, 0.3), bv, bf, bn)]


def _concat(meshes: list[NamedMesh]) -> tuple[np.ndarray, np.ndarray]:
    v = np.concatenate([m.vertices.astype(np.float64) for m in meshes])
    offs = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    f = np.concatenate([m.faces + o for m, o in zip(meshes, offs)])
    return v, f


# --------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".obj", ".ply", ".vtp"])
def test_round_trip_exact(tmp_path: Path, scene, suffix: str) -> None:
    (out,) = write_meshes(tmp_path / f"scene{suffix}", scene)
    assert out == tmp_path / f"scene{suffix}"
    v, f = read_mesh(out)
    ev, ef = _concat(scene)
    assert v.dtype == np.float64 and f.dtype == np.int64
    np.testing.assert_array_equal(v, ev)
    np.testing.assert_array_equal(f, ef)
    check_closed(v, f, "round trip")
    segs = read_meshes(out)
    assert [s.name for s in segs] == [m.name for m in scene]
    for s, m in zip(segs, scene):
        np.testing.assert_allclose(s.color, m.color, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(s.vertices, m.vertices.astype(np.float64))
        np.testing.assert_array_equal(s.faces, m.faces)


@pytest.mark.parametrize("suffix", [".ply", ".vtp"])
def test_normals_survive(tmp_path: Path, scene, suffix: str) -> None:
    (out,) = write_meshes(tmp_path / f"n{suffix}", scene)
    segs = read_meshes(out)
    np.testing.assert_array_equal(segs[1].normals, scene[1].normals)
    # the sphere had none: the computed normals point outward (radially)
    radial = scene[0].vertices - (-5.0, 3.0, 7.0)
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    assert np.all(np.einsum("ij,ij->i", segs[0].normals, radial) > 0.99)


def test_stl_round_trip_merges_corners(tmp_path: Path, scene) -> None:
    (out,) = write_meshes(tmp_path / "scene.stl", scene)
    assert out.stat().st_size == 84 + 50 * sum(len(m.faces) for m in scene)
    v, f = read_mesh(out)
    ev, ef = _concat(scene)
    assert len(v) == len(ev)          # identical corners were merged back into shared vertices
    np.testing.assert_array_equal(v[f], ev[ef].astype(np.float32).astype(np.float64))
    check_closed(v, f, "STL")
    head = out.read_bytes()[:80]
    assert not head.startswith(b"solid")     # would make readers take it for ASCII STL
    # binary STL carries no names: one segment named after the file
    (seg,) = read_meshes(out)
    assert seg.name == "scene"


def test_stl_ascii_is_read(tmp_path: Path) -> None:
    v, f = box_mesh()
    lines = ["solid box"]
    for tri in v[f]:
        lines += ["  facet normal 0 0 0", "    outer loop"]
        lines += [f"      vertex {float(x)!r} {float(y)!r} {float(z)!r}" for x, y, z in tri]
        lines += ["    endloop", "  endfacet"]
    lines.append("endsolid box")
    p = tmp_path / "box.stl"
    p.write_text("\n".join(lines))
    rv, rf = read_mesh(p)
    assert len(rv) == 8 and len(rf) == 12
    np.testing.assert_array_equal(rv[rf], v[f])


def test_obj_materials_and_groups(tmp_path: Path, scene) -> None:
    (out,) = write_meshes(tmp_path / "scene.obj", scene)
    mtl = tmp_path / "scene.mtl"
    text = out.read_text()
    assert "mtllib scene.mtl" in text
    assert "o Left kidney" in text and "usemtl Left_kidney" in text
    mtext = mtl.read_text()
    assert "newmtl Left_kidney" in mtext and "Kd 0.9 0.2 0.1" in mtext
    assert "newmtl Liver_gall" in mtext and "Kd 0.1 0.8 0.3" in mtext
    trimesh = pytest.importorskip("trimesh")
    loaded = trimesh.load(out, force="scene", process=False)
    colors = sorted(tuple(np.round(np.asarray(g.visual.material.main_color[:3]) / 255.0, 2))
                    for g in loaded.geometry.values())
    assert colors == sorted([(0.9, 0.2, 0.1), (0.1, 0.8, 0.3)])
    assert sum(len(g.faces) for g in loaded.geometry.values()) == sum(len(m.faces) for m in scene)


def test_ply_header_and_vertex_colours(tmp_path: Path, scene) -> None:
    (out,) = write_meshes(tmp_path / "scene.ply", scene)
    data = out.read_bytes()
    assert data.startswith(b"ply\nformat binary_little_endian 1.0\n")
    comment = b"comment gpuseg segment 0 0.90000000000000002 0.20000000000000001 0.10000000000000001 Left kidney"
    assert comment in data
    trimesh = pytest.importorskip("trimesh")
    m = trimesh.load(out, process=False)
    colors = np.asarray(m.visual.vertex_colors)[:, :3]
    n0 = len(scene[0].vertices)
    assert np.all(colors[:n0] == (230, 51, 26)) and np.all(colors[n0:] == (26, 204, 76))
    np.testing.assert_allclose(m.vertices, _concat(scene)[0])


def test_vtp_reads_in_vtk(tmp_path: Path, scene) -> None:
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    (out,) = write_meshes(tmp_path / "scene.vtp", scene)
    reader = vtk.vtkXMLPolyDataReader()
    reader.SetFileName(str(out))
    reader.Update()
    assert reader.GetErrorCode() == 0
    pd = reader.GetOutput()
    ev, ef = _concat(scene)
    np.testing.assert_array_equal(vtk_to_numpy(pd.GetPoints().GetData()), ev)
    polys = pd.GetPolys()
    np.testing.assert_array_equal(vtk_to_numpy(polys.GetOffsetsArray()), np.arange(len(ef) + 1) * 3)
    np.testing.assert_array_equal(vtk_to_numpy(polys.GetConnectivityArray()).reshape(-1, 3), ef)
    seg = vtk_to_numpy(pd.GetCellData().GetArray("SegmentIndex"))
    np.testing.assert_array_equal(seg, np.repeat([0, 1], [len(m.faces) for m in scene]))
    names = pd.GetFieldData().GetAbstractArray("SegmentNames")
    assert [names.GetValue(i) for i in range(names.GetNumberOfValues())] == [m.name for m in scene]
    colors = vtk_to_numpy(pd.GetFieldData().GetArray("SegmentColors"))
    np.testing.assert_array_equal(colors, [m.color for m in scene])
    normals = vtk_to_numpy(pd.GetPointData().GetNormals())
    np.testing.assert_array_equal(normals[len(scene[0].vertices):], scene[1].normals)


@pytest.mark.parametrize("mode", ["ascii", "binary", "appended-zlib-base64", "appended-raw-uint64", "strips"])
def test_vtp_written_by_vtk_is_read(tmp_path: Path, mode: str) -> None:
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    src = vtk.vtkSphereSource()
    src.SetThetaResolution(10)
    src.SetPhiResolution(7)
    src.Update()
    pd = src.GetOutput()
    if mode == "strips":
        stripper = vtk.vtkStripper()
        stripper.SetInputData(pd)
        stripper.Update()
        pd = stripper.GetOutput()
        assert pd.GetNumberOfStrips() > 0
    w = vtk.vtkXMLPolyDataWriter()
    w.SetFileName(str(tmp_path / "s.vtp"))
    w.SetInputData(pd)
    if mode == "ascii":
        w.SetDataModeToAscii()
    elif mode == "binary":
        w.SetDataModeToBinary()
    elif mode == "appended-raw-uint64":
        w.SetEncodeAppendedData(0)
        w.SetHeaderTypeToUInt64()
    assert w.Write() == 1
    v, f = read_mesh(tmp_path / "s.vtp")
    np.testing.assert_allclose(v, vtk_to_numpy(pd.GetPoints().GetData()), rtol=0, atol=1e-6 if mode == "ascii" else 0)
    assert len(f) == src.GetOutput().GetNumberOfPolys()
    check_closed(v, f, f"VTK sphere ({mode})")
    assert signed_volume(v, f) > 0


def test_glb_scene_in_trimesh(tmp_path: Path, scene) -> None:
    trimesh = pytest.importorskip("trimesh")
    (out,) = write_meshes(tmp_path / "scene.glb", scene)
    magic, version, length = struct.unpack_from("<III", out.read_bytes())
    assert (magic, version, length) == (0x46546C67, 2, out.stat().st_size)
    loaded = trimesh.load(out, force="scene", process=False)
    assert sorted(loaded.graph.nodes_geometry) == sorted(m.name for m in scene)
    for m in scene:
        g = loaded.geometry[m.name]
        rgba = np.asarray(g.visual.material.baseColorFactor)
        np.testing.assert_allclose(rgba[:3] / 255.0, m.color, atol=0.5 / 255)
        expected = m.vertices.astype(np.float64) @ LPS_MM_TO_GLTF[:3, :3].T
        np.testing.assert_allclose(g.vertices, expected, rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(g.faces, m.faces)
        assert g.volume > 0        # a rotation: outward stays outward


def test_gltf_units_and_axes(tmp_path: Path) -> None:
    """LPS mm (10, 20, 30) -> glTF metres (+X left, +Y superior, +Z anterior)."""
    v, f = box_mesh((10, 20, 30), (11, 22, 33))
    (out,) = write_meshes(tmp_path / "one.gltf", [NamedMesh("b", (1, 0, 0), v, f)])
    doc = json.loads(out.read_text())
    assert doc["asset"]["version"] == "2.0"
    assert doc["nodes"][0]["name"] == "b" and doc["meshes"][0]["name"] == "b"
    assert doc["materials"][0]["pbrMetallicRoughness"]["baseColorFactor"] == [1.0, 0.0, 0.0, 1.0]
    acc = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    # bounding box of x_L in [10, 11], z_S in [30, 33], y_P in [20, 22] -> -y in [-22, -20]
    np.testing.assert_allclose(acc["min"], [0.010, 0.030, -0.022], rtol=1e-6)
    np.testing.assert_allclose(acc["max"], [0.011, 0.033, -0.020], rtol=1e-6)
    trimesh = pytest.importorskip("trimesh")
    loaded = trimesh.load(out, force="scene", process=False)
    g = loaded.geometry["b"]
    np.testing.assert_allclose(g.vertices, (v @ LPS_MM_TO_GLTF[:3, :3].T), rtol=1e-6)
    assert np.isclose(g.volume, 6e-9)  # 1 x 2 x 3 mm = 6e-9 m^3, positive


def test_gltf_empty_segment_keeps_node(tmp_path: Path, scene) -> None:
    empty = NamedMesh("Empty", (0, 0, 1), np.zeros((0, 3)), np.zeros((0, 3), np.int64))
    (out,) = write_meshes(tmp_path / "e.glb", scene + [empty])
    data = out.read_bytes()
    (jlen,) = struct.unpack_from("<I", data, 12)
    doc = json.loads(data[20:20 + jlen])
    assert [n["name"] for n in doc["nodes"]] == [m.name for m in scene] + ["Empty"]
    assert "mesh" not in doc["nodes"][2] and len(doc["meshes"]) == 2


@pytest.mark.parametrize("suffix", [".stl", ".obj", ".ply", ".vtp", ".glb"])
def test_per_segment_files(tmp_path: Path, scene, suffix: str) -> None:
    dup = NamedMesh("Left kidney", (0, 0, 1), *box_mesh())
    paths = write_meshes(tmp_path / f"model{suffix}", scene + [dup], per_segment=True)
    assert [p.name for p in paths] == [f"model_Left_kidney{suffix}", f"model_Liver_gall{suffix}",
                                       f"model_Left_kidney_2{suffix}"]
    assert not (tmp_path / f"model{suffix}").exists()
    if suffix == ".obj":
        assert (tmp_path / "model_Liver_gall.mtl").exists()
    if suffix in meshio.READ_SUFFIXES:
        for p, m in zip(paths, scene + [dup]):
            v, f = read_mesh(p)
            np.testing.assert_array_equal(v[f], m.vertices.astype(np.float32 if suffix == ".stl" else np.float64)
                                          [m.faces].astype(np.float64))


def test_empty_scene_and_empty_mesh(tmp_path: Path) -> None:
    empty = NamedMesh("nothing", (0.5, 0.5, 0.5), np.zeros((0, 3)), np.zeros((0, 3), np.int64))
    for suffix in (".stl", ".obj", ".ply", ".vtp"):
        (out,) = write_meshes(tmp_path / f"e{suffix}", [empty])
        v, f = read_mesh(out)
        assert f.shape == (0, 3)


# --------------------------------------------------------------------------------------
# errors and atomicity
# --------------------------------------------------------------------------------------

def test_unknown_suffix(tmp_path: Path, scene) -> None:
    with pytest.raises(InvalidInputError, match="unknown mesh file type"):
        write_meshes(tmp_path / "scene.fbx", scene)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "x.off").write_text("OFF\n")
    with pytest.raises(InvalidInputError):
        read_mesh(tmp_path / "x.off")


def test_missing_folder(tmp_path: Path, scene) -> None:
    with pytest.raises(FileFormatError, match="does not exist"):
        write_meshes(tmp_path / "no" / "scene.stl", scene)


def test_bad_mesh_input(tmp_path: Path) -> None:
    v, f = box_mesh()
    with pytest.raises(InvalidInputError, match="colour"):
        write_meshes(tmp_path / "a.stl", [NamedMesh("a", (1.5, 0, 0), v, f)])
    with pytest.raises(InvalidInputError, match="face indices"):
        write_meshes(tmp_path / "a.stl", [NamedMesh("a", (1, 0, 0), v, f + 1)])
    with pytest.raises(InvalidInputError, match="NaN"):
        write_meshes(tmp_path / "a.stl", [NamedMesh("a", (1, 0, 0), v * np.nan, f)])
    with pytest.raises(InvalidInputError, match="normals"):
        write_meshes(tmp_path / "a.vtp", [NamedMesh("a", (1, 0, 0), v, f, np.zeros((3, 3)))])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".vtp", ".obj"])
def test_failed_write_keeps_previous_files(tmp_path: Path, scene, suffix: str, monkeypatch) -> None:
    target = tmp_path / f"scene{suffix}"
    write_meshes(target, scene)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = meshio._write_chunks
    calls = []

    def failing(tmp: Path, chunks) -> None:
        calls.append(tmp)
        if len(calls) == 1 and suffix == ".obj":
            real(tmp, chunks)                    # the .mtl is written completely...
            return
        with open(tmp, "wb") as fh:              # ...the mesh file only half
            fh.write(chunks[0][: len(chunks[0]) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(meshio, "_write_chunks", failing)
    changed = [NamedMesh("other", (0, 0, 1), *box_mesh((5, 5, 5), (6, 6, 6)))]
    with pytest.raises(OSError, match="disk full"):
        write_meshes(target, changed)
    assert calls, "the writer hook was not used"
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before                       # previous files intact, no temporaries left
    monkeypatch.undo()
    assert [m.name for m in read_meshes(target)] == [m.name for m in scene]


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="not found"):
        read_mesh(tmp_path / "nope.stl")
    (tmp_path / "empty.ply").write_bytes(b"")
    with pytest.raises(FileFormatError, match="empty"):
        read_mesh(tmp_path / "empty.ply")
    assert issubclass(FileFormatError, OSError)


@pytest.mark.parametrize("suffix", [".stl", ".ply", ".vtp"])
def test_truncated_files(tmp_path: Path, scene, suffix: str) -> None:
    (out,) = write_meshes(tmp_path / f"scene{suffix}", scene)
    data = out.read_bytes()
    for cut in (len(data) - 7, len(data) // 2, 90):
        out.write_bytes(data[:cut])
        with pytest.raises(FileFormatError):
            read_mesh(out)


def test_corrupt_files(tmp_path: Path) -> None:
    p = tmp_path / "bad.vtp"
    p.write_text("<VTKFile type='PolyData'><PolyData><Piece NumberOfPoints='3'")
    with pytest.raises(FileFormatError):
        read_mesh(p)
    p = tmp_path / "img.vtp"
    p.write_text('<?xml version="1.0"?><VTKFile type="ImageData"><ImageData/></VTKFile>')
    with pytest.raises(FileFormatError, match="PolyData"):
        read_mesh(p)
    p = tmp_path / "bad.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 7\n")
    with pytest.raises(FileFormatError, match="out of range"):
        read_mesh(p)
    p.write_text("v 0 zero 0\n")
    with pytest.raises(FileFormatError):
        read_mesh(p)
    p = tmp_path / "bad.ply"
    p.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty quad x\nend_header\n")
    with pytest.raises(FileFormatError):
        read_mesh(p)
    p = tmp_path / "bad.stl"
    p.write_bytes(b"\x00" * 40)
    with pytest.raises(FileFormatError):
        read_mesh(p)


# --------------------------------------------------------------------------------------
# closedness and repair
# --------------------------------------------------------------------------------------

def test_check_closed_accepts_closed() -> None:
    check_closed(*box_mesh(), "box")
    check_closed(*octa_sphere(), "sphere")


def test_check_closed_rejects_hole() -> None:
    v, f = box_mesh()
    with pytest.raises(InvalidInputError, match=r"box is not a closed.*3 edges belong to only one face"):
        check_closed(v, f[:-1], "box")


def test_check_closed_rejects_flipped_face() -> None:
    v, f = box_mesh()
    f = f.copy()
    f[3] = f[3, ::-1]
    with pytest.raises(InvalidInputError, match="3 edges are traversed in the same direction"):
        check_closed(v, f, "box")


def test_check_closed_rejects_non_manifold() -> None:
    v, f = box_mesh()
    v2 = np.vstack([v, [[0.5, -1.0, 0.5]]])
    f2 = np.vstack([f, [[0, 1, 8]]])   # a fin on edge (0, 1)
    with pytest.raises(InvalidInputError, match="more than two faces"):
        check_closed(v2, f2, "box")


def test_repair_on_read(tmp_path: Path) -> None:
    pytest.importorskip("trimesh")
    v, f = octa_sphere(5.0, 2)
    f = f.copy()
    f[::7] = f[::7, ::-1]                       # break the winding of some faces
    # split the vertices of face 0 off (duplicates at the same place)
    extra = v[f[0]]
    f[0] = len(v) + np.arange(3)
    v = np.vstack([v, extra])
    p = tmp_path / "broken.ply"
    write_meshes(p, [NamedMesh("broken", (1, 1, 1), v, f)])
    rv, rf = read_mesh(p)
    with pytest.raises(InvalidInputError):
        check_closed(rv, rf, "as read")
    rv, rf = read_mesh(p, repair=True)
    check_closed(rv, rf, "repaired")
    assert len(rv) == len(v) - 3 and len(rf) == len(f)
    assert signed_volume(rv, rf) > 0
