"""Region growing from a click: flood fill and local threshold (Slicer's Flood Filling and
Local Threshold effects, from SegmentEditorExtraEffects).

:func:`flood_filling` and :func:`local_threshold` follow the effects' VTK pipelines step by
step (vtkImageThresholdConnectivity, vtkImageDilateErode3D, vtkITKIslandMath); each step is a
device kernel or a packed-mask op, so the results are identical on every backend.
:func:`flood_fill` is the plain form (a range or a tolerance, 6- or 26-connectivity).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import InvalidInputError, OutOfBoundsError
from ..geometry import Extent
from ..image import Image
from ..kernels.regions import NEIGHBORHOOD_THRESHOLD
from ..mask import Mask, box_for_extent, intersect_box
from .islands import connected_components
from .logic import intersect
from .threshold import threshold

__all__ = ["flood_fill", "flood_filling", "threshold_connectivity", "vtk_threshold_bounds", "vtk_neighborhood",
           "local_threshold", "local_threshold_kernel_size", "LOCAL_THRESHOLD_ALGORITHMS", "seed_intensity"]


def _seed(image: Image, kji) -> tuple[int, int, int]:
    try:
        k, j, i = (int(v) for v in kji)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"a seed must be a voxel (k, j, i), got {kji!r}") from exc
    if not image.geometry.contains_index((k, j, i)):
        raise OutOfBoundsError(f"seed voxel (k, j, i) = {(k, j, i)} is outside the volume of shape {image.shape}")
    return k, j, i


def seed_intensity(image: Image, kji: Sequence[int], neighborhood_mm: float = 0.0) -> float:
    """The intensity at a voxel, or the mean over the box of ``neighborhood_mm`` around it."""
    k, j, i = _seed(image, kji)
    si, sj, sk = image.geometry.spacing
    h = [int(math.floor(neighborhood_mm / 2.0 / s)) for s in (sk, sj, si)] if neighborhood_mm > 0 else [0, 0, 0]
    box = Extent(k - h[0], k + h[0] + 1, j - h[1], j + h[1] + 1, i - h[2], i + h[2] + 1).clip(image.shape)
    vals = image.region(box).astype(np.float64)
    vals = vals[~np.isnan(vals)]
    if vals.size == 0:
        raise InvalidInputError(f"the image is NaN at and around the seed {(k, j, i)}")
    return float(vals.mean())


def vtk_threshold_bounds(dtype, lo: float, hi: float):
    """``(lo, hi)`` as VTK's vtkImageThresholdConnectivity casts them to the image type: clamped
    to the type's range, then converted as C++ ``static_cast`` does (integers truncate toward
    zero; float32 rounds to nearest). An empty range (lo > hi) selects nothing."""
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        tmin, tmax = float(info.min), float(info.max)
        cast = lambda v: dt.type(math.trunc(v))  # noqa: E731
    else:
        f = np.finfo(np.float32)
        tmin, tmax = -float(f.max), float(f.max)
        cast = np.float32

    def one(v):
        v = float(v)
        return dt.type(tmin) if v < tmin else dt.type(tmax) if v > tmax else cast(v)

    if math.isnan(float(lo)) or math.isnan(float(hi)):
        raise InvalidInputError(f"threshold bounds must be numbers, got {lo} and {hi}")
    return one(lo), one(hi)


def vtk_neighborhood(radius_ijk: Sequence[float]) -> np.ndarray:
    """The ``(dk, dj, di)`` offsets of VTK's vtkImageThresholdConnectivity neighbourhood of
    ``NeighborhoodRadius = (ri, rj, rk)`` (in voxels): the ellipsoid
    ``(di/ri)^2 + (dj/rj)^2 + (dk/rk)^2 < 1 + 2^-17`` within ``round(r)`` voxels per axis, evaluated
    in VTK's order of operations; none (no neighbourhood test) unless every ``round(r) > 0``."""
    r = [float(v) for v in radius_ijk]
    if any(not math.isfinite(v) or v < 0 for v in r):
        raise InvalidInputError(f"neighbourhood radius must be non-negative numbers, got {radius_ijk!r}")
    xr, yr, zr = (int(v + 0.5) for v in r)
    if not (xr > 0 and yr > 0 and zr > 0):
        return np.zeros((0, 3), np.int32)
    fx, fy, fz = 1.0 / r[0], 1.0 / r[1], 1.0 / r[2]
    out = []
    for dz in range(-zr, zr + 1):
        rz = dz * fz
        rz *= rz
        for dy in range(-yr, yr + 1):
            ry = dy * fy
            ry *= ry
            rzy = rz + ry
            for dx in range(-xr, xr + 1):
                rx = dx * fx
                rx *= rx
                if rzy + rx < 1.0 + 7.62939453125e-06:
                    out.append((dz, dy, dx))
    return np.array(out, np.int32).reshape(-1, 3)


