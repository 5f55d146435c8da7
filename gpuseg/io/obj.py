"""Wavefront OBJ meshes with their MTL materials (:mod:`gpuseg.io.meshes` describes the formats).

Our own reader and writer. trimesh's OBJ loader (checked on a file written here) gives each
object's vertices and faces unchanged, but returns the objects in another order, drops an
empty one, and rounds the MTL ``Kd`` colours to 8 bits, so segment order, empty segments and
exact colours would be lost. trimesh is used to check interoperability in the tests.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from .mesh_common import DEFAULT_COLOR, MeshPart, RawMesh, float_format, one_line, safe_name, unique_names


def obj_bytes(segs: list[MeshPart], mtl_name: str) -> tuple[bytes, bytes]:
    mats = unique_names([safe_name(s.name, f"segment{i}") for i, s in enumerate(segs)])
    lines = ["# gpuseg OBJ export; coordinates in LPS millimetres", f"mtllib {mtl_name}"]
    mtl = ["# gpuseg materials: Kd = segment colour"]
    out = ["\n".join(lines) + "\n"]
    off = 0
    for s, mat in zip(segs, mats):
        r, g, b = s.color
        mtl.append(f"newmtl {mat}\nKa 0 0 0\nKd {r:.9g} {g:.9g} {b:.9g}\nKs 0 0 0\nd 1\nillum 1")
        out.append(f"o {one_line(s.name)}\nusemtl {mat}\n")
        fmt = float_format(s.vertices.dtype)
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


def read_mtl(path: Path) -> dict[str, tuple[float, float, float]]:
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


def read_obj(path: Path, data: bytes) -> RawMesh:
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
                mtllib.update(read_mtl(path.parent / line.strip()[len("mtllib"):].strip()))
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
        color = mtllib.get(mat, DEFAULT_COLOR) if mat else DEFAULT_COLOR
        segs.append((name, color, np.arange(start, start + len(fg))))
        start += len(fg)
    return RawMesh(v, f, None, segs)


