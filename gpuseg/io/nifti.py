"""NIfTI segmentations (nibabel): multilabel volumes in, multilabel or one file per segment out.

Import: every label value present becomes a segment (in value order), named from a label table
(JSON ``{value: name}`` such as TotalSegmentator's, CSV, or a Slicer color table) or from a
``<name>.labels.json`` sidecar written by gpuseg, else ``Segment_<value>``.

Export (multilabel): a segment's voxel value is its ``label_value`` when the segments' values are
all distinct (a TotalSegmentator import keeps its class numbers), else its position 1..N. Where
segments overlap, ``overlap="later"`` (default) lets later segments win, as Slicer's merged
labelmap does; ``"earlier"`` lets earlier ones win; ``"error"`` refuses to write. The label table
is written beside the file as ``<name>.labels.json``. NIfTI stores IJK→RAS: gpuseg's LPS geometry
is converted exactly (x and y negated).
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from ..backends import Backend, get_backend
from ..errors import FileFormatError, GpusegError, InvalidInputError
from ..geometry import ImageGeometry
from ..segmentation import Segmentation
from ._atomic import atomic_path, atomic_paths
from .labels import LabelTable, default_color, read_label_table, segmentation_from_labelmap

__all__ = ["read_nifti_segmentation", "write_nifti_segmentation", "write_nifti_folder", "sidecar_path"]

OVERLAP_MODES = ("later", "earlier", "error")
#: Largest label value read or written (NIfTI uint32 labelmaps; Slicer's limit is lower).
MAX_NIFTI_LABEL = 2**32 - 1


def sidecar_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    name = p.name
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(name + ".labels.json")


def _load_labels(p: Path) -> tuple[np.ndarray, object]:
    """The (k, j, i) label array (uint8, uint16 or uint32) and the nibabel image."""
    import nibabel as nib

    from ._nrrd import check_host_bytes

    try:
        img = nib.load(str(p))
        shape = tuple(int(v) for v in img.header.get_data_shape())
        dt = img.header.get_data_dtype()
        check_host_bytes(math.prod(shape) * max(dt.itemsize, 2), f"the labelmap {shape}", p)
        raw = np.asanyarray(img.dataobj)
        token = _pair_token(img)
    except FileNotFoundError:
        raise FileFormatError(f"{p}: file not found") from None
    except GpusegError:
        raise
    except Exception as exc:  # nibabel, gzip, zlib and numpy raise many types on corrupt files
        raise FileFormatError(f"{p}: cannot read NIfTI ({type(exc).__name__}: {exc})") from None
    if raw.ndim == 4 and raw.shape[3] == 1:
        raw = raw[..., 0]
    if raw.ndim != 3:
        raise FileFormatError(f"{p}: a labelmap must be 3D, got shape {raw.shape}")
    if raw.dtype.kind == "f":
        with np.errstate(all="ignore"):
            if not np.all(np.isfinite(raw)) or not np.array_equal(raw, np.round(raw)):
                raise FileFormatError(f"{p}: labelmap voxels must be whole numbers")
            if raw.size and float(np.abs(raw).max()) > MAX_NIFTI_LABEL:
                raise FileFormatError(f"{p}: label values above {MAX_NIFTI_LABEL} are not supported")
        raw = raw.astype(np.int64)
    if raw.dtype.kind not in "iu":
        raise FileFormatError(f"{p}: labelmap voxels must be integers, got {raw.dtype}")
    if raw.size and int(raw.min()) < 0:
        raise FileFormatError(f"{p}: labelmap values must not be negative")
    if raw.size and int(raw.max()) > MAX_NIFTI_LABEL:
        raise FileFormatError(f"{p}: label values above {MAX_NIFTI_LABEL} are not supported")
    lab = np.ascontiguousarray(raw.transpose(2, 1, 0))
    if lab.dtype not in (np.uint8, np.uint16, np.uint32):
        lab = lab.astype(np.uint32 if lab.size and int(lab.max()) > 65535 else np.uint16)
    return lab, (img, token)


def _pair_token(img) -> str:
    try:
        return bytes(img.header["aux_file"]).split(b"\0")[0].decode("ascii", "replace").strip()
    except Exception:  # not a NIfTI-1/2 header with aux_file
        return ""


def _read_sidecar(path: Path, token: str) -> tuple[list[dict] | None, LabelTable | None]:
    """(ordered segment entries of the matching pair, or None; a plain label table, or None)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{path}: not a gpuseg label sidecar ({type(exc).__name__}: {exc})") from None
    meta = data.get("_gpuseg") if isinstance(data, dict) else None
    if isinstance(meta, dict):
        for cand in (meta, meta.get("previous")):
            if isinstance(cand, dict) and token and cand.get("pair") == token:
                entries = cand.get("segments")
                if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                    raise FileFormatError(f"{path}: the sidecar's segment list is malformed")
                return entries, None
        warnings.warn(f"{path} does not belong to this version of its NIfTI file (written separately?); "
                      "its names are used as a plain label table", stacklevel=3)
    return None, read_label_table(path)