def threshold_connectivity(image: Image, seed: Sequence[int], lo: float, hi: float, *,
                           neighborhood_radius: Sequence[float] = (0.0, 0.0, 0.0), neighborhood_fraction: float = 0.5,
                           mask: Mask | None = None, roi: Extent | None = None) -> Mask:
    """VTK's vtkImageThresholdConnectivity from one seed voxel ``(k, j, i)``: the face-connected
    region of voxels that are "inside", where a voxel is inside when its value is in ``[lo, hi]``
    (bounds cast to the image type as VTK does, :func:`vtk_threshold_bounds`) and at least
    ``neighborhood_fraction`` of its neighbourhood (:func:`vtk_neighborhood` of
    ``neighborhood_radius`` = (ri, rj, rk) voxels; the part inside the grid or ``roi``) is in range.
    ``mask`` is VTK's stencil: voxels outside it are never filled and the flood does not pass
    them (they still count in neighbourhoods). ``roi`` clips the image first (Slicer's ROI).
    The flood fill of VTK (a stack) reaches exactly the face-connected component of the inside
    voxels that holds the seed, which is computed here on the device (kernel
    ``neighborhood_threshold``, then :func:`connected_components`). Empty when the seed is
    outside ``roi`` or not inside.
    """
    k, j, i = _seed(image, seed)
    f = float(neighborhood_fraction)
    if not math.isfinite(f) or not 0.0 <= f <= 1.0:
        raise InvalidInputError(f"neighborhood fraction must lie in [0, 1], got {neighborhood_fraction!r}")
    geom, b = image.geometry, image.backend
    ext = geom.extent if roi is None else _roi(roi, geom)
    empty = Mask.empty(geom, backend=b)
    if ext.is_empty or not (ext.k0 <= k < ext.k1 and ext.j0 <= j < ext.j1 and ext.i0 <= i < ext.i1):
        return empty
    blo, bhi = vtk_threshold_bounds(image.dtype, lo, hi)
    if blo > bhi:
        return empty
    offs = vtk_neighborhood(neighborhood_radius)
    box = box_for_extent(ext)
    if mask is not None:
        if not isinstance(mask, Mask):
            raise InvalidInputError(f"mask must be a Mask, got {type(mask).__name__}")
        if mask.backend is not b:
            raise InvalidInputError(f"mask is on the {mask.backend.name} backend but the image on {b.name}")
        geom.check_same_grid(mask.geometry, "image and mask")
        box = intersect_box(box, mask.box)
    if box[3] * box[4] * box[5] == 0:
        return empty
    inside = Mask(geom, b, b.empty(box[3:], np.uint32, what="flood fill candidates"), box)
    nk, nj, ni = geom.shape
    with inside.writing() as words:
        b.run(NEIGHBORHOOD_THRESHOLD, image.data, nj, ni, ext.k0, ext.k1, ext.j0, ext.j1, ext.i0, ext.i1,
              (words, box), blo, bhi, b.asarray(offs.ravel() if offs.size else np.zeros(3, np.int32)),
              int(offs.shape[0]), f, mask, mask is not None)
        if ext.i0 % 32 or ext.i1 != min(ni, 32 * (box[2] + box[5])):
            b.logic("copy", words, box, words, box, None, None, ext.i0, ext.i1)
    isl = connected_components(inside, 6)
    v = isl.label_at((k, j, i))
    return isl.mask_of([v]) if v else empty


