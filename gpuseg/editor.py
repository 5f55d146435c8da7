"""The Segment Editor engine: paint and erase with Slicer's masking rules, preview, undo.

Work is limited to what the brush touches: a stroke is rasterized on the host (float64, in
world millimetres, so anisotropic and oblique grids are exact) into a small packed block over
the stroke's bounding box; the editable area, the intensity range and the overwrite rules
are evaluated only over that block, and only the block's words of the affected segments
change on the device. Undo keeps, per level and per changed segment, the XOR of the old and
new words of the block, sparse (only words that changed).

Masking (reference §4), for an edit of segment S:

* editable area: ``everywhere``, ``inside_all`` (inside any segment), ``inside_visible``,
  ``outside_all`` (outside every other segment), ``outside_visible``, or ``inside`` a given
  segment X; S's own voxels are always editable;
* editable intensity range: only voxels with lo <= I <= hi (needs the source image);
* modify other segments: ``overwrite_all`` (default: painted voxels are removed from every
  other segment), ``overwrite_visible`` (only from visible ones) or ``allow_overlap``.

Erase removes the stroke (masked the same way) from S, or from every segment with
``erase_all_segments``. Erase with editable area "inside X" moves the erased voxels of S back
into X (Slicer's special case).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numba import njit

from .backends.base import format_bytes, parse_bytes
from .errors import InvalidInputError, UnknownSegmentError
from .geometry import Extent
from .image import Image
from .mask import Mask, box_for_extent, extent_of_box
from .ops.threshold import threshold
from .segmentation import Segmentation

__all__ = ["Editor", "Masking", "StrokePreview", "GrowPreview", "EDITABLE_AREAS", "OVERWRITE_MODES"]

EDITABLE_AREAS = ("everywhere", "inside_all", "inside_visible", "outside_all", "outside_visible", "inside")
OVERWRITE_MODES = ("overwrite_all", "overwrite_visible", "allow_overlap")
MAX_DIAMETER_MM = 1000.0


@dataclass
class Masking:
    """Slicer's masking settings (see the module doc)."""

    editable_area: str = "everywhere"
    mask_segment: str | None = None
    intensity_range: tuple[float, float] | None = None
    overwrite: str = "overwrite_all"

    def check(self, seg: Segmentation) -> None:
        if self.editable_area not in EDITABLE_AREAS:
            raise InvalidInputError(f"unknown editable area {self.editable_area!r}; choose one of "
                                    f"{', '.join(EDITABLE_AREAS)}")
        if self.overwrite not in OVERWRITE_MODES:
            raise InvalidInputError(f"unknown overwrite mode {self.overwrite!r}; choose one of "
                                    f"{', '.join(OVERWRITE_MODES)}")
        if self.editable_area == "inside":
            if self.mask_segment is None:
                raise InvalidInputError("editable area 'inside' needs mask_segment")
            seg.segment(self.mask_segment)
        if self.intensity_range is not None:
            lo, hi = (float(v) for v in self.intensity_range)
            if math.isnan(lo) or math.isnan(hi) or lo > hi:
                raise InvalidInputError(f"editable intensity range {self.intensity_range} is empty or NaN")


@dataclass
class StrokePreview:
    """What an edit would change: the rasterized region's block, not yet committed."""

    segment_id: str
    erase: bool
    erase_all: bool
    box: tuple[int, int, int, int, int, int]
    stroke: np.ndarray  # host words of the rasterized region over box
    masking: Masking
    _editor: "Editor" = field(repr=False)
    #: erase from these segments (ids) instead of only the selected one (all visible, for scissors)
    erase_targets: list[str] | None = None
    #: Slicer's "set" mode (threshold): the segment becomes the region inside the editable area
    replace: bool = False
    #: how to rasterize the stroke again (brush strokes only): lets undo store less
    recipe: tuple | None = None

    @property
    def extent(self) -> Extent:
        return extent_of_box(self.box, self._editor.segmentation.geometry.shape[2])

    def slice(self, axis: int, index: int):
        """The part of display slice ``index`` along ``axis`` the stroke covers, after masking:
        ``(bbox, packed)`` where bbox is ``(r0, r1, c0, c1)`` in slice rows/columns and ``packed``
        is ``numpy.packbits`` (little bit order) of the bool array of that box, row-major; None if
        the stroke does not reach the slice."""
        modifier = self._editor._modifier(self)
        dense = _unpack(modifier, self.box, self._editor.segmentation.geometry.shape[2])
        ext = self.extent
        lo = (ext.k0, ext.j0, ext.i0)
        if not lo[axis] <= index < (ext.k1, ext.j1, ext.i1)[axis]:
            return None
        sl = np.take(dense, index - lo[axis], axis=axis)
        rows, cols = np.nonzero(sl)
        if rows.size == 0:
            return None
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        off = [(ext.j0, ext.i0), (ext.k0, ext.i0), (ext.k0, ext.j0)][axis]
        block = sl[r0:r1, c0:c1]
        bbox = (int(r0 + off[0]), int(r1 + off[0]), int(c0 + off[1]), int(c1 + off[1]))
        return bbox, np.packbits(block, bitorder="little")


@njit(cache=True, nogil=True)
def _stamp_balls(dense, k0, j0, i0, cijk, m, r2, skip, lo, hi, half):
    """Set every voxel of ``dense`` (origin k0, j0, i0) whose centre is within sqrt(r2) mm of a
    stamp centre (continuous ijk). The difference of a voxel centre and a stamp centre is
    ((0 + di*m[:, 0]) + dj*m[:, 1]) + dk*m[:, 2] in float64, without the slice normal's axis
    ``skip`` for discs (then only the voxels of the stamp's slice count)."""
    for s in range(cijk.shape[0]):
        c = cijk[s]
        b0 = np.empty(3, np.int64)
        b1 = np.empty(3, np.int64)
        for a in range(3):
            b0[a] = max(np.int64(np.floor(c[a] - half[a] - 1)), lo[a])
            b1[a] = min(np.int64(np.ceil(c[a] + half[a] + 1)) + 1, hi[a])
        if skip >= 0:
            plane = np.int64(np.rint(c[skip]))
            if plane < b0[skip] or plane >= b1[skip]:
                continue
            b0[skip] = plane
            b1[skip] = plane + 1
        for k in range(b0[2], b1[2]):
            for j in range(b0[1], b1[1]):
                for i in range(b0[0], b1[0]):
                    d2 = 0.0
                    for x in range(3):
                        v = 0.0
                        if skip != 0:
                            v = v + (i - c[0]) * m[x, 0]
                        if skip != 1:
                            v = v + (j - c[1]) * m[x, 1]
                        if skip != 2:
                            v = v + (k - c[2]) * m[x, 2]
                        d2 = d2 + v * v
                    if d2 <= r2:
                        dense[k - k0, j - j0, i - i0] = True


