"""The Segment Editor engine's facade: paint and erase with Slicer's masking rules, preview, undo.

The editor is a package of one concern per module (docs/editor.md):

* :mod:`.masking`: the editable voxels and the modify plan (Slicer's masking rules);
* :mod:`.brush`: brush strokes rasterized on the host in world millimetres, with bounded work;
* :mod:`.scissors`: 2D shapes in a slice, extruded;
* :mod:`.previews`: what an edit would change, before it is committed;
* :mod:`.grow`: grow from seeds as a preview, updated incrementally;
* :mod:`.undo`: undo and redo levels within a memory budget.

This class ties them to one :class:`Segmentation` and source :class:`Image`. Work is limited
to what an edit touches: the edit's region is a small packed block over its bounding box; the
editable area, the intensity range and the overwrite rules are evaluated only over that block,
and only the block's words of the affected segments change on the device.

Erase removes the stroke (masked the same way) from S, or from every segment with
``erase_all_segments``. Erase with editable area "inside X" moves the erased voxels of S back
into X (Slicer's special case).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..backends.base import format_bytes, parse_bytes
from ..errors import InvalidInputError, OutOfBoundsError, UnknownSegmentError
from ..geometry import Extent
from ..image import Image
from ..mask import Mask, box_for_extent, pack_block
from ..ops.autothreshold import auto_threshold
from ..ops.interpolate import fill_between_slices as _fill_between
from ..ops.threshold import threshold
from ..segmentation import Segmentation
from .brush import StrokeLimits, rasterize_stroke
from .extra import ExtraEffects
from .grow import GrowSession
from .masking import Masking, apply_plan, editable_words, grid_words
from .previews import GrowPreview, StrokePreview
from .scissors import scissors_region
from .undo import UndoHistory, UndoLevel, make_level

__all__ = ["Editor"]


class Editor(ExtraEffects):
    """Edits a :class:`Segmentation` against a source :class:`Image` (same grid).

    Parameters
    ----------
    segmentation : Segmentation
        The segmentation to edit (in place).
    image : Image or None
        The source image, on the same backend (needed by threshold, intensity ranges, level
        tracing and grow from seeds). On another grid it is resampled linearly onto the
        segmentation's (Slicer's aligned source volume; docs/geometry.md): ``image`` is the
        resampled one, ``source_image`` the one given.
    undo_budget : int or str
        Memory the undo and redo levels may hold (``"256MB"``); the oldest levels go first.
    stroke_limits : StrokeLimits or None
        Bounds on the work of one brush stroke (default :class:`StrokeLimits`); a stroke over
        one raises :class:`InvalidInputError` naming it, before any work.

    Attributes
    ----------
    masking : Masking
        The masking settings used by every edit (previews keep a copy).
    stroke_limits : StrokeLimits
    history : UndoHistory
    """

    def __init__(self, segmentation: Segmentation, image: Image | None = None, *,
                 undo_budget: int | str = "256MB", stroke_limits: StrokeLimits | None = None) -> None:
        if not isinstance(segmentation, Segmentation):
            raise InvalidInputError(f"an Editor edits a Segmentation, got {type(segmentation).__name__}")
        if image is not None:
            if image.backend is not segmentation.backend:
                raise InvalidInputError("image and segmentation must be on the same backend")
            if not isinstance(image, Image):
                raise InvalidInputError(f"the source image must be an Image, got {type(image).__name__}")
        if stroke_limits is not None and not isinstance(stroke_limits, StrokeLimits):
            raise InvalidInputError(f"stroke_limits must be a StrokeLimits, got {type(stroke_limits).__name__}")
        self.segmentation = segmentation
        #: the source image as given; ``image`` is it on the segmentation's grid
        self.source_image = image
        if image is not None and not image.geometry.is_same_grid(segmentation.geometry):
            # Slicer resamples the source volume onto the segmentation's labelmap geometry (linear)
            # when they differ; docs/geometry.md
            from ..ops.resample import resample_image

            image = resample_image(image, segmentation.geometry)
        self.image = image
        self.masking = Masking()
        self.stroke_limits = stroke_limits if stroke_limits is not None else StrokeLimits()
        self.history = UndoHistory(parse_bytes(undo_budget), self._rerasterize)
        self._grow = GrowSession()
        self._collect: list | None = None  # undo levels gathered into one (all visible segments)

    @property
    def undo_budget(self) -> int:
        """Bytes the undo and redo levels may hold."""
        return self.history.budget

    @undo_budget.setter
    def undo_budget(self, value: int | str) -> None:
        self.history.budget = parse_bytes(value)

    # --- points and blocks ----------------------------------------------------------------
    def _points_ijk(self, points, space: str) -> np.ndarray:
        try:
            p = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError("stroke points must be an (N, 3) array of numbers") from None
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

    def _preview(self, sid: str, region, **kw) -> StrokePreview | None:
        """A preview of ``region`` = (extent, dense) with a snapshot of the masking."""
        if region is None:
            return None
        box, words = pack_block(*region)
        return StrokePreview(sid, kw.pop("erase", False), kw.pop("erase_all", False), box, words,
                             self.masking.copy(), self, **kw)

    # --- brush ------------------------------------------------------------------------------
    def rasterize(self, points, diameter_mm: float, *, shape: str = "sphere", axis: int = 0,
                  space: str = "world") -> tuple[tuple, np.ndarray] | None:
        """A brush stroke as ``(word box, host words)``: every voxel whose centre is inside the
        brush at any stamp (see :mod:`gpuseg.editor.brush`).

        Parameters
        ----------
        points : array_like
            ``(N, 3)`` stroke points (or one point).
        diameter_mm : float
            Brush diameter in world mm.
        shape : str
            ``sphere``, ``disc`` (in the slice of grid axis ``axis`` through each stamp) or
            ``pixel`` (the nearest voxel).
        axis : int
            The disc's slice axis (0 k, 1 j, 2 i).
        space : str
            ``world`` (LPS mm) or ``ijk`` (continuous indices).

        Returns
        -------
        tuple or None
            None when the stroke covers no voxel (points outside the volume are clipped).

        Raises
        ------
        InvalidInputError
            Bad points, shape, diameter or axis, or a stroke over :attr:`stroke_limits`.
        """
        ijk = self._points_ijk(points, space)
        region = rasterize_stroke(self.segmentation.geometry, ijk, diameter_mm, shape, axis, self.stroke_limits)
        return None if region is None else pack_block(*region)

    def _rerasterize(self, recipe: tuple):
        """The stroke of an undo level again (it passed the limits once: none now)."""
        points, diameter, shape, axis = recipe
        region = rasterize_stroke(self.segmentation.geometry, points, diameter, shape, axis, None)
        return None if region is None else pack_block(*region)

    # --- masking ----------------------------------------------------------------------------
    def _grid_words(self, box) -> np.ndarray:
        return grid_words(box, self.segmentation.geometry.shape[2])

    def _editable(self, segment_id: str | Sequence[str], box, masking: Masking) -> np.ndarray:
        return editable_words(self.segmentation, self.image, segment_id, box, masking)

    def modifier(self, p: StrokePreview) -> np.ndarray:
        """Host words (over ``p.box``) of the preview's region that masking lets change now."""
        return p.stroke & self._editable(p.segment_id, p.box, p.masking)

    # --- effects ------------------------------------------------------------------------------
    def preview(self, segment: str, points, diameter_mm: float = 5.0, *, erase: bool = False,
                erase_all_segments: bool = False, shape: str = "sphere", axis: int = 0,
                space: str = "world") -> StrokePreview | None:
        """What painting (or erasing) the stroke would change; nothing is committed.

        Parameters are those of :meth:`rasterize`, with ``erase`` (remove instead of add) and
        ``erase_all_segments`` (erase from every segment).

        Returns
        -------
        StrokePreview or None
            None when the stroke covers no voxel.
        """
        sid = self.segmentation.segment(segment).id
        self.masking.check(self.segmentation)
        ijk = self._points_ijk(points, space)
        region = rasterize_stroke(self.segmentation.geometry, ijk, diameter_mm, shape, axis, self.stroke_limits)
        recipe = (np.array(ijk, dtype=np.float64), float(diameter_mm), shape, int(axis))
        return self._preview(sid, region, erase=erase, erase_all=erase_all_segments, recipe=recipe)

    def paint(self, segment: str, points, diameter_mm: float = 5.0, **kw) -> int:
        """Paint a stroke into ``segment`` (see :meth:`preview`); one undo level.

        Returns
        -------
        int
            The number of voxels that changed in any segment.
        """
        p = self.preview(segment, points, diameter_mm, **kw)
        return self.commit(p) if p is not None else 0

    def erase(self, segment: str, points, diameter_mm: float = 5.0, *, all_segments: bool = False, **kw) -> int:
        """Erase a stroke from ``segment`` (or from every segment); one undo level. Returns the
        number of voxels that changed."""
        p = self.preview(segment, points, diameter_mm, erase=True, erase_all_segments=all_segments, **kw)
        return self.commit(p) if p is not None else 0

    def commit(self, p: StrokePreview) -> int:
        """Apply a preview (with the segmentation as it is now); one undo level.

        Returns
        -------
        int
            The number of voxels that changed in any segment.

        Raises
        ------
        UnknownSegmentError
            The preview's segment was removed since.
        """
        seg = self.segmentation
        if p.segment_id not in seg.segment_ids:
            raise UnknownSegmentError(f"segment {p.segment_id!r} was removed since the preview")
        modifier = self.modifier(p)
        target = seg[p.segment_id]
        plan: list[tuple[object, str, np.ndarray]] = []
        if p.replace:  # Set mode: voxels of the editable area outside the region leave the segment
            editable = self._editable(p.segment_id, p.box, p.masking)
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

    def _apply(self, plan, box, stroke=None) -> int:
        """Carry out a modify plan and record one undo level; the voxels changed."""
        diffs = apply_plan(self.segmentation, plan, box)
        if not diffs:
            return 0
        level = make_level(diffs, box, stroke)
        if self._collect is not None:
            self._collect.append(level)
        else:
            self.history.push(level)
        return sum(int(np.unpackbits(d.view(np.uint8)).sum()) for _, d in diffs)

    # --- scissors, draw, level tracing -----------------------------------------------------------
    def scissors_preview(self, segment: str, points, *, operation: str = "erase_inside", shape: str = "freeform",
                         axis: int = 0, extrusion: str = "unlimited", depth_mm: float = 0.0,
                         all_visible: bool = False, space: str = "world") -> StrokePreview | None:
        """Scissors as a preview: a shape drawn in a slice, extruded along the slice normal (see
        :mod:`gpuseg.editor.scissors`).

        Parameters
        ----------
        segment : str
        points : array_like
            The shape's points: a polygon (``freeform``), centre and rim point (``circle``) or
            two corners (``rectangle``); the slice is the first point's.
        operation : str
            ``erase_inside``, ``erase_outside``, ``fill_inside`` or ``fill_outside``.
        shape : str
        axis : int
            The slice axis (0 k, 1 j, 2 i).
        extrusion : str
            ``unlimited``, ``positive``, ``negative``, ``symmetric`` or ``slice``.
        depth_mm : float
        all_visible : bool
            Erase from every visible segment.
        space : str
            ``world`` or ``ijk``.
        """
        seg = self.segmentation
        sid = seg.segment(segment).id
        self.masking.check(seg)
        ijk = self._points_ijk(points, space)
        found = scissors_region(seg, sid, ijk, operation=operation, shape=shape, axis=axis, extrusion=extrusion,
                                depth_mm=depth_mm, all_visible=all_visible)
        if found is None:
            return None
        ext, dense, targets, erase = found
        return self._preview(sid, (ext, dense), erase=erase, erase_targets=targets)

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
        from ..ops.level_tracing import level_trace

        sid = self._click_start(segment, "level tracing")
        region = level_trace(self.image, self._click_voxel(point, space, "level tracing"), axis)
        return self._region_preview(sid, region)

    def level_trace(self, segment: str, point, *, axis: int = 0, space: str = "world") -> int:
        """Add the level-tracing region through ``point`` to ``segment`` (one undo level)."""
        p = self.level_trace_preview(segment, point, axis=axis, space=space)
        return self.commit(p) if p is not None else 0

    # --- click effects: a region from one voxel, added through masking ---------------------------
    def _click_voxel(self, point, space: str, what: str) -> tuple[int, int, int]:
        """The voxel ``(k, j, i)`` nearest to one clicked point."""
        p = self._points_ijk(point, space)
        if p.shape[0] != 1:
            raise InvalidInputError(f"{what} takes one point, got {p.shape[0]}")
        return tuple(int(np.floor(v + 0.5)) for v in p[0][::-1])  # type: ignore[return-value]

    def _region_preview(self, sid: str, region: Mask) -> StrokePreview | None:
        """A preview that adds ``region`` (a Mask on the grid) to segment ``sid``; None if empty."""
        if region.is_empty():
            return None
        ext = region.extent()
        return self._preview(sid, (ext, region.to_numpy(ext)))

    def _click_start(self, segment: str, what: str) -> str:
        if self.image is None:
            raise InvalidInputError(f"{what} needs the source image")
        sid = self.segmentation.segment(segment).id
        self.masking.check(self.segmentation)
        return sid

    def _roi_extent(self, roi, space: str) -> Extent | None:
        """An ROI as a voxel Extent: an Extent, or two corner points (in ``space``) whose voxel
        box, from floor of the lower to ceil of the upper index per axis, is taken as Slicer's
        cropOrientedImage does; clipped to the grid."""
        if roi is None or isinstance(roi, Extent):
            return roi
        p = self._points_ijk(roi, space)
        if p.shape[0] != 2:
            raise InvalidInputError(f"an roi is two corner points, got {p.shape[0]}")
        lo, hi = np.floor(p.min(0)).astype(int), np.ceil(p.max(0)).astype(int)  # (i, j, k)
        return Extent(lo[2], hi[2] + 1, lo[1], hi[1] + 1, lo[0], hi[0] + 1).clip(self.segmentation.geometry.shape)

    def _editable_mask(self, sid: str) -> Mask | None:
        """The editable voxels of the whole grid as a Mask (None when masking restricts nothing):
        Slicer's edit mask, used as a stencil by the click effects."""
        if not self.masking.is_restricted:
            return None
        seg = self.segmentation
        box = box_for_extent(seg.geometry.extent)
        words = self._editable(sid, box, self.masking)
        return Mask(seg.geometry, seg.backend, seg.backend.asarray(words), box)

    def flood_fill_preview(self, segment: str, point, *, intensity_tolerance: float = 10.0,
                           neighborhood_size_mm: float = 1.0, roi=None, space: str = "world") -> StrokePreview | None:
        """Slicer's Flood filling effect (SegmentEditorExtraEffects) as a preview: the region
        :func:`gpuseg.ops.regions.flood_filling` grows from the clicked voxel (VTK's
        vtkImageThresholdConnectivity: value ± ``intensity_tolerance``, a voxel joins when at least
        half of its neighbourhood of ``neighborhood_size_mm`` is in range), with the editable area
        and intensity range as the flood's stencil, as Slicer's; committing adds it to ``segment``
        (Add mode: masking and overwrite).

        Parameters
        ----------
        segment : str
        point : array_like
            One point.
        intensity_tolerance : float
            Slicer's IntensityTolerance (default 10).
        neighborhood_size_mm : float
            Slicer's NeighborhoodSizeMm (default 1.0), which VTK reads as a radius in voxels.
        roi : Extent or two points, optional
            Clip the source image to this box first (Slicer's optional ROI).
        space : str
            ``world`` or ``ijk`` (of ``point`` and ``roi``).

        Returns
        -------
        StrokePreview or None
            None when the region is empty.
        """
        from ..ops.regions import flood_filling

        sid = self._click_start(segment, "flood filling")
        kji = self._click_voxel(point, space, "flood filling")
        region = flood_filling(self.image, kji, intensity_tolerance=intensity_tolerance,
                               neighborhood_size_mm=neighborhood_size_mm, mask=self._editable_mask(sid),
                               roi=self._roi_extent(roi, space))
        return self._region_preview(sid, region)

    def flood_fill(self, segment: str, point, **kw) -> int:
        """Add the flood-filled region at ``point`` to ``segment`` (see :meth:`flood_fill_preview`);
        one undo level. Returns the number of voxels that changed."""
        p = self.flood_fill_preview(segment, point, **kw)
        return self.commit(p) if p is not None else 0

    def local_threshold_preview(self, segment: str, point, lo: float, hi: float, *, minimum_diameter_mm: float = 3.0,
                                segmentation_algorithm: str = "GrowCut", feature_size_mm: float = 3.0, roi=None,
                                space: str = "world") -> StrokePreview | None:
        """Slicer's Local threshold effect (SegmentEditorExtraEffects) as a preview: Ctrl+click at
        ``point`` with the threshold range ``[lo, hi]`` (:func:`gpuseg.ops.regions.local_threshold`:
        erode by ``minimum_diameter_mm``, snap, then ``Masking`` or ``GrowCut``). As in Slicer the
        edit runs with the editable intensity range set to ``[lo, hi]`` (intersected with the one
        in :attr:`masking`, if any): GrowCut's edit mask and the commit (Add mode, overwrite) use it.

        Parameters
        ----------
        segment : str
        point : array_like
            One point.
        lo, hi : float
            MinimumThreshold and MaximumThreshold.
        minimum_diameter_mm : float
            MinimumDiameterMm (default 3).
        segmentation_algorithm : str
            SegmentationAlgorithm: ``GrowCut`` (default) or ``Masking``; Slicer's ``WaterShed``
            is not implemented.
        feature_size_mm : float
            FeatureSizeMm (default 3), which Slicer uses only for WaterShed: checked, unused.
        roi : Extent or two points, optional
            Clip the source image to this box (Slicer's optional ROI).
        space : str
            ``world`` or ``ijk``.

        Returns
        -------
        StrokePreview or None
            None when the region is empty.
        """
        from ..ops.regions import local_threshold

        sid = self._click_start(segment, "local threshold")
        kji = self._click_voxel(point, space, "local threshold")
        f = float(feature_size_mm)
        if not np.isfinite(f) or f < 0:
            raise InvalidInputError(f"feature_size_mm must be a non-negative number, got {feature_size_mm!r}")
        lo, hi = float(lo), float(hi)
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
            raise InvalidInputError(f"local threshold needs a range lo <= hi, got {lo:g}, {hi:g}")
        masking = self.masking.copy()
        if masking.intensity_range is not None:
            olo, ohi = masking.intensity_range
            masking.intensity_range = (max(float(olo), lo), min(float(ohi), hi))
        else:
            masking.intensity_range = (lo, hi)
        if masking.intensity_range[0] > masking.intensity_range[1]:
            return None  # the two ranges do not meet: nothing is editable
        saved, self.masking = self.masking, masking
        try:
            editable = self._editable_mask(sid) if segmentation_algorithm == "GrowCut" else None
        finally:
            self.masking = saved
        region = local_threshold(self.image, kji, lo, hi, minimum_diameter_mm=minimum_diameter_mm,
                                 segmentation_algorithm=segmentation_algorithm, mask=editable,
                                 roi=self._roi_extent(roi, space))
        if region.is_empty():
            return None
        ext = region.extent()
        box, words = pack_block(ext, region.to_numpy(ext))
        return StrokePreview(sid, False, False, box, words, masking, self)

    def local_threshold(self, segment: str, point, lo: float, hi: float, **kw) -> int:
        """Add the local-threshold region at ``point`` to ``segment`` (see
        :meth:`local_threshold_preview`); one undo level. Returns the number of voxels that changed."""
        p = self.local_threshold_preview(segment, point, lo, hi, **kw)
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
        editable = self._grid_words(box) if bypass_masking else self._editable(sid, box, m)
        target = seg[sid]
        plan: list[tuple[object, str, np.ndarray]] = [(target, "andnot", editable & ~new), (target, "or", editable & new)]
        if not bypass_masking and m.overwrite != "allow_overlap":
            for s in seg:
                if s.id != sid and (m.overwrite == "overwrite_all" or s.visible):
                    plan.append((s, "andnot", editable & new))
        return self._apply(plan, box)

    # --- whole-segment effects, on one segment or on all visible ones --------------------------
    def _each_visible(self, segment: str | None, all_visible: bool, what: str, result) -> int:
        """Apply ``result(mask) -> Mask`` through :meth:`set_mask` to ``segment``, or with
        ``all_visible`` to every visible segment in turn (Slicer's ApplyToAllVisibleSegments:
        each segment is processed as it is after the ones before it, in segmentation order),
        recorded as one undo level. Returns the voxels changed anywhere."""
        seg = self.segmentation
        if not all_visible:
            if segment is None:
                raise InvalidInputError(f"{what} needs a segment (or all_visible=True)")
            return self.set_mask(segment, result(seg.segment(segment).mask))
        if segment is not None:
            seg.segment(segment)  # an unknown name fails before any change
        ids = [s.id for s in seg if s.visible]
        if not ids:
            raise InvalidInputError(f"{what} on all visible segments: no segment is visible")
        self.masking.check(seg)
        levels: list = []
        self._collect = levels
        total = 0
        try:
            for sid in ids:
                total += self.set_mask(sid, result(seg[sid].mask))
        finally:
            self._collect = None
        if levels:
            self.history.push(UndoLevel([c for lv in levels for c in lv.changes]))
        return total

    def margin(self, segment: str | None, margin_mm: float = 3.0, *, all_visible: bool = False) -> int:
        """Slicer's Margin effect (grow, or shrink with a negative value; ``MarginSizeMm``
        default 3), through masking; ``all_visible`` applies it to every visible segment
        (``ApplyToAllVisibleSegments``), as one undo level."""
        from ..ops.morphology import margin

        return self._each_visible(segment, all_visible, "margin", lambda m: margin(m, margin_mm))

    def hollow(self, segment: str | None, thickness_mm: float = 3.0, mode: str = "inside", *,
               all_visible: bool = False) -> int:
        """Slicer's Hollow effect (``ShellThicknessMm`` default 3, ``ShellMode`` inside), through
        masking; ``all_visible`` applies it to every visible segment, as one undo level."""
        from ..ops.morphology import hollow

        return self._each_visible(segment, all_visible, "hollow", lambda m: hollow(m, thickness_mm, mode))

    def smooth(self, segment: str | None, method: str = "median", kernel_mm: float = 3.0, *,
               gaussian_sigma_mm: float = 3.0, joint_smoothing_factor: float = 0.5,
               all_visible: bool = False, points=None, diameter_mm: float = 5.0, shape: str = "sphere",
               axis: int = 0, space: str = "world") -> int:
        """Slicer's Smoothing effect, on the whole segment or, with ``points``, only inside a
        painted region (Slicer's smoothing brush).

        Parameters
        ----------
        segment : str or None
            The segment (None with ``all_visible``).
        method : str
            ``median`` (Slicer's default), ``opening``, ``closing`` (of ``kernel_mm``,
            ``KernelSizeMm``) or ``gaussian`` (``GaussianStandardDeviationMm``), or
            ``joint_taubin``: Slicer's joint smoothing of *all visible segments* together
            (``JointTaubinSmoothingFactor``, see :mod:`gpuseg.ops.joint_smoothing`). As in Slicer,
            joint smoothing bypasses masking (editable area, intensity range and overwrite mode
            do not apply), ignores ``segment`` and ``all_visible``, and flattens overlapping
            segments (later segments win); it is one undo level.
        kernel_mm, gaussian_sigma_mm, joint_smoothing_factor : float
            ``joint_smoothing_factor`` is in [0, 1] (default 0.5, passBand = 10^(-4 f)).
        all_visible : bool
            Smooth every visible segment in turn (``ApplyToAllVisibleSegments``); one undo level.
        points, diameter_mm, shape, axis, space
            A brush stroke (as :meth:`paint` takes it): the segment changes only inside it. As
            in Slicer's ``modifySelectedSegmentByLabelmap`` with a brush mask, a voxel inside
            the stroke takes the whole-segment smoothing's value and a voxel outside keeps its
            own; masking applies as to any edit. The smoothing is computed over the stroke's box
            grown by the filter's reach only, so a stroke costs in proportion to its size. Not
            with ``joint_taubin`` (Slicer: "Smoothing brush is not available for joint
            smoothing").

        Returns
        -------
        int
            The voxels changed in any segment.
        """
        from ..ops.smoothing import smooth

        if method == "joint_taubin":
            if points is not None:
                raise InvalidInputError("the smoothing brush is not available for joint smoothing (as in Slicer)")
            return self._joint_smooth(segment, joint_smoothing_factor)
        if points is None:
            return self._each_visible(segment, all_visible, "smoothing",
                                      lambda m: smooth(m, method, kernel_mm, gaussian_sigma_mm=gaussian_sigma_mm))
        g = self.segmentation.geometry
        ijk = self._points_ijk(points, space)
        region = rasterize_stroke(g, ijk, diameter_mm, shape, axis, self.stroke_limits)
        if region is None:
            return 0
        ext, dense = region
        brush = Mask.from_numpy(dense, g, offset=(ext.k0, ext.j0, ext.i0), backend=self.segmentation.backend)
        # the filters' reach in voxels per (k, j, i): opening / closing run two passes of the kernel
        sp = np.asarray(g.spacing_kji)
        if method == "gaussian":
            reach = (np.floor(4.0 * float(gaussian_sigma_mm) / sp) + 2).astype(int)
        else:
            reach = 2 * (np.floor(float(kernel_mm) / sp / 2.0).astype(int) + 1)
        window = ext.pad(tuple(int(r) for r in 2 * reach)).clip(g.shape)

        def local(m: Mask) -> Mask:
            from ..ops.logic import intersect, subtract, union

            near = intersect(m, Mask.full(g, window, backend=m.backend))
            smoothed = smooth(near, method, kernel_mm, gaussian_sigma_mm=gaussian_sigma_mm)
            return union(subtract(m, brush), intersect(smoothed, brush))

        return self._each_visible(segment, all_visible, "smoothing", local)

    def _joint_smooth(self, segment: str | None, factor: float) -> int:
        from ..ops.joint_smoothing import check_factor, joint_smooth

        seg = self.segmentation
        if segment is not None:
            seg.segment(segment)  # an unknown name fails before any change
        check_factor(factor)
        ids = [s.id for s in seg if s.visible]
        if not ids:
            raise InvalidInputError("joint smoothing: no segment is visible")
        result = joint_smooth(seg, ids, factor)
        levels: list = []
        self._collect = levels
        total = 0
        try:
            for sid in ids:
                total += self.set_mask(sid, result[sid], bypass_masking=True)
        finally:
            self._collect = None
        if levels:
            self.history.push(UndoLevel([c for lv in levels for c in lv.changes]))
        return total

    def mask_volume(self, segment: str, operation: str = "fill_outside", *, fill_value: float = 0,
                    inside_value: float = 1, outside_value: float = 0, soft_edge_mm: float = 0.0,
                    image: Image | None = None) -> Image:
        """Slicer's Mask volume effect: a new image from the source image (or ``image``) and
        ``segment`` (see :func:`gpuseg.ops.mask_volume.mask_volume`). The segmentation does not
        change and masking does not apply (as in Slicer); there is nothing to undo.

        Returns
        -------
        Image
            The masked volume (the editor's source image is left as it is).
        """
        from ..ops.mask_volume import mask_volume

        src = image if image is not None else self.image
        if src is None:
            raise InvalidInputError("mask volume needs the source image (or image=)")
        mask = self.segmentation.segment(segment).mask
        return mask_volume(src, mask, operation, fill_value=fill_value, inside_value=inside_value,
                           outside_value=outside_value, soft_edge_mm=soft_edge_mm)

    def split_volume(self, segments: str | list[str] | None = None, *, fill_value: float = 0,
                     padding_voxels: int = 5, clip_to_image: bool = False,
                     image: Image | None = None) -> dict[str, Image]:
        """SegmentEditorExtraEffects' Split volume: one image per segment, cropped to the
        segment's extent padded by ``padding_voxels`` (Slicer's ``PaddingVoxels``, default 5)
        and filled with ``fill_value`` (``FillValue``, default 0) outside the segment (see
        :func:`gpuseg.ops.split_volume.split_volume`).

        ``segments=None`` takes every visible segment (Slicer's ``ApplyToAllVisibleSegments=1``);
        a name or id, or a list of them, takes those segments whether visible or not (Slicer's
        selected segment "irrespective of its visibility"). The segmentation does not change and
        masking does not apply (as in Slicer); there is nothing to undo.

        Returns
        -------
        dict of str to Image
            Segment id -> its cropped image, in segmentation order; empty segments are left out
            (Slicer would write a meaningless box of fill values for them).

        Raises
        ------
        InvalidInputError
            No source image, no visible segment, or a bad fill value or padding.
        UnknownSegmentError
            A segment that does not exist.
        """
        from ..ops.split_volume import split_volume

        src = image if image is not None else self.image
        if src is None:
            raise InvalidInputError("split volume needs the source image (or image=)")
        seg = self.segmentation
        if segments is None:
            chosen = [s for s in seg if s.visible]
            if not chosen:
                raise InvalidInputError("split volume on all visible segments: no segment is visible")
        else:
            keys = [segments] if isinstance(segments, str) else list(segments)
            if not keys:
                raise InvalidInputError("split volume: the list of segments is empty")
            chosen = []
            for k in keys:  # an unknown name fails before any work
                s = seg.segment(k)
                if all(s.id != c.id for c in chosen):
                    chosen.append(s)
        return split_volume(src, {s.id: s.mask for s in chosen}, fill_value=fill_value,
                            padding_voxels=padding_voxels, clip_to_image=clip_to_image)

    def islands(self, segment: str, operation: str = "keep_largest", *, min_size: int = 1000, point=None,
                space: str = "world", connectivity: int = 6) -> int:
        """Slicer's Islands effect (face connectivity by default, as Slicer's), through masking;
        one undo level. Returns the number of voxels that changed.

        Operations (Slicer's names in brackets):

        * ``keep_largest`` (KEEP_LARGEST_ISLAND): the largest island; the segment is cleared when
          it has fewer than ``min_size`` voxels, as in Slicer;
        * ``remove_small`` (REMOVE_SMALL_ISLANDS): islands of fewer than ``min_size`` voxels go;
        * ``split`` (SPLIT_ISLANDS_TO_SEGMENTS): islands of at least ``min_size`` voxels, largest
          first; the largest stays in ``segment``, the n-th (n >= 2) becomes a new segment
          ``<name>_<n>``, as Slicer names them; smaller islands are dropped;
        * ``keep_selected`` / ``remove_selected`` (KEEP_/REMOVE_SELECTED_ISLAND): the island at
          ``point``; a click outside the segment changes nothing, as in Slicer;
        * ``add_selected`` (ADD_SELECTED_ISLAND): adds the region at ``point`` bounded by all
          visible segments (see :func:`gpuseg.ops.islands.bounded_region`).
        """
        from ..ops import islands as isl

        seg = self.segmentation
        sid = seg.segment(segment).id
        if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 0:
            raise InvalidInputError(f"min_size must be a non-negative number of voxels, got {min_size!r}")
        mask = seg[sid].mask
        if operation in ("keep_selected", "remove_selected", "add_selected"):
            if point is None:
                raise InvalidInputError(f"islands {operation} needs a point")
            kji = self._click_voxel(point, space, f"islands {operation}")
            if not seg.geometry.contains_index(kji):
                raise OutOfBoundsError(f"islands {operation}: the point is outside the volume (voxel {kji})")
            if operation == "add_selected":
                self.masking.check(seg)
                visible = [s.mask for s in seg if s.visible]
                region = isl.bounded_region(visible, kji, connectivity) if visible else None
                p = self._region_preview(sid, region) if region is not None else None
                return self.commit(p) if p is not None else 0
            found = isl.connected_components(mask, connectivity)
            v = found.label_at(kji)
            if v == 0:
                return 0
            keep = [v] if operation == "keep_selected" else [u for u in range(1, found.n + 1) if u != v]
            return self.set_mask(sid, found.mask_of(keep))
        if operation == "keep_largest":
            return self.set_mask(sid, isl.keep_largest_island(mask, connectivity, min_size))
        if operation == "remove_small":
            return self.set_mask(sid, isl.remove_small_islands(mask, min_size, connectivity))
        if operation == "split":
            return self._split_islands(sid, min_size, connectivity)
        raise InvalidInputError(f"unknown islands operation {operation!r}; choose keep_largest, remove_small, split, "
                                "keep_selected, remove_selected or add_selected")

    def _split_islands(self, sid: str, min_size: int, connectivity: int) -> int:
        """SPLIT_ISLANDS_TO_SEGMENTS as Slicer runs it: each island after the largest is added to
        a new segment through masking (Add mode), then the selected segment is set to the
        largest (Set mode). One undo level, which also removes the new segments."""
        from ..ops.islands import split_islands

        seg = self.segmentation
        m = self.masking
        m.check(seg)
        src = seg[sid]
        parts = split_islands(src.mask, min_size, connectivity)
        ext = src.mask.box_extent
        if ext.is_empty:
            return 0
        box = box_for_extent(ext)
        b = seg.backend
        base = src.name or "Label"
        plan: list[tuple[object, str, np.ndarray]] = []
        added = []
        for n, part in enumerate(parts[1:], start=2):
            new = seg.add_segment(name=f"{base}_{n}")
            added.append((new.id, new.name, tuple(new.color), new.visible, new.label_value))
            words = b.to_numpy(part.block(box)) & self._editable(new.id, box, m)
            plan.append((new, "or", words))
            if m.overwrite != "allow_overlap":
                plan += [(s, "andnot", words) for s in seg
                         if s.id != new.id and (m.overwrite == "overwrite_all" or s.visible)]
        largest = b.to_numpy(parts[0].block(box)) if parts else np.zeros(box[3:], np.uint32)
        editable = self._editable(sid, box, m)
        plan += [(src, "andnot", editable & ~largest), (src, "or", editable & largest)]
        if m.overwrite != "allow_overlap":
            plan += [(s, "andnot", editable & largest) for s in seg
                     if s.id != sid and (m.overwrite == "overwrite_all" or s.visible)]
        diffs = apply_plan(seg, plan, box)
        level = make_level(diffs, box)
        level.added = added
        if diffs or added:
            self.history.push(level)
        return sum(int(np.unpackbits(d.view(np.uint8)).sum()) for _, d in diffs)

    def logical(self, segment: str, operation: str, modifier: str | None = None, *,
                bypass_masking: bool = True) -> int:
        """Slicer's Logical operators: ``copy``, ``union``, ``subtract``, ``intersect`` (with the
        ``modifier`` segment), ``invert``, ``clear``, ``fill``. Like Slicer they bypass masking by
        default (``bypass_masking=False`` applies it)."""
        from ..ops import logic

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
                                region: Extent | None = None) -> GrowPreview:
        """Slicer's Grow from seeds as a preview (see :mod:`gpuseg.editor.grow`): the seeds are
        the visible segments (or ``segments``); every voxel of the region (Slicer's: the seeds'
        extent plus ``int(max(3, 0.1 * (last - first)))`` voxels per axis; or ``region``) that
        masking lets change takes the label of the nearest seed. Nothing changes until
        :meth:`commit_grow`. Calling it again after more strokes on the same seeds only
        propagates the new seed voxels, as long as the region and the editable voxels stay the
        same (else it starts afresh)."""
        if self.image is None:
            raise InvalidInputError("grow from seeds needs the source image")
        seg = self.segmentation
        self.masking.check(seg)
        ids = [seg.segment(x).id for x in segments] if segments is not None else [s.id for s in seg if s.visible]
        if not ids:
            raise InvalidInputError("grow from seeds needs seed segments: no segment is visible")
        region, box, grown, editable = self._grow.preview(seg, self.image, ids, self.masking, seed_locality, region)
        return GrowPreview(ids, region, box, grown, editable, self)

    def commit_grow(self, p: GrowPreview) -> int:
        """Apply a grow preview: in the region, each seed segment becomes its grown voxels (where
        masking allows changes); one undo level. Returns the number of voxels that changed."""
        seg = self.segmentation
        for sid in p.segment_ids:
            if sid not in seg.segment_ids:
                raise UnknownSegmentError(f"segment {sid!r} was removed since the preview")
        box, region = pack_block(p.region, np.ones(p.region.shape, bool))
        assert tuple(box) == tuple(p.box)
        if p.editable is not None:
            region &= p.editable
        plan: list[tuple[object, str, np.ndarray]] = []
        for sid, words in zip(p.segment_ids, p.grown):
            plan.append((seg[sid], "andnot", region & ~words))
            plan.append((seg[sid], "or", words & region))
        self._grow.reset()  # the segments changed: a later preview starts afresh
        return self._apply(plan, p.box)

    def grow_from_seeds(self, **kw) -> int:
        """Preview and apply grow from seeds in one step (see :meth:`grow_from_seeds_preview`)."""
        return self.commit_grow(self.grow_from_seeds_preview(**kw))

    # --- fill between slices (Slicer's auto-complete effect; ignores the image and masking) ------
    def fill_between_slices_preview(self, segments: Sequence[str] | None = None,
                                    axis: int | None = None) -> dict[str, Mask]:
        """Slicer's Fill between slices as a preview: the visible segments (or ``segments``)
        interpolated between their annotated slices (see :mod:`gpuseg.ops.interpolate`) along
        ``axis`` (numpy axis 0/1/2, or None for ITK's automatic choice). Returns the new mask of
        each segment id; nothing changes until :meth:`commit_fill_between_slices`."""
        seg = self.segmentation
        ids = [seg.segment(x).id for x in segments] if segments is not None else [s.id for s in seg if s.visible]
        if not ids:
            raise InvalidInputError("fill between slices needs segments: no segment is visible")
        return dict(zip(ids, _fill_between([seg[sid].mask for sid in ids], axis)))

    def commit_fill_between_slices(self, preview: dict[str, Mask]) -> int:
        """Apply a fill-between-slices preview: each segment gains its interpolated voxels,
        bypassing masking and overwrite (as Slicer); one undo level. Returns the voxels changed."""
        seg = self.segmentation
        ext = None
        for sid, m in preview.items():
            if sid not in seg.segment_ids:
                raise UnknownSegmentError(f"segment {sid!r} was removed since the preview")
            if m.nbytes and not m.box_extent.is_empty:
                ext = m.box_extent if ext is None else ext.union(m.box_extent)
        if ext is None:
            return 0
        box = box_for_extent(ext)
        b = seg.backend
        plan = [(seg[sid], "or", b.to_numpy(m.to(b).block(box))) for sid, m in preview.items()]
        return self._apply(plan, box)

    def fill_between_slices(self, segments: Sequence[str] | None = None, axis: int | None = None) -> int:
        """Preview and apply fill between slices in one step (see :meth:`fill_between_slices_preview`)."""
        return self.commit_fill_between_slices(self.fill_between_slices_preview(segments, axis))

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
        return StrokePreview(sid, False, False, box, words, self.masking.copy(), self, replace=True)

    def auto_threshold(self, method: str = "OTSU", mode: str = "SET_LOWER_MAX",
                       current: tuple[float, float] | None = None) -> tuple[float, float]:
        """A threshold range from the source image's histogram, as Slicer's Auto threshold sets it
        (see :func:`gpuseg.ops.autothreshold.auto_threshold`): Slicer's methods (OTSU, HUANG,
        ISO_DATA, KITTLER_ILLINGWORTH, MAXIMUM_ENTROPY, MOMENTS, RENYI_ENTROPY, SHANBHAG,
        TRIANGLE, YEN, INTERMODES, LI; every image type) or the exact-histogram ones (otsu,
        huang, isodata, li, mean, minimum, triangle, yen; int16/uint16), and the modes
        SET_LOWER_MAX (threshold above, default), SET_MIN_UPPER (threshold below), SET_LOWER and
        SET_UPPER (replace one end of ``current``)."""
        if self.image is None:
            raise InvalidInputError("auto-threshold needs the source image")
        return auto_threshold(self.image, method, mode, current)

    # --- undo / redo ------------------------------------------------------------------------
    @property
    def undo_memory(self) -> int:
        """Bytes held by the undo and redo levels."""
        return self.history.nbytes

    @property
    def can_undo(self) -> bool:
        """Whether there is an edit to undo."""
        return bool(self.history.undo_levels)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone edit to redo."""
        return bool(self.history.redo_levels)

    def undo(self) -> bool:
        """Undo the last edit, bit for bit; False if there is none."""
        return self.history.undo(self.segmentation)

    def redo(self) -> bool:
        """Redo the last undone edit, bit for bit; False if there is none."""
        return self.history.redo(self.segmentation)

    def __repr__(self) -> str:
        return (f"<Editor of {len(self.segmentation)} segments, {len(self.history.undo_levels)} undo levels "
                f"({format_bytes(self.undo_memory)})>")