def flood_filling(image: Image, seed: Sequence[int], *, intensity_tolerance: float = 10.0,
                  neighborhood_size_mm: float = 1.0, mask: Mask | None = None, roi: Extent | None = None) -> Mask:
    """Slicer's Flood filling effect (SegmentEditorExtraEffects) from the voxel ``(k, j, i)``:
    :func:`threshold_connectivity` with the range ``value ± intensity_tolerance`` around the seed
    voxel's value, ``NeighborhoodFraction`` 0.5 and ``NeighborhoodRadius`` = ``neighborhood_size_mm``
    on every axis. Slicer passes the millimetre value unchanged to VTK, which reads it as a
    radius in voxels (index offsets), so here too it is voxels on every axis whatever the
    spacing (the default 1.0 is the voxel and its 6 face neighbours, of which 4 must be in range).
    """
    k, j, i = _seed(image, seed)
    t, n = float(intensity_tolerance), float(neighborhood_size_mm)
    if not math.isfinite(t) or t < 0:
        raise InvalidInputError(f"intensity tolerance must be a non-negative number, got {intensity_tolerance!r}")
    if not math.isfinite(n) or n < 0:
        raise InvalidInputError(f"neighbourhood size must be a non-negative number of mm, got {neighborhood_size_mm!r}")
    v = float(image.region(Extent(k, k + 1, j, j + 1, i, i + 1)).reshape(-1)[0])
    if math.isnan(v):
        return Mask.empty(image.geometry, backend=image.backend)
    return threshold_connectivity(image, (k, j, i), v - t, v + t, neighborhood_radius=(n, n, n),
                                  neighborhood_fraction=0.5, mask=mask, roi=roi)


def _roi(roi, geom) -> Extent:
    if not isinstance(roi, Extent):
        raise InvalidInputError(f"roi must be an Extent (voxel box), got {type(roi).__name__}")
    return roi.clip(geom.shape)


def flood_fill(image: Image, seed: Sequence[int], lo: float | None = None, hi: float | None = None, *,
               tolerance: float | None = None, neighborhood_mm: float = 0.0, connectivity: int = 6,
               mask: Mask | None = None) -> Mask:
    """The connected region around ``seed`` (k, j, i) of voxels in ``[lo, hi]``.

    Instead of a range, ``tolerance`` selects voxels within that distance of the seed's
    intensity (or of the mean over ``neighborhood_mm`` around it), as
    ``skimage.segmentation.flood`` and Slicer's Flood Filling do. ``mask`` restricts the
    region to editable voxels. An empty mask is returned when the seed itself is excluded.
    """
    k, j, i = _seed(image, seed)
    if tolerance is not None:
        if lo is not None or hi is not None:
            raise InvalidInputError("give either a range (lo, hi) or a tolerance, not both")
        t = float(tolerance)
        if not math.isfinite(t) or t < 0:
            raise InvalidInputError(f"tolerance must be a non-negative number, got {tolerance!r}")
        c = seed_intensity(image, (k, j, i), neighborhood_mm)
        lo, hi = c - t, c + t
    if lo is None or hi is None:
        raise InvalidInputError("flood_fill needs a range (lo, hi) or a tolerance")
    inside = threshold(image, lo, hi, mask=mask)
    isl = connected_components(inside, connectivity)
    v = isl.label_at((k, j, i))
    if v == 0:
        return Mask.empty(image.geometry, backend=image.backend)
    return isl.mask_of([v])


LOCAL_THRESHOLD_ALGORITHMS = ("GrowCut", "Masking")
#: islands smaller than this (5x5x5 voxels) are removed after the erosion, as Slicer does
LOCAL_THRESHOLD_MIN_ISLAND = 125


def local_threshold_kernel_size(minimum_diameter_mm: float, spacing_ijk) -> tuple[int, int, int]:
    """Slicer's kernel size in voxels per axis (i, j, k): ``int(round((d / s + 1) / 2) * 2 - 1)``
    (Python's round, halves to even), the nearest odd number of voxels to the diameter."""
    d = abs(float(minimum_diameter_mm))
    return tuple(int(round((d / float(s) + 1) / 2) * 2 - 1) for s in spacing_ijk)  # type: ignore[return-value]


