"""Segmentation geometry: Slicer's "Specify geometry" and moving segments between grids
(docs/geometry.md).

A gpuseg segmentation keeps every segment on its one reference grid (docs/architecture.md,
invariant 2). Changing the labelmap geometry therefore makes a new segmentation whose segments
are resampled nearest-neighbour onto the new grid (:func:`resample_segmentation`), as Slicer's
``vtkSlicerSegmentationGeometryLogic::ResampleLabelmapsInSegmentationNode`` does segment by
segment. The new grid is computed with Slicer's formulas:

* :func:`oversampled_geometry`: ``vtkCalculateOversamplingFactor::ApplyOversamplingOnImageGeometry``.
  Per axis, n' = max(floor(f n), 1) voxels, spacing s' = s n / n', and the origin moves so
  that the outer corners of the old and new grids coincide: it is the old grid's point at new
  index 0.5 (1 - s / s'). Factors outside [0.01, 100] are refused (Slicer warns and ignores).
* :func:`isotropic_geometry`: Specify geometry's "isotropic spacing": every axis gets the
  smallest spacing, n' = floor(n s / s_min), and the origin (the centre of voxel 0) stays
  where it is (Slicer does not re-centre here, unlike oversampling).
* :func:`box_geometry`: a grid over a box (Slicer's ROI source): axes along the box's
  directions, the given spacing, the extent from the box's corners moved half a voxel in and
  rounded (``vtkMath::Round``, half away from zero).
* :func:`padded_geometry`: ``CalculatePaddedOutputGeometry`` ("pad output geometry", on by
  default): the extent grows to hold the effective extent of every segment, transformed with
  ``vtkOrientedImageDataResample::TransformExtent`` (the box's outer corners, rounded to 1e-6,
  then floor / ceil).
* :func:`specify_geometry`: the whole dialog: a source geometry (an image's or a
  segmentation's grid, or a box), then isotropic spacing, then the oversampling factor, then
  padding, in Slicer's order.

Deviation: Slicer matches the source's axes to the segmentation's axes when it applies
isotropic spacing to a source whose axes are permuted against the segmentation
(``SourceAxisIndexForInputAxis``); gpuseg uses the source grid's own axes, which is the same
whenever the source is not rotated against the segmentation by a multiple of 90 degrees.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..errors import InvalidInputError
from ..geometry import Extent, ImageGeometry
from .resample import resample_nearest, transform_extent

__all__ = ["oversampled_geometry", "isotropic_geometry", "box_geometry", "padded_geometry", "specify_geometry",
           "resample_segmentation", "copy_segments", "transform_extent", "auto_oversampling_factor",
           "surface_labelmap_geometry", "MAX_GEOMETRY_VOXELS"]

#: The most voxels a computed geometry may have (a bounds check before anything is allocated:
#: 2**34 voxels are 2 GiB of packed bits per full segment).
MAX_GEOMETRY_VOXELS = 1 << 34


def _checked(shape: Sequence[int], what: str) -> tuple[int, int, int]:
    shp = tuple(int(s) for s in shape)
    if any(s < 1 for s in shp):
        raise InvalidInputError(f"{what}: the grid would be empty (shape {shp} (k, j, i))")
    n = shp[0] * shp[1] * shp[2]
    if n > MAX_GEOMETRY_VOXELS:
        raise InvalidInputError(f"{what}: the grid would have {n} voxels (shape {shp} (k, j, i)), more than "
                                f"the {MAX_GEOMETRY_VOXELS} gpuseg allows; use a coarser spacing or a smaller box")
    return shp  # type: ignore[return-value]


def oversampled_geometry(geometry: ImageGeometry, factor: float) -> ImageGeometry:
    """``geometry`` oversampled by ``factor`` (> 1 finer, < 1 coarser), with Slicer's formula."""
    if not isinstance(geometry, ImageGeometry):
        raise InvalidInputError(f"expected an ImageGeometry, got {type(geometry).__name__}")
    try:
        f = float(factor)
    except (TypeError, ValueError):
        raise InvalidInputError(f"oversampling factor must be a number, got {factor!r}") from None
    if not (0.01 <= f <= 100.0):
        raise InvalidInputError(f"oversampling factor must be between 0.01 and 100, got {factor!r}")
    if f == 1.0:
        return geometry
    n = np.array(geometry.shape[::-1], np.int64)  # (ni, nj, nk)
    n_new = np.maximum(np.floor(f * n).astype(np.int64), 1)  # extent 0..max(floor(f n) - 1, 0)
    sp = np.array(geometry.spacing)
    sp_new = sp * n / n_new
    shift = 0.5 * (1.0 - sp / sp_new)  # in new voxels: the old corner lies half an old voxel out
    direction = geometry.direction
    origin = np.asarray(geometry.origin) + direction @ (sp_new * shift)
    return ImageGeometry(_checked(n_new[::-1], "oversampled geometry"), sp_new, origin, direction)


