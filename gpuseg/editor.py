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

__all__ = ["Editor", "Masking", "StrokePreview", "EDITABLE_AREAS", "OVERWRITE_MODES"]

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
    """What a stroke would change: the rasterized stroke block, not yet committed."""

    segment_id: str
    erase: bool
    erase_all: bool
    box: tuple[int, int, int, int, int, int]
    stroke: np.ndarray  # host words of the rasterized stroke over box
    masking: Masking
    _editor: "Editor" = field(repr=False)

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
class _Level:
    changes: list[tuple[str, tuple, bytes]]  # (segment id, box, zlib of the block's old ^ new words)

    @property
    def nbytes(self) -> int:
        return sum(len(z) + 64 for _, _, z in self.changes)


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
    def _editable(self, segment_id: str, box, masking: Masking, erase: bool) -> np.ndarray:
        """Host words (over box) of the voxels the edit may change."""
        seg = self.segmentation
        b = seg.backend
        ni = seg.geometry.shape[2]
        full = _pack(np.ones(extent_of_box(box, ni).shape, bool))
        pad = np.zeros(box[3:], np.uint32)
        pad[:, :, :full.shape[2]] = full
        allowed = pad
        area = masking.editable_area
        own = b.to_numpy(seg[segment_id].mask.block(box))
        if area != "everywhere":
            def union(segs):
                acc = np.zeros(box[3:], np.uint32)
                for s in segs:
                    if s.mask.nbytes:
                        acc |= b.to_numpy(s.mask.block(box))
                return acc

            others = [s for s in seg if s.id != segment_id]
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
        return StrokePreview(sid, erase, erase_all_segments, box, stroke,
                             Masking(m.editable_area, m.mask_segment, m.intensity_range, m.overwrite), self)

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
        if p.erase:
            victims = list(seg) if p.erase_all else [target]
            for s in victims:
                plan.append((s, "andnot", modifier))
            if not p.erase_all and p.masking.editable_area == "inside":
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
        return self._apply(plan, p.box)

    def _apply(self, plan, box) -> int:
        b = self.segmentation.backend
        changes = []
        total = 0
        for s, op, words in plan:
            if not words.any() or (op == "andnot" and s.mask.nbytes == 0):
                continue
            old = b.to_numpy(s.mask.block(box)) if s.mask.nbytes else np.zeros(box[3:], np.uint32)
            new = old | words if op == "or" else old & ~words
            diff = old ^ new
            if not diff.any():
                continue
            s.mask.apply_block_(b.asarray(new), box, "set")
            self.segmentation.invalidate(s.id)
            # only what changed is kept: the XOR is zero outside the changed bits, so it compresses
            changes.append((s.id, box, zlib.compress(diff.tobytes(), 9)))
            total += int(np.unpackbits(diff.view(np.uint8)).sum())
        if changes:
            self._push(_Level(changes))
        return total

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
        for sid, box, z in level.changes:
            s = self.segmentation[sid]
            block = np.frombuffer(zlib.decompress(z), np.uint32).reshape(box[3:])
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
