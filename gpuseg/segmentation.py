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
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from .backends import Backend, get_backend
from .colors import segment_color
from .errors import GeometryMismatchError, GpusegError, InvalidInputError, UnknownSegmentError
from .geometry import ImageGeometry
from .mask import Mask
from .representations import (BINARY_LABELMAP, CLOSED_SURFACE, PARAMETERS, REPRESENTATIONS, ConversionContext,
                              cheapest_path, known_parameter, parameter_text, parse_parameters, read_only)

__all__ = ["Segment", "Segmentation", "DEFAULT_CONVERSION_PARAMETERS", "DEFAULT_TERMINOLOGY",
           "generate_segment_id"]

SOURCE_REPRESENTATION = BINARY_LABELMAP

#: Slicer's default terminology entry for a new segment (reference §1.1).
DEFAULT_TERMINOLOGY = ("Segmentation category and type - 3D Slicer General Anatomy list~SCT^85756007^Tissue~"
                       "SCT^85756007^Tissue~^^~Anatomic codes - DICOM master list~^^~^^")

#: Slicer's core conversion parameters: name -> (default value, description), reference §1.3
#: (defined with their parsers in :mod:`gpuseg.representations`).
DEFAULT_CONVERSION_PARAMETERS: dict[str, tuple[str, str]] = {p.name: (p.default, p.description)
                                                             for p in PARAMETERS.values()}

