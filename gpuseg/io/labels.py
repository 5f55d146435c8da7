"""Labelmaps and layers: splitting labelmaps into segments, collapsing segments into layers,
and label tables (JSON, CSV, Slicer color tables).

Splitting finds every label's bounding box in one pass over the labelmap, then builds each
segment's packed mask on the device over its own box (a threshold ``v <= label <= v``), so a
117-class labelmap is not read 117 times. Collapsing puts each segment, in order, into the
first layer where it overlaps nothing and its label value is free (Slicer's collapse), painting
on the device only the segment's own voxels.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from numba import njit, prange

from ..backends import Backend, get_backend
from ..errors import FileFormatError, InvalidInputError
from ..geometry import Extent, ImageGeometry
from ..image import Image
from ..kernels.labels import LABEL_CONFLICTS, PAINT_LABEL
from ..mask import Mask
from ..ops.threshold import threshold
from ..segmentation import Segment, Segmentation

__all__ = ["label_bounding_boxes", "segmentation_from_labelmap", "collapse_layers", "Layer", "layer_array",
           "read_label_table", "LabelTable"]


@njit(cache=True, nogil=True, parallel=True)
def _bbox_per_slice(labels, nvalues):
    """Per slice and label: (jmin, jmax, imin, imax), and whether the label occurs."""
    nk, nj, ni = labels.shape
    out = np.empty((nk, nvalues, 4), np.int32)
    for k in prange(nk):
        for v in range(nvalues):
            out[k, v, 0] = 2147483647
            out[k, v, 1] = -1
            out[k, v, 2] = 2147483647
            out[k, v, 3] = -1
        for j in range(nj):
            for i in range(ni):
                v = labels[k, j, i]
                if v == 0:
                    continue
                if j < out[k, v, 0]:
                    out[k, v, 0] = j
                if j > out[k, v, 1]:
                    out[k, v, 1] = j
                if i < out[k, v, 2]:
                    out[k, v, 2] = i
                if i > out[k, v, 3]:
                    out[k, v, 3] = i
    return out


def label_bounding_boxes(labels: np.ndarray) -> dict[int, Extent]:
    """Every non-zero label value of a (k, j, i) integer array mapped to its bounding box."""
    if labels.dtype.kind not in "iu":
        raise InvalidInputError(f"a labelmap must hold integers, got {labels.dtype}")
    if labels.size == 0:
        return {}
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0:
        raise InvalidInputError(f"label values must not be negative (found {lo})")
    if hi == 0:
        return {}
    if hi > 65535:
        raise InvalidInputError(f"label values above 65535 are not supported (found {hi})")
    arr = labels if labels.dtype in (np.uint8, np.uint16) else labels.astype(np.uint16)
    per = _bbox_per_slice(np.ascontiguousarray(arr), hi + 1)
    present = per[:, :, 1] >= 0  # (k, value)
    out: dict[int, Extent] = {}
    for v in np.nonzero(present.any(axis=0))[0]:
        ks = np.nonzero(present[:, v])[0]
        sel = per[ks, v]
        out[int(v)] = Extent(int(ks[0]), int(ks[-1]) + 1, int(sel[:, 0].min()), int(sel[:, 1].max()) + 1,
                             int(sel[:, 2].min()), int(sel[:, 3].max()) + 1)
    return out


def split_labelmap(labels: np.ndarray, geometry: ImageGeometry, backend: Backend,
                   values: Sequence[int] | None = None,
                   boxes: dict[int, Extent] | None = None) -> dict[int, Mask]:
    """Packed masks ``{value: mask}`` of a labelmap on ``geometry`` (each over its own box)."""
    if labels.shape != geometry.shape:
        raise InvalidInputError(f"labelmap shape {labels.shape} does not match the grid {geometry.shape}")
    boxes = label_bounding_boxes(labels) if boxes is None else boxes
    if values is None:
        values = sorted(boxes)
    if not boxes:
        return {int(v): Mask.empty(geometry, backend=backend) for v in values}
    arr = labels if labels.dtype == np.uint16 else labels.astype(np.uint16)
    img = Image.from_numpy(arr, geometry, backend=backend)
    out = {}
    for v in values:
        box = boxes.get(int(v))
        out[int(v)] = (threshold(img, v, v, extent=box).shrink_() if box is not None
                       else Mask.empty(geometry, backend=backend))
    return out


@dataclass
class LabelTable:
    """Label value -> name (and optional color 0..1, and Slicer ``TerminologyEntry`` tag)."""

    names: dict[int, str] = field(default_factory=dict)
    colors: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    terminology: dict[int, str] = field(default_factory=dict)

    def apply_known_terminology(self) -> "LabelTable":
        """If the names are TotalSegmentator's classes, add their SNOMED-CT terminology, and
        their colours where the table gives none (gpuseg.data; as Slicer's TotalSegmentator
        extension shows them). Returns self."""
        from ..data import looks_like_totalsegmentator, totalsegmentator_terminology

        if looks_like_totalsegmentator(self.names.values()):
            for v, name in self.names.items():
                t = totalsegmentator_terminology(name)
                if t is not None:
                    self.terminology.setdefault(v, t.terminology)
                    if t.color is not None:
                        self.colors.setdefault(v, t.color)
        return self


def read_label_table(path: str | os.PathLike) -> LabelTable:
    """Read a label table: JSON ``{value: name}`` (TotalSegmentator), CSV ``value,name[,r,g,b]``
    (colors 0..1 or 0..255), or a Slicer color table (``.ctbl``/``.txt``: ``value name r g b a``
    with 0..255 colors, ``#`` comments)."""
    p = Path(path)
    if not p.is_file():
        raise FileFormatError(f"{p}: label table not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{p}: a label table must be UTF-8 (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise FileFormatError(f"{p}: cannot read the label table ({exc.strerror or exc})") from None
    table = LabelTable()
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
            if isinstance(data, dict):  # keys starting with "_" are metadata (gpuseg's sidecar: "_gpuseg")
                items = [(k, v) for k, v in data.items() if not str(k).startswith("_")]
            elif isinstance(data, list):
                items = ((d["value"], d["name"]) for d in data)
            else:
                raise ValueError("expected an object {value: name}")
            for k, v in items:
                if isinstance(v, dict):
                    table.names[int(k)] = str(v["name"])
                    if "color" in v:
                        table.colors[int(k)] = _color01(v["color"])
                else:
                    table.names[int(k)] = str(v)
        elif p.suffix.lower() == ".csv":
            rows = [r for r in csv.reader(text.splitlines()) if r and not r[0].lstrip().startswith("#")]
            if rows and not rows[0][0].strip().lstrip("-").isdigit():
                rows = rows[1:]  # header
            for r in rows:
                table.names[int(r[0])] = r[1].strip()
                if len(r) >= 5:
                    table.colors[int(r[0])] = _color01([float(x) for x in r[2:5]])
        else:  # Slicer color table
            for line in text.splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split()
                v = int(parts[0])
                table.names[v] = parts[1]
                if len(parts) >= 5:
                    table.colors[v] = _color01([float(x) for x in parts[2:5]], scale255=True)
    except (ValueError, KeyError, IndexError, TypeError, RecursionError, OverflowError) as exc:
        raise FileFormatError(f"{p}: not a label table ({type(exc).__name__}: {exc})") from exc
    if any(v < 0 for v in table.names):
        raise FileFormatError(f"{p}: label values must not be negative")
    table.names.pop(0, None)  # background
    table.colors.pop(0, None)
    if not table.names:
        raise FileFormatError(f"{p}: the label table lists no labels")
    return table.apply_known_terminology()


def _color01(c, scale255: bool = False) -> tuple[float, float, float]:
    vals = [float(x) for x in list(c)[:3]]
    if scale255 or any(x > 1.0 for x in vals):
        vals = [x / 255.0 for x in vals]
    if not all(0.0 <= x <= 1.0 for x in vals):
        raise ValueError(f"color out of range: {c}")
    return (vals[0], vals[1], vals[2])


def default_color(value: int) -> tuple[float, float, float]:
    """The color of label ``value`` without a label table: Slicer's (a labelmap shows in its
    GenericAnatomyColors table, entry = label value; see gpuseg.colors)."""
    from ..colors import segment_color

    return segment_color(max(0, int(value) - 1))


def segmentation_from_labelmap(labels: np.ndarray, geometry: ImageGeometry, *,
                               backend: str | Backend | None = None, table: LabelTable | None = None,
                               strict: bool = False) -> Segmentation:
    """A Segmentation with one segment per label value present (in value order).

    Names and colors come from ``table`` (else ``Segment_<value>``, as Slicer names them).
    With ``strict=True``, a label present in the image but missing from the table is an error.
    """
    b = get_backend(backend)
    boxes = label_bounding_boxes(labels)
    if table is not None:
        missing = sorted(set(boxes) - set(table.names))
        if missing and strict:
            raise FileFormatError(f"label values {missing[:10]} occur in the image but not in the label table")
    masks = split_labelmap(labels, geometry, b, sorted(boxes), boxes)
    seg = Segmentation(geometry, backend=b)
    for v, m in masks.items():
        name = table.names.get(v) if table is not None else None
        color = (table.colors.get(v) if table is not None else None) or default_color(v)
        term = table.terminology.get(v) if table is not None else None
        s = seg.add_segment(m, name=name or f"Segment_{v}", segment_id=name and _safe_id(name) or f"Segment_{v}",
                            color=color, label_value=v, tags={"TerminologyEntry": term} if term else None)
        s.name_auto_generated = name is None
        s.color_auto_generated = not (table is not None and v in table.colors)
    return seg


def _safe_id(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name)


# --- collapsing segments into layers ------------------------------------------------------
@dataclass
class Layer:
    """Segments that share one labelmap, with their label values."""

    members: list[tuple[Segment, int]] = field(default_factory=list)
    data: object = None  # device array over the layer extent

    @property
    def values(self) -> set[int]:
        return {v for _, v in self.members}


def _label_call(b: Backend, name: str, mask: Mask, data, extent: Extent, dtype, value: int = 0):
    place = (extent.k0, extent.j0, extent.i0, *extent.shape)
    if name == "paint_label":
        b.run(PAINT_LABEL, mask, data, *place, value)
        return None
    count = b.zeros((1,), np.uint32, what="conflict counter")
    b.run(LABEL_CONFLICTS, mask, data, *place, count)
    return int(b.to_numpy(count)[0])


def collapse_layers(seg: Segmentation, extent: Extent, dtype=None) -> tuple[list[Layer], np.dtype]:
    """Put the segments into as few non-overlapping layers as possible (Slicer's collapse).

    Each segment, in order, goes into the first layer where none of its voxels is taken and
    its own label value is free; if its value is taken it gets the layer's largest value + 1;
    if no layer fits, a new layer opens (where it keeps its value). Layers are painted on the
    device over ``extent``. Empty segments go into the first layer with a free value.
    """
    b = seg.backend
    segs = list(seg)
    maxv = max([s.label_value for s in segs] + [len(segs)], default=1)
    if dtype is None:
        dtype = np.uint8 if maxv <= 255 else np.uint16
    dtype = np.dtype(dtype)
    limit = np.iinfo(dtype).max
    layers: list[Layer] = []
    shape = extent.shape if not extent.is_empty else (1, 1, 1)

    def new_layer() -> Layer:
        lay = Layer(data=b.zeros(shape, dtype, what=f"labelmap layer {shape}"))
        layers.append(lay)
        return lay

    for s in segs:
        empty = s.mask.nbytes == 0 or s.mask.count() == 0
        placed = False
        for lay in layers:
            if not empty and _label_call(b, "label_conflicts", s.mask, lay.data, extent, dtype) > 0:
                continue
            v = s.label_value if 0 < s.label_value <= limit and s.label_value not in lay.values else (
                max(lay.values, default=0) + 1)
            if v > limit:
                continue
            lay.members.append((s, v))
            if not empty:
                _label_call(b, "paint_label", s.mask, lay.data, extent, dtype, v)
            placed = True
            break
        if not placed:
            lay = new_layer()
            v = s.label_value if 0 < s.label_value <= limit else 1
            lay.members.append((s, v))
            if not empty:
                _label_call(b, "paint_label", s.mask, lay.data, extent, dtype, v)
    return layers, dtype


def layer_array(seg: Segmentation, layer: Layer) -> np.ndarray:
    """The host copy of a layer's labelmap."""
    return seg.backend.to_numpy(layer.data)