def read_nifti_segmentation(path: str | os.PathLike, *, backend: str | Backend | None = None,
                            labels: str | os.PathLike | None = None,
                            segments: Iterable[str] | None = None) -> Segmentation:
    """A multilabel NIfTI: one segment per label value present, or, with the ``.labels.json``
    gpuseg wrote beside it, exactly the segments written (empty ones and their order included)."""
    p = Path(path)
    lab, (img, token) = _load_labels(p)
    try:
        geom = ImageGeometry.from_ras_matrix(lab.shape, img.affine)
    except (InvalidInputError, TypeError, ValueError) as exc:
        raise FileFormatError(f"{p}: invalid NIfTI geometry ({exc})") from None
    table, entries = None, None
    if labels is not None:
        table = read_label_table(labels)
    elif sidecar_path(p).is_file():
        entries, table = _read_sidecar(sidecar_path(p), token)
    values = None
    if lab.dtype == np.uint32:  # the splitter works on 16-bit labels: number the values present 1..N
        values, inverse = np.unique(lab, return_inverse=True)
        if values.size > 65536:
            raise FileFormatError(f"{p}: {values.size - 1} distinct label values; at most 65535 are supported")
        lab = inverse.reshape(lab.shape).astype(np.uint16)
        if values[0] != 0:
            values = np.concatenate([[0], values])
            lab += 1
    seg = segmentation_from_labelmap(lab, geom, backend=backend, table=None if values is not None else table)
    if values is not None:
        for s in seg:
            v = int(values[s.label_value])
            s.label_value = v
            name = table.names.get(v) if table is not None else None
            s.name, s.name_auto_generated = (name, False) if name else (f"Segment_{v}", True)
            color = table.colors.get(v) if table is not None else None
            s.color, s.color_auto_generated = (color, False) if color else (default_color(v), True)
    if entries is not None:
        seg = _apply_entries(seg, entries, sidecar_path(p))
    if segments is not None:
        seg.keep_only(segments)
    return seg


def _apply_entries(seg: Segmentation, entries: list[dict], where: Path) -> Segmentation:
    by_value = {s.label_value: s for s in seg}
    out = Segmentation(seg.geometry, backend=seg.backend)
    try:
        for e in entries:
            v = int(e["value"])
            src = by_value.pop(v, None)
            s = out.add_segment(src.mask if src is not None else None, name=str(e["name"]) or None,
                                segment_id=str(e["id"]), color=tuple(float(c) for c in e["color"]),
                                tags={str(k): str(x) for k, x in dict(e.get("tags", {})).items()},
                                label_value=int(e.get("label_value", v)))
            s.name = str(e["name"])
            s.name_auto_generated = bool(e.get("name_auto_generated", False))
            s.color_auto_generated = bool(e.get("color_auto_generated", False))
            s.visible = bool(e.get("visible", True))
    except (KeyError, ValueError, TypeError, OverflowError) as exc:
        raise FileFormatError(f"{where}: malformed segment entry ({type(exc).__name__}: {exc})") from None
    for v, s in sorted(by_value.items()):  # values the sidecar does not list (should not happen)
        warnings.warn(f"{where}: label value {v} of the image is not in the sidecar", stacklevel=3)
        out.add_segment(s.mask, name=s.name, segment_id=s.id, color=s.color, label_value=v)
    return out


def _values(seg: Segmentation) -> list[int]:
    vals = [s.label_value for s in seg]
    if len(set(vals)) == len(vals) and all(v > 0 for v in vals):
        return vals
    return list(range(1, len(vals) + 1))


def merged_labelmap(seg: Segmentation, *, overlap: str = "later") -> tuple[np.ndarray, dict[int, str]]:
    """A (k, j, i) labelmap of all segments and its ``{value: name}`` table."""
    if overlap not in OVERLAP_MODES:
        raise InvalidInputError(f"overlap must be one of {', '.join(OVERLAP_MODES)}, got {overlap!r}")
    values = _values(seg)
    top = max(values, default=0)
    if top > MAX_NIFTI_LABEL:
        raise InvalidInputError(f"label value {top} does not fit a NIfTI labelmap (at most {MAX_NIFTI_LABEL})")
    dtype = np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.uint32
    out = np.zeros(seg.geometry.shape, dtype)
    order = list(zip(seg, values))
    if overlap == "earlier":
        order = order[::-1]
    for s, v in order:
        ext = s.mask.box_extent
        if ext.is_empty:
            continue
        bits = s.mask.to_numpy(ext)
        view = out[ext.slices]
        if overlap == "error" and np.any(view[bits] != 0):
            raise InvalidInputError(f"segment {s.name!r} overlaps another segment; a multilabel NIfTI cannot "
                                    "hold overlapping segments (use overlap='later' or 'earlier', one file "
                                    "per segment, or .seg.nrrd)")
        view[bits] = v
    return out, {v: s.name for s, v in zip(seg, values)}