class _ReadOnlyParameters(dict):
    """A dict (so that it serializes like one) that refuses changes: conversion parameters
    change through Segmentation.set_conversion_parameter, which checks them."""

    def _refuse(self, *args, **kwargs):
        raise InvalidInputError("conversion parameters are read-only here; use "
                                "Segmentation.set_conversion_parameter(name, value)")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = __ior__ = _refuse  # type: ignore


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
    #: derived representations: name -> (stamp, value); see Segmentation.representation
    _representations: dict[str, tuple[Any, Any]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.color = _color(self.color)
        self.tags = dict(self.tags)

    def __setattr__(self, name: str, value) -> None:
        if name == "mask":
            # a new mask: everything derived from the old one goes (its stamps could not match anyway)
            if not isinstance(value, Mask):
                raise InvalidInputError(f"a segment's mask must be a Mask, got {type(value).__name__}")
            reps = self.__dict__.get("_representations")
            if reps:
                reps.clear()
        object.__setattr__(self, name, value)

    @property
    def cached_representations(self) -> list[str]:
        """Names of the derived representations held in the cache (up to date or not; see
        :attr:`Segmentation.contained_representations` for the up-to-date ones)."""
        return list(self._representations)

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
        #: the representation names a file listed when it was read (Slicer re-creates them on
        #: load; gpuseg converts on demand). What is written comes from the cache.
        self.listed_representations: list[str] = [SOURCE_REPRESENTATION]
        self._params: dict[str, tuple[str, str]] = dict(DEFAULT_CONVERSION_PARAMETERS)
        #: header keys read from a file that gpuseg does not interpret, written back unchanged
        self.extra_fields: dict[str, str] = {}

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
        raise UnknownSegmentError(f"no segment with id or name {key!r}" + self._suggest(str(key)))

    def _suggest(self, key: str) -> str:
        """A hint for an unknown segment: a case-insensitive match, else the closest names (difflib),
        else the first names."""
        import difflib

        names = [s.name for s in self._segments.values()]
        if not names:
            return " (the segmentation has no segments)"
        folded = [n for n in names if n.casefold() == key.casefold()]
        close = folded or difflib.get_close_matches(key.casefold(), [n.casefold() for n in names], n=5, cutoff=0.5)
        if close and not folded:
            lower = {n.casefold(): n for n in reversed(names)}
            close = [lower[c] for c in close]
        if close:
            return f"; did you mean {', '.join(repr(n) for n in close)}?"
        shown = ", ".join(repr(n) for n in names[:10])
        return f" (segments: {shown}{f', ... {len(names) - 10} more' if len(names) > 10 else ''})"

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
                      color=_color(color) if color is not None else segment_color(len(self._segments)),
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
        """Replace a segment's mask; its derived representations are dropped."""
        self._check_mask(mask)
        seg = self.segment(key)
        seg.mask = mask  # Segment drops its cache on a new mask

    def invalidate(self, segment_id: str) -> None:
        """Drop a segment's cached derived representations now (to free memory).

        Never needed for correctness: every cached value carries the versions of the masks
        it was made from, and one whose versions no longer match is never served.
        """
        self.segment(segment_id)._representations.clear()

    # --- conversion parameters (reference §1.3; docs/representations.md) ---------------------
    @property
    def conversion_parameters(self) -> Mapping[str, tuple[str, str]]:
        """Read-only copy ``name -> (value text, description)``; change values with
        :meth:`set_conversion_parameter`."""
        return _ReadOnlyParameters(self._params)

    @conversion_parameters.setter
    def conversion_parameters(self, params: Mapping[str, tuple[str, str]]) -> None:
        # used by file readers: values are kept as written (a file may hold values of rules
        # gpuseg does not have); the rules check the values they read when they run
        new = {}  # exactly the file's (a missing one takes its default when a rule reads it)
        for name, pair in dict(params).items():
            if not isinstance(name, str) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InvalidInputError(f"conversion parameters map a name to (value, description), got "
                                        f"{name!r}: {pair!r}")
            new[name] = (str(pair[0]), str(pair[1]))
        self._params = new

    def conversion_parameter(self, name: str) -> str:
        """The value text of one conversion parameter (its default if it is not set)."""
        if name in self._params:
            return self._params[name][0]
        p = known_parameter(name)
        if p is None:
            raise InvalidInputError(f"unknown conversion parameter {name!r}")
        return p.default

    def set_conversion_parameter(self, name: str, value) -> None:
        """Set a conversion parameter (Slicer's ``SetConversionParameter``).

        Parameters
        ----------
        name : str
            One of Slicer's parameter names (:data:`gpuseg.representations.PARAMETERS`, or
            SlicerRT's ``Default slice thickness`` / ``End capping``).
        value : str, number or bool
            Booleans become 0/1.

        Raises
        ------
        InvalidInputError
            Unknown name, or a value that is not valid for the parameter.
        UnsupportedParameterError
            A value Slicer defines but gpuseg does not implement.
        """
        p = known_parameter(name)
        if p is None:
            raise InvalidInputError(f"unknown conversion parameter {name!r}; known: {', '.join(PARAMETERS)}")
        text = parameter_text(value)
        texts = {n: v for n, (v, _) in self._params.items()}
        texts[name] = text
        # check it together with the parameters its reasons look at (method, smoothing)
        related = [n for n in ("Conversion method", "Smoothing factor") if n != name]
        parse_parameters(texts, [name] + related)
        if p.name == "Reference image geometry" and text:
            from .representations import check_reference_geometry

            check_reference_geometry({name: p.parse(text)}, self)
        self._params[name] = (text, self._params.get(name, (p.default, p.description))[1])

    def _parameter_texts(self, overrides: Mapping[str, Any] | None) -> dict[str, str]:
        texts = {n: v for n, (v, _) in self._params.items()}
        for n, v in (overrides or {}).items():
            if known_parameter(n) is None:
                raise InvalidInputError(f"unknown conversion parameter {n!r}; known: {', '.join(PARAMETERS)}")
            texts[n] = parameter_text(v)
        return texts

    # --- representations (the graph of gpuseg.representations) --------------------------------
    def representation(self, segment: str | int, name: str, *, parameters: Mapping[str, Any] | None = None):
        """One segment's representation ``name``, through the cheapest conversion path.

        Parameters
        ----------
        segment : str or int
            Id, name or position.
        name : str
            ``"Binary labelmap"`` (the mask itself), ``"Closed surface"``, ``"Fractional
            labelmap"``, ``"Planar contour"`` or another registered representation.
        parameters : mapping, optional
            Conversion parameter values for this call only (Slicer's names).

        Returns
        -------
        object
            A :class:`~gpuseg.mask.Mask`, :class:`~gpuseg.surface.Surface`,
            :class:`~gpuseg.surface.representations.FractionalLabelmap` or ``{slice: [contours]}``.
            With joint smoothing, the surface is smoothed together with all the segments.

        Raises
        ------
        InvalidInputError
            Unknown representation, or a bad parameter value.
        UnsupportedParameterError
            A parameter on the path has a value gpuseg does not implement.

        Examples
        --------
        >>> import numpy as np, gpuseg
        >>> g = gpuseg.ImageGeometry((4, 4, 4))
        >>> seg = gpuseg.Segmentation(g, backend="cpu")
        >>> a = np.zeros(g.shape, bool); a[1:3, 1:3, 1:3] = True
        >>> s = seg.add_segment(gpuseg.Mask.from_numpy(a, g, backend="cpu"), name="cube")
        >>> seg.representation("cube", "Closed surface", parameters={"Smoothing factor": 0}).n_faces
        44
        >>> seg.contained_representations
        ['Binary labelmap']
        """
        seg = self.segment(segment)
        group = None if name == self.source_representation else self.segment_ids
        return self._convert([seg.id], name, parameters, group=group)[0]

    def representations(self, name: str, segments: Iterable[str | int] | None = None, *,
                        parameters: Mapping[str, Any] | None = None, progress: bool = False) -> list:
        """Representation ``name`` of several segments (default: all), converted together.

        Like :meth:`representation`; segments that need converting are converted in one call
        of each rule (surface nets mesh them in one pass). With joint smoothing the listed
        segments are smoothed as one group.

        Returns
        -------
        list
            One value per segment, in order.
        """
        ids = [self.segment(k).id for k in (segments if segments is not None else self.segment_ids)]
        return self._convert(ids, name, parameters, progress=progress)

    def _stamps(self, ids: list[str], name: str, texts: Mapping[str, str], group: list[str] | None = None):
        """The conversion path to ``name``, parsed values per rule and stamps per step and segment."""
        if self.source_representation != SOURCE_REPRESENTATION:  # pragma: no cover - readers keep the default
            raise InvalidInputError(f"source representation {self.source_representation!r} is not supported")
        path = cheapest_path(self.source_representation, name)
        values = [parse_parameters(texts, r.parameters) for r in path]
        segs = [self._segments[i] for i in ids]
        members = [self._segments[i] for i in (group if group is not None else ids)]
        joint = bool(path) and path[0].joint is not None and path[0].joint(values[0])  # type: ignore[misc]
        if joint:
            shared = tuple((x.id, x.mask.version) for x in members)
            prev: list = [shared for _ in segs]
        else:
            prev = [((x.id, x.mask.version),) for x in segs]
        stamps = []
        for r, v in zip(path, values):
            prev = [(r.name, p, tuple(sorted(v.items()))) for p in prev]
            stamps.append(prev)
        return path, values, stamps, joint, members

    @staticmethod
    def _hit(seg: Segment, name: str, stamp) -> bool:
        entry = seg._representations.get(name)
        return entry is not None and entry[0] == stamp

    def _convert(self, ids: list[str], name: str, overrides, *, progress: bool = False,
                 group: list[str] | None = None) -> list:
        segs = [self._segments[i] for i in ids]
        for x in segs:
            self._check_mask(x.mask)
        if name == self.source_representation:
            return [x.mask for x in segs]
        texts = self._parameter_texts(overrides)
        path, values, stamps, joint, members = self._stamps(ids, name, texts, group)
        if joint and group is not None and list(group) != ids:
            # a jointly smoothed value depends on the whole group: convert the group (ids are in it)
            path, values, stamps, joint, members = self._stamps(list(group), name, texts, group)
            for x in members:
                self._check_mask(x.mask)
            self._run(members, path, values, stamps, joint, progress)
        else:
            self._run(segs, path, values, stamps, joint, progress)
        return [self._finish(self._segments[i], name) for i in ids]

    def _finish(self, seg: Segment, name: str):
        value = seg._representations[name][1]
        rep = REPRESENTATIONS.get(name)
        if rep is not None and rep.annotate is not None:
            rep.annotate(value, seg)
        return value

    def _run(self, segs: list[Segment], path, values, stamps, joint: bool, progress: bool) -> None:
        """Convert along ``path`` what the cache does not hold, step by step; cache every step."""
        n = len(path)
        need: list[set[int]] = [set() for _ in range(n)]
        need[-1] = {i for i, x in enumerate(segs) if not self._hit(x, path[-1].target, stamps[-1][i])}
        for k in range(n - 1, 0, -1):
            need[k - 1] = {i for i in need[k] if not self._hit(segs[i], path[k - 1].target, stamps[k - 1][i])}
        if joint and need[0]:
            need[0] = set(range(len(segs)))
        inputs = {i: segs[i].mask for i in need[0]}
        for k, (rule, v) in enumerate(zip(path, values)):
            todo = sorted(need[k])
            if todo:
                ctx = ConversionContext(self, [segs[i] for i in todo], progress)
                results = rule.convert([inputs[i] for i in todo], dict(v), ctx)
                if len(results) != len(todo):  # pragma: no cover - a rule's contract
                    raise RuntimeError(f"rule {rule.name!r} returned {len(results)} values for {len(todo)} inputs")
                for i, value in zip(todo, results):
                    # cached values are shared with every caller: their arrays are read-only
                    segs[i]._representations[rule.target] = (stamps[k][i], read_only(value))
            if k + 1 < n:
                inputs = {i: segs[i]._representations[rule.target][1] for i in need[k + 1]}

    @property
    def contained_representations(self) -> list[str]:
        """The representations every segment holds up to date, under the segmentation's own
        conversion parameters: the source, then each derived one present in the cache for
        all segments (Slicer keeps the same set in every segment). Files list these."""
        names = [self.source_representation]
        if not self._segments:
            return names
        texts = self._parameter_texts(None)
        ids = self.segment_ids
        for name in REPRESENTATIONS:
            if name == self.source_representation:
                continue
            try:
                path, _, stamps, _, _ = self._stamps(ids, name, texts, ids)
            except GpusegError:  # parameters gpuseg cannot honour: nothing of it can be present
                continue
            segs = [self._segments[i] for i in ids]
            if all(self._hit(x, path[-1].target, stamps[-1][i]) for i, x in enumerate(segs)):
                names.append(name)
        return names

    @contained_representations.setter
    def contained_representations(self, names: Iterable[str]) -> None:
        # readers give the file's list; it is kept as listed_representations
        self.listed_representations = [str(n) for n in names]

    def add_segment_from_surface(self, surface, *, name: str | None = None, color=None,
                                 what: str = "closed surface", **kwargs) -> Segment:
        """Add a segment from a closed surface (Slicer's ``Closed surface to binary labelmap``
        rule, with this segmentation's conversion parameters).

        Parameters
        ----------
        surface : Surface or (vertices, faces)
            A closed mesh in world LPS mm.
        name, color
            As in :meth:`add_segment` (other keyword arguments too).
        what : str
            The mesh's name in error messages.

        Raises
        ------
        InvalidInputError
            The mesh is not closed.
        UnsupportedParameterError
            A geometry parameter gpuseg cannot honour, or, with ``Crop to reference image
            geometry`` = 0, a mesh that reaches past the grid.
        """
        from .surface.mesh import Surface

        if not isinstance(surface, Surface):
            try:
                v, f = surface
            except (TypeError, ValueError):
                raise InvalidInputError(f"{what}: expected a Surface or (vertices, faces)") from None
            surface = Surface(np.asarray(v, np.float64), np.asarray(f, np.int64))
        path = cheapest_path(CLOSED_SURFACE, self.source_representation)
        texts = self._parameter_texts(None)
        # the segment-to-be, so that the rules can name it in their messages
        holder = Segment(id="", name=what, mask=Mask.empty(self.geometry, backend=self.backend))
        value: Any = surface
        for rule in path:
            ctx = ConversionContext(self, [holder])
            value = rule.convert([value], parse_parameters(texts, rule.parameters), ctx)[0]
        return self.add_segment(value, name=name, color=color, **kwargs)

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
