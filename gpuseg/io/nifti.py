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
import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from ..backends import Backend, get_backend
from ..errors import FileFormatError, InvalidInputError
from ..geometry import ImageGeometry
from ..segmentation import Segmentation
from ._atomic import atomic_path
from .labels import LabelTable, read_label_table, segmentation_from_labelmap

__all__ = ["read_nifti_segmentation", "write_nifti_segmentation", "write_nifti_folder", "sidecar_path"]

OVERLAP_MODES = ("later", "earlier", "error")


def sidecar_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    name = p.name
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(name + ".labels.json")


def read_nifti_segmentation(path: str | os.PathLike, *, backend: str | Backend | None = None,
                            labels: str | os.PathLike | None = None,
                            segments: Iterable[str] | None = None) -> Segmentation:
    import nibabel as nib

    p = Path(path)
    try:
        img = nib.load(str(p))
        raw = np.asanyarray(img.dataobj)
    except FileNotFoundError as exc:
        raise FileFormatError(f"{p}: file not found") from exc
    except Exception as exc:
        raise FileFormatError(f"{p}: cannot read NIfTI ({type(exc).__name__}: {exc})") from exc
    if raw.ndim == 4 and raw.shape[3] == 1:
        raw = raw[..., 0]
    if raw.ndim != 3:
        raise FileFormatError(f"{p}: a labelmap must be 3D, got shape {raw.shape}")
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or not np.array_equal(raw, np.round(raw)):
            raise FileFormatError(f"{p}: labelmap voxels must be whole numbers")
        raw = raw.astype(np.int64)
    if raw.dtype.kind not in "iu":
        raise FileFormatError(f"{p}: labelmap voxels must be integers, got {raw.dtype}")
    if raw.size and int(raw.min()) < 0:
        raise FileFormatError(f"{p}: labelmap values must not be negative")
    lab = np.ascontiguousarray(raw.transpose(2, 1, 0))
    if lab.dtype not in (np.uint8, np.uint16):
        if lab.size and int(lab.max()) > 65535:
            raise FileFormatError(f"{p}: label values above 65535 are not supported")
        lab = lab.astype(np.uint16)
    geom = ImageGeometry.from_ras_matrix(lab.shape, img.affine)
    table = None
    if labels is not None:
        table = read_label_table(labels)
    elif sidecar_path(p).is_file():
        table = read_label_table(sidecar_path(p))
    seg = segmentation_from_labelmap(lab, geom, backend=backend, table=table)
    if segments is not None:
        seg.keep_only(segments)
    return seg


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
    dtype = np.uint8 if max(values, default=0) <= 255 else np.uint16
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


def _save(path: Path, data: np.ndarray, geometry: ImageGeometry) -> None:
    import nibabel as nib

    img = nib.Nifti1Image(data.transpose(2, 1, 0), geometry.ijk_to_ras)
    img.set_qform(geometry.ijk_to_ras, code=1)
    img.set_sform(geometry.ijk_to_ras, code=1)
    img.header.set_xyzt_units("mm")
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def write_nifti_segmentation(seg: Segmentation, path: str | os.PathLike, *, overlap: str = "later",
                             sidecar: bool = True) -> Path:
    """One multilabel NIfTI (``.nii`` or ``.nii.gz``) plus a ``.labels.json`` label table."""
    data, names = merged_labelmap(seg, overlap=overlap)
    p = Path(path)
    _save(p, data, seg.geometry)
    if sidecar and names:
        table = {str(v): {"name": n, "color": list(seg[i].color)} for i, (v, n) in enumerate(names.items())}
        with atomic_path(sidecar_path(p)) as tmp:
            tmp.write_text(json.dumps(table, indent=1))
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
