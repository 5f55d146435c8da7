"""Editor methods of Slicer's SegmentEditorExtraEffects beyond flood filling and local
threshold: Draw tube, Surface cut, Watershed, Fast marching and Engrave (docs/editor.md, "How to add an effect").

:class:`ExtraEffects` is a mixin of :class:`gpuseg.Editor`: each effect computes its region
with :mod:`.tube`, :mod:`.surface_cut`, :mod:`.engrave`, :mod:`gpuseg.ops.watershed` or
:mod:`gpuseg.ops.fast_marching` and goes through the
editor's preview, masking, overwrite and undo like every other effect.
"""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass, field
from typing import Sequence

from ..errors import InvalidInputError
from ..geometry import Extent
from ..mask import Mask, box_for_extent, pack_block, unpack_bits
from .masking import editable_words
from .previews import GrowPreview, StrokePreview
from .surface_cut import OPERATIONS, hull_surface
from .tube import tube_region

__all__ = ["ExtraEffects", "FastMarchingResult"]


@dataclass
class FastMarchingResult:
    """A fast march not yet applied: the voxels in arrival order, up to ``percent_max`` of the
    image. :meth:`preview` picks the final volume (Slicer's slider) without marching again."""

    segment_id: str
    percent_max: float
    order: np.ndarray  # flat voxel indices in arrival order (the seed voxels first)
    times: np.ndarray  # their arrival times (mm / speed)
    _editor: object = field(repr=False)

    def n_voxels(self, percent: float | None = None) -> int:
        """Voxels of the result at ``percent`` of the image volume (default ``percent_max``)."""
        pc = self.percent_max if percent is None else float(percent)
        if not (np.isfinite(pc) and 0 <= pc <= self.percent_max):
            raise InvalidInputError(f"percent must be in [0, percent_max = {self.percent_max:g}], got {percent!r}")
        total = self._editor.segmentation.geometry.n_voxels
        return min(int(np.floor(pc / 100.0 * total)), len(self.order))

    def preview(self, percent: float | None = None) -> StrokePreview | None:
        """The segment grown to ``percent`` of the image volume, as a preview to commit."""
        idx = self.order[:self.n_voxels(percent)]
        if idx.size == 0:
            return None
        g = self._editor.segmentation.geometry
        k, j, i = np.unravel_index(idx, g.shape)
        ext = Extent(int(k.min()), int(k.max()) + 1, int(j.min()), int(j.max()) + 1, int(i.min()), int(i.max()) + 1)
        dense = np.zeros(ext.shape, bool)
        dense[k - ext.k0, j - ext.j0, i - ext.i0] = True
        return self._editor._preview(self.segment_id, (ext, dense))