def isotropic_geometry(geometry: ImageGeometry) -> ImageGeometry:
    """``geometry`` with every axis at its smallest spacing (Slicer's "isotropic spacing")."""
    if not isinstance(geometry, ImageGeometry):
        raise InvalidInputError(f"expected an ImageGeometry, got {type(geometry).__name__}")
    sp = np.array(geometry.spacing)
    smin = float(sp.min())
    n = np.array(geometry.shape[::-1], np.int64)
    n_new = np.floor(sp / smin * n).astype(np.int64)
    return ImageGeometry(_checked(n_new[::-1], "isotropic geometry"), (smin, smin, smin), geometry.origin,
                         geometry.direction)


def _vtk_round(x: np.ndarray) -> np.ndarray:
    """vtkMath::Round: half away from zero."""
    return np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5)).astype(np.int64)


def box_geometry(center, size, spacing, direction=None) -> ImageGeometry:
    """A grid over a box (LPS mm): ``center``, edge lengths ``size`` along the columns of
    ``direction`` (identity by default), voxels of ``spacing``; Slicer's ROI source geometry."""
    c = np.asarray(center, np.float64).reshape(-1)
    sz = np.asarray(size, np.float64).reshape(-1)
    sp = np.asarray(spacing, np.float64).reshape(-1)
    if sp.size == 1:
        sp = np.repeat(sp, 3)
    for v, what in ((c, "box centre"), (sz, "box size"), (sp, "spacing")):
        if v.shape != (3,) or not np.all(np.isfinite(v)):
            raise InvalidInputError(f"{what} must be three finite numbers, got {v.tolist()}")
    if np.any(sp <= 0):
        raise InvalidInputError(f"all spacing values must be larger than 0, got {sp.tolist()}")
    if np.any(sz <= 0):
        raise InvalidInputError(f"box size must be positive, got {sz.tolist()}")
    d = np.eye(3) if direction is None else np.asarray(direction, np.float64)
    if d.shape != (3, 3) or not np.all(np.isfinite(d)):
        raise InvalidInputError("box direction must be a 3x3 matrix of finite numbers")
    d = d / np.linalg.norm(d, axis=0)
    # corners in the box frame, half a voxel in, in output indices (the image-to-box map is diag(spacing))
    lo = _vtk_round((-sz / 2 + sp / 2) / sp)
    hi = _vtk_round((sz / 2 - sp / 2) / sp)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    n = hi - lo + 1
    origin = c + d @ (sp * lo)
    return ImageGeometry(_checked(n[::-1], "box geometry"), sp, origin, d)


def _grow_to(geometry: ImageGeometry, ext: Extent) -> ImageGeometry:
    """``geometry`` over the (possibly larger, possibly negative-start) box ``ext`` of its lattice."""
    full = geometry.extent
    u = full.union(ext)
    if u == full:
        return geometry
    origin = geometry.ijk_to_world_points([u.i0, u.j0, u.k0])
    return ImageGeometry(_checked(u.shape, "padded geometry"), geometry.spacing, origin, geometry.direction)


