"""Automatic threshold values from an image's histogram (Slicer's Threshold effect, "Auto").

Two families of methods:

* Slicer's own (upper-case names, :data:`gpuseg.ops.itk_thresholds.SLICER_METHODS`: OTSU,
  HUANG, ISO_DATA, KITTLER_ILLINGWORTH, MAXIMUM_ENTROPY, MOMENTS, RENYI_ENTROPY, SHANBHAG,
  TRIANGLE, YEN, and the hidden INTERMODES and LI): ITK's calculators on the 64-bin histogram
  Slicer builds, equal to Slicer's values, on every image type
  (:mod:`gpuseg.ops.itk_thresholds`);
* exact-histogram variants (lower-case names, int16/uint16 images only): one bin per integer
  value, computed on the device; otsu, isodata, minimum and yen are scikit-image's, given the
  histogram; mean, li, huang and triangle are here because scikit-image computes them from
  the voxels (or its own bins), not from a given integer histogram.

The result is a range, set as Slicer's AutoThresholdMode says (:data:`AUTO_THRESHOLD_MODES`).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInputError
from ..image import Image
from ..mask import Mask
from .itk_thresholds import SLICER_METHODS, image_range, itk_threshold
from .stats import masked_histogram

__all__ = ["AUTO_THRESHOLD_METHODS", "EXACT_METHODS", "AUTO_THRESHOLD_MODES", "auto_threshold", "li_threshold",
           "huang_threshold", "triangle_threshold"]

#: the exact-histogram methods (int16/uint16 images)
EXACT_METHODS = ("otsu", "huang", "isodata", "li", "mean", "minimum", "triangle", "yen")
AUTO_THRESHOLD_METHODS = SLICER_METHODS + EXACT_METHODS
#: Slicer's AutoThresholdMode: SET_LOWER_MAX "threshold above" (default), SET_MIN_UPPER
#: "threshold below", SET_LOWER "set as lower value", SET_UPPER "set as upper value"
AUTO_THRESHOLD_MODES = ("SET_LOWER_MAX", "SET_MIN_UPPER", "SET_LOWER", "SET_UPPER")


def li_threshold(counts: np.ndarray, values: np.ndarray) -> float:
    """Li's iterative minimum cross-entropy threshold on an integer histogram (values shifted
    so that the smallest is 0, as the method needs positive means).

    Parameters
    ----------
    counts : numpy.ndarray
        Bin counts.
    values : numpy.ndarray
        The bins' values, increasing by 1.

    Returns
    -------
    float
    """
    v = values.astype(np.float64) - values[0]
    w = counts.astype(np.float64)
    present = v[w > 0]
    tol = float(np.min(np.diff(present))) / 2 if present.size > 1 else 0.5
    t_next, t_cur = float((w * v).sum() / w.sum()), -2 * tol
    while abs(t_next - t_cur) > tol:
        t_cur = t_next
        fg = v > t_cur
        mean_f = (w[fg] * v[fg]).sum() / w[fg].sum()
        mean_b = (w[~fg] * v[~fg]).sum() / w[~fg].sum()
        if mean_b == 0:
            break
        t_next = float((mean_b - mean_f) / (np.log(mean_b) - np.log(mean_f)))
    return t_next + float(values[0])


def huang_threshold(counts: np.ndarray, values: np.ndarray) -> float:
    """Huang and Wang's fuzzy threshold (Shannon entropy): for each candidate t, the voxels at or
    below t belong to the background with membership 1 / (1 + |v - m_b| / C) (m_b their mean,
    rounded half up; C the histogram's value range), those above to the foreground likewise;
    the threshold minimises the summed fuzzy entropy (the first minimum wins).

    Parameters
    ----------
    counts, values : numpy.ndarray
        As :func:`li_threshold`.

    Returns
    -------
    float
    """
    h = counts.astype(np.float64)
    v = values.astype(np.float64)
    nz = np.flatnonzero(h)
    first, last = int(nz[0]), int(nz[-1])
    if first == last:
        return float(values[first])
    c = float(values[last] - values[first])
    s = np.cumsum(h)
    w = np.cumsum(h * v)

    def shannon(mu):
        mu = np.clip(mu, 1e-300, 1.0)
        out = -mu * np.log(mu) - (1.0 - mu) * np.log(np.clip(1.0 - mu, 1e-300, None))
        return np.where(mu >= 1.0, 0.0, out)

    best, arg = np.inf, first
    span = np.arange(first, last + 1)
    for t in range(first, last):
        mb = math.floor(w[t] / s[t] + 0.5)
        mf = math.floor((w[last] - w[t]) / (s[last] - s[t]) + 0.5)
        lo, hi = span[span <= t], span[span > t]
        e = float((h[lo] * shannon(1.0 / (1.0 + np.abs(v[lo] - mb) / c))).sum()
                  + (h[hi] * shannon(1.0 / (1.0 + np.abs(v[hi] - mf) / c))).sum())
        if e < best:
            best, arg = e, t
    return float(values[arg])


def triangle_threshold(counts: np.ndarray, values: np.ndarray) -> float:
    """Zack's triangle threshold: the bin farthest from the line joining the histogram's peak to
    the end of its longer tail.

    Parameters
    ----------
    counts, values : numpy.ndarray
        As :func:`li_threshold`.

    Returns
    -------
    float
    """
    h = counts.astype(np.float64)
    nz = np.flatnonzero(h)
    lo, hi = int(nz[0]), int(nz[-1])
    peak = int(np.argmax(h))
    if lo == hi:
        return float(values[lo])
    flip = (peak - lo) < (hi - peak)  # walk along the longer tail
    if flip:
        h = h[::-1]
        peak, lo = len(h) - 1 - peak, len(h) - 1 - hi
    width = peak - lo
    x = np.arange(width)
    height = h[peak]
    norm = math.hypot(height, width)
    dist = (height / norm) * x - (width / norm) * h[x + lo]
    level = int(np.argmax(dist)) + lo
    if flip:
        level = len(h) - 1 - level
    return float(values[level])


def auto_threshold(image: Image, method: str = "OTSU", mode: str = "SET_LOWER_MAX",
                   current: tuple[float, float] | None = None) -> tuple[float, float]:
    """A threshold range from ``image``'s histogram, as Slicer's Auto threshold sets it.

    Parameters
    ----------
    image : Image
        Any image type for Slicer's methods; int16 or uint16 for the exact-histogram ones.
    method : str
        One of :data:`AUTO_THRESHOLD_METHODS` (Slicer's default OTSU).
    mode : str
        One of :data:`AUTO_THRESHOLD_MODES`: ``SET_LOWER_MAX`` gives (threshold, image maximum),
        ``SET_MIN_UPPER`` (image minimum, threshold), ``SET_LOWER`` (threshold, current upper),
        ``SET_UPPER`` (current lower, threshold).
    current : (float, float), optional
        The current range, for SET_LOWER and SET_UPPER; default Slicer's first-use range,
        (min + 25% of the image range, max).

    Returns
    -------
    tuple of float
        ``(lower, upper)``.

    Raises
    ------
    InvalidInputError
        Unknown method or mode, an exact-histogram method on another dtype, or an image with
        fewer than two distinct values.
    """
    if method not in AUTO_THRESHOLD_METHODS:
        raise InvalidInputError(f"unknown auto-threshold method {method!r}; choose one of "
                                f"{', '.join(AUTO_THRESHOLD_METHODS)}")
    if mode not in AUTO_THRESHOLD_MODES:
        raise InvalidInputError(f"unknown auto-threshold mode {mode!r}; choose one of {', '.join(AUTO_THRESHOLD_MODES)}")
    if method in SLICER_METHODS:
        vmin, vmax = image_range(image)
        if vmin == vmax:
            raise InvalidInputError("the image has fewer than two distinct values: nothing to threshold")
        t = itk_threshold(image, method)
    else:
        t, vmin, vmax = _exact_threshold(image, method)
    if current is None:
        current = (vmin + 0.25 * (vmax - vmin), vmax)
    lo, hi = (float(v) for v in current)
    return {"SET_LOWER_MAX": (t, vmax), "SET_MIN_UPPER": (vmin, t), "SET_LOWER": (t, hi),
            "SET_UPPER": (lo, t)}[mode]


def _exact_threshold(image: Image, method: str) -> tuple[float, float, float]:
    """(threshold, min, max) with the exact-histogram methods."""
    from skimage import filters

    if image.dtype not in (np.int16, np.uint16):
        raise InvalidInputError(f"auto-threshold {method!r} needs an int16 or uint16 image, got {image.dtype}; "
                                f"Slicer's methods ({', '.join(SLICER_METHODS[:3])}, ...) take every type")
    info = np.iinfo(image.dtype)
    full = Mask.full(image.geometry, backend=image.backend)
    hist = masked_histogram(full, image, int(info.min), int(info.max) - int(info.min) + 1).astype(np.int64)
    nz = np.nonzero(hist)[0]
    if nz.size < 2:
        raise InvalidInputError("the image has fewer than two distinct values: nothing to threshold")
    counts = hist[nz[0]:nz[-1] + 1]
    centres = np.arange(nz[0], nz[-1] + 1) + int(info.min)
    if method == "mean":
        t = float((counts * centres).sum() / counts.sum())
    elif method == "huang":
        t = huang_threshold(counts, centres)
    elif method == "li":
        t = li_threshold(counts, centres)
    elif method == "triangle":
        t = triangle_threshold(counts, centres)
    else:
        t = float(getattr(filters, f"threshold_{method}")(hist=(counts, centres)))
    return t, float(centres[0]), float(centres[-1])
