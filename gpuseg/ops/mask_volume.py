"""Mask volume (Slicer's Mask volume effect, reference §3.1): a new image from a source image
and a segment.

* ``fill_outside`` (Slicer's default): voxels outside the segment become ``fill_value``;
* ``fill_inside``: voxels inside the segment become ``fill_value``;
* ``fill_inside_and_outside``: a binary mask image, ``inside_value`` in the segment and
  ``outside_value`` elsewhere (Slicer's ``BinaryMaskFillValueInside`` / ``...Outside``).

With ``soft_edge_mm > 0`` the segment's 0/255 image is smoothed as ``vtkImageGaussianSmooth``
with that standard deviation and radius factor 4 (:func:`gpuseg.ops.gaussian.gaussian_uchar`,
as Slicer does), ``w = smoothed / 255``, and the output is blended in double precision in
Slicer's order, e.g. ``x * w + fill * (1 - w)`` for fill outside, then cast to the image type
(numpy's ``astype``: truncation toward zero for integers). The output has the source image's
type and grid (Slicer also writes the input's type; the segment must be on the image's grid).
All per-voxel work runs in the ``mask_blend`` and ``gauss_axis`` kernels.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInputError
from ..image import Image
from ..kernels.mask_volume import MASK_BLEND
from ..mask import Mask, box_for_extent
from .gaussian import gaussian_uchar

__all__ = ["mask_volume", "MASK_VOLUME_OPERATIONS"]

MASK_VOLUME_OPERATIONS = ("fill_outside", "fill_inside", "fill_inside_and_outside")
_MODES = {"fill_outside": 0, "fill_inside": 1, "fill_inside_and_outside": 2}


def _fill(value, dtype: np.dtype, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"{what} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InvalidInputError(f"{what} must be finite, got {value!r}")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if v != math.floor(v) or not info.min <= v <= info.max:
            raise InvalidInputError(f"{what} {value!r} is not a {dtype} value (an integer in {info.min}..{info.max})")
    elif abs(v) > float(np.finfo(np.float32).max):
        raise InvalidInputError(f"{what} {value!r} does not fit a float32 image")
    return v


def mask_volume(image: Image, mask: Mask, operation: str = "fill_outside", *, fill_value: float = 0,
                inside_value: float = 1, outside_value: float = 0, soft_edge_mm: float = 0.0) -> Image:
    """Mask ``image`` with ``mask`` (Slicer's Mask volume), writing a new image.

    Parameters
    ----------
    image : Image
        The input volume.
    mask : Mask
        The segment, on the image's grid and backend.
    operation : str
        ``fill_outside`` (default), ``fill_inside`` or ``fill_inside_and_outside``.
    fill_value : float
        Slicer's ``FillValue`` (default 0), for fill inside / outside.
    inside_value, outside_value : float
        Slicer's ``BinaryMaskFillValueInside`` (1) and ``BinaryMaskFillValueOutside`` (0), for
        ``fill_inside_and_outside``.
    soft_edge_mm : float
        Slicer's ``SoftEdgeMm`` (default 0: a hard edge): the Gaussian standard deviation of
        the edge in mm.

    Returns
    -------
    Image
        A new image of the input's type and grid.

    Raises
    ------
    InvalidInputError
        Unknown operation, a fill value the image type cannot hold, a negative soft edge,
        mismatched grids or backends.
    """
    if not isinstance(image, Image):
        raise InvalidInputError(f"mask volume needs an Image, got {type(image).__name__}")
    if not isinstance(mask, Mask):
        raise InvalidInputError(f"mask volume needs a Mask, got {type(mask).__name__}")
    if operation not in _MODES:
        raise InvalidInputError(f"unknown mask volume operation {operation!r}; choose one of "
                                f"{', '.join(MASK_VOLUME_OPERATIONS)}")
    image.geometry.check_same_grid(mask.geometry, "image and mask")
    if mask.backend is not image.backend:
        raise InvalidInputError("image and mask must be on the same backend")
    try:
        soft = float(soft_edge_mm)
    except (TypeError, ValueError):
        raise InvalidInputError(f"soft edge must be a number of mm, got {soft_edge_mm!r}") from None
    if not math.isfinite(soft) or soft < 0:
        raise InvalidInputError(f"soft edge must be a number of mm >= 0, got {soft_edge_mm!r}")
    dt = np.dtype(image.dtype)
    if operation == "fill_inside_and_outside":
        a = _fill(inside_value, dt, "inside value")
        bval = _fill(outside_value, dt, "outside value")
    else:
        a = _fill(fill_value, dt, "fill value")
        bval = 0.0
    g, b = image.geometry, image.backend
    nk, nj, ni = g.shape
    box = box_for_extent(g.extent)
    if soft > 0:
        weight, _ = gaussian_uchar(mask, soft, g.extent)
    else:
        words = mask.block(box) if mask.nbytes else b.zeros(box[3:], np.uint32, what="mask block")
        weight = b.empty((nk, nj, 32 * box[5]), np.uint8, what="mask volume weights")
        b.unpack(words, weight)
    out = b.empty(g.shape, dt, what=f"masked image of shape {g.shape} {dt}")
    b.run(MASK_BLEND, image.data, out, weight, nj, ni, 32 * box[5], _MODES[operation], int(soft > 0), a, bval,
          nk * nj * ni)
    res = Image(out, g, b)
    # NaN can only come from the input; where it had some, look whether any survived (host check, rare)
    res._has_nan = bool(np.isnan(b.to_numpy(out)).any()) if image.has_nan else False
    return res