def _snap(cleaned: Mask, seed, kernel) -> tuple[int, int, int] | None:
    """Slicer's snapIJKPointsToLabel: the voxel of ``cleaned`` nearest to the seed within
    ``(k - 1) // 2`` voxels per axis (the first in k, j, i order among equals)."""
    k, j, i = seed
    hk, hj, hi = ((kernel[2] - 1) // 2, (kernel[1] - 1) // 2, (kernel[0] - 1) // 2)
    win = Extent(k - hk, k + hk + 1, j - hj, j + hj + 1, i - hi, i + hi + 1).clip(cleaned.shape)
    if win.is_empty:
        return None
    block = cleaned.to_numpy(win)
    best, where = None, None
    for kk, jj, ii in zip(*np.nonzero(block)):  # raster order = Slicer's k, j, i loops
        p = (int(kk) + win.k0, int(jj) + win.j0, int(ii) + win.i0)
        d2 = float((p[2] - i) ** 2 + (p[1] - j) ** 2 + (p[0] - k) ** 2)
        if best is None or d2 < best:
            best, where = d2, p
    return where


def local_threshold(image: Image, seed: Sequence[int], lo: float, hi: float, *, minimum_diameter_mm: float = 3.0,
                    segmentation_algorithm: str = "GrowCut", mask: Mask | None = None,
                    roi: Extent | None = None) -> Mask:
    """Slicer's Local threshold effect (SegmentEditorExtraEffects) from the voxel ``(k, j, i)``.

    The pipeline, as the effect runs it on the source image (clipped to ``roi``):

    1. ``thresh``: voxels in ``[lo, hi]`` (bounds cast to the image type as VTK does);
    2. erode ``thresh`` with vtkImageDilateErode3D's ellipsoid of
       :func:`local_threshold_kernel_size` voxels (``MinimumDiameterMm``), and remove islands
       of fewer than 125 voxels (face connectivity);
    3. snap the seed to the nearest remaining voxel within half a kernel; no voxel: empty;
    4. ``Masking``: dilate the *other* islands with a kernel of ``2k - 1`` voxels, take them out
       of ``thresh``, and keep the face-connected region of the seed; ``GrowCut``: grow from
       three seeds (the other islands, the seed's island, the voxels outside the range) with
       :func:`gpuseg.ops.grow.grow_from_seeds` over the clipped image, editable only in ``mask``
       and the range, and keep what the seed's island grew to.

    ``mask`` is the editable area (Slicer's edit mask, used by GrowCut). WaterShed, Slicer's
    third algorithm, is not offered (it needs ITK's morphological watershed).
    """
    from .grow import grow_from_seeds
    from .islands import remove_small_islands
    from .logic import subtract as _subtract
    from .morphology import dilate_erode_3d

    k, j, i = _seed(image, seed)
    if segmentation_algorithm not in LOCAL_THRESHOLD_ALGORITHMS:
        hint = " (WaterShed is not implemented)" if segmentation_algorithm == "WaterShed" else ""
        raise InvalidInputError(f"unknown segmentation algorithm {segmentation_algorithm!r}{hint}; choose "
                                f"{' or '.join(LOCAL_THRESHOLD_ALGORITHMS)}")
    d = float(minimum_diameter_mm)
    if not math.isfinite(d):
        raise InvalidInputError(f"minimum diameter must be a number of mm, got {minimum_diameter_mm!r}")
    geom, b = image.geometry, image.backend
    empty = Mask.empty(geom, backend=b)
    ext = geom.extent if roi is None else _roi(roi, geom)
    kernel = local_threshold_kernel_size(d, geom.spacing)
    if all(v <= 0 for v in kernel):
        return empty  # Slicer: "feature too small", nothing is applied
    kernel = tuple(max(1, v) for v in kernel)  # an axis of -1 (d far below the spacing): no erosion along it
    if ext.is_empty or not (ext.k0 <= k < ext.k1 and ext.j0 <= j < ext.j1 and ext.i0 <= i < ext.i1):
        return empty
    blo, bhi = vtk_threshold_bounds(image.dtype, lo, hi)
    if blo > bhi:
        return empty
    thresh = threshold(image, blo, bhi, extent=ext)
    eroded = dilate_erode_3d(thresh, kernel, "erode", bounds=ext)
    cleaned = remove_small_islands(eroded, LOCAL_THRESHOLD_MIN_ISLAND, 6)
    snapped = _snap(cleaned, (k, j, i), kernel)
    if snapped is None:
        return empty
    isl = connected_components(cleaned, 6)
    v = isl.label_at(snapped)
    others = isl.mask_of([u for u in range(1, isl.n + 1) if u != v])
    if segmentation_algorithm == "Masking":
        grown = dilate_erode_3d(others, tuple(2 * x - 1 for x in kernel), "dilate", bounds=ext)
        inside = _subtract(thresh, grown)
        found = connected_components(inside, 6)
        u = found.label_at(snapped)
        return found.mask_of([u]) if u else empty
    from .logic import invert as _invert

    selected = isl.mask_of([v])
    outside = _invert(thresh, ext)
    editable = thresh if mask is None else intersect(mask, thresh)
    return grow_from_seeds(image, [others, selected, outside], mask=editable, region=ext)[1].shrink_()
