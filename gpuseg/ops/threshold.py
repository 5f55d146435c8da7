"""Threshold an image into a bit-packed mask."""

from __future__ import annotations

import math

import numpy as np

from ..errors import EmptyRangeError, InvalidInputError
from ..geometry import Extent
from ..image import Image
from ..mask import Mask, checked_extent, intersect_box, box_for_extent

__all__ = ["threshold", "threshold_bounds"]


def _check_bound(name: str, v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"threshold {name} must be a number, got {v!r}") from exc
    if math.isnan(f):
        raise EmptyRangeError(f"threshold {name} is NaN")
    return f


def threshold_bounds(dtype, lo, hi):
    """Bounds of the image's own dtype that select exactly the values ``lo <= v <= hi``.

    The comparison is defined on the real numbers. For integer images this is
    ``ceil(lo)..floor(hi)`` clipped to the dtype; for float32 it is ``lo`` rounded up and
    ``hi`` rounded down to float32. Every backend then compares in the image's own type,
    which makes the result identical everywhere. Returns ``None`` when no value of the
    dtype can be inside.
    """
    flo, fhi = _check_bound("lower bound", lo), _check_bound("upper bound", hi)
    if flo > fhi:
        raise EmptyRangeError(f"threshold range is empty: lower bound {lo} > upper bound {hi}")
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        ilo = info.min if flo == -math.inf else max(info.min, math.ceil(flo)) if flo < info.max + 1 else None
        ihi = info.max if fhi == math.inf else min(info.max, math.floor(fhi)) if fhi > info.min - 1 else None
        if ilo is None or ihi is None or ilo > ihi:
            return None
        return dt.type(ilo), dt.type(ihi)
    lo32 = np.float32(flo)
    if float(lo32) < flo:
        lo32 = np.nextafter(lo32, np.float32(np.inf))
    hi32 = np.float32(fhi)
    if float(hi32) > fhi:
        hi32 = np.nextafter(hi32, np.float32(-np.inf))
    if lo32 > hi32:
        return None
    return lo32, hi32


def threshold(image: Image, lo: float, hi: float, *, mask: Mask | None = None,
              extent: Extent | None = None) -> Mask:
    """Voxels of ``image`` with ``lo <= value <= hi``, as a packed mask.

    Parameters
    ----------
    image : Image
        The intensity volume.
    lo, hi : float
        Inclusive bounds; ``-inf``/``inf`` leave a side open. NaN voxels are never inside.
    mask : Mask, optional
        Only voxels set in ``mask`` can be set in the result (the result's box is the mask's).
    extent : Extent, optional
        Only voxels inside this box are considered.

    Returns
    -------
    Mask
        On the image's grid and backend.

    Examples
    --------
    >>> import numpy as np, gpuseg
    >>> img = gpuseg.Image.from_numpy(np.arange(64, dtype=np.int16).reshape(4, 4, 4), backend="cpu")
    >>> gpuseg.threshold(img, 10, 20).count()
    11
    """
    if not isinstance(image, Image):
        raise InvalidInputError(f"threshold needs an Image, got {type(image).__name__}")
    bounds = threshold_bounds(image.dtype, lo, hi)
    geom, b = image.geometry, image.backend
    ext = checked_extent(geom, extent)
    if mask is not None:
        if not isinstance(mask, Mask):
            raise InvalidInputError(f"mask must be a Mask, got {type(mask).__name__}")
        if mask.backend is not b:
            raise InvalidInputError(f"mask is on the {mask.backend.name} backend but the image on {b.name}")
        geom.check_same_grid(mask.geometry, "image and mask")
        box = intersect_box(box_for_extent(ext), mask.box)
    else:
        box = box_for_extent(ext)
    if bounds is None or box[3] * box[4] * box[5] == 0:
        return Mask.empty(geom, backend=b)
    out = Mask(geom, b, b.empty(box[3:], np.uint32, what=f"threshold result on grid {geom.shape}"), box)
    with out.writing() as words:
        b.threshold(image.data, bounds[0], bounds[1], words, box,
                    mask.words if mask is not None else None, mask.box if mask is not None else None)
        if extent is not None and (ext.i0 % 32 or ext.i1 != out.box_extent.i1):
            # the word-aligned box may reach past the extent in i: clear those bits
            b.logic("copy", words, box, words, box, None, None, ext.i0, ext.i1)
    return out
