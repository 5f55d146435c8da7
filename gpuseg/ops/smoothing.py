"""Smoothing of a segment (Slicer's Smoothing effect, reference §3.1), on packed masks.

* ``median``: majority vote in a box whose size per axis is the kernel size in mm divided by
  the spacing, rounded to the nearest odd number of voxels (as Slicer computes it). Near the
  volume border only voxels inside the grid vote; a tie leaves the voxel unset.
* ``opening`` / ``closing``: shrink then grow / grow then shrink by half the kernel size, with
  the physical ball of :func:`gpuseg.margin` (Slicer uses a voxel ellipsoid of the same size:
  the shapes agree up to rounding).

* ``gaussian``: Slicer's Gaussian method: the segment as a 0/255 unsigned char image smoothed by
  ``vtkImageGaussianSmooth`` (standard deviation ``sigma_mm`` / spacing per axis, radius factor
  4), then 1 where the smoothed value is >= 127 (``ThresholdByUpper(int(255 / 2))``). The passes
  run on the device (:mod:`gpuseg.ops.gaussian`) and equal VTK's bit for bit.

Joint (Taubin) smoothing of all visible segments works on a segmentation, not one mask: see
:mod:`gpuseg.ops.joint_smoothing` and ``Editor.smooth(method="joint_taubin")``.
"""

from __future__ import annotations

import math

from ..errors import InvalidInputError
from ..kernels.smoothing import MEDIAN_MAJORITY
from ..mask import Mask, extent_of_box
from .gaussian import gaussian_uchar
from .morphology import margin

__all__ = ["smooth", "median_kernel_voxels", "SMOOTHING_METHODS"]

SMOOTHING_METHODS = ("median", "opening", "closing", "gaussian")
#: Slicer's GaussianStandardDeviationMm default
GAUSSIAN_SIGMA_MM = 3.0


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


def _gaussian(mask: Mask, sigma_mm: float) -> Mask:
    g, b = mask.geometry, mask.backend
    dense, box = gaussian_uchar(mask, sigma_mm, threshold=127)
    if dense is None:
        return Mask.empty(g, backend=b)
    out = Mask.zeros(g, extent_of_box(box, g.shape[2]), backend=b)
    with out.writing() as words:
        b.pack(dense, words)
    return out.shrink_()


def smooth(mask: Mask, method: str = "median", kernel_mm: float = 3.0, *,
           gaussian_sigma_mm: float = GAUSSIAN_SIGMA_MM) -> Mask:
    """Smooth a mask with ``method``: ``median``, ``opening`` or ``closing`` of ``kernel_mm``
    (Slicer's KernelSizeMm, default 3), or ``gaussian`` of ``gaussian_sigma_mm`` (Slicer's
    GaussianStandardDeviationMm, default 3)."""
    if not isinstance(mask, Mask):
        raise InvalidInputError(f"smooth needs a Mask, got {type(mask).__name__}")
    if method not in SMOOTHING_METHODS:
        raise InvalidInputError(f"unknown smoothing method {method!r}; choose one of {', '.join(SMOOTHING_METHODS)}")
    if method == "gaussian":
        return _gaussian(mask, gaussian_sigma_mm)
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
