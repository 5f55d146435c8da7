"""3D Slicer's ``.seg.nrrd`` segmentation file (reference §2), read and written exactly.

One layer is written as a 3D NRRD, overlapping segments as a 4D NRRD whose first (fastest)
axis is a ``list`` of layers. Space is LPS. Every ``Segmentation_*`` and ``SegmentN_*`` key is
read and written; keys gpuseg does not interpret are kept and written back.

The segmentation's grid is the reference image geometry stored in the file (conversion
parameter ``Reference image geometry``), extended if the file's extent reaches past it; the
file array sits at ``Segmentation_ReferenceImageExtentOffset`` inside it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from ..backends import Backend, get_backend
from ..errors import FileFormatError, InvalidInputError
from ..geometry import LPS_TO_RAS, Extent, ImageGeometry
from ..mask import Mask
from ..segmentation import Segmentation, generate_segment_id
from ._atomic import atomic_path
from ._gzip import write_gzip
from ._nrrd import check_host_bytes, escape_value, read_nrrd
from ..geometry import parse_geometry
from .images import nrrd_geometry
from .labels import collapse_layers, label_bounding_boxes, layer_array, split_labelmap

__all__ = ["read_seg_nrrd", "write_seg_nrrd", "serialize_geometry", "parse_geometry", "DEFAULT_GZIP_LEVEL"]

#: gzip level for .seg.nrrd, chosen by measurement (benchmarks/bench_formats.py): on real
#: segmentations level 6 writes about twice as fast as 9 (Slicer's and slicerio's choice) for a
#: file about 20% larger, and reads faster; level 1 is faster again but files are 3-4x larger.
DEFAULT_GZIP_LEVEL = 6

#: Largest voxel index (or extent bound) a file may declare; larger ones are refused as corrupt.
_MAX_INDEX = 1 << 31
#: Largest label value gpuseg's .seg.nrrd layers hold (16-bit; Slicer writes 8 or 16 bits).
MAX_LABEL_VALUE = 65535

_SEGMENT_KEY = re.compile(r"^Segment(\d+)_(\w+)$")

# --- the reference geometry string (reference §1.4) ------------------------------------------
def _num(v: float) -> str:
    v = float(v) + 0.0  # no negative zero
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def serialize_geometry(geometry: ImageGeometry) -> str:
    """Slicer's ``Reference image geometry``: the IJK→RAS matrix row-major, then the extent."""
    m = geometry.ijk_to_ras
    nk, nj, ni = geometry.shape
    vals = [_num(v) for v in m.ravel()] + [str(v) for v in (0, ni - 1, 0, nj - 1, 0, nk - 1)]
    return "".join(v + ";" for v in vals)


# --- reading ------------------------------------------------------------------------------
def _parse_tags(text: str) -> dict[str, str]:
    tags = {}
    for item in str(text).split("|"):
        if not item:
            continue
        key, sep, value = item.partition(":")
        tags[key] = value if sep else ""
    return tags


def _parse_params(text: str) -> dict[str, tuple[str, str]]:
    params: dict[str, tuple[str, str]] = {}
    for item in str(text).split("&"):
        if not item:
            continue
        parts = item.split("|")
        name = parts[0]
        value = parts[1] if len(parts) > 1 else ""
        desc = "|".join(parts[2:]) if len(parts) > 2 else ""
        params[name] = (value, desc)
    return params


def _ints(text, n: int, what: str, path: Path) -> list[int]:
    try:
        vals = [int(float(v)) for v in str(text).split()]
    except (ValueError, OverflowError) as exc:  # OverflowError: inf, 1e400
        raise FileFormatError(f"{path}: {what} must be {n} integers, got {str(text)[:80]!r}") from exc
    if len(vals) != n or any(abs(v) > _MAX_INDEX for v in vals):
        raise FileFormatError(f"{path}: {what} must be {n} integers (|v| <= {_MAX_INDEX}), got {str(text)[:80]!r}")
    return vals


