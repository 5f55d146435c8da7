"""Segmentation and Segment: Slicer's data model (reference §1) on bit-packed masks.

A :class:`Segmentation` has a reference geometry, ordered segments, a source
representation name and conversion parameters. Each :class:`Segment` has a stable id, a
name, a color, tags (terminology, status) and its own :class:`~gpuseg.mask.Mask`, whose box
covers only the segment's own extent. Segments may overlap; layers (Slicer's shared
labelmaps) are computed only when needed (file export, merged label views).
"""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from .backends import Backend, get_backend
from .errors import GeometryMismatchError, InvalidInputError, UnknownSegmentError
from .geometry import ImageGeometry
from .mask import Mask

__all__ = ["Segment", "Segmentation", "DEFAULT_CONVERSION_PARAMETERS", "DEFAULT_TERMINOLOGY",
           "generate_segment_id"]

SOURCE_REPRESENTATION = "Binary labelmap"
CLOSED_SURFACE = "Closed surface"

#: Slicer's default terminology entry for a new segment (reference §1.1).
DEFAULT_TERMINOLOGY = ("Segmentation category and type - 3D Slicer General Anatomy list~SCT^85756007^Tissue~"
                       "SCT^85756007^Tissue~^^~Anatomic codes - DICOM master list~^^~^^")

#: Slicer's conversion parameters: name -> (default value, description), reference §1.3.
DEFAULT_CONVERSION_PARAMETERS: dict[str, tuple[str, str]] = {
    "Collapse labelmaps": ("1", "Merge the labelmaps into as few shared labelmaps as possible 1 = created "
                           "labelmaps will be shared if possible without overwriting each other."),
    "Compute surface normals": ("1", "Compute surface normals. 1 (default) = surface normals are computed. "
                                "0 = surface normals are not computed (slightly faster but produces less smooth "
                                "surface display)."),
    "Conversion method": ("0", "Method used for labelmap to surface conversion. 0 = flying edges, "
                          "1 = surface nets."),
    "Crop to reference image geometry": ("0", "Crop the model to the extent of reference geometry. 0 (default) = "
                                         "created labelmap will contain the entire model. 1 = created labelmap "
                                         "extent will be within reference image extent."),
    "Decimation factor": ("0.0", "Desired reduction in the total number of polygons. Range: 0.0 (no decimation) "
                          "to 1.0 (as much simplification as possible)."),
    "Joint smoothing": ("0", "Perform joint smoothing."),
    "Oversampling factor": ("1", "Determines the oversampling of the reference image geometry. If it's a number, "
                            "then all segments are oversampled with the same value (value of 1 means no "
                            "oversampling). If it has the value \"A\", then automatic oversampling is calculated."),
    "Reference image geometry": ("", "Image geometry description string determining the geometry of the "
                                 "labelmap that is created in course of conversion."),
    "Smoothing factor": ("0.5", "Smoothing factor. Range: 0.0 (no smoothing) to 1.0 (strong smoothing)."),
    "SurfaceNets smoothing": ("0", "Use SurfaceNets internal smoothing."),
    "Threshold fraction": ("0.5", "Determines the threshold that the closed surface is created at as a "
                           "fractional value between 0 and 1."),
}

_ALNUM = string.ascii_letters + string.digits


def generate_segment_id(existing: Iterable[str] = (), requested: str | None = None) -> str:
    """A unique segment id the way Slicer makes one.

    With no request: a UUID-derived DICOM UID ``2.25.<128-bit decimal>``. A requested id that
    is taken gets ``_<N>`` appended (reference §1.1).
    """
    taken = set(existing)
    if not requested:
        while True:
            sid = f"2.25.{uuid.uuid4().int}"
            if sid not in taken:
                return sid
    if requested not in taken:
        return requested
    n = 1
    while f"{requested}_{n}" in taken:
        n += 1
    return f"{requested}_{n}"


def random_slicer_id() -> str:
    """``S_`` + 16 random alphanumerics (Slicer's non-UUID build)."""
    return "S_" + "".join(secrets.choice(_ALNUM) for _ in range(16))


def _color(value) -> tuple[float, float, float]:
    try:
        c = tuple(float(v) for v in value)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: an integer beyond float
        raise InvalidInputError(f"a color must be three numbers in 0..1, got {value!r}") from exc
    if len(c) != 3 or not all(0.0 <= v <= 1.0 for v in c):
        raise InvalidInputError(f"a color must be three numbers in 0..1, got {value!r}")
    return c  # type: ignore[return-value]


