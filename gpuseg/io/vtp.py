"""VTK XML PolyData meshes (:mod:`gpuseg.io.meshes` describes the formats).

Our own reader and writer: trimesh has no VTP support (its formats: stl, obj, ply, off, glb,
gltf, dxf, xyz), and VTK's reader is a heavy optional dependency for a simple XML container
(ascii, base64 or appended data, optionally zlib-compressed). VTK reads these files back in
the tests.
"""

from __future__ import annotations

import base64
import math
import re
import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from .mesh_common import DEFAULT_COLOR, MeshPart, RawMesh, merged_parts


_VTK_TYPES = {
    np.dtype("int8"): "Int8", np.dtype("uint8"): "UInt8", np.dtype("int16"): "Int16",
    np.dtype("uint16"): "UInt16", np.dtype("int32"): "Int32", np.dtype("uint32"): "UInt32",
    np.dtype("int64"): "Int64", np.dtype("uint64"): "UInt64", np.dtype("float32"): "Float32",
    np.dtype("float64"): "Float64",
}
_VTK_DTYPES = {name: dt for dt, name in _VTK_TYPES.items()}


def vtp_bytes(segs: list[MeshPart]) -> bytes:
    v, f, n, _, fseg = merged_parts(segs)
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


def read_vtp(path: Path, data: bytes) -> RawMesh:
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
            color = tuple(float(c) for c in colors[i]) if colors is not None and i < len(colors) else DEFAULT_COLOR
            groups.append((name, color, np.flatnonzero(fseg == i)))
    return RawMesh(v, f, normals, groups)  # type: ignore[arg-type]