class ExtraEffects:
    """Draw tube, Surface cut and Watershed as :class:`gpuseg.Editor` methods."""

    # --- draw tube ------------------------------------------------------------------------------
    def draw_tube_preview(self, segment: str, points, radius_mm: float = 1.0, *,
                          interpolation: str = "cardinal_spline", space: str = "world") -> StrokePreview | None:
        """Slicer's Draw tube as a preview: the voxels whose centres are within ``radius_mm`` of
        the curve through ``points`` (:mod:`gpuseg.editor.tube`), added to ``segment`` through
        masking on commit.

        Parameters
        ----------
        segment : str
        points : array_like
            The curve's control points, (N, 3), N >= 1.
        radius_mm : float
            Tube radius (Slicer's logic default 1.0 mm).
        interpolation : str
            ``cardinal_spline`` (Slicer's default) or ``linear``.
        space : str
            ``world`` or ``ijk``.

        Returns
        -------
        StrokePreview or None
            None when the tube misses the grid.
        """
        seg = self.segmentation
        sid = seg.segment(segment).id
        self.masking.check(seg)
        ijk = self._points_ijk(points, space)
        world = seg.geometry.ijk_to_world_points(ijk)
        return self._preview(sid, tube_region(seg.geometry, world, radius_mm, interpolation, self.stroke_limits))

    def draw_tube(self, segment: str, points, radius_mm: float = 1.0, **kw) -> int:
        """Add a tube along ``points`` to ``segment`` (see :meth:`draw_tube_preview`); one undo
        level. Returns the number of voxels that changed."""
        p = self.draw_tube_preview(segment, points, radius_mm, **kw)
        return self.commit(p) if p is not None else 0

    # --- surface cut ------------------------------------------------------------------------------
    def surface_cut_region(self, points, *, smooth: bool = True, space: str = "world") -> Mask:
        """The voxels inside Surface cut's closed surface through ``points`` (convex hull, with
        ``smooth`` Loop-subdivided; :mod:`gpuseg.editor.surface_cut`), voxelized with
        :func:`gpuseg.surface.mesh_to_mask`."""
        from ..surface.mesh import mesh_to_mask

        seg = self.segmentation
        world = seg.geometry.ijk_to_world_points(self._points_ijk(points, space))
        v, f = hull_surface(world, smooth)
        return mesh_to_mask(v, f, seg.geometry, backend=seg.backend, what="surface cut surface", check=False)

    def surface_cut_preview(self, segment: str, points, *, operation: str = "set", smooth: bool = True,
                            space: str = "world") -> StrokePreview | None:
        """Slicer's Surface cut as a preview.

        Operations (Slicer's ``Operation``, default ``SET``): ``fill_inside`` adds the surface's
        inside to ``segment``, ``erase_inside`` removes it, ``fill_outside`` adds every voxel of
        the grid outside it, ``erase_outside`` removes the segment's voxels outside it, and
        ``set`` makes the segment the inside (within the editable area: Slicer's Set mode).
        Masking and overwrite apply as for every effect. ``fill_outside`` builds a host block
        of the whole grid (host-side numpy).

        Returns
        -------
        StrokePreview or None
            None when nothing would change (an empty region to add).
        """
        if operation not in OPERATIONS:
            raise InvalidInputError(f"unknown surface cut operation {operation!r}; choose " + ", ".join(OPERATIONS))
        seg = self.segmentation
        sid = seg.segment(segment).id
        self.masking.check(seg)
        inside = self.surface_cut_region(points, smooth=smooth, space=space)
        grid = seg.geometry.extent
        if operation == "fill_inside":
            return self._region_preview(sid, inside)
        if operation == "fill_outside":
            return self._preview(sid, (grid, ~inside.to_numpy(grid)))
        if operation == "set":
            ext = inside.box_extent.union(seg[sid].mask.box_extent)
            if ext.is_empty:
                return None
            return self._preview(sid, (ext, inside.to_numpy(ext)), replace=True)
        if operation == "erase_inside":
            if inside.is_empty():
                return None
            ext = inside.extent()
            return self._preview(sid, (ext, inside.to_numpy(ext)), erase=True)
        own = seg[sid].mask.box_extent  # erase_outside: only the segment's own voxels can go
        if own.is_empty:
            return None
        return self._preview(sid, (own, ~inside.to_numpy(own)), erase=True)

    def surface_cut(self, segment: str, points, **kw) -> int:
        """Apply Surface cut (see :meth:`surface_cut_preview`); one undo level. Returns the
        number of voxels that changed."""
        p = self.surface_cut_preview(segment, points, **kw)
        return self.commit(p) if p is not None else 0

    # --- watershed ----------------------------------------------------------------------------------
    def watershed_preview(self, *, object_scale_mm: float = 2.0, segments: Sequence[str] | None = None,
                          region: Extent | None = None) -> GrowPreview:
        """Slicer's Watershed effect as a preview (an auto-complete effect like grow from seeds).

        The seeds are the visible segments (or ``segments``). Over the region (as grow from
        seeds: the seeds' extent plus max(3 voxels, 10%), or ``region``) the source image's
        gradient magnitude (Gaussian sigma ``object_scale_mm``) is flooded from the seeds
        (:mod:`gpuseg.ops.watershed`: SimpleITK's definition, bit for bit). Markers: seed segment
        n is label n (a voxel in several seeds takes the last one's label); voxels masking does
        not let change, and that no seed holds, are a marker of their own that is dropped, so
        no segment floods through them. Slicer recomputes everything on every update, and so
        does this. Apply it with :meth:`commit_grow` (or call :meth:`watershed`).

        Parameters
        ----------
        object_scale_mm : float
            Slicer's ``ObjectScaleMm`` (default 2.0): the Gaussian sigma in mm.
        segments : sequence of str, optional
        region : Extent, optional

        Returns
        -------
        GrowPreview
        """
        from ..ops.grow import grow_region
        from ..ops.watershed import gradient_magnitude, watershed_from_markers

        if self.image is None:
            raise InvalidInputError("the watershed needs the source image")
        seg = self.segmentation
        self.masking.check(seg)
        ids = [seg.segment(x).id for x in segments] if segments is not None else [s.id for s in seg if s.visible]
        if not ids:
            raise InvalidInputError("the watershed needs seed segments: no segment is visible")
        if len(ids) > 2 ** 30:
            raise InvalidInputError("too many seed segments")
        seeds = [seg[x].mask for x in ids]
        reg = region.clip(seg.geometry.shape) if region is not None else grow_region(seeds, seg.geometry.shape)
        if reg.is_empty:
            raise InvalidInputError("the watershed's seeds are empty (or the region is)")
        feature = gradient_magnitude(self.image.region(reg), seg.geometry.spacing_kji, object_scale_mm)
        markers = np.zeros(reg.shape, np.int32)
        for n, m in enumerate(seeds, start=1):
            markers[m.to_numpy(reg)] = n
        box = box_for_extent(reg)
        editable = None
        if self.masking.is_restricted:
            editable = editable_words(seg, self.image, ids, box, self.masking)
            lead = reg.i0 - 32 * box[2]
            fixed = ~unpack_bits(editable, 32 * box[5])[:, :, lead:lead + reg.shape[2]]
            markers[fixed & (markers == 0)] = len(ids) + 1
        labels = watershed_from_markers(feature, markers)
        grown = [pack_block(reg, labels == n)[1] for n in range(1, len(ids) + 1)]
        return GrowPreview(ids, reg, box, grown, editable, self)

    def watershed(self, **kw) -> int:
        """Preview and apply the watershed in one step (see :meth:`watershed_preview`); one undo
        level. Returns the number of voxels that changed."""
        return self.commit_grow(self.watershed_preview(**kw))

    # --- fast marching ------------------------------------------------------------------------------
    def fast_marching_preview(self, segment: str, *, percent_max: float = 10.0) -> FastMarchingResult:
        """Slicer's Fast marching effect, marched once: the front from ``segment``'s voxels
        (:mod:`gpuseg.ops.fast_marching`; its speed is gpuseg's own intensity model, a
        documented deviation from Slicer's vtkPichonFastMarching) until ``percent_max`` percent
        of the image's voxels are reached. Voxels masking does not let change stop the front.
        Pick the final volume with :meth:`FastMarchingResult.preview` and :meth:`commit`.

        Parameters
        ----------
        segment : str
            The selected segment (only one, as in Slicer).
        percent_max : float
            Slicer's ``PercentMax`` (default 10): the largest volume, percent of the image.

        Returns
        -------
        FastMarchingResult
        """
        from ..ops.fast_marching import fast_march, intensity_speed

        if self.image is None:
            raise InvalidInputError("fast marching needs the source image")
        pm = float(percent_max)
        if not (np.isfinite(pm) and 0 < pm <= 100):
            raise InvalidInputError(f"percent_max must be in (0, 100], got {percent_max!r}")
        seg = self.segmentation
        sid = seg.segment(segment).id
        self.masking.check(seg)
        g = seg.geometry
        seeds = seg[sid].mask.to_numpy(g.extent)
        a = self.image.to_numpy()
        speed = intensity_speed(a, seeds)
        frozen = None
        if self.masking.is_restricted:
            box = box_for_extent(g.extent)
            frozen = ~unpack_bits(editable_words(seg, self.image, sid, box, self.masking), g.shape[2])
        times, order = fast_march(speed, seeds, g.spacing_kji, int(np.floor(pm / 100.0 * g.n_voxels)), frozen)
        return FastMarchingResult(sid, pm, order, times.ravel()[order], self)

    def fast_marching(self, segment: str, percent_max: float = 10.0, percent: float | None = None) -> int:
        """March (see :meth:`fast_marching_preview`) and add the voxels of the first ``percent``
        percent of the image volume (default ``percent_max``) to ``segment``; one undo level.
        Returns the number of voxels that changed."""
        p = self.fast_marching_preview(segment, percent_max=percent_max).preview(percent)
        return self.commit(p) if p is not None else 0

    # --- engrave / emboss ---------------------------------------------------------------------------
    def engrave_preview(self, segment: str, text: str = "Text", mode: str = "engrave", depth_mm: float = 5.0, *,
                        point=None, normal=None, up=None, height_mm: float = 10.0,
                        space: str = "world") -> StrokePreview | None:
        """Slicer's Engrave effect as a preview: ``text`` extruded ``depth_mm`` into the segment
        (``engrave``: removed) or out of it (``emboss``: added) at a surface plane
        (:mod:`gpuseg.editor.engrave`).

        Parameters
        ----------
        segment : str
        text : str
            Slicer's ``Text`` (default "Text").
        mode : str
            Slicer's ``Mode``: ``engrave`` (default) or ``emboss``.
        depth_mm : float
            Slicer's ``TextDepth`` (default 5.0 mm).
        point : array_like, optional
            The text's centre on the surface (``space``); default: the centre of the segment's
            extent face at its largest k, half a voxel out (a box's top face).
        normal, up : array_like, optional
            World directions: the surface's outward normal (default: the grid's +k axis) and
            the letters' up (default: the grid's +j axis, made perpendicular to the normal).
        height_mm : float
            Height of the font's line box (default 10 mm; capitals are about 70% of it).
        space : str
            ``world`` or ``ijk`` for ``point``.
        """
        from .engrave import text_region

        seg = self.segmentation
        sid = seg.segment(segment).id
        self.masking.check(seg)
        g = seg.geometry
        m = np.asarray(g.ijk_to_world, np.float64)[:3, :3]
        if point is None:
            ext = seg[sid].mask.extent()
            if ext.is_empty:
                raise InvalidInputError(f"engrave needs a point: segment {segment!r} is empty")
            ijk = np.array([[(ext.i0 + ext.i1 - 1) / 2.0, (ext.j0 + ext.j1 - 1) / 2.0, ext.k1 - 0.5]])
            world = g.ijk_to_world_points(ijk)
        else:
            world = g.ijk_to_world_points(self._points_ijk(point, space))
            if world.shape[0] != 1:
                raise InvalidInputError(f"engrave takes one point, got {world.shape[0]}")
        normal = m[:, 2] if normal is None else normal
        up = m[:, 1] if up is None else up
        region = text_region(g, text, world[0], normal, up, height_mm, depth_mm, mode)
        return self._preview(sid, region, erase=(mode == "engrave"))

    def engrave(self, segment: str, text: str = "Text", mode: str = "engrave", depth_mm: float = 5.0, **kw) -> int:
        """Engrave or emboss ``text`` on ``segment`` (see :meth:`engrave_preview`); one undo level.
        Returns the number of voxels that changed."""
        p = self.engrave_preview(segment, text, mode, depth_mm, **kw)
        return self.commit(p) if p is not None else 0
