"""Undo and redo of edits, bit for bit, within a memory budget (docs/editor.md).

Each level keeps, per changed segment, only the change over the edit's word box, compressed:
either the XOR of the old and new words (zero outside the changed bits), or, for a brush
stroke, the stroke's voxels that did *not* change, when that is smaller: the stroke can be
rasterized again from its recipe, and the change is the stroke minus what stayed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..segmentation import Segmentation

__all__ = ["UndoLevel", "UndoHistory", "make_level"]


@dataclass
class UndoLevel:
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
    #: segments the edit created (Islands split): (id, name, color, visible, label value);
    #: undo removes them after restoring the voxels, redo creates them again (empty) first
    added: list = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Bytes this level holds (with a fixed overhead per change)."""
        n = sum(len(z) + 64 for _, _, _, z in self.changes)
        if self.recipe is not None and any(kind == "kept" for _, _, kind, _ in self.changes):
            n += self.recipe[0].nbytes + 64
        return n


def make_level(diffs: list[tuple[str, np.ndarray]], box, stroke: tuple | None = None) -> UndoLevel:
    """The cheaper undo level for the ``diffs`` of one edit over ``box``; ``stroke`` is
    ``(recipe, rasterized words)`` for a brush stroke (then "kept" may win)."""
    level = UndoLevel([(sid, box, "xor", zlib.compress(d.tobytes(), 9)) for sid, d in diffs])
    if stroke is not None:
        recipe, words = stroke
        alt = UndoLevel([(sid, box, "kept", zlib.compress((words & ~d).tobytes(), 9)) for sid, d in diffs],
                        recipe)
        if alt.nbytes < level.nbytes:
            level = alt
    return level


class UndoHistory:
    """The undo and redo stacks of one editor.

    Parameters
    ----------
    budget : int
        Bytes the levels may hold; the oldest undo levels are dropped past it.
    rerasterize : callable
        ``rerasterize(recipe) -> (box, words) or None``: the brush stroke of a "kept" level,
        rasterized again exactly.
    """

    def __init__(self, budget: int, rerasterize: Callable[[tuple], tuple | None]) -> None:
        self.budget = int(budget)
        self.undo_levels: list[UndoLevel] = []
        self.redo_levels: list[UndoLevel] = []
        self._rerasterize = rerasterize

    @property
    def nbytes(self) -> int:
        """Bytes held by the undo and redo levels."""
        return sum(lv.nbytes for lv in self.undo_levels) + sum(lv.nbytes for lv in self.redo_levels)

    def push(self, level: UndoLevel) -> None:
        """Record a new edit (clears redo); drops the oldest levels past the budget."""
        self.undo_levels.append(level)
        self.redo_levels.clear()
        while self.undo_levels and self.nbytes > self.budget:
            self.undo_levels.pop(0)

    def flip(self, seg: Segmentation, level: UndoLevel) -> None:
        """XOR a level's change into the segments (undo and redo are the same operation)."""
        b = seg.backend
        stroke = None
        for sid, box, kind, z in level.changes:
            s = seg[sid]
            block = np.frombuffer(zlib.decompress(z), np.uint32).reshape(box[3:])
            if kind == "kept":
                if stroke is None:
                    again = self._rerasterize(level.recipe)
                    if again is None or tuple(again[0]) != tuple(box):  # pragma: no cover - deterministic
                        raise RuntimeError("undo: the stroke rasterized differently; undo data is inconsistent")
                    stroke = again[1]
                block = stroke & ~block
            s.mask.apply_block_(b.asarray(block), box, "xor")
            seg.invalidate(sid)

    def undo(self, seg: Segmentation) -> bool:
        """Undo the last edit; False if there is none."""
        if not self.undo_levels:
            return False
        lv = self.undo_levels.pop()
        self.flip(seg, lv)
        for sid, *_ in lv.added:
            seg.remove_segment(sid)
        self.redo_levels.append(lv)
        return True

    def redo(self, seg: Segmentation) -> bool:
        """Redo the last undone edit; False if there is none."""
        if not self.redo_levels:
            return False
        lv = self.redo_levels.pop()
        for sid, name, color, visible, label_value in lv.added:
            seg.add_segment(name=name, segment_id=sid, color=color, visible=visible, label_value=label_value)
        self.flip(seg, lv)
        self.undo_levels.append(lv)
        return True
