"""PLY meshes, ascii and binary (:mod:`gpuseg.io.meshes` describes the formats).

Our own reader and writer. trimesh's PLY loader (checked on a file written here) gives the same
vertices and faces, but exposes neither the header comments (where gpuseg keeps each
segment's name and exact colour) nor, except in its private ``_ply_raw`` metadata, the
per-face ``segment`` property, so a file would read back as one unnamed mesh.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InvalidInputError
from .mesh_common import MeshPart, RawMesh, merged_parts, one_line


def ply_bytes(segs: list[MeshPart]) -> bytes:
    v, f, n, vseg, fseg = merged_parts(segs)
    ftype = "float" if v.dtype == np.float32 else "double"
    colors = np.array([s.color for s in segs], dtype=np.float64).reshape(-1, 3)
    rgb = np.rint(colors * 255).astype(np.uint8)
    head = ["ply", "format binary_little_endian 1.0",
            "comment gpuseg mesh, coordinates in LPS millimetres"]
    for i, s in enumerate(segs):
        r, g, b = s.color
        head.append(f"comment gpuseg segment {i} {r:.17g} {g:.17g} {b:.17g} {one_line(s.name)}")
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


_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def read_ply(path: Path, data: bytes) -> RawMesh:
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
        return RawMesh(v, faces, normals, segs)
    if all(c in vx for c in ("red", "green", "blue")) and len(v):
        color = tuple(float(np.asarray(vx[c])[0]) / 255.0 for c in ("red", "green", "blue"))
        return RawMesh(v, faces, normals, [(path.stem, color, np.arange(len(faces)))])  # type: ignore[list-item]
    return RawMesh(v, faces, normals, [])


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


