"""Gaussian smoothing of a packed mask with ``vtkImageGaussianSmooth`` semantics (shared by the
Smoothing effect's Gaussian method and Mask volume's soft edge, reference §3.1).

Slicer turns the segment into an unsigned char image of 0 / 255 and smooths it with
``vtkImageGaussianSmooth``: standard deviation in voxels = sigma mm / spacing per axis, radius
= ``int(std * radius_factor)`` voxels, one separable pass per axis in the order k, j, i (VTK's
z, y, x), each pass written back as unsigned char (truncated toward zero), the kernel clipped at
the grid border and renormalised there. We do the same passes with the ``gauss_axis`` kernel
(kernels/gaussian.cl) over the mask's extent padded by the radius: outside that block the
image is 0, so the result equals VTK's on the whole grid. The normalised kernel rows are computed
on the host (a table of 2r+1 numbers per position along an axis; only the rows within r of the
border differ), so every backend multiplies by the same numbers and sums in the same order.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInputError
from ..geometry import Extent
from ..kernels.gaussian import GAUSS_AXIS
from ..mask import Mask, box_for_extent

__all__ = ["gaussian_radii", "gaussian_uchar"]

#: Slicer's radius factor for the Gaussian smoothing method and Mask volume's soft edge
RADIUS_FACTOR = 4.0


def _std_voxels(spacing_ijk, sigma_mm: float) -> tuple[float, float, float]:
    """Standard deviation in voxels along (k, j, i)."""
    si, sj, sk = (float(s) for s in spacing_ijk)
    return sigma_mm / sk, sigma_mm / sj, sigma_mm / si


def gaussian_radii(spacing_ijk, sigma_mm: float, shape=None, radius_factor: float = RADIUS_FACTOR):
    """VTK's kernel radius per axis (k, j, i): ``int(std * radius_factor)``; with ``shape``, capped
    at the grid length (offsets past the grid are clipped anyway, so the result is the same)."""
    rad = [int(s * radius_factor) for s in _std_voxels(spacing_ijk, sigma_mm)]
    if shape is not None:
        rad = [min(r, max(0, n - 1)) for r, n in zip(rad, shape)]
    return tuple(rad)


def _rows(start: int, count: int, grid_len: int, std: float, radius: int) -> np.ndarray:
    """Normalised kernel rows (count, 2r+1) for block positions start..start+count-1 of an axis
    of grid_len voxels (VTK's ComputeKernel on the clipped range; zeros past the grid)."""
    width = 2 * radius + 1
    out = np.zeros((count, width), np.float64)
    cache: dict[tuple[int, int], np.ndarray] = {}
    for p in range(count):
        g = start + p
        if g >= grid_len:
            continue  # padding columns past the grid: stay 0
        lc = max(0, radius - g)
        rc = max(0, g + radius - (grid_len - 1))
        key = (lc, rc)
        row = cache.get(key)
        if row is None:
            row = np.zeros(width, np.float64)
            if std == 0.0:
                row[radius] = 1.0
            else:
                vals = []
                total = 0.0
                for x in range(-radius + lc, radius - rc + 1):
                    e = math.exp(-float(x * x) / (std * std * 2.0))
                    total += e
                    vals.append(e)
                for n, x in enumerate(range(-radius + lc, radius - rc + 1)):
                    row[x + radius] = vals[n] / total
            cache[key] = row
        out[p] = row
    return out


def gaussian_uchar(mask: Mask, sigma_mm: float, extent: Extent | None = None, *, threshold: int = -1):
    """The 0/255 image of ``mask`` smoothed as ``vtkImageGaussianSmooth`` (radius factor 4) over
    the word box of ``extent`` (default: the mask's extent padded by the radius, clipped).

    Returns ``(dense, box)``: a device uint8 array (nk, nj, 32 nw) over ``box``; columns past
    the grid are 0. With ``threshold >= 0`` the last pass stores 1 where the value is >= it.
    """
    g, b = mask.geometry, mask.backend
    try:
        s = float(sigma_mm)
    except (TypeError, ValueError):
        raise InvalidInputError(f"the Gaussian standard deviation must be a number of mm, got {sigma_mm!r}") from None
    if not math.isfinite(s) or s <= 0:
        raise InvalidInputError(f"the Gaussian standard deviation must be a positive number of mm, got {sigma_mm!r}")
    stds = _std_voxels(g.spacing, s)
    radii = gaussian_radii(g.spacing, s, g.shape)
    if extent is None:
        ext = mask.extent()
        if ext.is_empty:
            return None, None
        ext = ext.pad(radii).clip(g.shape)
    box = box_for_extent(extent if extent is not None else ext)
    k0, j0, w0, nk, nj, nw = box
    ni = 32 * nw
    n = nk * nj * ni
    words = mask.block(box) if mask.nbytes else b.zeros(box[3:], np.uint32, what="mask block")
    cur = b.empty((nk, nj, ni), np.uint8, what="Gaussian block")
    b.unpack(words, cur)
    tmp = b.empty((nk, nj, ni), np.uint8, what="Gaussian block")
    starts = (k0, j0, 32 * w0)
    lens = (nk, nj, ni)
    for axis in range(3):
        w = b.asarray(_rows(starts[axis], lens[axis], g.shape[axis], stds[axis], radii[axis]))
        b.run(GAUSS_AXIS, cur, tmp, nk, nj, ni, axis, w, radii[axis], 255 if axis == 0 else 1,
              threshold if axis == 2 else -1, n)
        cur, tmp = tmp, cur
    return cur, box