def padded_geometry(geometry: ImageGeometry, segmentation) -> ImageGeometry:
    """``geometry`` grown to hold every non-empty segment of ``segmentation`` (Slicer's "pad
    output geometry")."""
    ext = Extent.empty()
    for s in segmentation:
        ext = ext.union(s.mask.extent())
    if ext.is_empty:
        return geometry
    return _grow_to(geometry, transform_extent(ext, segmentation.geometry, geometry))


def _source_grid(source) -> ImageGeometry:
    from ..image import Image
    from ..segmentation import Segmentation

    if isinstance(source, ImageGeometry):
        return source
    if isinstance(source, (Image, Segmentation)):
        return source.geometry
    raise InvalidInputError("the source geometry must be an ImageGeometry, an Image or a Segmentation, got "
                            f"{type(source).__name__}")


def specify_geometry(segmentation, source=None, *, oversampling: float = 1.0, isotropic: bool = False,
                     spacing: float | Sequence[float] | None = None, box: tuple | None = None,
                     pad: bool = True) -> ImageGeometry:
    """The labelmap geometry Slicer's "Specify geometry" dialog computes for ``segmentation``.

    Parameters
    ----------
    source : ImageGeometry, Image or Segmentation, optional
        The source geometry (a volume's or a segmentation's grid); default the segmentation's own.
    oversampling : float
        OversamplingFactor (default 1), applied after ``isotropic``.
    isotropic : bool
        IsotropicSpacing: every axis at the source's smallest spacing.
    spacing : float or (si, sj, sk), optional
        UserSpacing: with a ``source`` grid, the grid is rebuilt over the same box with this
        spacing (``box_geometry`` of the source's outer box); with ``box``, the box's spacing.
    box : (center, size) or (center, size, direction), optional
        A box source (Slicer's ROI), in LPS mm; needs ``spacing``.
    pad : bool
        PadOutputGeometry (default on): grow the grid so that no segment is cropped.
    """
    if box is not None and source is not None:
        raise InvalidInputError("give either a source geometry or a box, not both")
    if box is not None:
        if spacing is None:
            raise InvalidInputError("a box source needs a spacing")
        if not isinstance(box, (tuple, list)) or len(box) not in (2, 3):
            raise InvalidInputError("box must be (center, size) or (center, size, direction)")
        g = box_geometry(box[0], box[1], spacing, box[2] if len(box) == 3 else None)
    else:
        g = _source_grid(segmentation if source is None else source)
        if spacing is not None:
            # the source's outer box, re-gridded at the user spacing along the source's axes
            n = np.array(g.shape[::-1], np.float64)
            sp = np.array(g.spacing)
            center = g.ijk_to_world_points((n - 1) / 2.0)
            g = box_geometry(center, n * sp, spacing, g.direction)
    if isotropic:
        g = isotropic_geometry(g)
    g = oversampled_geometry(g, oversampling)
    if pad:
        g = padded_geometry(g, segmentation)
    return g


def resample_segmentation(segmentation, geometry: ImageGeometry, *, progress=None):
    """A new segmentation on ``geometry`` with every segment resampled nearest-neighbour, its
    metadata (names, ids, colours, tags, visibility, label values) and conversion parameters
    kept; the source segmentation is not changed. ``progress(done, total)`` after each segment."""
    from ..segmentation import Segmentation

    if not isinstance(geometry, ImageGeometry):
        raise InvalidInputError(f"expected an ImageGeometry, got {type(geometry).__name__}")
    out = Segmentation(geometry, backend=segmentation.backend)
    out.source_representation = segmentation.source_representation
    params = dict(segmentation.conversion_parameters)
    params.pop("Reference image geometry", None)  # it names the old grid
    out.conversion_parameters = {**out.conversion_parameters, **params}
    out.extra_fields = dict(segmentation.extra_fields)
    segs = list(segmentation)
    for n, s in enumerate(segs, 1):
        _add_copy(out, s, resample_nearest(s.mask, geometry))
        if progress is not None:
            progress(n, len(segs))
    return out