def _grid_and_offset(header: dict, file_geom: ImageGeometry, params, path: Path, itemsize: int = 1,
                     backend: Backend | None = None):
    """The segmentation grid and where the file array's voxel (0, 0, 0) sits in it (k, j, i)."""
    off_i, off_j, off_k = _ints(header.get("Segmentation_ReferenceImageExtentOffset", "0 0 0"), 3,
                                "Segmentation_ReferenceImageExtentOffset", path)
    nk, nj, ni = file_geom.shape
    backend = get_backend(backend)
    parsed = parse_geometry(params.get("Reference image geometry", ("", ""))[0]) if params else None
    if parsed is not None:
        ras, (ri0, ri1, rj0, rj1, rk0, rk1) = parsed
        lps = LPS_TO_RAS @ ras
        same_axes = np.allclose(lps[:3, :3], file_geom.ijk_to_world[:3, :3], rtol=0, atol=1e-4)
        # the file's voxel (0,0,0) must be the reference lattice point `offset`
        expected = lps[:3, :3] @ np.array([off_i, off_j, off_k]) + lps[:3, 3]
        if same_axes and np.allclose(expected, file_geom.origin, rtol=0, atol=1e-3) and ri1 >= ri0:
            lo = (min(rk0, off_k), min(rj0, off_j), min(ri0, off_i))
            hi = (max(rk1, off_k + nk - 1), max(rj1, off_j + nj - 1), max(ri1, off_i + ni - 1))
            shape = tuple(h - l + 1 for l, h in zip(lo, hi))
            nvox = shape[0] * shape[1] * shape[2]
            check_host_bytes(nvox * itemsize, f"the reference grid {shape[2]} x {shape[1]} x {shape[0]}", path)
            backend.check_allocation(-(-nvox // 8), f"{path}: a segment on the reference grid {shape}")
            origin = lps[:3, :3] @ np.array([lo[2], lo[1], lo[0]]) + lps[:3, 3]
            geom = ImageGeometry.from_matrix(shape, np.block([[lps[:3, :3], origin[:, None]], [np.array([[0, 0, 0, 1.0]])]]))
            return geom, (off_k - lo[0], off_j - lo[1], off_i - lo[2]), (off_i, off_j, off_k)
    return file_geom, (0, 0, 0), (off_i, off_j, off_k)


def read_seg_nrrd(path: str | os.PathLike, *, backend: str | Backend | None = None,
                  segments: Iterable[str] | None = None, root: str | os.PathLike | None = None) -> Segmentation:
    """Read a ``.seg.nrrd`` (or a plain labelmap NRRD, one segment per label value).

    ``segments`` limits the segments read (ids or names). A detached data file must lie beside
    the header and inside ``root`` (default: the header's folder).
    """
    p = Path(path)
    b = get_backend(backend)
    data, h = read_nrrd(p, root=root)
    header = h.keyvalues
    if "Segmentation_Extent" in header and "Segment0_Layer" not in header:
        raise FileFormatError(f"{p}: legacy (pre-2019) Slicer segmentation format, one segment per frame: "
                              "open and save it in a current 3D Slicer first")
    kinds = [k.lower() for k in (h.words("kinds", h.dimension) or ["domain"] * data.ndim)]
    kinds = ["domain" if k == "space" else k for k in kinds]
    if data.ndim == 3 and kinds == ["domain"] * 3:
        layers = data[..., None]
    elif data.ndim == 4 and kinds[1:] == ["domain"] * 3 and kinds[0] in ("list", "vector"):
        layers = data  # (k, j, i, layer): the list axis is the fastest
    else:
        raise FileFormatError(f"{p}: a segmentation must be 3D (kinds domain domain domain) or 4D (list domain "
                              f"domain domain); got {data.ndim}D with kinds {kinds}")
    if layers.dtype.kind not in "iu":
        raise FileFormatError(f"{p}: segmentation voxels must be integers, got {layers.dtype}")
    if layers.dtype.itemsize > 2 or layers.dtype.kind == "i":
        if layers.size and (int(layers.min()) < 0 or int(layers.max()) > MAX_LABEL_VALUE):
            raise FileFormatError(f"{p}: label values must lie in 0..{MAX_LABEL_VALUE}")
        layers = layers.astype(np.uint16)
    file_geom = nrrd_geometry(h, layers.shape[:3], p)
    params = _parse_params(header["Segmentation_ConversionParameters"]) \
        if "Segmentation_ConversionParameters" in header else None
    geom, place, _ = _grid_and_offset(header, file_geom, params, p, layers.dtype.itemsize, b)

    seg_numbers = sorted({int(m.group(1)) for k in header if (m := _SEGMENT_KEY.match(str(k)))})
    if not seg_numbers:  # a plain labelmap
        from .labels import segmentation_from_labelmap

        if layers.shape[3] != 1:
            raise FileFormatError(f"{p}: a 4D NRRD without segment keys is not a segmentation")
        return segmentation_from_labelmap(_placed(layers[..., 0], geom, place), geom, backend=b)
    if seg_numbers != list(range(len(seg_numbers))):
        missing = next(i for i, n in enumerate(seg_numbers) if n != i)  # not range(max): max may be 10^100
        raise FileFormatError(f"{p}: segment keys skip Segment{missing}_* (found up to Segment{max(seg_numbers)})")

    out = Segmentation(geom, backend=b)
    if params is not None:
        out.conversion_parameters = params
    if "Segmentation_ContainedRepresentationNames" in header:
        out.contained_representations = [n for n in str(header["Segmentation_ContainedRepresentationNames"]).split("|") if n]
    out.source_representation = str(header.get("Segmentation_MasterRepresentation", "Binary labelmap"))
    out.extra_fields = {k: str(v) for k, v in header.items()
                        if not _SEGMENT_KEY.match(str(k))
                        and k not in ("Segmentation_ConversionParameters", "Segmentation_ContainedRepresentationNames",
                                      "Segmentation_MasterRepresentation", "Segmentation_ReferenceImageExtentOffset")}
    wanted = set(segments) if segments is not None else None
    nlayers = layers.shape[3]
    metas = []
    ids = set()
    for n in seg_numbers:
        g = lambda key, default=None: header.get(f"Segment{n}_{key}", default)  # noqa: E731
        sid = str(g("ID") or generate_segment_id(ids))
        if sid in ids:
            raise FileFormatError(f"{p}: segment id {sid!r} occurs twice")
        ids.add(sid)
        try:
            layer = int(g("Layer", n))
            value = int(g("LabelValue", 1))
        except ValueError as exc:
            raise FileFormatError(f"{p}: Segment{n}_Layer and Segment{n}_LabelValue must be integers") from exc
        if not 0 <= value <= MAX_LABEL_VALUE:
            raise FileFormatError(f"{p}: Segment{n}_LabelValue {value} is outside 0..{MAX_LABEL_VALUE}")
        if not 0 <= layer < nlayers:
            raise FileFormatError(f"{p}: Segment{n}_Layer is {layer} but the file has {nlayers} layer(s)")
        color_text = g("Color", g("DefaultColor", "0.5 0.5 0.5"))
        try:
            color = tuple(float(v) for v in str(color_text).split())
            if len(color) != 3 or not all(0.0 <= c <= 1.0 for c in color):
                raise ValueError
        except ValueError as exc:
            raise FileFormatError(f"{p}: Segment{n}_Color must be three numbers, got {color_text!r}") from exc
        ext = g("Extent")
        extent = Extent.from_slicer(_ints(ext, 6, f"Segment{n}_Extent", p)) if ext is not None else None
        metas.append(dict(id=sid, name=str(g("Name", sid)), color=color, layer=layer, value=value, extent=extent,
                          name_auto=str(g("NameAutoGenerated", "1")).strip() == "1",
                          color_auto=str(g("ColorAutoGenerated", "1")).strip() == "1",
                          tags=_parse_tags(g("Tags", ""))))
    # one bounding-box pass per layer, then each segment's mask over its own box on the device
    blank = layers.shape[:3] == (1, 1, 1) and all(m["extent"] is None or m["extent"].is_empty for m in metas)
    masks: dict[int, Mask] = {}
    for layer in range(nlayers):
        members = [i for i, m in enumerate(metas) if m["layer"] == layer
                   and (wanted is None or m["id"] in wanted or m["name"] in wanted)]
        if not members or blank:
            continue
        arr = np.ascontiguousarray(layers[..., layer])
        full = _placed(arr, geom, place)
        boxes = label_bounding_boxes(full)
        limited: dict[int, Extent] = {}
        for i in members:  # the segment's file extent limits where its voxels are looked for
            v, ext = metas[i]["value"], metas[i]["extent"]
            box = boxes.get(v)
            if box is not None and ext is not None:
                box = box.intersect(Extent(ext.k0 + place[0], ext.k1 + place[0], ext.j0 + place[1],
                                           ext.j1 + place[1], ext.i0 + place[2], ext.i1 + place[2]))
            if box is not None and not box.is_empty:
                limited[v] = box.union(limited.get(v, Extent.empty()))
        values = sorted({metas[i]["value"] for i in members})
        split = split_labelmap(full, geom, b, values, limited)
        for i in members:
            masks[i] = split[metas[i]["value"]]
    for i, m in enumerate(metas):
        if wanted is not None and m["id"] not in wanted and m["name"] not in wanted:
            continue
        s = out.add_segment(masks.get(i, Mask.empty(geom, backend=b)), name=m["name"], segment_id=m["id"],
                            color=m["color"], label_value=m["value"])
        s.tags = m["tags"]
        s.name_auto_generated = m["name_auto"]
        s.color_auto_generated = m["color_auto"]
    if wanted is not None:
        found = {s.id for s in out} | {s.name for s in out}
        missing = [w for w in wanted if w not in found]
        if missing:
            from ..errors import UnknownSegmentError

            raise UnknownSegmentError(f"{p}: no segment {missing[0]!r} in the file")
    return out


def _placed(arr: np.ndarray, geom: ImageGeometry, place: tuple[int, int, int]) -> np.ndarray:
    """The file array on the segmentation grid (a copy only if the file covers part of it)."""
    if arr.shape == geom.shape and place == (0, 0, 0):
        return arr
    full = np.zeros(geom.shape, arr.dtype)
    k, j, i = place
    full[k:k + arr.shape[0], j:j + arr.shape[1], i:i + arr.shape[2]] = arr
    return full


# --- writing ------------------------------------------------------------------------------
def _tags_text(tags: dict[str, str]) -> str:
    for k, v in tags.items():
        if "|" in k or "|" in v or ":" in k:
            raise InvalidInputError(f"segment tag {k!r}: {v!r} contains '|' or a ':' in the key, which the "
                                    ".seg.nrrd format cannot store")
    return "".join(f"{k}:{v}|" for k, v in tags.items())


def _params_text(params: dict[str, tuple[str, str]]) -> str:
    for name, (value, desc) in params.items():
        if any(c in s for s in (name, value, desc) for c in "&|"):
            raise InvalidInputError(f"conversion parameter {name!r} contains '&' or '|', which .seg.nrrd cannot store")
    return "".join(f"{n}|{v}|{d}&" for n, (v, d) in params.items())


def write_seg_nrrd(seg: Segmentation, path: str | os.PathLike, *, compression_level: int = DEFAULT_GZIP_LEVEL,
                   encoding: str = "gzip", crop_to_minimum_extent: bool = False) -> Path:
    """Write ``seg`` as a ``.seg.nrrd`` (atomically).

    The file covers the whole reference grid (Slicer's default), or with
    ``crop_to_minimum_extent=True`` the union of the segments' effective extents.
    ``encoding`` is ``gzip`` (level ``compression_level``) or ``raw``.
    """
    if encoding not in ("gzip", "raw"):
        raise InvalidInputError(f"encoding must be 'gzip' or 'raw', got {encoding!r}")
    if not 0 <= int(compression_level) <= 9:
        raise InvalidInputError(f"gzip level must be 0..9, got {compression_level!r}")
    geom = seg.geometry
    for s in seg:
        if not 0 <= int(s.label_value) <= MAX_LABEL_VALUE:
            raise InvalidInputError(f"segment {s.name!r} has label value {s.label_value}; .seg.nrrd layers hold "
                                    f"0..{MAX_LABEL_VALUE} (write .nii.gz or .h5, or renumber the segment)")
    if crop_to_minimum_extent:
        extent = Extent.empty()
        for s in seg:
            extent = extent.union(s.mask.extent())
    else:
        extent = geom.extent
    any_voxels = not extent.is_empty and any(s.mask.nbytes and s.mask.count() for s in seg)
    if any_voxels:
        layers, dtype = collapse_layers(seg, extent)
        arrays = [layer_array(seg, lay) for lay in layers]
        file_extent = extent
    else:  # an empty segmentation is written as one blank voxel
        layers, dtype = collapse_layers(seg, Extent(0, 1, 0, 1, 0, 1))
        arrays = [np.zeros((1, 1, 1), dtype)]
        file_extent = Extent(0, 1, 0, 1, 0, 1)
    nk, nj, ni = file_extent.shape
    origin = geom.ijk_to_world_points([file_extent.i0, file_extent.j0, file_extent.k0])
    dirs = geom.ijk_to_world[:3, :3].T  # rows: the i, j, k axis vectors
    vec = lambda v: "(" + ",".join(_num(x) for x in v) + ")"  # noqa: E731
    if len(arrays) == 1:
        data = arrays[0]
        lines = ["dimension: 3", f"sizes: {ni} {nj} {nk}", "space directions: " + " ".join(vec(d) for d in dirs),
                 "kinds: domain domain domain"]
    else:
        data = np.stack(arrays, axis=-1)
        lines = ["dimension: 4", f"sizes: {len(arrays)} {ni} {nj} {nk}",
                 "space directions: none " + " ".join(vec(d) for d in dirs), "kinds: list domain domain domain"]
    lines = ["NRRD0004", "# Complete NRRD file format specification at:",
             "# http://teem.sourceforge.net/nrrd/format.html",
             "type: " + ("unsigned char" if data.dtype == np.uint8 else "unsigned short"), *lines[:1],
             "space: left-posterior-superior", *lines[1:]]
    if data.dtype.itemsize > 1:
        lines.append("endian: little")
    lines += [f"encoding: {encoding}", f"space origin: {vec(origin)}"]
    header: dict[str, str] = {}
    seg_of_layer = {}
    for li, lay in enumerate(layers):
        for s, v in lay.members:
            seg_of_layer[s.id] = (li, v)
    full_ext = f"0 {ni - 1} 0 {nj - 1} 0 {nk - 1}"
    for n, s in enumerate(seg):
        layer, value = seg_of_layer[s.id]
        empty = not any_voxels or s.mask.nbytes == 0 or s.mask.count() == 0
        header[f"Segment{n}_Color"] = " ".join(f"{c:g}" for c in s.color)
        header[f"Segment{n}_ColorAutoGenerated"] = str(int(s.color_auto_generated))
        header[f"Segment{n}_Extent"] = "0 -1 0 -1 0 -1" if empty else full_ext
        header[f"Segment{n}_ID"] = s.id
        header[f"Segment{n}_LabelValue"] = str(value)
        header[f"Segment{n}_Layer"] = str(layer)
        header[f"Segment{n}_Name"] = s.name
        header[f"Segment{n}_NameAutoGenerated"] = str(int(s.name_auto_generated))
        header[f"Segment{n}_Tags"] = _tags_text(s.tags)
    params = dict(seg.conversion_parameters)
    value, desc = params.get("Reference image geometry", ("", ""))
    params["Reference image geometry"] = (serialize_geometry(geom), desc)
    for k, v in seg.extra_fields.items():
        header.setdefault(k, v)
    header["Segmentation_ContainedRepresentationNames"] = "".join(f"{n}|" for n in seg.contained_representations)
    header["Segmentation_ConversionParameters"] = _params_text(dict(sorted(params.items())))
    header["Segmentation_MasterRepresentation"] = seg.source_representation
    header["Segmentation_ReferenceImageExtentOffset"] = f"{file_extent.i0} {file_extent.j0} {file_extent.k0}"
    for key, value in sorted(header.items()):
        if ":=" in key or "\n" in key or "\r" in key or not key or key.startswith("#"):
            raise InvalidInputError(f"header key {key!r} cannot be stored in NRRD")
        value = str(value)
        if "\r" in value:  # teem escapes only backslash and newline; a carriage return would be lost
            raise InvalidInputError(f"{key} = {value!r}: a carriage return cannot be stored in a .seg.nrrd value")
        lines.append(f"{escape_value(key)}:={escape_value(value)}")
    try:  # UTF-8, as 3D Slicer writes names and tags; lone surrogates cannot be stored
        header_bytes = ("\n".join(lines) + "\n\n").encode("utf-8", errors="strict")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"a segment name, tag or field holds {exc.object[exc.start:exc.end]!r}, "
                                "which is not valid Unicode and cannot be stored in UTF-8") from None
    p = Path(path)
    payload = np.ascontiguousarray(data.astype(data.dtype.newbyteorder("<"), copy=False))
    with atomic_path(p, suffix=".nrrd") as tmp:
        with open(tmp, "wb") as f:
            f.write(header_bytes)
            if encoding == "gzip":
                write_gzip(f, payload, int(compression_level))
            else:
                f.write(memoryview(payload).cast("B"))
    return p
