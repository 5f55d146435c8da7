"""Grow from seeds in the editor: a preview kept up to date incrementally (docs/editor.md).

The editable voxels are computed once per preview; a later preview on the same seeds, region
and editable voxels only propagates the new seed voxels (:meth:`gpuseg.ops.GrowCut.update`),
anything else starts afresh.
"""

from __future__ import annotations

import numpy as np

from ..geometry import Extent
from ..image import Image
from ..mask import Mask, box_for_extent
from ..ops.grow import GrowCut, grow_region
from ..segmentation import Segmentation
from .masking import Masking, editable_words

__all__ = ["GrowSession"]


class GrowSession:
    """The state of the editor's grow-from-seeds preview (the last computation, if any)."""

    def __init__(self) -> None:
        self._state: tuple | None = None  # (key, GrowCut, editable words or None)

    def reset(self) -> None:
        """Forget the last computation (the segments changed)."""
        self._state = None

    @property
    def growcut(self) -> GrowCut | None:
        """The last computation (for tests and viewers)."""
        return None if self._state is None else self._state[1]

    def preview(self, seg: Segmentation, image: Image, ids: list[str], masking: Masking, seed_locality: float,
                region: Extent | None):
        """Grow the segments ``ids`` as seeds; returns ``(region, word box, grown host words per
        seed segment, editable host words or None)``."""
        seeds = [seg[x].mask for x in ids]
        reg = region if region is not None else grow_region(seeds, seg.geometry.shape)
        box = box_for_extent(reg) if not reg.is_empty else None
        editable = (editable_words(seg, image, ids, box, masking)
                    if masking.is_restricted and box is not None else None)
        key = (tuple(ids), float(seed_locality), reg)
        state = self._state
        if (state is not None and state[0] == key and
                (editable is None if state[2] is None else editable is not None and np.array_equal(state[2], editable))):
            gc = state[1]  # same seeds, region and editable voxels: only the new seed voxels propagate
            results = gc.update(seeds)
        else:
            mask = Mask(seg.geometry, seg.backend, seg.backend.asarray(editable), box) if editable is not None else None
            gc = GrowCut(image, seeds, seed_locality=seed_locality, mask=mask,
                         region=reg if box is not None else None)
            results = gc.result()
            self._state = (key, gc, editable)
        box = box_for_extent(gc.region)
        b = seg.backend
        grown = [b.to_numpy(r.block(box)) if r.nbytes else np.zeros(box[3:], np.uint32) for r in results]
        return gc.region, box, grown, editable
