"""Write and read triangle meshes: STL, OBJ (+MTL), PLY, VTP and glTF 2.0 (GLB/GLTF).

One module per format beside this one (:mod:`.stl`, :mod:`.obj`, :mod:`.ply`, :mod:`.vtp`,
:mod:`.gltf`); this module picks the format from the suffix. The writers are gpuseg's own
small numpy writers (no third-party exporter rewrites or re-orders the data; each module says
why no library does its job), so vertex and face arrays come back exactly as written, and
segment names and colours survive wherever the format can carry them. Closedness checks and
repair (trimesh) live in :mod:`gpuseg.surface.topology`.

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

Writes are atomic (the atomic writes of :mod:`gpuseg.io`): every file of one call is
written to a temporary file first and all are renamed into place only when every one
was written, so a failure leaves previous files untouched.
"""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import FileFormatError, InvalidInputError
from ..surface.topology import check_closed, repair_mesh
from ._atomic import atomic_path
from .gltf import LPS_MM_TO_GLTF, glb_bytes, gltf_json_bytes
from .mesh_common import DEFAULT_COLOR, MeshLike, MeshPart, NamedMesh, RawMesh, normalize_meshes, safe_name, unique_names
from .obj import obj_bytes, read_obj
from .ply import ply_bytes, read_ply
from .stl import read_stl, stl_bytes
from .vtp import read_vtp, vtp_bytes

__all__ = ["MeshLike", "NamedMesh", "LPS_MM_TO_GLTF", "WRITE_SUFFIXES", "READ_SUFFIXES", "write_meshes", "read_mesh",
           "read_meshes", "check_closed", "repair_mesh", "safe_name"]

WRITE_SUFFIXES = (".stl", ".obj", ".ply", ".vtp", ".glb", ".gltf")
READ_SUFFIXES = (".stl", ".obj", ".ply", ".vtp")


# -------------------------------------------------------------------------------------
# writing
# -------------------------------------------------------------------------------------

def _write_chunks(tmp: Path, chunks: Sequence[bytes]) -> None:
    """Write ``chunks`` to ``tmp`` one after the other (a hook for tests)."""
    with open(tmp, "wb") as fh:
        for c in chunks:
            fh.write(c)


def _encode(segs: list[MeshPart], path: Path) -> list[tuple[Path, list[bytes]]]:
    """The files (path, chunks) that represent ``segs`` at ``path``."""
    suffix = path.suffix.lower()
    if suffix == ".stl":
        return [(path, [stl_bytes(segs)])]
    if suffix == ".obj":
        mtl_path = path.with_suffix(".mtl")
        obj, mtl = obj_bytes(segs, mtl_path.name)
        return [(mtl_path, [mtl]), (path, [obj])]
    if suffix == ".ply":
        return [(path, [ply_bytes(segs)])]
    if suffix == ".vtp":
        data = vtp_bytes(segs)
        # two chunks, so that a failure between them is a real "mid-write" failure
        return [(path, [data[: len(data) // 2], data[len(data) // 2:]])]
    if suffix == ".glb":
        return [(path, [glb_bytes(segs)])]
    if suffix == ".gltf":
        return [(path, [gltf_json_bytes(segs)])]
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
    segs = normalize_meshes(meshes)
    if per_segment:
        stems = unique_names([safe_name(s.name, f"segment{i}") for i, s in enumerate(segs)])
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

def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise FileFormatError(f"mesh file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise FileFormatError(f"{path} is a folder, not a mesh file") from exc
    except OSError as exc:
        raise FileFormatError(f"cannot read {path}: {exc}") from exc


_READERS = {".stl": read_stl, ".obj": read_obj, ".ply": read_ply, ".vtp": read_vtp}


def _read_any(path: str | Path) -> tuple[Path, RawMesh]:
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
        return [NamedMesh(p.stem, DEFAULT_COLOR, raw.vertices, raw.faces, raw.normals)]
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


