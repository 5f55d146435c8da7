"""Previews: what an edit would change, before it is committed (docs/editor.md).

A preview holds host words over the edit's word box and the masking it was made with; a
viewer reads display slices of it, and :meth:`gpuseg.Editor.commit` (or ``commit_grow``)
applies it to the segmentation as it is then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..geometry import Extent
from ..mask import extent_of_box, unpack_bits
from .masking import Masking

# "Editor" (gpuseg.editor.facade) is named in annotations only: the facade builds on this module.

__all__ = ["StrokePreview", "GrowPreview"]


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
        """The voxel extent of the preview's word box."""
        return extent_of_box(self.box, self._editor.segmentation.geometry.shape[2])

    def slice(self, axis: int, index: int):
        """The part of display slice ``index`` along ``axis`` the stroke covers, after masking.

        Returns
        -------
        tuple or None
            ``(bbox, packed)`` where bbox is ``(r0, r1, c0, c1)`` in slice rows/columns and
            ``packed`` is ``numpy.packbits`` (little bit order) of the bool array of that box,
            row-major; None if the stroke does not reach the slice.
        """
        modifier = self._editor.modifier(self)
        ext = self.extent
        dense = unpack_bits(modifier, ext.shape[2])
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
        """The voxel extent of the preview's word box."""
        return extent_of_box(self.box, self._editor.segmentation.geometry.shape[2])

    def labels_slice(self, axis: int, index: int) -> np.ndarray | None:
        """A uint8 label image of the region's slice ``index`` along ``axis`` (0 = none, n = the
        n-th seed segment), in the region's own rows and columns; None outside the region."""
        ext = self.extent
        lo, hi = (ext.k0, ext.j0, ext.i0), (ext.k1, ext.j1, ext.i1)
        if not lo[axis] <= index < hi[axis]:
            return None
        out = None
        for n, words in enumerate(self.grown, start=1):
            plane = np.take(unpack_bits(words, ext.shape[2]), index - lo[axis], axis=axis)
            out = np.where(plane, np.uint8(n), out if out is not None else np.uint8(0)).astype(np.uint8)
        return out
