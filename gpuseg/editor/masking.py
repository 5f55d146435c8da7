"""Masking: which voxels an edit may change, and the plan that changes them (docs/editor.md).

Slicer's masking rules for an edit of segment S:

* editable area: ``everywhere``, ``inside_all`` (inside any segment), ``inside_visible``,
  ``outside_all`` (outside every other segment), ``outside_visible``, or ``inside`` a given
  segment X; S's own voxels are always editable;
* editable intensity range: only voxels with lo <= I <= hi (needs the source image);
* modify other segments: ``overwrite_all`` (default: painted voxels are removed from every
  other segment), ``overwrite_visible`` (only from visible ones) or ``allow_overlap``.

Everything here works on host words over one word box (the edit's block): the editable voxels
are evaluated only over that block, and :func:`apply_plan` touches only the block's words of
the segments that change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..errors import InvalidInputError
from ..image import Image
from ..mask import extent_of_box, pack_bits
from ..ops.threshold import threshold
from ..segmentation import Segmentation

__all__ = ["Masking", "EDITABLE_AREAS", "OVERWRITE_MODES", "grid_words", "editable_words", "apply_plan"]

EDITABLE_AREAS = ("everywhere", "inside_all", "inside_visible", "outside_all", "outside_visible", "inside")
OVERWRITE_MODES = ("overwrite_all", "overwrite_visible", "allow_overlap")


@dataclass
class Masking:
    """Slicer's masking settings (see the module doc).

    Attributes
    ----------
    editable_area : str
        One of :data:`EDITABLE_AREAS`.
    mask_segment : str or None
        The segment X of ``editable_area="inside"``.
    intensity_range : tuple of float or None
        ``(lo, hi)``: only voxels of the source image in this range are editable.
    overwrite : str
        One of :data:`OVERWRITE_MODES`.
    """

    editable_area: str = "everywhere"
    mask_segment: str | None = None
    intensity_range: tuple[float, float] | None = None
    overwrite: str = "overwrite_all"

    def check(self, seg: Segmentation) -> None:
        """Raise :class:`InvalidInputError` (or ``UnknownSegmentError``) if the settings do not
        make sense for ``seg``."""
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

    def copy(self) -> "Masking":
        """A snapshot (a preview keeps the settings it was made with)."""
        return replace(self)

    @property
    def is_restricted(self) -> bool:
        """True when some voxels are not editable (an area other than everywhere, or a range)."""
        return self.editable_area != "everywhere" or self.intensity_range is not None


def grid_words(box, ni: int) -> np.ndarray:
    """Host words over ``box`` with every voxel of the grid set (the padding bits past the
    grid's last column ``ni`` stay clear)."""
    full = pack_bits(np.ones(extent_of_box(box, ni).shape, bool))
    words = np.zeros(box[3:], np.uint32)
    words[:, :, :full.shape[2]] = full
    return words


def editable_words(seg: Segmentation, image: Image | None, segment_id: str | Sequence[str], box,
                   masking: Masking) -> np.ndarray:
    """Host words (over ``box``) of the voxels an edit of ``segment_id`` may change.

    Parameters
    ----------
    seg : Segmentation
    image : Image or None
        The source image (needed for an intensity range).
    segment_id : str or sequence of str
        The edited segment, or several (grow from seeds): their own voxels are always editable,
        and the editable area's "all / visible segments" mean the other segments.
    box : tuple
        The word box.
    masking : Masking

    Raises
    ------
    InvalidInputError
        An intensity range without a source image.
    """
    b = seg.backend
    ni = seg.geometry.shape[2]
    pad = grid_words(box, ni)
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
        if image is None:
            raise InvalidInputError("an editable intensity range needs the source image")
        lo, hi = masking.intensity_range
        inside = threshold(image, lo, hi, extent=extent_of_box(box, ni))
        allowed = allowed & (b.to_numpy(inside.block(box)) if inside.nbytes else np.zeros(box[3:], np.uint32))
    return allowed & pad


def apply_plan(seg: Segmentation, plan, box) -> list[tuple[str, np.ndarray]]:
    """Carry out a modify plan over ``box``; returns ``[(segment id, old ^ new words)]`` of the
    segments that changed (what undo keeps).

    ``plan`` is a list of ``(segment, op, host words over box)`` with op ``or`` (add the words'
    voxels) or ``andnot`` (remove them). The steps are combined per segment first (a segment may
    be cleared and filled in one edit); each changed segment's block is written once and its
    derived representations are invalidated.
    """
    b = seg.backend
    merged: dict[str, list] = {}
    for s, op, words in plan:
        merged.setdefault(s.id, [s, []])[1].append((op, words))
    diffs = []
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
        seg.invalidate(s.id)
        diffs.append((s.id, diff))
    return diffs