def _add_copy(target, s, mask, *, segment_id: str | None = None):
    seg = target.add_segment(mask, name=s.name, segment_id=segment_id or s.id, color=s.color, tags=s.tags,
                             visible=s.visible, label_value=s.label_value)
    seg.name_auto_generated = s.name_auto_generated
    seg.color_auto_generated = s.color_auto_generated
    return seg


def copy_segments(source, target, segments: Iterable[str] | None = None, *, move: bool = False) -> list:
    """Copy (or, with ``move``, move) segments of ``source`` into ``target``, resampled
    nearest-neighbour onto ``target``'s grid when the grids differ (Slicer's copy / move between
    segmentations in the Segmentations module). Ids are kept when free in ``target``, made
    unique otherwise. Returns the new segments of ``target``."""
    ids = [s.id for s in source] if segments is None else [source.segment(k).id for k in segments]
    if target is source:
        raise InvalidInputError("source and target are the same segmentation")
    same = source.geometry.is_same_grid(target.geometry, atol=0.0)
    added = []
    for sid in ids:
        s = source.segment(sid)
        m = s.mask.to(target.backend)
        m = m.copy() if same else resample_nearest(m, target.geometry)
        added.append(_add_copy(target, s, m))
    if move:
        for sid in ids:
            source.remove_segment(sid)
    return added



# --- closed surface -> binary labelmap geometry (reference §1.3, CS->BL) ----------------------

def _piecewise(x: float, nodes) -> float:
    xs, ys = zip(*nodes)
    return float(np.interp(x, xs, ys))  # vtkPiecewiseFunction, clamped at both ends


def _clip(nodes, c: float):
    """vtkCalculateOversamplingFactor::ClipMembershipFunction: cap at ``c``, with a node added
    where the function crosses ``c``."""
    if c >= 1.0:
        return list(nodes)
    new = [(x0 + (x1 - x0) * (y0 - c) / (y0 - y1), c) for (x0, y0), (x1, y1) in zip(nodes, nodes[1:])
           if (y0 < c < y1) or (y0 > c > y1)]
    out = [(x, min(y, c)) for x, y in nodes] + new
    return sorted(out)


def _area_centroids(nodes):
    for (x0, y0), (x1, y1) in zip(nodes, nodes[1:]):
        rect = (x1 - x0) * min(y0, y1)
        rect_c = (x0 + x1) / 2.0
        tri, tri_c = 0.0, 0.0
        if y1 > y0:
            tri, tri_c = (x1 - x0) * (y1 - y0) / 2.0, x0 + (x1 - x0) * 2.0 / 3.0
        elif y1 < y0:
            tri, tri_c = (x1 - x0) * (y0 - y1) / 2.0, x0 + (x1 - x0) / 3.0
        area = rect + tri
        c = rect_c if tri <= 0.0 else (rect * rect_c + tri * tri_c) / (rect + tri)
        if area > 0.0:
            yield area, c


_SIZE = {"very_small": [(7, 1), (12, 0)], "small": [(7, 0), (12, 1), (14, 1), (18, 0)],
         "medium": [(14, 0), (18, 1), (36, 1), (72, 0)], "large": [(36, 0), (72, 1)]}
_COMPLEXITY = {"low": [(0.2, 1), (0.6, 0)], "high": [(0.2, 0), (0.6, 1)]}
_OVERSAMPLING = {"low": [(-1.25, 1), (-0.75, 1), (-0.25, 0)], "normal": [(-0.75, 0), (-0.25, 1), (0.25, 1), (0.75, 0)],
                 "high": [(0.25, 0), (0.75, 1), (1.25, 1), (1.75, 0)], "very_high": [(1.25, 0), (1.75, 1), (2.25, 1)]}


