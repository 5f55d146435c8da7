"""Binary and ASCII STL meshes (:mod:`gpuseg.io.meshes` describes the formats).

Our own reader and writer. trimesh's STL loader (``trimesh.exchange.stl.load_stl``) gives the
same corners for valid files, but it returns an empty mesh, without an error, for truncated or
corrupt ones (a short binary body, a bad vertex line, a missing ``endsolid``, a triangle count
larger than the file: all seven such cases tried read as empty), which would lose data
silently; its writer recomputes normals and, when processing, merges vertices by tolerance.
Here corners come back exactly as written and are merged only when bitwise equal, as VTK does,
and every corrupt file is a FileFormatError.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from .mesh_common import MeshPart, RawMesh, face_normals, merged_parts, one_line


def stl_bytes(segs: list[MeshPart]) -> bytes:
    v, f, _, _, _ = merged_parts(segs)
    tri = v[f].astype(np.float64)
    rec = np.zeros(len(f), dtype=np.dtype([("n", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")]))
    rec["n"] = face_normals(tri)
    rec["v"] = tri
    names = ", ".join(s.name for s in segs)
    header = one_line(f"gpuseg binary STL, LPS mm: {names}").encode("utf-8", "replace")[:80]
    header = header.ljust(80, b" ")
    return header + struct.pack("<I", len(f)) + rec.tobytes()


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


def read_stl(path: Path, data: bytes) -> RawMesh:
    if len(data) >= 84:
        (n,) = struct.unpack_from("<I", data, 80)
        if len(data) == 84 + 50 * n:
            rec = np.frombuffer(data, dtype=np.dtype([("n", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")]),
                                count=n, offset=84)
            tri = rec["v"].astype(np.float64).reshape(-1, 3)
            if not np.all(np.isfinite(tri)):
                raise FileFormatError(f"{path}: STL has NaN or infinite coordinates")
            v, f = _merge_exact(tri, np.arange(len(tri), dtype=np.int64).reshape(-1, 3))
            return RawMesh(v, f, None, [])
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
        return RawMesh(v, f, None, [])
    if len(data) >= 84:
        (n,) = struct.unpack_from("<I", data, 80)
        raise FileFormatError(f"{path}: binary STL says {n} triangles ({84 + 50 * n} bytes) "
                              f"but the file has {len(data)} bytes (truncated or corrupt)")
    raise FileFormatError(f"{path}: not an STL file (too short)")