def _image(data: np.ndarray, geometry: ImageGeometry, token: str = ""):
    import nibabel as nib

    img = nib.Nifti1Image(data.transpose(2, 1, 0), geometry.ijk_to_ras)
    img.set_qform(geometry.ijk_to_ras, code=1)
    img.set_sform(geometry.ijk_to_ras, code=1)
    img.header.set_xyzt_units("mm")
    if token:
        img.header["aux_file"] = token.encode("ascii")
    return img


def _save(path: Path, data: np.ndarray, geometry: ImageGeometry) -> None:
    import nibabel as nib

    img = _image(data, geometry)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def _previous_pair(side: Path) -> dict | None:
    try:
        old = json.loads(side.read_text(encoding="utf-8"))
        meta = old.get("_gpuseg")
        if isinstance(meta, dict) and "pair" in meta:
            return {"pair": meta["pair"], "segments": meta.get("segments", [])}
    except (OSError, ValueError, AttributeError):
        pass
    return None


def write_nifti_segmentation(seg: Segmentation, path: str | os.PathLike, *, overlap: str = "later",
                             sidecar: bool = True) -> Path:
    """One multilabel NIfTI (``.nii`` or ``.nii.gz``) plus a ``.labels.json`` label table.

    The sidecar lists every segment in order (empty ones included) with its id, name, color,
    tags and label value, so reading the pair gives back the same segments. The two files are
    replaced as a pair: the NIfTI header's ``aux_file`` holds a token that the sidecar names,
    and the sidecar also keeps the previous pair's entry, so a save killed between the two
    renames still reads as the old pair. Without a sidecar, empty segments cannot be stored:
    they are dropped with a warning.
    """
    import nibabel as nib

    data, names = merged_labelmap(seg, overlap=overlap)
    p = Path(path)
    if not sidecar:
        empty = [s.name for s in seg if s.mask.box_extent.is_empty or s.mask.count() == 0]
        if empty:
            warnings.warn(f"{p}: {len(empty)} empty segment(s) ({', '.join(map(repr, empty[:5]))}) cannot be "
                          "stored in a NIfTI without its .labels.json sidecar", stacklevel=2)
        _save(p, data, seg.geometry)
        return p
    side = sidecar_path(p)
    token = secrets.token_hex(8)
    entries = [{"value": int(v), "id": s.id, "name": s.name, "color": [float(c) for c in s.color],
                "label_value": int(s.label_value), "tags": dict(s.tags), "visible": bool(s.visible),
                "name_auto_generated": bool(s.name_auto_generated),
                "color_auto_generated": bool(s.color_auto_generated)}
               for s, v in zip(seg, _values(seg))]
    table: dict = {str(e["value"]): {"name": e["name"], "color": e["color"]} for e in entries}
    meta: dict = {"pair": token, "segments": entries}
    previous = _previous_pair(side)
    if previous is not None:
        meta["previous"] = previous
    table["_gpuseg"] = meta
    try:
        text = json.dumps(table, indent=1, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidInputError(f"{p}: a segment's name, tag or color cannot be stored in JSON ({exc})") from None
    img = _image(data, seg.geometry, token)
    # the sidecar is renamed first: until the NIfTI follows, its "previous" entry matches the old file
    with atomic_paths([side, p], [".json", None]) as (tmp_side, tmp_nii):
        tmp_side.write_text(text, encoding="utf-8")
        nib.save(img, str(tmp_nii))
    return p


def _file_name(name: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "segment"
    return clean[:120]


def write_nifti_folder(seg: Segmentation, path: str | os.PathLike, *, compressed: bool = True) -> Path:
    """One binary NIfTI per segment, ``<folder>/<name>.nii.gz`` (overlaps are kept)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for s in seg:
        base = _file_name(s.name)
        name, n = base, 1
        while name.lower() in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name.lower())
        _save(folder / (name + (".nii.gz" if compressed else ".nii")), s.mask.to_numpy().astype(np.uint8),
              seg.geometry)
    return folder


def table_from_segmentation(seg: Segmentation) -> LabelTable:
    vals = _values(seg)
    return LabelTable(names={v: s.name for s, v in zip(seg, vals)}, colors={v: s.color for s, v in zip(seg, vals)})