def auto_oversampling_factor(volume_mm3: float, area_mm2: float, geometry: ImageGeometry) -> float:
    """Slicer's automatic oversampling factor (``Oversampling factor`` = ``A``;
    ``vtkCalculateOversamplingFactor``) for a closed surface of that volume and area rasterized on
    ``geometry``: fuzzy rules on the relative size, cbrt(volume / voxel volume), and the
    complexity, max(normalized shape index - 1, 0) with VTK's shape index
    sqrt(area) / cbrt(volume) / 2.199085233; the centre of mass of the clipped consequents,
    rounded half up, is the power of two returned (1/2 .. 4)."""
    if not (volume_mm3 > 0 and area_mm2 > 0):
        raise InvalidInputError(f"automatic oversampling needs a closed surface with a positive volume and area, got "
                                f"volume {volume_mm3!r} mm3, area {area_mm2!r} mm2")
    size = (volume_mm3 / geometry.voxel_volume) ** (1.0 / 3.0)
    complexity = max(np.sqrt(area_mm2) / np.cbrt(volume_mm3) / 2.199085233 - 1.0, 0.0)
    s = {k: _piecewise(size, v) for k, v in _SIZE.items()}
    c = {k: _piecewise(complexity, v) for k, v in _COMPLEXITY.items()}
    rules = [("very_high", s["very_small"]), ("high", min(s["small"], c["high"])),
             ("high", min(s["medium"], c["high"])), ("normal", min(s["small"], c["low"])),
             ("normal", min(s["medium"], c["low"])), ("low", s["large"])]
    pairs = [p for name, clip in rules for p in _area_centroids(_clip(_OVERSAMPLING[name], clip))]
    den = sum(a for a, _ in pairs)
    centre = sum(a * x for a, x in pairs) / den
    return float(2.0 ** np.floor(centre + 0.5))


def surface_labelmap_geometry(surfaces, reference: ImageGeometry | None = None, *, oversampling="1",
                              crop: bool = False) -> ImageGeometry:
    """The labelmap grid Slicer's ``Closed surface -> Binary labelmap`` rule rasterizes
    ``surfaces`` (Surface objects, LPS) on: the ``reference`` grid (or the default geometry of
    all the surfaces' vertices), oversampled by ``oversampling`` (a number, or ``"A"``: Slicer's
    automatic factor per surface), then the extent: the surfaces' vertex bounds in that grid's
    (i, j, k), floor / ceil, intersected with the reference extent when ``crop``.

    Deviation (one grid per segmentation, docs/architecture.md invariant 2): Slicer gives each
    segment its own labelmap geometry; gpuseg uses one grid for all, with the largest factor any
    surface needs (so it is at least as fine as each segment's own, as Slicer's
    DetermineCommonLabelmapGeometry does) and the union of their extents.
    """
    surfaces = [s for s in surfaces if len(s.vertices)]
    if not surfaces:
        raise InvalidInputError("no surface with vertices to compute a labelmap geometry for")
    allv = np.concatenate([np.asarray(s.vertices, np.float64) for s in surfaces])
    if reference is None:
        from ..surface.voxelize import reference_geometry_for_mesh  # Slicer's default grid for a surface

        g = reference_geometry_for_mesh(allv)
    else:
        g = reference
    text = str(oversampling).strip()
    if text.upper() == "A":
        factor = max(auto_oversampling_factor(abs(s.volume()), s.area(), g) for s in surfaces)
    else:
        try:
            factor = float(text)
        except ValueError:
            raise InvalidInputError(f"oversampling factor must be a number or 'A', got {oversampling!r}") from None
    g = oversampled_geometry(g, factor)
    ijk = g.world_to_ijk_points(allv)
    lo = np.floor(ijk.min(axis=0)).astype(np.int64)
    hi = np.ceil(ijk.max(axis=0)).astype(np.int64)
    ext = Extent(int(lo[2]), int(hi[2]) + 1, int(lo[1]), int(hi[1]) + 1, int(lo[0]), int(hi[0]) + 1)
    if crop:
        ext = ext.intersect(g.extent)
        if ext.is_empty:
            raise InvalidInputError("the surfaces lie outside the reference grid, and cropping to it leaves nothing")
    origin = g.ijk_to_world_points([ext.i0, ext.j0, ext.k0])
    return ImageGeometry(_checked(ext.shape, "surface labelmap geometry"), g.spacing, origin, g.direction)