def _li(counts: np.ndarray, values: np.ndarray) -> float:
    """Li's iterative minimum cross-entropy threshold on an integer histogram (values shifted
    so that the smallest is 0, as the method needs positive means)."""
    v = values.astype(np.float64) - values[0]
    w = counts.astype(np.float64)
    present = v[w > 0]
    tol = float(np.min(np.diff(present))) / 2 if present.size > 1 else 0.5
    t_next, t_cur = float((w * v).sum() / w.sum()), -2 * tol
    while abs(t_next - t_cur) > tol:
        t_cur = t_next
        fg = v > t_cur
        mean_f = (w[fg] * v[fg]).sum() / w[fg].sum()
        mean_b = (w[~fg] * v[~fg]).sum() / w[~fg].sum()
        if mean_b == 0:
            break
        t_next = float((mean_b - mean_f) / (np.log(mean_b) - np.log(mean_f)))
    return t_next + float(values[0])


def _huang(counts: np.ndarray, values: np.ndarray) -> float:
    """Huang and Wang's fuzzy threshold (Shannon entropy): for each candidate t, the voxels at or
    below t belong to the background with membership 1 / (1 + |v - m_b| / C) (m_b their mean,
    rounded half up; C the histogram's value range), those above to the foreground likewise;
    the threshold minimises the summed fuzzy entropy (the first minimum wins)."""
    h = counts.astype(np.float64)
    v = values.astype(np.float64)
    nz = np.flatnonzero(h)
    first, last = int(nz[0]), int(nz[-1])
    if first == last:
        return float(values[first])
    c = float(values[last] - values[first])
    s = np.cumsum(h)
    w = np.cumsum(h * v)

    def shannon(mu):
        mu = np.clip(mu, 1e-300, 1.0)
        out = -mu * np.log(mu) - (1.0 - mu) * np.log(np.clip(1.0 - mu, 1e-300, None))
        return np.where(mu >= 1.0, 0.0, out)

    best, arg = np.inf, first
    span = np.arange(first, last + 1)
    for t in range(first, last):
        mb = math.floor(w[t] / s[t] + 0.5)
        mf = math.floor((w[last] - w[t]) / (s[last] - s[t]) + 0.5)
        lo, hi = span[span <= t], span[span > t]
        e = float((h[lo] * shannon(1.0 / (1.0 + np.abs(v[lo] - mb) / c))).sum()
                  + (h[hi] * shannon(1.0 / (1.0 + np.abs(v[hi] - mf) / c))).sum())
        if e < best:
            best, arg = e, t
    return float(values[arg])


def _triangle(counts: np.ndarray, values: np.ndarray) -> float:
    """Zack's triangle threshold: the bin farthest from the line joining the histogram's peak to
    the end of its longer tail."""
    h = counts.astype(np.float64)
    nz = np.flatnonzero(h)
    lo, hi = int(nz[0]), int(nz[-1])
    peak = int(np.argmax(h))
    if lo == hi:
        return float(values[lo])
    flip = (peak - lo) < (hi - peak)  # walk along the longer tail
    if flip:
        h = h[::-1]
        peak, lo = len(h) - 1 - peak, len(h) - 1 - hi
    width = peak - lo
    x = np.arange(width)
    height = h[peak]
    norm = math.hypot(height, width)
    dist = (height / norm) * x - (width / norm) * h[x + lo]
    level = int(np.argmax(dist)) + lo
    if flip:
        level = len(h) - 1 - level
    return float(values[level])


def _unpack(words: np.ndarray, box, ni: int) -> np.ndarray:
    ext = extent_of_box(box, ni)
    bits = np.unpackbits(words.view(np.uint8), bitorder="little").reshape(words.shape[0], words.shape[1], -1)
    return bits[:, :, :ext.shape[2]].astype(bool)


def _pack(dense: np.ndarray) -> np.ndarray:
    nk, nj, ni = dense.shape
    nw = (ni + 31) // 32
    pad = np.zeros((nk, nj, nw * 32), bool)
    pad[:, :, :ni] = dense
    return np.packbits(pad, axis=-1, bitorder="little").view("<u4").astype(np.uint32)


@dataclass
class GrowPreview:
    """A grow-from-seeds result not yet applied: each seed segment's grown words over ``box``."""

    segment_ids: list[str]
    region: Extent  # the voxels the computation covered
    box: tuple[int, int, int, int, int, int]  # the region's word box
    grown: list[np.ndarray]  # host words over box, one per seed segment
    editable: np.ndarray | None  # host words of the voxels masking lets change (None: all)
    _editor: "Editor" = field(repr=False)

    @property
    def extent(self) -> Extent:
        return extent_of_box(self.box, self._editor.segmentation.geometry.shape[2])

    def labels_slice(self, axis: int, index: int) -> np.ndarray | None:
        """A uint8 label image of the region's slice ``index`` along ``axis`` (0 = none, n = the
        n-th seed segment), in the region's own rows and columns; None outside the region."""
        ext = self.extent
        lo, hi = (ext.k0, ext.j0, ext.i0), (ext.k1, ext.j1, ext.i1)
        if not lo[axis] <= index < hi[axis]:
            return None
        ni = self._editor.segmentation.geometry.shape[2]
        out = None
        for n, words in enumerate(self.grown, start=1):
            plane = np.take(_unpack(words, self.box, ni), index - lo[axis], axis=axis)
            out = np.where(plane, np.uint8(n), out if out is not None else np.uint8(0)).astype(np.uint8)
        return out


