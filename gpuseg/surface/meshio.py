"""Write and read triangle meshes: STL, OBJ (+MTL), PLY, VTP and glTF 2.0 (GLB/GLTF).

Every writer here is our own small numpy writer (no third-party exporter rewrites or
re-orders the data), so vertex and face arrays come back exactly as written, and segment
names and colours survive wherever the format can carry them. trimesh is used only for
``read_mesh(..., repair=True)``.

Coordinates
-----------
Meshes are given in LPS millimetres (the world frame of :mod:`gpuseg.geometry`). STL,
OBJ, PLY and VTP files keep LPS millimetres unchanged (these formats carry no unit or
axis convention; note that Slicer saves models in LPS too, and reads them back as LPS
unless the file header says RAS).

glTF 2.0 *defines* its frame: right-handed, +Y up, +Z forward (the front of an asset
faces +Z), metres. GLB/GLTF files therefore get vertices and normals converted with
:data:`LPS_MM_TO_GLTF`::

    x_gltf =  0.001 * x_L      (+X = patient left)
    y_gltf =  0.001 * z_S      (+Y = superior, "up")
    z_gltf = -0.001 * y_P      (+Z = anterior, the patient faces the viewer)

This is a proper rotation (determinant +1) times a scale, so triangle winding and
outward normals keep their meaning. The conversion is baked into the vertex data (no
root transform node), and ``asset.extras.gpuseg`` in the JSON records it.

Several segments in one file
----------------------------
* ``.stl``: the triangles of all segments are concatenated; names and colours are lost
  (binary STL has no place for them). Vertices are stored as float32, per triangle.
* ``.obj``: one ``o <name>`` group per segment, each with ``usemtl <material>``; the
  materials (``Kd`` = segment colour) go to ``<stem>.mtl`` next to the ``.obj``.
* ``.ply``: one merged mesh (binary little endian) with per-vertex ``red green blue``
  colours, a per-face ``segment`` index, and one header comment per segment
  (``comment gpuseg segment <index> <r> <g> <b> <name>``) that keeps names and exact colours.
* ``.vtp``: one merged polydata (VTK XML, appended raw binary) with point normals, an
  ``Int32`` cell-data array ``SegmentIndex`` and field-data arrays ``SegmentNames``
  (string) and ``SegmentColors`` (float64 RGB).
* ``.glb`` / ``.gltf``: one node + mesh + material per segment, all named after the
  segment; ``baseColorFactor`` is the segment colour (alpha 1). ``.gltf`` embeds the
  binary buffer as a base64 data URI (one file).

Writes are atomic (:func:`gpuseg.io._atomic.atomic_path`): every file of one call is
written to a temporary file first and all are renamed into place only when every one
was written, so a failure leaves previous files untouched.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
import struct
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import numpy as np

from ..errors import BackendUnavailableError, FileFormatError, InvalidInputError
from ..io._atomic import atomic_path

__all__ = [
    "MeshLike",
    "NamedMesh",
    "LPS_MM_TO_GLTF",
    "WRITE_SUFFIXES",
    "READ_SUFFIXES",
    "write_meshes",
    "read_mesh",
    "read_meshes",
    "check_closed",
    "repair_mesh",
    "safe_name",
]

#: 4x4 matrix from LPS millimetres to glTF (metres, +X left, +Y superior, +Z anterior).
LPS_MM_TO_GLTF = np.array([[1e-3, 0.0, 0.0, 0.0],
                           [0.0, 0.0, 1e-3, 0.0],
                           [0.0, -1e-3, 0.0, 0.0],
                           [0.0, 0.0, 0.0, 1.0]])

WRITE_SUFFIXES = (".stl", ".obj", ".ply", ".vtp", ".glb", ".gltf")
READ_SUFFIXES = (".stl", ".obj", ".ply", ".vtp")

_DEFAULT_COLOR = (0.5, 0.5, 0.5)


class MeshLike(Protocol):
    """What :func:`write_meshes` needs of each mesh (a segment's closed surface)."""

    name: str
    color: tuple[float, float, float]
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None


@dataclass
class NamedMesh:
    """A named, coloured triangle mesh in LPS millimetres.

    Satisfies :class:`MeshLike`; :func:`read_meshes` returns these.
    """

    name: str
    color: tuple[float, float, float]
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None = None


# -------------------------------------------------------------------------------------
# validation and small helpers
# -------------------------------------------------------------------------------------

def _check_arrays(vertices, faces, what: str) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(vertices)
    f = np.asarray(faces)
    if v.size == 0:
        v = v.reshape(0, 3)
    if f.size == 0:
        f = f.reshape(0, 3)
    if v.ndim != 2 or v.shape[1] != 3:
        raise InvalidInputError(f"{what}: vertices must have shape (n, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3:
        raise InvalidInputError(f"{what}: faces must have shape (m, 3), got {f.shape}")
    if not np.issubdtype(v.dtype, np.number) or np.issubdtype(v.dtype, np.complexfloating):
        raise InvalidInputError(f"{what}: vertices must be real numbers, got dtype {v.dtype}")
    if f.size and not np.issubdtype(f.dtype, np.integer):
        raise InvalidInputError(f"{what}: faces must be integers, got dtype {f.dtype}")
    if v.dtype != np.float32:
        v = v.astype(np.float64, copy=False)
    if not np.all(np.isfinite(v)):
        raise InvalidInputError(f"{what}: vertices contain NaN or infinity")
    f = f.astype(np.int64, copy=False)
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise InvalidInputError(f"{what}: face indices must lie in [0, {len(v)}), "
                                f"got [{f.min()}, {f.max()}]")
    return v, f


def _check_color(color, what: str) -> tuple[float, float, float]:
    try:
        c = np.asarray(color, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what}: colour must be 3 numbers in [0, 1], got {color!r}") from exc
    if c.shape != (3,) or not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c > 1):
        raise InvalidInputError(f"{what}: colour must be 3 numbers in [0, 1], got {color!r}")
    return (float(c[0]), float(c[1]), float(c[2]))


def _face_normals(tri: np.ndarray) -> np.ndarray:
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(fn, axis=1)
    ok = norm > 0
    fn[ok] /= norm[ok, None]
    fn[~ok] = 0.0
    return fn


def safe_name(name: str, fallback: str = "segment") -> str:
    """``name`` reduced to ``[A-Za-z0-9._-]`` (runs of anything else become ``_``)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    return s or fallback


@dataclass
class _Seg:
    name: str
    color: tuple[float, float, float]
    vertices: np.ndarray   # float32 or float64
    faces: np.ndarray      # int64
    normals: np.ndarray    # float32 (computed when the mesh had none)


def _normalize(meshes: Sequence[MeshLike]) -> list[_Seg]:
    if isinstance(meshes, (str, bytes)) or not isinstance(meshes, Iterable):
        raise InvalidInputError("meshes must be a list of mesh objects")
    out = []
    for idx, m in enumerate(meshes):
        what = f"mesh {idx}"
        for attr in ("name", "color", "vertices", "faces"):
            if not hasattr(m, attr):
                raise InvalidInputError(f"{what} has no attribute {attr!r}")
        name = str(m.name)
        what = f"mesh {idx} ({name!r})"
        v, f = _check_arrays(m.vertices, m.faces, what)
        color = _check_color(m.color, what)
        nrm = getattr(m, "normals", None)
        if nrm is None:
            from .postprocess import vertex_normals

            n = vertex_normals(v, f)
        else:
            n = np.asarray(nrm, dtype=np.float32)
            if n.shape != v.shape:
                raise InvalidInputError(f"{what}: normals must have the shape of vertices {v.shape}, got {n.shape}")
            if not np.all(np.isfinite(n)):
                raise InvalidInputError(f"{what}: normals contain NaN or infinity")
        out.append(_Seg(name, color, v, f, n))
    return out


def _merged(segs: list[_Seg]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All segments as one mesh: vertices, faces, normals, per-vertex and per-face segment index."""
    dtype = np.float32 if segs and all(s.vertices.dtype == np.float32 for s in segs) else np.float64
    vs, fs, ns, vseg, fseg = [], [], [], [], []
    off = 0
    for idx, s in enumerate(segs):
        vs.append(s.vertices.astype(dtype, copy=False))
        fs.append(s.faces + off)
        ns.append(s.normals)
        vseg.append(np.full(len(s.vertices), idx, np.int32))
        fseg.append(np.full(len(s.faces), idx, np.int32))
        off += len(s.vertices)
    if not segs:
        return (np.zeros((0, 3), dtype), np.zeros((0, 3), np.int64), np.zeros((0, 3), np.float32),
                np.zeros(0, np.int32), np.zeros(0, np.int32))
    return (np.concatenate(vs), np.concatenate(fs), np.concatenate(ns), np.concatenate(vseg),
            np.concatenate(fseg))


def _one_line(text: str) -> str:
    return re.sub(r"[\r\n]+", " ", text)


def _fmt_float(dtype) -> str:
    # enough digits for an exact round trip of the stored precision
    return "%.9g" if dtype == np.float32 else "%.17g"


# -------------------------------------------------------------------------------------
# encoders: each returns bytes
# -------------------------------------------------------------------------------------

def _stl_bytes(segs: list[_Seg]) -> bytes:
    v, f, _, _, _ = _merged(segs)
    tri = v[f].astype(np.float64)
    rec = np.zeros(len(f), dtype=np.dtype([("n", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")]))
    rec["n"] = _face_normals(tri)
    rec["v"] = tri
    names = ", ".join(s.name for s in segs)
    header = _one_line(f"gpuseg binary STL, LPS mm: {names}").encode("utf-8", "replace")[:80]
    header = header.ljust(80, b" ")
    return header + struct.pack("<I", len(f)) + rec.tobytes()


def _obj_bytes(segs: list[_Seg], mtl_name: str) -> tuple[bytes, bytes]:
    mats = _unique_names([safe_name(s.name, f"segment{i}") for i, s in enumerate(segs)])
    lines = ["# gpuseg OBJ export; coordinates in LPS millimetres", f"mtllib {mtl_name}"]
    mtl = ["# gpuseg materials: Kd = segment colour"]
    out = ["\n".join(lines) + "\n"]
    off = 0
    for s, mat in zip(segs, mats):
        r, g, b = s.color
        mtl.append(f"newmtl {mat}\nKa 0 0 0\nKd {r:.9g} {g:.9g} {b:.9g}\nKs 0 0 0\nd 1\nillum 1")
        out.append(f"o {_one_line(s.name)}\nusemtl {mat}\n")
        fmt = _fmt_float(s.vertices.dtype)
        if len(s.vertices):
            out.append(_savetxt(s.vertices, f"v {fmt} {fmt} {fmt}"))
            out.append(_savetxt(s.normals, "vn %.7g %.7g %.7g"))
        if len(s.faces):
            fi = s.faces + off + 1
            out.append(_savetxt(np.repeat(fi, 2, axis=1), "f %d//%d %d//%d %d//%d"))
        off += len(s.vertices)
    return "".join(out).encode("utf-8"), ("\n".join(mtl) + "\n").encode("utf-8")


def _savetxt(arr: np.ndarray, fmt: str) -> str:
    import io

    buf = io.StringIO()
    np.savetxt(buf, arr, fmt=fmt)
    return buf.getvalue()


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        base, k = n, 1
        while n.lower() in seen:
            k += 1
            n = f"{base}_{k}"
        seen[n.lower()] = 1
        out.append(n)
    return out


def _ply_bytes(segs: list[_Seg]) -> bytes:
    v, f, n, vseg, fseg = _merged(segs)
    ftype = "float" if v.dtype == np.float32 else "double"
    colors = np.array([s.color for s in segs], dtype=np.float64).reshape(-1, 3)
    rgb = np.rint(colors * 255).astype(np.uint8)
    head = ["ply", "format binary_little_endian 1.0",
            "comment gpuseg mesh, coordinates in LPS millimetres"]
    for i, s in enumerate(segs):
        r, g, b = s.color
        head.append(f"comment gpuseg segment {i} {r:.17g} {g:.17g} {b:.17g} {_one_line(s.name)}")
    head += [f"element vertex {len(v)}", f"property {ftype} x", f"property {ftype} y", f"property {ftype} z",
             "property float nx", "property float ny", "property float nz",
             "property uchar red", "property uchar green", "property uchar blue",
             f"element face {len(f)}", "property list uchar int vertex_indices", "property int segment",
             "end_header"]
    vdt = np.dtype([("p", "<f4" if ftype == "float" else "<f8", (3,)), ("n", "<f4", (3,)), ("c", "u1", (3,))])
    vrec = np.zeros(len(v), vdt)
    vrec["p"] = v
    vrec["n"] = n
    if len(v):
        vrec["c"] = rgb[vseg]
    fdt = np.dtype([("cnt", "u1"), ("idx", "<i4", (3,)), ("seg", "<i4")])
    frec = np.zeros(len(f), fdt)
    frec["cnt"] = 3
    if len(f) and f.max() > np.iinfo(np.int32).max:
        raise InvalidInputError("PLY: too many vertices for 32-bit indices")
    frec["idx"] = f
    frec["seg"] = fseg
    return ("\n".join(head) + "\n").encode("utf-8") + vrec.tobytes() + frec.tobytes()


_VTK_TYPES = {
    np.dtype("int8"): "Int8", np.dtype("uint8"): "UInt8", np.dtype("int16"): "Int16",
    np.dtype("uint16"): "UInt16", np.dtype("int32"): "Int32", np.dtype("uint32"): "UInt32",
    np.dtype("int64"): "Int64", np.dtype("uint64"): "UInt64", np.dtype("float32"): "Float32",
    np.dtype("float64"): "Float64",
}
_VTK_DTYPES = {name: dt for dt, name in _VTK_TYPES.items()}


def _vtp_bytes(segs: list[_Seg]) -> bytes:
    v, f, n, _, fseg = _merged(segs)
    blobs: list[bytes] = []
    offset = 0

    def appended(data: bytes) -> int:
        nonlocal offset
        start = offset
        blob = struct.pack("<Q", len(data)) + data
        blobs.append(blob)
        offset += len(blob)
        return start

    def data_array(tag: str, name: str, arr: np.ndarray, ncomp: int = 1, extra: str = "") -> str:
        arr = np.ascontiguousarray(arr)
        le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        off = appended(le.tobytes())
        comp = f' NumberOfComponents="{ncomp}"' if ncomp != 1 else ""
        return (f'<{tag} type="{_VTK_TYPES[arr.dtype]}" Name="{name}"{comp}{extra} '
                f'format="appended" offset="{off}"/>')

    names_blob = b"".join(s.name.encode("utf-8") + b"\0" for s in segs)
    colors = np.array([s.color for s in segs], dtype=np.float64).reshape(-1, 3)
    parts = ['<?xml version="1.0"?>',
             '<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">',
             "  <PolyData>", "    <FieldData>"]
    off = appended(names_blob)
    parts.append(f'      <Array type="String" Name="SegmentNames" NumberOfTuples="{len(segs)}" '
                 f'format="appended" offset="{off}"/>')
    parts.append("      " + data_array("Array", "SegmentColors", colors, 3, f' NumberOfTuples="{len(segs)}"'))
    parts += ["    </FieldData>",
              f'    <Piece NumberOfPoints="{len(v)}" NumberOfVerts="0" NumberOfLines="0" '
              f'NumberOfStrips="0" NumberOfPolys="{len(f)}">',
              '      <PointData Normals="Normals">',
              "        " + data_array("DataArray", "Normals", n.astype(np.float32), 3),
              "      </PointData>",
              '      <CellData Scalars="SegmentIndex">',
              "        " + data_array("DataArray", "SegmentIndex", fseg.astype(np.int32)),
              "      </CellData>",
              "      <Points>",
              "        " + data_array("DataArray", "Points", v, 3),
              "      </Points>",
              "      <Polys>",
              "        " + data_array("DataArray", "connectivity", f.reshape(-1).astype(np.int64)),
              "        " + data_array("DataArray", "offsets", np.arange(1, len(f) + 1, dtype=np.int64) * 3),
              "      </Polys>",
              "    </Piece>",
              "  </PolyData>",
              '  <AppendedData encoding="raw">',
              "   _"]
    head = "\n".join(parts).encode("utf-8")
    tail = b"\n  </AppendedData>\n</VTKFile>\n"
    return head + b"".join(blobs) + tail


def _gltf_parts(segs: list[_Seg]) -> tuple[dict, bytes]:
    rot = LPS_MM_TO_GLTF[:3, :3]
    unit_rot = rot / 1e-3
    bin_parts: list[bytes] = []
    length = 0
    buffer_views: list[dict] = []
    accessors: list[dict] = []
    meshes: list[dict] = []
    nodes: list[dict] = []
    materials: list[dict] = []

    def add_view(data: bytes, target: int) -> int:
        nonlocal length
        pad = (-length) % 4
        if pad:
            bin_parts.append(b"\0" * pad)
            length += pad
        buffer_views.append({"buffer": 0, "byteOffset": length, "byteLength": len(data), "target": target})
        bin_parts.append(data)
        length += len(data)
        return len(buffer_views) - 1

    for idx, s in enumerate(segs):
        r, g, b = s.color
        materials.append({"name": s.name, "doubleSided": False,
                          "pbrMetallicRoughness": {"baseColorFactor": [r, g, b, 1.0],
                                                   "metallicFactor": 0.0, "roughnessFactor": 0.5}})
        node: dict = {"name": s.name, "extras": {"segment_index": idx}}
        if len(s.faces):
            if len(s.vertices) > np.iinfo(np.uint32).max:
                raise InvalidInputError("glTF: too many vertices for 32-bit indices")
            pos = (s.vertices.astype(np.float64) @ rot.T).astype("<f4")
            nrm = (s.normals.astype(np.float64) @ unit_rot.T)
            nl = np.linalg.norm(nrm, axis=1)
            bad = ~(nl > 0)
            nl[bad] = 1.0
            nrm = nrm / nl[:, None]
            nrm[bad] = (0.0, 1.0, 0.0)
            nrm = nrm.astype("<f4")
            idx_arr = s.faces.reshape(-1).astype("<u4")
            bv_pos = add_view(pos.tobytes(), 34962)
            bv_nrm = add_view(nrm.tobytes(), 34962)
            bv_idx = add_view(idx_arr.tobytes(), 34963)
            accessors.append({"bufferView": bv_pos, "componentType": 5126, "count": len(pos), "type": "VEC3",
                              "min": pos.min(axis=0).astype(float).tolist(),
                              "max": pos.max(axis=0).astype(float).tolist()})
            a_pos = len(accessors) - 1
            accessors.append({"bufferView": bv_nrm, "componentType": 5126, "count": len(nrm), "type": "VEC3"})
            a_nrm = len(accessors) - 1
            accessors.append({"bufferView": bv_idx, "componentType": 5125, "count": len(idx_arr),
                              "type": "SCALAR"})
            a_idx = len(accessors) - 1
            meshes.append({"name": s.name, "primitives": [{"attributes": {"POSITION": a_pos, "NORMAL": a_nrm},
                                                           "indices": a_idx, "material": idx, "mode": 4}]})
            node["mesh"] = len(meshes) - 1
        nodes.append(node)
    pad = (-length) % 4
    if pad:
        bin_parts.append(b"\0" * pad)
        length += pad
    doc: dict = {
        "asset": {"version": "2.0", "generator": "gpuseg",
                  "extras": {"gpuseg": {"source_frame": "LPS millimetres",
                                        "conversion": "x=0.001*L, y=0.001*S, z=-0.001*P (metres, +Y up, +Z anterior)",
                                        "lps_mm_to_gltf": LPS_MM_TO_GLTF.tolist()}}},
        "scene": 0,
        "scenes": [{"name": "gpuseg", "nodes": list(range(len(nodes)))}],
        "nodes": nodes,
    }
    if materials:
        doc["materials"] = materials
    if meshes:
        doc["meshes"] = meshes
        doc["accessors"] = accessors
        doc["bufferViews"] = buffer_views
        doc["buffers"] = [{"byteLength": length}]
    return doc, b"".join(bin_parts)


def _glb_bytes(segs: list[_Seg]) -> bytes:
    doc, binary = _gltf_parts(segs)
    js = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    js += b" " * ((-len(js)) % 4)
    chunks = struct.pack("<II", len(js), 0x4E4F534A) + js
    if binary:
        chunks += struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks


def _gltf_json_bytes(segs: list[_Seg]) -> bytes:
    doc, binary = _gltf_parts(segs)
    if binary:
        doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(binary).decode("ascii")
    return json.dumps(doc, indent=1).encode("utf-8")


# -------------------------------------------------------------------------------------
# writing
# -------------------------------------------------------------------------------------

def _write_chunks(tmp: Path, chunks: Sequence[bytes]) -> None:
    """Write ``chunks`` to ``tmp`` one after the other (a hook for tests)."""
    with open(tmp, "wb") as fh:
        for c in chunks:
            fh.write(c)


def _encode(segs: list[_Seg], path: Path) -> list[tuple[Path, list[bytes]]]:
    """The files (path, chunks) that represent ``segs`` at ``path``."""
    suffix = path.suffix.lower()
    if suffix == ".stl":
        return [(path, [_stl_bytes(segs)])]
    if suffix == ".obj":
        mtl_path = path.with_suffix(".mtl")
        obj, mtl = _obj_bytes(segs, mtl_path.name)
        return [(mtl_path, [mtl]), (path, [obj])]
    if suffix == ".ply":
        return [(path, [_ply_bytes(segs)])]
    if suffix == ".vtp":
        data = _vtp_bytes(segs)
        # two chunks, so that a failure between them is a real "mid-write" failure
        return [(path, [data[: len(data) // 2], data[len(data) // 2:]])]
    if suffix == ".glb":
        return [(path, [_glb_bytes(segs)])]
    if suffix == ".gltf":
        return [(path, [_gltf_json_bytes(segs)])]
    raise InvalidInputError(f"unknown mesh file type {path.suffix!r} ({path.name}); "
                            f"use one of {', '.join(WRITE_SUFFIXES)}")


def write_meshes(path: str | Path, meshes: Sequence[MeshLike], *, per_segment: bool = False) -> list[Path]:
    """Write segment surfaces to a mesh file (format from the suffix).

    Parameters
    ----------
    path : str or Path
        Target file; its suffix (``.stl``, ``.obj``, ``.ply``, ``.vtp``, ``.glb``,
        ``.gltf``, case-insensitive) picks the format. See the module docstring for
        how each format stores several segments, names and colours, and for the glTF
        unit/axis conversion.
    meshes : sequence of MeshLike
        Objects with ``name``, ``color`` (RGB in 0..1), ``vertices`` ((n, 3) LPS mm),
        ``faces`` ((m, 3) int, counter-clockwise seen from outside) and ``normals``
        ((n, 3) or None: area-weighted normals are computed where a format stores them).
    per_segment : bool
        Write one file per segment, ``<stem>_<safe name><suffix>`` (names reduced to
        ``[A-Za-z0-9._-]``; duplicates get ``_2``, ``_3``...). Default: one file.

    Returns
    -------
    list of Path
        The mesh files written (one, or one per segment). An OBJ's ``.mtl`` file lies
        beside it with the same stem and is not listed.

    Raises
    ------
    InvalidInputError
        Unknown suffix, or a mesh with bad arrays/colour.
    FileFormatError
        The target folder does not exist.
    """
    target = Path(path)
    if target.suffix.lower() not in WRITE_SUFFIXES:
        raise InvalidInputError(f"unknown mesh file type {target.suffix!r} ({target.name}); "
                                f"use one of {', '.join(WRITE_SUFFIXES)}")
    segs = _normalize(meshes)
    if per_segment:
        stems = _unique_names([safe_name(s.name, f"segment{i}") for i, s in enumerate(segs)])
        jobs = [([s], target.with_name(f"{target.stem}_{st}{target.suffix}")) for s, st in zip(segs, stems)]
    else:
        jobs = [(segs, target)]
    files: list[tuple[Path, list[bytes]]] = []
    for group, p in jobs:
        files.extend(_encode(group, p))
    # all temporaries are written first; the renames happen only if every write succeeded
    with contextlib.ExitStack() as stack:
        for p, chunks in files:
            tmp = stack.enter_context(atomic_path(p))
            _write_chunks(tmp, chunks)
    return [p for _, p in jobs]


# -------------------------------------------------------------------------------------
# reading
# -------------------------------------------------------------------------------------

@dataclass
class _Raw:
    """What a reader found: one vertex/face array and the named face groups in it."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None
    segments: list[tuple[str, tuple[float, float, float], np.ndarray]]  # name, colour, face indices


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise FileFormatError(f"mesh file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise FileFormatError(f"{path} is a folder, not a mesh file") from exc
    except OSError as exc:
        raise FileFormatError(f"cannot read {path}: {exc}") from exc


def _merge_exact(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge bitwise-equal vertices, keeping first-appearance order."""
    if len(v) == 0:
        return v, f
    _, first, inverse = np.unique(v, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first)             # unique rows in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return v[first[order]], rank[inverse][f]


def _read_stl(path: Path, data: bytes) -> _Raw:
    if len(data) >= 84:
        (n,) = struct.unpack_from("<I", data, 80)
        if len(data) == 84 + 50 * n:
            rec = np.frombuffer(data, dtype=np.dtype([("n", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")]),
                                count=n, offset=84)
            tri = rec["v"].astype(np.float64).reshape(-1, 3)
            if not np.all(np.isfinite(tri)):
                raise FileFormatError(f"{path}: STL has NaN or infinite coordinates")
            v, f = _merge_exact(tri, np.arange(len(tri), dtype=np.int64).reshape(-1, 3))
            return _Raw(v, f, None, [])
    head = data[:512].lstrip().lower()
    if head.startswith(b"solid"):
        text = data.decode("utf-8", "replace")
        if "endsolid" not in text:
            raise FileFormatError(f"{path}: ASCII STL is truncated (no 'endsolid')")
        nums = re.findall(r"vertex\s+(\S+)\s+(\S+)\s+(\S+)", text)
        try:
            tri = np.array(nums, dtype=np.float64).reshape(-1, 3)
        except ValueError as exc:
            raise FileFormatError(f"{path}: ASCII STL has a bad vertex line") from exc
        if len(tri) % 3 or text.count("facet normal") * 3 != len(tri) or not np.all(np.isfinite(tri)):
            raise FileFormatError(f"{path}: ASCII STL facets are malformed")
        v, f = _merge_exact(tri, np.arange(len(tri), dtype=np.int64).reshape(-1, 3))
        return _Raw(v, f, None, [])
    if len(data) >= 84:
        (n,) = struct.unpack_from("<I", data, 80)
        raise FileFormatError(f"{path}: binary STL says {n} triangles ({84 + 50 * n} bytes) "
                              f"but the file has {len(data)} bytes (truncated or corrupt)")
    raise FileFormatError(f"{path}: not an STL file (too short)")


def _read_mtl(path: Path) -> dict[str, tuple[float, float, float]]:
    out: dict[str, tuple[float, float, float]] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    cur = None
    for line in text.splitlines():
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "newmtl" and len(tok) > 1:
            cur = line.strip()[len("newmtl"):].strip()
        elif tok[0] == "Kd" and cur is not None and len(tok) >= 4:
            with contextlib.suppress(ValueError):
                out[cur] = (float(tok[1]), float(tok[2]), float(tok[3]))
    return out


def _read_obj(path: Path, data: bytes) -> _Raw:
    text = data.decode("utf-8", "replace")
    verts: list[tuple[float, float, float]] = []
    groups: list[list] = []   # [name, material, faces]
    mtllib: dict[str, tuple[float, float, float]] = {}
    material = None

    try:
        for lineno, line in enumerate(text.splitlines(), 1):
            tok = line.split()
            if not tok or tok[0].startswith("#"):
                continue
            key = tok[0]
            if key == "v":
                verts.append((float(tok[1]), float(tok[2]), float(tok[3])))
            elif key == "f":
                idx = []
                nv = len(verts)
                for t in tok[1:]:
                    k = int(t.split("/")[0])
                    k = k - 1 if k > 0 else nv + k
                    if not 0 <= k < nv:
                        raise FileFormatError(f"{path}:{lineno}: face index {t} out of range")
                    idx.append(k)
                if len(idx) < 3:
                    raise FileFormatError(f"{path}:{lineno}: face with fewer than 3 vertices")
                if not groups:
                    groups.append([path.stem, material, []])
                groups[-1][2].extend((idx[0], idx[a], idx[a + 1]) for a in range(1, len(idx) - 1))
            elif key in ("o", "g"):
                name = line.strip()[1:].strip() or path.stem
                if key == "g" and groups and not groups[-1][2]:
                    groups[-1][0] = name          # "o x" followed by "g x": one group
                else:
                    groups.append([name, material, []])
            elif key == "usemtl":
                material = line.strip()[len("usemtl"):].strip()
                if groups and not groups[-1][2]:
                    groups[-1][1] = material
                elif groups:                       # a new material inside a group: split it
                    groups.append([groups[-1][0], material, []])
            elif key == "mtllib":
                mtllib.update(_read_mtl(path.parent / line.strip()[len("mtllib"):].strip()))
    except (ValueError, IndexError) as exc:
        raise FileFormatError(f"{path}: malformed OBJ line ({exc})") from exc
    if not verts and not groups:
        raise FileFormatError(f"{path}: no OBJ vertices, faces or objects found")
    v = np.array(verts, dtype=np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(v)):
        raise FileFormatError(f"{path}: OBJ has NaN or infinite coordinates")
    faces = [np.array(g[2], dtype=np.int64).reshape(-1, 3) for g in groups]
    f = np.concatenate(faces) if faces else np.zeros((0, 3), np.int64)
    segs = []
    start = 0
    for (name, mat, _), fg in zip(groups, faces):
        color = mtllib.get(mat, _DEFAULT_COLOR) if mat else _DEFAULT_COLOR
        segs.append((name, color, np.arange(start, start + len(fg))))
        start += len(fg)
    return _Raw(v, f, None, segs)


_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def _read_ply(path: Path, data: bytes) -> _Raw:
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise FileFormatError(f"{path}: not a PLY file (no 'ply' magic or 'end_header')")
    nl = data.find(b"\n", end)
    if nl < 0:
        raise FileFormatError(f"{path}: PLY header is truncated")
    header = data[:end].decode("ascii", "replace").splitlines()
    body = data[nl + 1:]
    fmt = None
    elements: list[list] = []   # [name, count, [(prop, type) or (prop, (cnt_type, item_type))]]
    seg_info: dict[int, tuple[str, tuple[float, float, float]]] = {}
    try:
        for line in header[1:]:
            tok = line.split()
            if not tok:
                continue
            if tok[0] == "format":
                fmt = tok[1]
            elif tok[0] == "comment":
                m = re.match(r"comment gpuseg segment (\d+) (\S+) (\S+) (\S+) ?(.*)$", line.strip())
                if m:
                    seg_info[int(m.group(1))] = (m.group(5), (float(m.group(2)), float(m.group(3)),
                                                              float(m.group(4))))
            elif tok[0] == "element":
                elements.append([tok[1], int(tok[2]), []])
            elif tok[0] == "property":
                if tok[1] == "list":
                    elements[-1][2].append((tok[4], (_PLY_TYPES[tok[2]], _PLY_TYPES[tok[3]])))
                else:
                    elements[-1][2].append((tok[2], _PLY_TYPES[tok[1]]))
    except (KeyError, IndexError, ValueError) as exc:
        raise FileFormatError(f"{path}: malformed PLY header ({exc})") from exc
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise FileFormatError(f"{path}: unsupported PLY format {fmt!r}")
    endian = ">" if fmt == "binary_big_endian" else "<"
    values: dict[str, dict[str, np.ndarray]] = {}
    if fmt == "ascii":
        toks = body.split()
        pos = 0
        try:
            for name, count, props in elements:
                cols: dict[str, list] = {p: [] for p, _ in props}
                for _ in range(count):
                    for p, t in props:
                        if isinstance(t, tuple):
                            n = int(toks[pos])
                            cols[p].append([int(x) for x in toks[pos + 1: pos + 1 + n]])
                            if len(cols[p][-1]) != n:
                                raise IndexError("list runs past the end")
                            pos += 1 + n
                        else:
                            cols[p].append(float(toks[pos]))
                            pos += 1
                values[name] = {p: (c if isinstance(t, tuple) else np.array(c)) for (p, t), c in
                                zip(props, cols.values())}
        except (IndexError, ValueError) as exc:
            raise FileFormatError(f"{path}: PLY data is truncated or malformed") from exc
    else:
        pos = 0
        for name, count, props in elements:
            values[name], pos = _ply_binary_element(path, body, pos, count, props, endian)
    if "vertex" not in values:
        raise FileFormatError(f"{path}: PLY has no vertex element")
    vx = values["vertex"]
    try:
        v = np.stack([np.asarray(vx[c], dtype=np.float64) for c in ("x", "y", "z")], axis=1)
    except KeyError as exc:
        raise FileFormatError(f"{path}: PLY vertices lack x, y or z") from exc
    if not np.all(np.isfinite(v)):
        raise FileFormatError(f"{path}: PLY has NaN or infinite coordinates")
    normals = None
    if all(c in vx for c in ("nx", "ny", "nz")):
        normals = np.stack([np.asarray(vx[c], dtype=np.float32) for c in ("nx", "ny", "nz")], axis=1)
    fx = values.get("face", {})
    lists = fx.get("vertex_indices", fx.get("vertex_index", []))
    if isinstance(lists, np.ndarray) and lists.ndim == 2:
        faces = lists.astype(np.int64)
        counts = None
    else:
        tris = [(p[0], p[a], p[a + 1]) for p in lists for a in range(1, len(p) - 1)]
        faces = np.array(tris, dtype=np.int64).reshape(-1, 3)
        counts = np.array([max(len(p) - 2, 0) for p in lists], dtype=np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= len(v)):
        raise FileFormatError(f"{path}: PLY face index out of range")
    fseg = fx.get("segment")
    if fseg is not None and seg_info:
        fseg = np.asarray(fseg).astype(np.int64)
        if counts is not None:
            fseg = np.repeat(fseg, counts)
        segs = [(seg_info[i][0], seg_info[i][1], np.flatnonzero(fseg == i)) for i in sorted(seg_info)]
        return _Raw(v, faces, normals, segs)
    if all(c in vx for c in ("red", "green", "blue")) and len(v):
        color = tuple(float(np.asarray(vx[c])[0]) / 255.0 for c in ("red", "green", "blue"))
        return _Raw(v, faces, normals, [(path.stem, color, np.arange(len(faces)))])  # type: ignore[list-item]
    return _Raw(v, faces, normals, [])


def _ply_binary_element(path: Path, body: bytes, pos: int, count: int, props: list, endian: str
                        ) -> tuple[dict[str, np.ndarray], int]:
    lists = [(i, p, t) for i, (p, t) in enumerate(props) if isinstance(t, tuple)]
    if not lists:
        dt = np.dtype([(p, endian + t) for p, t in props])
        need = dt.itemsize * count
        if pos + need > len(body):
            raise FileFormatError(f"{path}: PLY data is truncated")
        rec = np.frombuffer(body, dt, count=count, offset=pos)
        return {p: rec[p] for p, _ in props}, pos + need
    # fast path: every list holds 3 items
    fields = []
    for p, t in props:
        if isinstance(t, tuple):
            fields += [(p + "__n", endian + t[0]), (p, endian + t[1], (3,))]
        else:
            fields.append((p, endian + t))
    dt = np.dtype(fields)
    need = dt.itemsize * count
    if pos + need <= len(body):
        rec = np.frombuffer(body, dt, count=count, offset=pos)
        if all(np.all(rec[p + "__n"] == 3) for _, p, _ in lists):
            return {p: np.array(rec[p]) for p, _ in props}, pos + need
    # slow path: variable-length lists
    out: dict[str, list] = {p: [] for p, _ in props}
    try:
        for _ in range(count):
            for p, t in props:
                if isinstance(t, tuple):
                    cdt, idt = np.dtype(endian + t[0]), np.dtype(endian + t[1])
                    n = int(np.frombuffer(body, cdt, count=1, offset=pos)[0])
                    pos += cdt.itemsize
                    out[p].append(np.frombuffer(body, idt, count=n, offset=pos).tolist())
                    pos += idt.itemsize * n
                else:
                    sdt = np.dtype(endian + t)
                    out[p].append(np.frombuffer(body, sdt, count=1, offset=pos)[0])
                    pos += sdt.itemsize
    except ValueError as exc:
        raise FileFormatError(f"{path}: PLY data is truncated") from exc
    return {p: (out[p] if isinstance(t, tuple) else np.array(out[p])) for p, t in props}, pos


# --- VTK XML PolyData ------------------------------------------------------------------

class _VtpData:
    """Decodes the data arrays of a VTK XML file (ascii, inline binary, appended)."""

    def __init__(self, path: Path, root: ET.Element, appended: bytes | None, appended_encoding: str) -> None:
        self.path = path
        self.endian = "<" if root.get("byte_order", "LittleEndian") == "LittleEndian" else ">"
        self.header = np.dtype(self.endian + ("u8" if root.get("header_type", "UInt32") == "UInt64" else "u4"))
        comp = root.get("compressor", "")
        if comp and comp != "vtkZLibDataCompressor":
            raise FileFormatError(f"{path}: VTP compressor {comp} is not supported (only zlib)")
        self.compressed = bool(comp)
        self.appended = appended
        self.appended_encoding = appended_encoding

    def _decompress(self, raw: bytes, start: int) -> tuple[bytes, int]:
        hs = self.header.itemsize
        nblocks = int(np.frombuffer(raw, self.header, count=1, offset=start)[0])
        head = np.frombuffer(raw, self.header, count=3 + nblocks, offset=start)
        sizes = head[3:].astype(np.int64)
        pos = start + hs * (3 + nblocks)
        out = []
        for s in sizes:
            out.append(zlib.decompress(raw[pos: pos + int(s)]))
            pos += int(s)
        return b"".join(out), pos

    def _raw_block(self, raw: bytes, start: int) -> bytes:
        if self.compressed:
            return self._decompress(raw, start)[0]
        (n,) = np.frombuffer(raw, self.header, count=1, offset=start)
        n = int(n)
        if start + self.header.itemsize + n > len(raw):
            raise FileFormatError(f"{self.path}: VTP appended data is truncated")
        return raw[start + self.header.itemsize: start + self.header.itemsize + n]

    def _inline_binary(self, text: str) -> bytes:
        text = "".join(text.split())
        hs = self.header.itemsize
        if not self.compressed:
            raw = base64.b64decode(text)
            (n,) = np.frombuffer(raw, self.header, count=1)
            return raw[hs: hs + int(n)]
        first = base64.b64decode(text[: 4 * hs])   # the first 3 header words
        nblocks = int(np.frombuffer(first, self.header, count=1)[0])
        hlen = int(math.ceil((3 + nblocks) * hs / 3) * 4)
        head = base64.b64decode(text[:hlen])
        sizes = np.frombuffer(head, self.header, count=3 + nblocks)[3:]
        data = base64.b64decode(text[hlen:])
        out, pos = [], 0
        for s in sizes:
            out.append(zlib.decompress(data[pos: pos + int(s)]))
            pos += int(s)
        return b"".join(out)

    def read(self, el: ET.Element) -> np.ndarray | list[str]:
        typ = el.get("type", "")
        fmt = el.get("format", "ascii")
        if typ == "String":
            if fmt == "ascii":
                raw = bytes(int(x) for x in (el.text or "").split())
            else:
                raw = self._bytes(el, fmt)
            parts = raw.split(b"\0")
            n = int(el.get("NumberOfTuples", len(parts) - 1))
            return [p.decode("utf-8", "replace") for p in parts[:n]]
        if typ not in _VTK_DTYPES:
            raise FileFormatError(f"{self.path}: VTP array type {typ!r} is not supported")
        dt = _VTK_DTYPES[typ].newbyteorder(self.endian)
        ncomp = int(el.get("NumberOfComponents", "1"))
        if fmt == "ascii":
            arr = np.array((el.text or "").split(), dtype=np.float64 if dt.kind == "f" else np.int64)
        else:
            raw = self._bytes(el, fmt)
            if len(raw) % dt.itemsize:
                raise FileFormatError(f"{self.path}: VTP array {el.get('Name')!r} has a partial value")
            arr = np.frombuffer(raw, dt)
        arr = arr.astype(dt.newbyteorder("="))
        if arr.size % ncomp:
            raise FileFormatError(f"{self.path}: VTP array {el.get('Name')!r} has a partial tuple")
        return arr.reshape(-1, ncomp) if ncomp > 1 else arr

    def _bytes(self, el: ET.Element, fmt: str) -> bytes:
        try:
            if fmt == "binary":
                return self._inline_binary(el.text or "")
            if fmt == "appended":
                if self.appended is None:
                    raise FileFormatError(f"{self.path}: VTP has no AppendedData section")
                off = int(el.get("offset", "0"))
                if self.appended_encoding == "base64":
                    return self._appended_base64(off)
                return self._raw_block(self.appended, off)
        except (ValueError, zlib.error, IndexError, TypeError) as exc:
            raise FileFormatError(f"{self.path}: VTP data array {el.get('Name')!r} is corrupt ({exc})") from exc
        raise FileFormatError(f"{self.path}: VTP data format {fmt!r} is not supported")

    def _appended_base64(self, off: int) -> bytes:
        assert self.appended is not None
        text = self.appended[off:].decode("ascii", "replace")
        hs = self.header.itemsize
        if not self.compressed:
            hlen = int(math.ceil(hs / 3) * 4)
            (n,) = np.frombuffer(base64.b64decode(text[:hlen]), self.header, count=1)
            return base64.b64decode(text[hlen: hlen + int(math.ceil(int(n) / 3) * 4)])[: int(n)]
        first = base64.b64decode(text[: 4 * hs])
        nblocks = int(np.frombuffer(first, self.header, count=1)[0])
        hlen = int(math.ceil((3 + nblocks) * hs / 3) * 4)
        sizes = np.frombuffer(base64.b64decode(text[:hlen]), self.header, count=3 + nblocks)[3:]
        total = int(sizes.sum())
        data = base64.b64decode(text[hlen: hlen + int(math.ceil(total / 3) * 4)])
        out, pos = [], 0
        for s in sizes:
            out.append(zlib.decompress(data[pos: pos + int(s)]))
            pos += int(s)
        return b"".join(out)


def _cells(arrs: dict[str, np.ndarray], path: Path) -> tuple[np.ndarray, np.ndarray]:
    conn = np.asarray(arrs.get("connectivity", np.zeros(0)), dtype=np.int64).reshape(-1)
    offs = np.asarray(arrs.get("offsets", np.zeros(0)), dtype=np.int64).reshape(-1)
    if len(offs) and (offs[-1] != len(conn) or np.any(np.diff(offs) < 0) or offs[0] < 0):
        raise FileFormatError(f"{path}: VTP cell offsets do not match the connectivity")
    starts = np.concatenate([[0], offs[:-1]]) if len(offs) else offs
    return conn, np.stack([starts, offs], axis=1) if len(offs) else np.zeros((0, 2), np.int64)


def _read_vtp(path: Path, data: bytes) -> _Raw:
    appended = None
    enc = "raw"
    marker = data.find(b"<AppendedData")
    if marker >= 0:
        tag_end = data.find(b">", marker)
        m = re.search(rb'encoding="(\w+)"', data[marker:tag_end])
        enc = m.group(1).decode() if m else "raw"
        us = data.find(b"_", tag_end)
        if tag_end < 0 or us < 0:
            raise FileFormatError(f"{path}: VTP AppendedData section is truncated")
        close = data.rfind(b"</AppendedData>")
        if close < us or not data.rstrip().endswith(b"</VTKFile>"):
            raise FileFormatError(f"{path}: VTP file is truncated (no closing </AppendedData> </VTKFile>)")
        appended = data[us + 1:close]
        xml_text = data[:marker] + b"</VTKFile>"
    else:
        xml_text = data
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise FileFormatError(f"{path}: not a valid VTK XML file ({exc})") from exc
    if root.tag != "VTKFile" or root.get("type") != "PolyData":
        raise FileFormatError(f"{path}: not a VTK XML PolyData file")
    dec = _VtpData(path, root, appended, enc)
    poly = root.find("PolyData")
    pieces = poly.findall("Piece") if poly is not None else []
    if not pieces:
        raise FileFormatError(f"{path}: VTP file has no Piece")
    vs, fs, ns, segs = [], [], [], []
    off = 0
    for piece in pieces:
        npts = int(piece.get("NumberOfPoints", "0"))
        pts_el = piece.find("Points/DataArray")
        if npts and pts_el is None:
            raise FileFormatError(f"{path}: VTP piece has no Points")
        pts = np.asarray(dec.read(pts_el), dtype=np.float64).reshape(-1, 3) if pts_el is not None \
            else np.zeros((0, 3))
        if len(pts) != npts:
            raise FileFormatError(f"{path}: VTP has {len(pts)} points, the header says {npts}")
        tris = []
        cell_seg = None
        cd = piece.find("CellData")
        n_before = 0
        for section in ("Verts", "Lines", "Polys", "Strips"):
            el = piece.find(section)
            ncell = int(piece.get(f"NumberOf{section}", "0"))
            if el is None or ncell == 0:
                continue
            arrs = {a.get("Name"): dec.read(a) for a in el.findall("DataArray")}
            conn, se = _cells(arrs, path)  # type: ignore[arg-type]
            if len(se) != ncell:
                raise FileFormatError(f"{path}: VTP has {len(se)} {section}, the header says {ncell}")
            if section in ("Verts", "Lines"):
                n_before += ncell
                continue
            tri_cell = []
            for c, (a, b) in enumerate(se):
                ids = conn[a:b]
                if section == "Polys":
                    new = [(ids[0], ids[t], ids[t + 1]) for t in range(1, len(ids) - 1)]
                else:
                    new = [((ids[t], ids[t + 1], ids[t + 2]) if t % 2 == 0 else (ids[t + 1], ids[t], ids[t + 2]))
                           for t in range(len(ids) - 2)]
                tris.extend(new)
                tri_cell.extend([n_before + c] * len(new))
            n_before += ncell
            tris_cells = np.array(tri_cell, dtype=np.int64)
            if cd is not None:
                for a in cd.findall("DataArray"):
                    if a.get("Name") == "SegmentIndex":
                        all_seg = np.asarray(dec.read(a)).reshape(-1)
                        cell_seg = (all_seg[tris_cells] if cell_seg is None else
                                    np.concatenate([cell_seg, all_seg[tris_cells]]))
        f = np.array(tris, dtype=np.int64).reshape(-1, 3)
        if f.size and (f.min() < 0 or f.max() >= npts):
            raise FileFormatError(f"{path}: VTP cell point index out of range")
        normals = None
        pd = piece.find("PointData")
        if pd is not None:
            want = pd.get("Normals", "Normals")
            for a in pd.findall("DataArray"):
                if a.get("Name") == want and int(a.get("NumberOfComponents", "1")) == 3:
                    normals = np.asarray(dec.read(a), dtype=np.float32).reshape(-1, 3)
        vs.append(pts)
        fs.append(f + off)
        ns.append(normals if normals is not None else np.zeros((npts, 3), np.float32))
        segs.append(cell_seg if cell_seg is not None and len(cell_seg) == len(f) else None)
        off += npts
    v = np.concatenate(vs)
    f = np.concatenate(fs)
    if not np.all(np.isfinite(v)):
        raise FileFormatError(f"{path}: VTP has NaN or infinite coordinates")
    normals = np.concatenate(ns) if all(n is not None for n in ns) else None
    names: list[str] = []
    colors = None
    fd = poly.find("FieldData") if poly is not None else None
    if fd is not None:
        for a in fd.findall("Array"):
            if a.get("Name") == "SegmentNames":
                names = list(dec.read(a))  # type: ignore[arg-type]
            elif a.get("Name") == "SegmentColors":
                colors = np.asarray(dec.read(a), dtype=np.float64).reshape(-1, 3)
    groups = []
    if names and all(s is not None for s in segs):
        fseg = np.concatenate(segs)  # type: ignore[arg-type]
        for i, name in enumerate(names):
            color = tuple(float(c) for c in colors[i]) if colors is not None and i < len(colors) else _DEFAULT_COLOR
            groups.append((name, color, np.flatnonzero(fseg == i)))
    return _Raw(v, f, normals, groups)  # type: ignore[arg-type]


_READERS = {".stl": _read_stl, ".obj": _read_obj, ".ply": _read_ply, ".vtp": _read_vtp}


def _read_any(path: str | Path) -> tuple[Path, _Raw]:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _READERS:
        raise InvalidInputError(f"cannot read mesh file type {p.suffix!r} ({p.name}); "
                                f"use one of {', '.join(READ_SUFFIXES)}")
    data = _read_bytes(p)
    if not data:
        raise FileFormatError(f"{p}: file is empty")
    try:
        return p, _READERS[suffix](p, data)
    except FileFormatError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, struct.error, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{p}: corrupt {suffix[1:].upper()} file ({exc})") from exc


def _compact(v: np.ndarray, f: np.ndarray, n: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    used = np.unique(f.reshape(-1))
    remap = np.full(len(v), -1, np.int64)
    remap[used] = np.arange(len(used))
    return v[used], remap[f], (n[used] if n is not None else None)


def read_meshes(path: str | Path) -> list[NamedMesh]:
    """Read a mesh file as a list of named, coloured segments.

    Names and colours come back where the format carries them (OBJ ``o`` groups with
    their MTL ``Kd``; PLY and VTP files written by :func:`write_meshes`); otherwise
    the file is one segment named after the file's stem, grey. Each segment's
    vertices are the ones its faces use, in file order.

    Parameters
    ----------
    path : str or Path
        ``.stl``, ``.obj``, ``.ply`` or ``.vtp``.

    Returns
    -------
    list of NamedMesh

    Raises
    ------
    FileFormatError
        Missing, empty, truncated or corrupt file.
    InvalidInputError
        Unsupported suffix.
    """
    p, raw = _read_any(path)
    if not raw.segments:
        return [NamedMesh(p.stem, _DEFAULT_COLOR, raw.vertices, raw.faces, raw.normals)]
    out = []
    for name, color, idx in raw.segments:
        v, f, n = _compact(raw.vertices, raw.faces[idx], raw.normals)
        out.append(NamedMesh(name, color, v, f, n))
    return out


def read_mesh(path: str | Path, *, repair: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read the triangles of a mesh file (all segments together).

    Parameters
    ----------
    path : str or Path
        ``.stl`` (binary or ASCII), ``.obj``, ``.ply`` (ascii or binary) or ``.vtp``
        (VTK XML PolyData: ascii, base64 or appended data, optionally zlib-compressed;
        polygons are fanned and strips split into triangles).
    repair : bool
        Clean the mesh with trimesh: merge vertices that are equal up to trimesh's merge
        tolerance (1e-8), drop duplicate and degenerate (zero-area) faces and unused
        vertices, make the winding consistent across each connected piece and turn each
        closed piece outward. Repair does **not** fill holes, split or fix non-manifold
        edges, or remove self-intersections; check the result with :func:`check_closed`.

    Returns
    -------
    vertices : (n, 3) float64
    faces : (m, 3) int64

    Notes
    -----
    STL stores each triangle's three corners separately: the reader always merges
    bitwise-identical corners (lossless; as VTK's STL reader does), keeping the order
    of first appearance. OBJ, PLY and VTP vertices come back in file order.

    Raises
    ------
    FileFormatError
        Missing, empty, truncated or corrupt file.
    InvalidInputError
        Unsupported suffix.
    BackendUnavailableError
        ``repair=True`` without trimesh installed.
    """
    _, raw = _read_any(path)
    v = np.asarray(raw.vertices, dtype=np.float64)
    f = np.asarray(raw.faces, dtype=np.int64).reshape(-1, 3)
    if repair:
        v, f = repair_mesh(v, f)
    return v, f


def repair_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge duplicate vertices and fix winding/orientation with trimesh.

    See :func:`read_mesh` (``repair=True``) for what this does and does not do.
    """
    try:
        import trimesh
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendUnavailableError("mesh repair needs trimesh (pip install 'gpuseg[mesh]')") from exc
    v, f = _check_arrays(vertices, faces, "mesh")
    if len(f) == 0:
        return v.astype(np.float64), f
    mesh = trimesh.Trimesh(vertices=v.astype(np.float64), faces=f, process=True)
    mesh.update_faces(mesh.unique_faces() & mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    trimesh.repair.fix_normals(mesh, multibody=True)
    return np.asarray(mesh.vertices, dtype=np.float64).copy(), np.asarray(mesh.faces, dtype=np.int64).copy()



def check_closed(vertices: np.ndarray, faces: np.ndarray, what: str = "mesh") -> None:
    """Raise unless the mesh is closed (watertight) and consistently oriented.

    A mesh is closed when every edge is shared by exactly two faces, and consistently
    oriented when those two faces traverse it in opposite directions. Whether the
    consistent orientation points outward is not checked.

    Parameters
    ----------
    vertices : (n, 3) array
    faces : (m, 3) int array
    what : str
        Name of the mesh for the message.

    Raises
    ------
    InvalidInputError
        Bad arrays, or the mesh is open, non-manifold or inconsistently oriented (the
        message counts the offending edges and names one).
    """
    v, f = _check_arrays(vertices, faces, what)
    if len(f) == 0:
        return
    degenerate = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    if degenerate.any():
        raise InvalidInputError(f"{what} is not a closed surface: {int(degenerate.sum())} faces repeat a "
                                f"vertex index (e.g. face {int(np.argmax(degenerate))}: {f[degenerate][0].tolist()})")
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    und = np.sort(directed, axis=1)
    uniq_und, und_counts = np.unique(und, axis=0, return_counts=True)
    problems = []
    open_edges = uniq_und[und_counts == 1]
    many = uniq_und[und_counts > 2]
    if len(open_edges):
        problems.append(f"{len(open_edges)} edges belong to only one face (a hole; e.g. vertices "
                        f"{open_edges[0].tolist()})")
    if len(many):
        problems.append(f"{len(many)} edges are shared by more than two faces (non-manifold; e.g. vertices "
                        f"{many[0].tolist()})")
    uniq_dir, dir_counts = np.unique(directed, axis=0, return_counts=True)
    flipped = uniq_dir[dir_counts > 1]
    if len(flipped) and not len(many):
        problems.append(f"{len(flipped)} edges are traversed in the same direction by both of their faces "
                        f"(inconsistent orientation; e.g. vertices {flipped[0].tolist()})")
    if problems:
        raise InvalidInputError(f"{what} is not a closed, consistently oriented surface: " + "; ".join(problems)
                                + ". Try read_mesh(..., repair=True) or fix the mesh.")
