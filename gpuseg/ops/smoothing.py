"""Smoothing of a segment (Slicer's Smoothing effect, reference §3.1), on packed masks.

* ``median``: majority vote in a box whose size per axis is the kernel size in mm divided by
  the spacing, rounded to the nearest odd number of voxels (as Slicer computes it). Near the
  volume border only voxels inside the grid vote; a tie leaves the voxel unset.
* ``opening`` / ``closing``: shrink then grow / grow then shrink by half the kernel size, with
  the physical ball of :func:`gpuseg.margin` (Slicer uses a voxel ellipsoid of the same size:
  the shapes agree up to rounding).

Gaussian and joint (Taubin) smoothing are not implemented yet.
"""

from __future__ import annotations

import math

from ..errors import InvalidInputError
from ..kernels.smoothing import MEDIAN_MAJORITY
from ..mask import Mask
from .morphology import margin

__all__ = ["smooth", "median_kernel_voxels", "SMOOTHING_METHODS"]

SMOOTHING_METHODS = ("median", "opening", "closing")


def median_kernel_voxels(spacing_ijk, kernel_mm: float) -> tuple[int, int, int]:
    """Half-sizes (hk, hj, hi) of Slicer's median box: size per axis = nearest odd of mm/spacing."""
    out = []
    for s in spacing_ijk:
        n = kernel_mm / s
        odd = 2 * int(math.floor((n - 1) / 2 + 0.5)) + 1
        out.append(max(1, odd) // 2)
    hi, hj, hk = out
    return hk, hj, hi


def _median(mask: Mask, kernel_mm: float) -> Mask:
    g, b = mask.geometry, mask.backend
    hk, hj, hi = median_kernel_voxels(g.spacing, kernel_mm)
    if hi > 31:
        raise InvalidInputError(f"median kernel of {kernel_mm:g} mm is {2 * hi + 1} voxels along i; at most 63 "
                                "are supported")
    ext = mask.extent()
    if ext.is_empty:
        return Mask.empty(g, backend=b)
    # a voxel can only become set within the half-size of a set voxel
    out = Mask.zeros(g, ext.pad((hk, hj, hi)).clip(g.shape), backend=b)
    with out.writing() as words:
        b.run(MEDIAN_MAJORITY, (words, out.box), mask, hk, hj, hi, *g.shape)
    return out.shrink_()


def smooth(mask: Mask, method: str = "median", kernel_mm: float = 3.0) -> Mask:
    """Smooth a mask with ``method`` (``median``, ``opening`` or ``closing``) of ``kernel_mm``."""
    if not isinstance(mask, Mask):
        raise InvalidInputError(f"smooth needs a Mask, got {type(mask).__name__}")
    if method not in SMOOTHING_METHODS:
        raise InvalidInputError(f"unknown smoothing method {method!r}; choose one of {', '.join(SMOOTHING_METHODS)}")
    try:
        k = float(kernel_mm)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"kernel size must be a number of mm, got {kernel_mm!r}") from exc
    if not math.isfinite(k) or k <= 0:
        raise InvalidInputError(f"kernel size must be a positive number of mm, got {kernel_mm!r}")
    if method == "median":
        return _median(mask, k)
    r = k / 2.0
    if method == "opening":
        return margin(margin(mask, -r), r)
    return margin(margin(mask, r), -r)