@dataclass
class _Level:
    """One undo level. Each change is (segment id, box, kind, zlib bytes):

    * kind "xor": the block's old ^ new words;
    * kind "kept": for a brush stroke, the stroke's voxels that did *not* change (R & ~D, with R
      the rasterized stroke and D the change, D a subset of R). ``recipe`` regenerates R
      exactly (the stroke in voxel coordinates), so D = R & ~kept. Where strokes do not overlap
      earlier paint, "kept" is all zeros and costs a few bytes instead of the stroke's surface.
    """

    changes: list[tuple[str, tuple, str, bytes]]
    #: (points ijk float64 (n, 3), diameter mm, shape, axis) of a brush stroke, or None
    recipe: tuple | None = None

    @property
    def nbytes(self) -> int:
        n = sum(len(z) + 64 for _, _, _, z in self.changes)
        if self.recipe is not None and any(kind == "kept" for _, _, kind, _ in self.changes):
            n += self.recipe[0].nbytes + 64
        return n


class Editor:
    """Edits a :class:`Segmentation` against a source :class:`Image` (same grid)."""

    def __init__(self, segmentation: Segmentation, image: Image | None = None, *,
                 undo_budget: int | str = "256MB") -> None:
        if not isinstance(segmentation, Segmentation):
            raise InvalidInputError(f"an Editor edits a Segmentation, got {type(segmentation).__name__}")
        if image is not None:
            if image.backend is not segmentation.backend:
                raise InvalidInputError("image and segmentation must be on the same backend")
            image.geometry.check_same_grid(segmentation.geometry, "image and segmentation")
        self.segmentation = segmentation
        self.image = image
        self.masking = Masking()
        self.undo_budget = parse_bytes(undo_budget)
        self._undo: list[_Level] = []
        self._redo: list[_Level] = []

    # --- rasterizing strokes --------------------------------------------------------------
    def _points_ijk(self, points, space: str) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        if p.ndim == 1:
            p = p[None]
        if p.ndim != 2 or p.shape[1] != 3 or p.shape[0] == 0:
            raise InvalidInputError(f"stroke points must be an (N, 3) array with N >= 1, got shape {p.shape}")
        if not np.all(np.isfinite(p)):
            raise InvalidInputError("stroke points must be finite (got NaN or inf)")
        if space == "world":
            return self.segmentation.geometry.world_to_ijk_points(p)
        if space == "ijk":
            return p
        raise InvalidInputError(f"point space must be 'world' (LPS mm) or 'ijk', got {space!r}")

    def rasterize(self, points, diameter_mm: float, *, shape: str = "sphere", axis: int = 0,
                  space: str = "world") -> tuple[tuple, np.ndarray] | None:
        """The stroke as (word box, host words): every voxel whose centre is inside the brush at
        any stamp. Stamps are interpolated along the stroke at most a quarter diameter apart.
        ``shape``: ``sphere``, ``disc`` (in the slice of the grid axis ``axis`` through each
        stamp) or ``pixel`` (the nearest voxel). Points outside the volume are clipped."""
        g = self.segmentation.geometry
        ijk = self._points_ijk(points, space)
        if shape not in ("sphere", "disc", "pixel"):
            raise InvalidInputError(f"unknown brush shape {shape!r}; choose sphere, disc or pixel")
        if shape != "pixel":
            d = float(diameter_mm)
            if not math.isfinite(d) or d <= 0:
                raise InvalidInputError(f"brush diameter must be a positive number of mm, got {diameter_mm!r}")
            if d > MAX_DIAMETER_MM:
                raise InvalidInputError(f"brush diameter {d:g} mm is larger than {MAX_DIAMETER_MM:g} mm")
        if axis not in (0, 1, 2):
            raise InvalidInputError(f"disc axis must be 0 (axial, k), 1 (j) or 2 (i), got {axis!r}")
        nk, nj, ni = g.shape
        if shape == "pixel":
            idx = np.rint(ijk).astype(np.int64)
            keep = (idx >= 0).all(1) & (idx[:, 0] < ni) & (idx[:, 1] < nj) & (idx[:, 2] < nk)
            idx = idx[keep]
            if idx.size == 0:
                return None
            lo = idx.min(0)
            hi = idx.max(0) + 1
            ext = Extent(int(lo[2]), int(hi[2]), int(lo[1]), int(hi[1]), int(lo[0]), int(hi[0]))
            dense = np.zeros(ext.shape, bool)
            dense[idx[:, 2] - ext.k0, idx[:, 1] - ext.j0, idx[:, 0] - ext.i0] = True
            return self._block(ext, dense)
        r = d / 2.0
        # interpolate stamps: consecutive centres at most r / 2 apart (in mm)
        world = g.ijk_to_world_points(ijk)
        centres = [world[0]]
        for a, b in zip(world[:-1], world[1:]):
            n = int(math.ceil(np.linalg.norm(b - a) / (r / 2.0)))
            for t in range(1, n + 1):
                centres.append(a + (b - a) * (t / n))
        centres = np.asarray(centres)
        cijk = g.world_to_ijk_points(centres)
        half = r / np.asarray(g.spacing)  # voxels per axis (i, j, k): a box that holds the ball
        lo = np.floor(cijk.min(0) - half - 1).astype(np.int64)
        hi = np.ceil(cijk.max(0) + half + 1).astype(np.int64) + 1
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, [ni, nj, nk])
        if np.any(hi <= lo):
            return None
        ext = Extent(int(lo[2]), int(hi[2]), int(lo[1]), int(hi[1]), int(lo[0]), int(hi[0]))
        dense = np.zeros(ext.shape, bool)
        skip = 2 - axis if shape == "disc" else -1
        _stamp_balls(dense, ext.k0, ext.j0, ext.i0, cijk, np.ascontiguousarray(g.ijk_to_world[:3, :3]), r * r,
                     skip, lo, hi, half)
        if not dense.any():
            return None
        return self._block(ext, dense)

    def _block(self, ext: Extent, dense: np.ndarray):
        box = box_for_extent(ext)
        lead = ext.i0 - 32 * box[2]
        full = np.zeros((box[3], box[4], 32 * box[5]), bool)
        full[:, :, lead:lead + dense.shape[2]] = dense
        return box, _pack(full)

    # --- masking ----------------------------------------------------------------------------
    def _grid_words(self, box) -> np.ndarray:
        """Host words over ``box`` with every voxel of the grid set (the padding bits past the
        grid's last column stay clear)."""
        full = _pack(np.ones(extent_of_box(box, self.segmentation.geometry.shape[2]).shape, bool))
        words = np.zeros(box[3:], np.uint32)
        words[:, :, :full.shape[2]] = full
        return words

    def _editable(self, segment_id: str | Sequence[str], box, masking: Masking, erase: bool) -> np.ndarray:
        """Host words (over box) of the voxels the edit may change. ``segment_id`` is the edited
        segment (or several, for grow from seeds): its own voxels are always editable, and the
        editable area's "all / visible segments" mean the other segments."""
        seg = self.segmentation
        b = seg.backend
        ni = seg.geometry.shape[2]
        pad = self._grid_words(box)
        allowed = pad
        area = masking.editable_area
        edited = [segment_id] if isinstance(segment_id, str) else list(segment_id)

        def union(segs):
            acc = np.zeros(box[3:], np.uint32)
            for s in segs:
                if s.mask.nbytes:
                    acc |= b.to_numpy(s.mask.block(box))
            return acc

        own = union([seg[x] for x in edited])
        if area != "everywhere":
            others = [s for s in seg if s.id not in edited]
            if area == "inside_all":
                allowed = union(others)
            elif area == "inside_visible":
                allowed = union([s for s in others if s.visible])
            elif area == "outside_all":
                allowed = pad & ~union(others)
            elif area == "outside_visible":
                allowed = pad & ~union([s for s in others if s.visible])
            else:
                allowed = union([seg.segment(masking.mask_segment)])
            # the edited segment is always editable (so erasing "inside X" can move voxels back to X)
            allowed = allowed | own
        if masking.intensity_range is not None:
            if self.image is None:
                raise InvalidInputError("an editable intensity range needs the source image")
            lo, hi = masking.intensity_range
            inside = threshold(self.image, lo, hi, extent=extent_of_box(box, ni))
            allowed = allowed & (b.to_numpy(inside.block(box)) if inside.nbytes else np.zeros(box[3:], np.uint32))
        return allowed & pad

    def _modifier(self, p: StrokePreview) -> np.ndarray:
        return p.stroke & self._editable(p.segment_id, p.box, p.masking, p.erase)

    # --- effects ------------------------------------------------------------------------------
    def preview(self, segment: str, points, diameter_mm: float = 5.0, *, erase: bool = False,
                erase_all_segments: bool = False, shape: str = "sphere", axis: int = 0,
                space: str = "world") -> StrokePreview | None:
        """What painting (or erasing) the stroke would change; nothing is committed."""
        sid = self.segmentation.segment(segment).id
        self.masking.check(self.segmentation)
        block = self.rasterize(points, diameter_mm, shape=shape, axis=axis, space=space)
        if block is None:
            return None
        box, stroke = block
        m = self.masking
        recipe = (np.array(self._points_ijk(points, space), dtype=np.float64), float(diameter_mm), shape, int(axis))
        return StrokePreview(sid, erase, erase_all_segments, box, stroke,
                             Masking(m.editable_area, m.mask_segment, m.intensity_range, m.overwrite), self,
                             recipe=recipe)

    def paint(self, segment: str, points, diameter_mm: float = 5.0, **kw) -> int:
        """Paint a stroke into ``segment``; returns the number of voxels that changed anywhere."""
        p = self.preview(segment, points, diameter_mm, **kw)
        return self.commit(p) if p is not None else 0

    def erase(self, segment: str, points, diameter_mm: float = 5.0, *, all_segments: bool = False, **kw) -> int:
        p = self.preview(segment, points, diameter_mm, erase=True, erase_all_segments=all_segments, **kw)
        return self.commit(p) if p is not None else 0

    def commit(self, p: StrokePreview) -> int:
        """Apply a preview (with the segmentation as it is now); one undo level."""
        seg = self.segmentation
        if p.segment_id not in seg.segment_ids:
            raise UnknownSegmentError(f"segment {p.segment_id!r} was removed since the preview")
        modifier = self._modifier(p)
        target = seg[p.segment_id]
        plan: list[tuple[object, str, np.ndarray]] = []
        if p.replace:  # Set mode: voxels of the editable area outside the region leave the segment
            editable = self._editable(p.segment_id, p.box, p.masking, False)
            plan.append((target, "andnot", editable & ~modifier))
        if p.erase:
            victims = list(seg) if p.erase_all else (
                [seg[t] for t in p.erase_targets] if p.erase_targets is not None else [target])
            for s in victims:
                plan.append((s, "andnot", modifier))
            if not p.erase_all and p.erase_targets is None and p.masking.editable_area == "inside":
                x = seg.segment(p.masking.mask_segment)
                if x.id != target.id:
                    own = seg.backend.to_numpy(target.mask.block(p.box))
                    plan.append((x, "or", modifier & own))
        else:
            plan.append((target, "or", modifier))
            if p.masking.overwrite != "allow_overlap":
                for s in seg:
                    if s.id != target.id and (p.masking.overwrite == "overwrite_all" or s.visible):
                        plan.append((s, "andnot", modifier))
        return self._apply(plan, p.box, (p.recipe, p.stroke) if p.recipe is not None else None)

    def _apply(self, plan, box, recipe=None) -> int:
        b = self.segmentation.backend
        # combine the plan per segment first (a segment may be cleared and filled in one edit)
        merged: dict[str, list] = {}
        for s, op, words in plan:
            merged.setdefault(s.id, [s, []])[1].append((op, words))
        diffs = []
        total = 0
        for s, ops in merged.values():
            if not any(w.any() for _, w in ops) or (all(op == "andnot" for op, _ in ops) and s.mask.nbytes == 0):
                continue
            old = b.to_numpy(s.mask.block(box)) if s.mask.nbytes else np.zeros(box[3:], np.uint32)
            new = old
            for op, words in ops:
                new = new | words if op == "or" else new & ~words
            diff = old ^ new
            if not diff.any():
                continue
            s.mask.apply_block_(b.asarray(new), box, "set")
            self.segmentation.invalidate(s.id)
            diffs.append((s.id, diff))
            total += int(np.unpackbits(diff.view(np.uint8)).sum())
        if not diffs:
            return 0
        # only what changed is kept: the XOR is zero outside the changed bits, so it compresses
        as_xor = [(sid, box, "xor", zlib.compress(d.tobytes(), 9)) for sid, d in diffs]
        level = _Level(as_xor)
        if recipe is not None:  # a brush stroke: maybe cheaper as "the stroke minus what stayed"
            (points, diameter, shape, axis), stroke = recipe
            as_kept = [(sid, box, "kept", zlib.compress((stroke & ~d).tobytes(), 9)) for sid, d in diffs]
            alt = _Level(as_kept, (points, diameter, shape, axis))
            if alt.nbytes < level.nbytes:
                level = alt
        self._push(level)
        return total

    # --- scissors, draw, threshold -------------------------------------------------------------
    def _shape_in_slice(self, points, shape: str, axis: int, space: str):
        """(slice index, dense in-plane bool array, (row0, col0)) of a 2D shape drawn in the slice
        of grid axis ``axis`` through the first point. In-plane rows/columns are the other two
        grid axes in (k, j, i) order. A pixel is inside when its centre is (even-odd rule for a
        polygon; within the radius in mm for a circle whose rim passes through the second point;
        between the corners for a rectangle)."""
        g = self.segmentation.geometry
        if axis not in (0, 1, 2):
            raise InvalidInputError(f"slice axis must be 0 (k), 1 (j) or 2 (i), got {axis!r}")
        ijk = self._points_ijk(points, space)
        kji = ijk[:, ::-1]
        plane = int(np.rint(kji[0, axis]))
        if not 0 <= plane < g.shape[axis]:
            raise InvalidInputError(f"the shape's slice {plane} is outside the volume along axis {axis}")
        ra, ca = [a for a in range(3) if a != axis]
        nr, nc = g.shape[ra], g.shape[ca]
        uv = kji[:, [ra, ca]]
        if shape == "freeform":
            if len(uv) < 3:
                raise InvalidInputError(f"a free-form shape needs at least 3 points, got {len(uv)}")
            lo = np.clip(np.floor(uv.min(0)).astype(int), 0, [nr, nc])
            hi = np.clip(np.ceil(uv.max(0)).astype(int) + 1, 0, [nr, nc])
            R, C = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), indexing="ij")
            inside = np.zeros(R.shape, bool)
            for (y1, x1), (y2, x2) in zip(uv, np.roll(uv, -1, axis=0)):
                if y1 == y2:
                    continue
                cross = ((y1 > R) != (y2 > R)) & (C < (x2 - x1) * (R - y1) / (y2 - y1) + x1)
                inside ^= cross
        elif shape == "rectangle":
            if len(uv) < 2:
                raise InvalidInputError("a rectangle needs two corner points")
            a, b = uv[0], uv[1]
            lo = np.clip(np.ceil(np.minimum(a, b)).astype(int), 0, [nr, nc])
            hi = np.clip(np.floor(np.maximum(a, b)).astype(int) + 1, 0, [nr, nc])
            inside = np.ones((max(0, hi[0] - lo[0]), max(0, hi[1] - lo[1])), bool)
        elif shape == "circle":
            if len(uv) < 2:
                raise InvalidInputError("a circle needs its centre and a point on its rim")
            m = g.ijk_to_world[:3, :3]
            cols = [2 - ra, 2 - ca]  # ijk columns of the in-plane axes
            def mm(du, dv):
                return du[..., None] * m[:, cols[0]] + dv[..., None] * m[:, cols[1]]
            rad2 = float((mm(np.asarray(uv[1, 0] - uv[0, 0]), np.asarray(uv[1, 1] - uv[0, 1])) ** 2).sum())
            half = math.sqrt(rad2) / np.asarray([g.spacing_kji[ra], g.spacing_kji[ca]])
            lo = np.clip(np.floor(uv[0] - half - 1).astype(int), 0, [nr, nc])
            hi = np.clip(np.ceil(uv[0] + half + 1).astype(int) + 1, 0, [nr, nc])
            R, C = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), indexing="ij")
            inside = (mm(R - uv[0, 0], C - uv[0, 1]) ** 2).sum(-1) <= rad2
        else:
            raise InvalidInputError(f"unknown scissors shape {shape!r}; choose freeform, circle or rectangle")
        return plane, inside, (int(lo[0]), int(lo[1]))

    def _extrusion(self, axis: int, plane: int, mode: str, depth_mm: float) -> tuple[int, int]:
        n = self.segmentation.geometry.shape[axis]
        sp = self.segmentation.geometry.spacing_kji[axis]
        d = float(depth_mm)
        if not math.isfinite(d) or d < 0:
            raise InvalidInputError(f"cut depth must be a non-negative number of mm, got {depth_mm!r}")
        steps = int(math.floor(d / sp + 1e-9))
        if mode == "unlimited":
            return 0, n
        if mode == "positive":
            return plane, n if d == 0 else min(n, plane + steps + 1)
        if mode == "negative":
            return 0 if d == 0 else max(0, plane - steps), plane + 1
        if mode == "symmetric":
            h = int(math.floor(d / 2 / sp + 1e-9))
            return max(0, plane - h), min(n, plane + h + 1)
        if mode == "slice":
            return plane, plane + 1
        raise InvalidInputError(f"unknown extrusion {mode!r}; choose unlimited, positive, negative or symmetric")

    def scissors_preview(self, segment: str, points, *, operation: str = "erase_inside", shape: str = "freeform",
                         axis: int = 0, extrusion: str = "unlimited", depth_mm: float = 0.0,
                         all_visible: bool = False, space: str = "world") -> StrokePreview | None:
        """Scissors: a shape drawn in a slice, extruded along the slice normal; ``operation``:
        erase_inside, erase_outside, fill_inside or fill_outside; erasing may apply to all
        visible segments."""
        ops = ("erase_inside", "erase_outside", "fill_inside", "fill_outside")
        if operation not in ops:
            raise InvalidInputError(f"unknown scissors operation {operation!r}; choose one of {', '.join(ops)}")
        seg = self.segmentation
        sid = seg.segment(segment).id
        self.masking.check(seg)
        plane, inside2d, (r0, c0) = self._shape_in_slice(points, shape, axis, space)
        s0, s1 = self._extrusion(axis, plane, extrusion, depth_mm)
        ra, ca = [a for a in range(3) if a != axis]
        lo, hi = [0, 0, 0], [0, 0, 0]
        lo[axis], hi[axis] = s0, s1
        lo[ra], hi[ra] = r0, r0 + inside2d.shape[0]
        lo[ca], hi[ca] = c0, c0 + inside2d.shape[1]
        inner = Extent(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
        erase = operation.startswith("erase")
        targets = [s.id for s in seg if s.visible] if (erase and all_visible) else None
        if operation.endswith("inside"):
            if inner.is_empty or not inside2d.any():
                return None
            dense = np.broadcast_to(np.expand_dims(inside2d, axis), inner.shape).copy()
            ext = inner
        else:
            if erase:  # only where the affected segments have voxels
                ext = Extent.empty()
                for t in (targets or [sid]):
                    ext = ext.union(seg[t].mask.box_extent)
            else:
                ext = seg.geometry.extent
            if ext.is_empty:
                return None
            dense = np.ones(ext.shape, bool)
            cut = inner.intersect(ext)
            if not cut.is_empty:
                sl2 = [slice(cut.k0 - inner.k0, cut.k1 - inner.k0), slice(cut.j0 - inner.j0, cut.j1 - inner.j0),
                       slice(cut.i0 - inner.i0, cut.i1 - inner.i0)]
                sub = np.broadcast_to(np.expand_dims(inside2d, axis), inner.shape)[tuple(sl2)]
                dense[cut.k0 - ext.k0:cut.k1 - ext.k0, cut.j0 - ext.j0:cut.j1 - ext.j0,
                      cut.i0 - ext.i0:cut.i1 - ext.i0] &= ~sub
        box, words = self._block(ext, dense)
        m = self.masking
        return StrokePreview(sid, erase, False, box, words,
                             Masking(m.editable_area, m.mask_segment, m.intensity_range, m.overwrite), self,
                             erase_targets=targets)

    def scissors(self, segment: str, points, **kw) -> int:
        p = self.scissors_preview(segment, points, **kw)
        return self.commit(p) if p is not None else 0

    def draw(self, segment: str, points, *, axis: int = 0, space: str = "world") -> int:
        """Draw: fill a polygon in one slice (the slice of the first point)."""
        p = self.scissors_preview(segment, points, operation="fill_inside", shape="freeform", axis=axis,
                                  extrusion="slice", space=space)
        return self.commit(p) if p is not None else 0

    def level_trace_preview(self, segment: str, point, *, axis: int = 0,
                            space: str = "world") -> StrokePreview | None:
        """Slicer's Level tracing effect as a preview: the closed iso-intensity region through the
        voxel at ``point`` in its slice across ``axis`` (see :mod:`gpuseg.ops.level_tracing`);
        None if the point is inside a uniform area."""
        from .ops.level_tracing import level_trace

        if self.image is None:
            raise InvalidInputError("level tracing needs the source image")
        seg = self.segmentation
        sid = seg.segment(segment).id
        self.masking.check(seg)
        p = self._points_ijk(point, space)
        if p.shape[0] != 1:
            raise InvalidInputError(f"level tracing takes one point, got {p.shape[0]}")
        kji = tuple(int(np.floor(v + 0.5)) for v in p[0][::-1])
        region = level_trace(self.image, kji, axis)
        if region.is_empty():
            return None
        ext = region.extent()
        box, words = self._block(ext, region.to_numpy(ext))
        m = self.masking
        return StrokePreview(sid, False, False, box, words,
                             Masking(m.editable_area, m.mask_segment, m.intensity_range, m.overwrite), self)

    def level_trace(self, segment: str, point, *, axis: int = 0, space: str = "world") -> int:
        """Add the level-tracing region through ``point`` to ``segment`` (one undo level)."""
        p = self.level_trace_preview(segment, point, axis=axis, space=space)
        return self.commit(p) if p is not None else 0

    # --- whole-segment effects through masking (Slicer's "Set" mode) ---------------------------
    def set_mask(self, segment: str, mask: Mask, *, bypass_masking: bool = False) -> int:
        """Make ``segment`` equal to ``mask`` where masking allows changes (Slicer's
        ModifySegmentByLabelmap in Set mode): inside the editable area (and intensity range) the
        segment becomes ``mask``, outside it keeps its voxels; voxels it gains leave the other
        segments as the overwrite mode says. One undo level; returns the voxels changed anywhere.
        ``bypass_masking`` ignores masking and overwrite (Slicer's logical operators' default)."""
        seg = self.segmentation
        sid = seg.segment(segment).id
        if not isinstance(mask, Mask):
            raise InvalidInputError(f"expected a Mask, got {type(mask).__name__}")
        seg.geometry.check_same_grid(mask.geometry, "segmentation and mask")
        m = self.masking
        if not bypass_masking:
            m.check(seg)
        ext = seg[sid].mask.box_extent.union(mask.box_extent) if mask.nbytes else seg[sid].mask.box_extent
        if ext.is_empty:
            return 0
        box = box_for_extent(ext)
        b = seg.backend
        new = b.to_numpy(mask.to(b).block(box)) if mask.nbytes else np.zeros(box[3:], np.uint32)
        editable = self._grid_words(box) if bypass_masking else self._editable(sid, box, m, False)
        target = seg[sid]
        plan: list[tuple[object, str, np.ndarray]] = [(target, "andnot", editable & ~new), (target, "or", editable & new)]
        if not bypass_masking and m.overwrite != "allow_overlap":
            for s in seg:
                if s.id != sid and (m.overwrite == "overwrite_all" or s.visible):
                    plan.append((s, "andnot", editable & new))
        return self._apply(plan, box)

    def margin(self, segment: str, margin_mm: float) -> int:
        """Slicer's Margin effect (grow, or shrink with a negative value), through masking."""
        from .ops.morphology import margin

        return self.set_mask(segment, margin(self.segmentation.segment(segment).mask, margin_mm))

    def hollow(self, segment: str, thickness_mm: float, mode: str = "inside") -> int:
        """Slicer's Hollow effect, through masking."""
        from .ops.morphology import hollow

        return self.set_mask(segment, hollow(self.segmentation.segment(segment).mask, thickness_mm, mode))

    def smooth(self, segment: str, method: str = "median", kernel_mm: float = 3.0) -> int:
        """Slicer's Smoothing effect (median, opening, closing), through masking."""
        from .ops.smoothing import smooth

        return self.set_mask(segment, smooth(self.segmentation.segment(segment).mask, method, kernel_mm))

    def islands(self, segment: str, operation: str = "keep_largest", *, min_size: int = 1000, point=None,
                space: str = "world", connectivity: int = 6) -> int:
        """Slicer's Islands effect: ``keep_largest``, ``remove_small`` (< min_size voxels),
        ``keep_selected`` / ``remove_selected`` (the island at ``point``) or ``add_selected`` (the
        background component at ``point``: fill a hole), through masking."""
        from .ops import islands as isl

        mask = self.segmentation.segment(segment).mask
        if operation in ("keep_selected", "remove_selected", "add_selected"):
            if point is None:
                raise InvalidInputError(f"islands {operation} needs a point")
            p = self._points_ijk(point, space)
            if p.shape[0] != 1:
                raise InvalidInputError(f"islands {operation} takes one point, got {p.shape[0]}")
            kji = tuple(int(np.floor(v + 0.5)) for v in p[0][::-1])
            fn = {"keep_selected": isl.keep_selected_island, "remove_selected": isl.remove_selected_island,
                  "add_selected": isl.add_selected_island}[operation]
            result = fn(mask, kji, connectivity)
        elif operation == "keep_largest":
            result = isl.keep_largest_island(mask, connectivity)
        elif operation == "remove_small":
            result = isl.remove_small_islands(mask, min_size, connectivity)
        else:
            raise InvalidInputError(f"unknown islands operation {operation!r}; choose keep_largest, remove_small, "
                                    "keep_selected, remove_selected or add_selected")
        return self.set_mask(segment, result)

    def logical(self, segment: str, operation: str, modifier: str | None = None, *,
                bypass_masking: bool = True) -> int:
        """Slicer's Logical operators: ``copy``, ``union``, ``subtract``, ``intersect`` (with the
        ``modifier`` segment), ``invert``, ``clear``, ``fill``. Like Slicer they bypass masking by
        default (``bypass_masking=False`` applies it)."""
        from .ops import logic

        seg = self.segmentation
        mask = seg.segment(segment).mask
        binary = {"copy": None, "union": logic.union, "subtract": logic.subtract, "intersect": logic.intersect}
        if operation in binary:
            if modifier is None:
                raise InvalidInputError(f"logical {operation} needs a modifier segment")
            other = seg.segment(modifier).mask
            result = logic.copy(other) if operation == "copy" else binary[operation](mask, other)
        elif operation == "invert":
            result = logic.invert(mask, seg.geometry.extent)
        elif operation == "clear":
            result = Mask.empty(seg.geometry, backend=seg.backend)
        elif operation == "fill":
            result = Mask.full(seg.geometry, backend=seg.backend)
        else:
            raise InvalidInputError(f"unknown logical operation {operation!r}; choose copy, union, subtract, "
                                    "intersect, invert, clear or fill")
        return self.set_mask(segment, result, bypass_masking=bypass_masking)

    def grow_from_seeds_preview(self, *, seed_locality: float = 0.0, segments: Sequence[str] | None = None,
                                region: Extent | None = None) -> "GrowPreview":
        """Slicer's Grow from seeds as a preview: the seeds are the visible segments (or
        ``segments``); every voxel of the region (Slicer's: the seeds' extent plus max(3 voxels,
        10%); or ``region``) that masking lets change takes the label of the nearest seed
        (:mod:`gpuseg.ops.grow`). Nothing changes until :meth:`commit_grow`. Calling it again
        after more strokes on the same seeds only propagates the new seed voxels, as long as the
        region and the editable voxels stay the same (else it starts afresh)."""
        from .ops.grow import GrowCut

        if self.image is None:
            raise InvalidInputError("grow from seeds needs the source image")
        seg = self.segmentation
        m = self.masking
        m.check(seg)
        ids = [seg.segment(x).id for x in segments] if segments is not None else [s.id for s in seg if s.visible]
        if not ids:
            raise InvalidInputError("grow from seeds needs seed segments: no segment is visible")
        seeds = [seg[x].mask for x in ids]
        masked = m.editable_area != "everywhere" or m.intensity_range is not None
        from .ops.grow import grow_region

        reg = region if region is not None else grow_region(seeds, seg.geometry.shape)
        box = box_for_extent(reg) if not reg.is_empty else None
        editable = self._editable(ids, box, m, False) if masked and box is not None else None
        key = (tuple(ids), float(seed_locality), reg)
        state = getattr(self, "_grow_state", None)
        if (state is not None and state[0] == key and
                (editable is None if state[2] is None else editable is not None and np.array_equal(state[2], editable))):
            gc = state[1]  # same seeds, region and editable voxels: only the new seed voxels propagate
            results = gc.update(seeds)
        else:
            mask = Mask(seg.geometry, seg.backend, seg.backend.asarray(editable), box) if editable is not None else None
            gc = GrowCut(self.image, seeds, seed_locality=seed_locality, mask=mask,
                         region=reg if box is not None else None)
            results = gc.result()
            self._grow_state = (key, gc, editable)
        box = box_for_extent(gc.region)
        b = seg.backend
        grown = [b.to_numpy(r.block(box)) if r.nbytes else np.zeros(box[3:], np.uint32) for r in results]
        return GrowPreview(ids, gc.region, box, grown, editable, self)

    def commit_grow(self, p: "GrowPreview") -> int:
        """Apply a grow preview: in the region, each seed segment becomes its grown voxels (where
        masking allows changes); one undo level. Returns the number of voxels that changed."""
        seg = self.segmentation
        for sid in p.segment_ids:
            if sid not in seg.segment_ids:
                raise UnknownSegmentError(f"segment {sid!r} was removed since the preview")
        box, region = self._block(p.region, np.ones(p.region.shape, bool))
        assert tuple(box) == tuple(p.box)
        if p.editable is not None:
            region &= p.editable
        plan: list[tuple[object, str, np.ndarray]] = []
        for sid, words in zip(p.segment_ids, p.grown):
            plan.append((seg[sid], "andnot", region & ~words))
            plan.append((seg[sid], "or", words & region))
        self._grow_state = None  # the segments changed: a later preview starts afresh
        return self._apply(plan, p.box)

    def grow_from_seeds(self, **kw) -> int:
        """Preview and apply grow from seeds in one step (see :meth:`grow_from_seeds_preview`)."""
        return self.commit_grow(self.grow_from_seeds_preview(**kw))

    def threshold(self, segment: str, lo: float, hi: float) -> int:
        """Slicer's Threshold effect: within the editable area the segment becomes the voxels of
        the source image in [lo, hi] (voxels outside the editable area are kept)."""
        p = self.threshold_preview(segment, lo, hi)
        return self.commit(p) if p is not None else 0

    def threshold_preview(self, segment: str, lo: float, hi: float) -> StrokePreview | None:
        """The threshold effect as a preview (see :meth:`threshold`); nothing changes yet."""
        if self.image is None:
            raise InvalidInputError("the threshold effect needs the source image")
        seg = self.segmentation
        sid = seg.segment(segment).id
        self.masking.check(seg)
        inside = threshold(self.image, lo, hi)
        ext = inside.box_extent.union(seg[sid].mask.box_extent)
        if ext.is_empty:
            return None
        box = box_for_extent(ext)
        words = self.segmentation.backend.to_numpy(inside.block(box)) if inside.nbytes else np.zeros(box[3:], np.uint32)
        m = self.masking
        return StrokePreview(sid, False, False, box, words, Masking(m.editable_area, m.mask_segment,
                                                                    m.intensity_range, m.overwrite), self, replace=True)

    def auto_threshold(self, method: str = "otsu") -> tuple[float, float]:
        """A threshold range from the source image's histogram (computed on the device): the range
        above the threshold value, as Slicer's "threshold above". Methods: otsu, isodata, minimum,
        yen (scikit-image's, given the histogram), mean, li (Li's minimum cross entropy,
        iterated on the histogram) and triangle (Zack's). int16/uint16 images. Huang is not
        implemented."""
        from skimage import filters

        from .ops.stats import _histogram

        if self.image is None:
            raise InvalidInputError("auto-threshold needs the source image")
        methods = ("otsu", "huang", "isodata", "li", "mean", "minimum", "triangle", "yen")
        if method not in methods:
            raise InvalidInputError(f"unknown auto-threshold method {method!r}; choose one of {', '.join(methods)}")
        if self.image.dtype not in (np.int16, np.uint16):
            raise InvalidInputError(f"auto-threshold needs an int16 or uint16 image, got {self.image.dtype}")
        info = np.iinfo(self.image.dtype)
        full = Mask.full(self.image.geometry, backend=self.image.backend)
        hist = _histogram(full, self.image, int(info.min), int(info.max) - int(info.min) + 1).astype(np.int64)
        nz = np.nonzero(hist)[0]
        if nz.size < 2:
            raise InvalidInputError("the image has fewer than two distinct values: nothing to threshold")
        counts = hist[nz[0]:nz[-1] + 1]
        centres = np.arange(nz[0], nz[-1] + 1) + int(info.min)
        if method == "mean":
            t = float((counts * centres).sum() / counts.sum())
        elif method == "huang":
            t = _huang(counts, centres)
        elif method == "li":
            t = _li(counts, centres)
        elif method == "triangle":
            t = _triangle(counts, centres)
        else:
            t = float(getattr(filters, f"threshold_{method}")(hist=(counts, centres)))
        return t, float(centres[-1])

    # --- undo / redo ------------------------------------------------------------------------
    def _push(self, level: _Level) -> None:
        self._undo.append(level)
        self._redo.clear()
        while self._undo and self.undo_memory > self.undo_budget:
            self._undo.pop(0)

    @property
    def undo_memory(self) -> int:
        """Bytes held by the undo and redo levels."""
        return sum(lv.nbytes for lv in self._undo) + sum(lv.nbytes for lv in self._redo)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def _flip(self, level: _Level) -> None:
        b = self.segmentation.backend
        stroke = None
        for sid, box, kind, z in level.changes:
            s = self.segmentation[sid]
            block = np.frombuffer(zlib.decompress(z), np.uint32).reshape(box[3:])
            if kind == "kept":
                if stroke is None:
                    points, diameter, shape, axis = level.recipe
                    again = self.rasterize(points, diameter, shape=shape, axis=axis, space="ijk")
                    if again is None or tuple(again[0]) != tuple(box):  # pragma: no cover - deterministic
                        raise RuntimeError("undo: the stroke rasterized differently; undo data is inconsistent")
                    stroke = again[1]
                block = stroke & ~block
            s.mask.apply_block_(b.asarray(block), box, "xor")
            self.segmentation.invalidate(sid)

    def undo(self) -> bool:
        """Undo the last edit, bit for bit; False if there is none."""
        if not self._undo:
            return False
        lv = self._undo.pop()
        self._flip(lv)
        self._redo.append(lv)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        lv = self._redo.pop()
        self._flip(lv)
        self._undo.append(lv)
        return True

    def __repr__(self) -> str:
        return (f"<Editor of {len(self.segmentation)} segments, {len(self._undo)} undo levels "
                f"({format_bytes(self.undo_memory)})>")