@dataclass(eq=False)
class Segment:
    """One segment: metadata plus its packed mask (on the segmentation's grid)."""

    id: str
    name: str
    mask: Mask
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    name_auto_generated: bool = True
    color_auto_generated: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    visible: bool = True
    #: label value the segment had in its file layer (kept for round trips; layers are recomputed)
    label_value: int = 1

    def __post_init__(self) -> None:
        self.color = _color(self.color)
        self.tags = dict(self.tags)

    @property
    def terminology(self) -> str | None:
        return self.tags.get("TerminologyEntry")

    @property
    def status(self) -> str | None:
        return self.tags.get("Segmentation.Status")

    def __repr__(self) -> str:
        return f"<Segment {self.id!r} {self.name!r} box {self.mask.box_extent}>"


class Segmentation:
    """An ordered set of possibly overlapping segments on one reference grid.

    Parameters
    ----------
    geometry : ImageGeometry
        The reference grid every segment's mask lives on.
    backend : str or Backend, optional
        Where the masks are held.
    """

    def __init__(self, geometry: ImageGeometry, *, backend: str | Backend | None = None) -> None:
        if not isinstance(geometry, ImageGeometry):
            raise InvalidInputError(f"geometry must be an ImageGeometry, got {type(geometry).__name__}")
        self.geometry = geometry
        self.backend = get_backend(backend)
        self._segments: dict[str, Segment] = {}
        self.source_representation = SOURCE_REPRESENTATION
        self.contained_representations: list[str] = [SOURCE_REPRESENTATION]
        self.conversion_parameters: dict[str, tuple[str, str]] = dict(DEFAULT_CONVERSION_PARAMETERS)
        #: header keys read from a file that gpuseg does not interpret, written back unchanged
        self.extra_fields: dict[str, str] = {}
        #: per-segment cache of derived representations (e.g. closed surfaces), keyed by segment id
        self._derived: dict[str, dict[str, object]] = {}

    # --- container protocol -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._segments)

    def __iter__(self) -> Iterator[Segment]:
        return iter(list(self._segments.values()))

    def __contains__(self, key: str) -> bool:
        try:
            self.segment(key)
            return True
        except UnknownSegmentError:
            return False

    def __getitem__(self, key: str | int) -> Segment:
        return self.segment(key)

    @property
    def segment_ids(self) -> list[str]:
        return list(self._segments)

    @property
    def segments(self) -> list[Segment]:
        return list(self._segments.values())

    def segment(self, key: str | int) -> Segment:
        """A segment by id, by name (if unique), or by position."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            ids = list(self._segments)
            if not -len(ids) <= key < len(ids):
                raise UnknownSegmentError(f"segment index {key} is out of range (0..{len(ids) - 1})")
            return self._segments[ids[key]]
        if key in self._segments:
            return self._segments[key]
        named = [s for s in self._segments.values() if s.name == key]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise UnknownSegmentError(f"segment name {key!r} is ambiguous ({len(named)} segments); use an id")
        names = ", ".join(repr(s.name) for s in list(self._segments.values())[:10])
        raise UnknownSegmentError(f"no segment with id or name {key!r} (segments: {names or 'none'})")

    def index_of(self, key: str) -> int:
        return list(self._segments).index(self.segment(key).id)

    # --- editing the list --------------------------------------------------------------------
    def _unique_name(self, base: str = "Segment") -> str:
        names = {s.name for s in self._segments.values()}
        n = 1
        while f"{base}_{n}" in names:
            n += 1
        return f"{base}_{n}"

    def add_segment(self, mask: Mask | None = None, *, name: str | None = None, segment_id: str | None = None,
                    color=None, tags: dict[str, str] | None = None, visible: bool = True,
                    label_value: int = 1) -> Segment:
        """Append a segment (an empty one if ``mask`` is None) and return it.

        Without a name the segment is called ``Segment_<N>`` (auto-generated), as in Slicer.
        """
        if mask is None:
            mask = Mask.empty(self.geometry, backend=self.backend)
        self._check_mask(mask)
        sid = generate_segment_id(self._segments, segment_id)
        t = {"Segmentation.Status": "inprogress", "TerminologyEntry": DEFAULT_TERMINOLOGY}
        if tags:
            t.update(tags)
        seg = Segment(id=sid, name=name if name else self._unique_name(), mask=mask,
                      color=_color(color) if color is not None else (0.5, 0.5, 0.5),
                      name_auto_generated=not name, color_auto_generated=color is None, tags=t,
                      visible=visible, label_value=int(label_value))
        self._segments[sid] = seg
        return seg

    def _check_mask(self, mask: Mask) -> None:
        if not isinstance(mask, Mask):
            raise InvalidInputError(f"a segment's mask must be a Mask, got {type(mask).__name__}")
        if not mask.geometry.is_same_grid(self.geometry):
            raise GeometryMismatchError(f"segment mask grid {mask.geometry!r} differs from the segmentation's "
                                        f"reference grid {self.geometry!r}")
        if mask.backend is not self.backend:
            raise InvalidInputError(f"segment mask is on {mask.backend.name}, the segmentation on "
                                    f"{self.backend.name}; move it with mask.to()")

    def remove_segment(self, key: str | int) -> Segment:
        seg = self.segment(key)
        del self._segments[seg.id]
        self._derived.pop(seg.id, None)
        return seg

    def keep_only(self, keys: Iterable[str]) -> None:
        """Remove every segment whose id and name are both not in ``keys``."""
        keep = set(keys)
        for s in list(self._segments.values()):
            if s.id not in keep and s.name not in keep:
                self.remove_segment(s.id)

    def rename_segment(self, key: str | int, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInputError("a segment name must be a non-empty string")
        seg = self.segment(key)
        seg.name = name
        seg.name_auto_generated = False

    def set_color(self, key: str | int, color) -> None:
        seg = self.segment(key)
        seg.color = _color(color)
        seg.color_auto_generated = False

    def reorder(self, ids: list[str]) -> None:
        """Put the segments in the given order (a permutation of the current ids)."""
        ids = [self.segment(i).id for i in ids]
        if sorted(ids) != sorted(self._segments):
            raise InvalidInputError("reorder needs every segment id exactly once")
        self._segments = {i: self._segments[i] for i in ids}

    def move_segment(self, key: str | int, index: int) -> None:
        ids = list(self._segments)
        sid = self.segment(key).id
        ids.remove(sid)
        ids.insert(index, sid)
        self.reorder(ids)

    def set_mask(self, key: str | int, mask: Mask) -> None:
        """Replace a segment's mask; derived representations of that segment are dropped."""
        self._check_mask(mask)
        seg = self.segment(key)
        seg.mask = mask
        self.invalidate(seg.id)

    def invalidate(self, segment_id: str) -> None:
        """Drop cached derived representations of a segment (call after editing its mask)."""
        self._derived.pop(segment_id, None)

    def derived(self, segment_id: str) -> dict[str, object]:
        """The cache of derived representations of one segment (by representation name)."""
        return self._derived.setdefault(self.segment(segment_id).id, {})

    def merge(self, other: "Segmentation", *, prefix: str = "") -> list[Segment]:
        """Append copies of ``other``'s segments (same grid); ids are made unique."""
        if not other.geometry.is_same_grid(self.geometry):
            raise GeometryMismatchError("cannot merge segmentations on different grids")
        added = []
        for s in other:
            m = s.mask.to(self.backend).copy()
            seg = self.add_segment(m, name=prefix + s.name, segment_id=s.id, color=s.color, tags=s.tags,
                                   visible=s.visible, label_value=s.label_value)
            seg.name_auto_generated = s.name_auto_generated
            seg.color_auto_generated = s.color_auto_generated
            added.append(seg)
        return added

    # --- conversions -----------------------------------------------------------------------
    def label_array(self, segment_ids: Iterable[str] | None = None, dtype=np.uint16) -> np.ndarray:
        """A merged labelmap of the whole grid: the n-th listed segment gets value n+1, and
        later segments overwrite earlier ones where they overlap (Slicer's
        GenerateMergedLabelmap)."""
        ids = [self.segment(s).id for s in (segment_ids if segment_ids is not None else self._segments)]
        out = np.zeros(self.geometry.shape, dtype=dtype)
        for n, sid in enumerate(ids, start=1):
            m = self._segments[sid].mask
            ext = m.box_extent
            if ext.is_empty:
                continue
            out[ext.slices][m.to_numpy(ext)] = n
        return out

    @property
    def nbytes(self) -> int:
        """Device bytes held by all segment masks."""
        return sum(s.mask.nbytes for s in self._segments.values())

    def __repr__(self) -> str:
        return f"<Segmentation {len(self)} segments on {self.geometry!r}, {self.backend.name}>"
