"""Region growing from a click: flood fill and local threshold (Slicer's Flood Filling and
Local Threshold effects).

Both are a threshold (restricted to an editable mask if given) followed by the island that
holds the clicked voxel, so they run on the device and are identical on every backend.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import InvalidInputError, OutOfBoundsError
from ..geometry import Extent
from ..image import Image
from ..mask import Mask
from .islands import connected_components
from .logic import intersect
from .morphology import margin
from .threshold import threshold

__all__ = ["flood_fill", "local_threshold", "seed_intensity"]


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


def local_threshold(image: Image, seed: Sequence[int], lo: float, hi: float, *, minimum_diameter_mm: float = 3.0,
                    connectivity: int = 6, mask: Mask | None = None) -> Mask:
    """Slicer's Local Threshold: voxels in ``[lo, hi]`` connected to ``seed`` through parts at least
    ``minimum_diameter_mm`` wide (shrink by half the diameter, keep the seed's island, grow it
    back, and keep only voxels in range), so thin bridges to other structures do not leak."""
    k, j, i = _seed(image, seed)
    d = float(minimum_diameter_mm)
    if not math.isfinite(d) or d < 0:
        raise InvalidInputError(f"minimum diameter must be a non-negative number of mm, got {minimum_diameter_mm!r}")
    inside = threshold(image, lo, hi, mask=mask)
    core = margin(inside, -d / 2) if d > 0 else inside
    isl = connected_components(core, connectivity)
    v = isl.label_at((k, j, i))
    if v == 0:
        return Mask.empty(image.geometry, backend=image.backend)
    region = isl.mask_of([v])
    if d > 0:
        region = margin(region, d / 2)
    return intersect(region, inside).shrink_()
