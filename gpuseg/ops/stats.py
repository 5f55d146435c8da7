"""Segment statistics (Slicer's Segment Statistics, reference §5) on packed masks.

Per segment: voxel count, volume (mm³, cm³), centroid (LPS and RAS), and with an image the
intensity statistics of Slicer's scalar-volume plugin: min, max, mean, standard deviation
(sample, N-1), median and percentiles. Work is limited to each segment's own box; nothing
whole-volume is sent to the host.

Exactness: counts and index sums are integers; intensity sums are float64 accumulated in a
fixed order (ascending i within a row, ascending j within a slice, ascending k), identical on
every backend; for int16 and uint16 images every partial sum is an exact integer, so mean and
standard deviation are exact up to the final division. The median and percentiles equal
``numpy.percentile`` with linear interpolation: for int16 and uint16 images from an exact device
histogram (one bin per value); for int32 and float32 images by a two-pass device radix select:
a histogram of the high 16 bits of each value's order-preserving 32-bit key, then, for each
needed rank, a histogram of the low 16 bits within its high bin, which gives the exact value.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from ..errors import InvalidInputError
from ..image import Image
from ..kernels.radix import KEY_HISTOGRAM
from ..kernels.stats import MASKED_HISTOGRAM, STATS_ROWS, STATS_SLICES
from ..mask import Mask

__all__ = ["segment_statistics", "statistics", "masked_histogram", "flatten_rows", "DEFAULT_PERCENTILES"]

DEFAULT_PERCENTILES = (5.0, 95.0)


def _slice_sums(mask: Mask, image: Image | None):
    """Per slice of the mask's box: int64 (count, sum of i, sum of j, image count) and float64
    (sum, sum of squares, min, max) of the image values (stats_rows, then stats_slices)."""
    b = mask.backend
    nk, nj = mask.box[3], mask.box[4]
    img = image.data if image is not None else None
    acc_i = b.empty((nk * nj, 3), np.int64, what="statistics scratch")
    acc_d = b.empty((nk * nj, 4), np.float64, what="statistics scratch")
    gk, gj, gi = mask.shape
    b.run(STATS_ROWS, mask, img, gj, gi, image is not None, acc_i, acc_d)
    out_i = b.empty((nk, 4), np.int64, what="statistics scratch")
    out_d = b.empty((nk, 4), np.float64, what="statistics scratch")
    b.run(STATS_SLICES, acc_i, acc_d, nk, nj, out_i, out_d,
          specialise={"IMAGE_T": image.dtype} if image is not None else None)
    return b.to_host(out_i), b.to_host(out_d)


def masked_histogram(mask: Mask, image: Image, base: int, nbins: int) -> np.ndarray:
    """Histogram of the integer image values under a mask, computed on the mask's backend.

    Parameters
    ----------
    mask : Mask
        The voxels to count (only its box is visited).
    image : Image
        An integer image (int16, uint16 or int32) on the same backend and grid.
    base, nbins : int
        Value ``v`` goes to bin ``v - base``; values outside ``[base, base + nbins)`` are not
        counted.

    Returns
    -------
    numpy.ndarray
        Host uint32 array of ``nbins`` counts (identical on every backend: integer atomics).
    """
    b = mask.backend
    hist = b.zeros((nbins,), np.uint32, what="histogram")
    gk, gj, gi = mask.shape
    b.run(MASKED_HISTOGRAM, mask, image.data, gj, gi, base, nbins, hist)
    return b.to_host(hist)


def _percentiles_from_histogram(hist: np.ndarray, base: int, qs: Sequence[float]) -> list[float]:
    """numpy.percentile(values, q) (linear interpolation) from an integer histogram."""
    cum = np.cumsum(hist.astype(np.int64))
    n = int(cum[-1])
    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        vlo = base + int(np.searchsorted(cum, lo, side="right"))
        vhi = base + int(np.searchsorted(cum, hi, side="right"))
        out.append(float(vlo + (pos - lo) * (vhi - vlo)))
    return out


def _key_to_value(key: int, dtype) -> float:
    k = np.uint32(key)
    if np.dtype(dtype) == np.float32:
        bits = np.uint32(k ^ np.uint32(0x80000000)) if k & np.uint32(0x80000000) else np.uint32(~k)
        return float(np.array(bits, np.uint32).view(np.float32))
    return float(np.array(np.uint32(k ^ np.uint32(0x80000000)), np.uint32).view(np.int32))


def _ranked_values(mask: Mask, image: Image, ranks: Sequence[int]) -> dict[int, float]:
    """The exact values of the given 0-based ranks among the mask's (non-NaN) int32/float32
    values: two 65536-bin digit histograms on the device per distinct high digit."""
    b = mask.backend
    bits = image.data.view(np.uint32)
    is_float = int(np.dtype(image.dtype) == np.float32)
    gk, gj, gi = mask.shape

    def digits(shift, prefix):
        hist = b.zeros((65536,), np.uint32, what="radix histogram")
        b.run(KEY_HISTOGRAM, mask, bits, gj, gi, is_float, shift, max(prefix, 0), prefix >= 0, hist)
        return np.cumsum(b.to_host(hist).astype(np.int64))

    high = digits(16, -1)
    out: dict[int, float] = {}
    lows: dict[int, np.ndarray] = {}
    for r in sorted(set(int(v) for v in ranks)):
        h = int(np.searchsorted(high, r, side="right"))
        before = int(high[h - 1]) if h else 0
        if h not in lows:
            lows[h] = digits(0, h)
        lo = int(np.searchsorted(lows[h], r - before, side="right"))
        out[r] = _key_to_value((h << 16) | lo, image.dtype)
    return out


def segment_statistics(mask: Mask, image: Image | None = None, *,
                       percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> dict:
    """Statistics of one mask (and of ``image`` under it).

    Returns a dict with ``voxel_count``, ``volume_mm3``, ``volume_cm3``, ``centroid_lps``,
    ``centroid_ras`` and, with an image, ``min``, ``max``, ``mean``, ``stdev``, ``median`` and
    ``percentile_<q>`` for each requested ``q`` (e.g. ``percentile_05``). Empty masks give a
    count of 0 and None for the rest. NaN image values are ignored by the intensity statistics.
    """
    if not isinstance(mask, Mask):
        raise InvalidInputError(f"expected a Mask, got {type(mask).__name__}")
    for q in percentiles:
        if not 0.0 <= float(q) <= 100.0:
            raise InvalidInputError(f"percentiles must lie in [0, 100], got {q}")
    if image is not None:
        if not isinstance(image, Image):
            raise InvalidInputError(f"expected an Image, got {type(image).__name__}")
        if image.backend is not mask.backend:
            raise InvalidInputError(f"image is on {image.backend.name}, mask on {mask.backend.name}")
        image.geometry.check_same_grid(mask.geometry, "image and mask")
    g = mask.geometry
    res: dict = {"voxel_count": 0, "volume_mm3": 0.0, "volume_cm3": 0.0, "centroid_lps": None,
                 "centroid_ras": None}
    keys = ["min", "max", "mean", "stdev", "median"] + [_pkey(q) for q in percentiles]
    if image is not None:
        res.update({k: None for k in keys})
    if mask.nbytes == 0:
        return res
    si, sd = _slice_sums(mask, image)
    n = int(si[:, 0].sum())
    if n == 0:
        return res
    k0, j0 = mask.box[0], mask.box[1]
    ks = np.arange(k0, k0 + si.shape[0], dtype=np.int64)
    sum_k = int((si[:, 0] * ks).sum())
    sum_j = int(si[:, 2].sum()) + j0 * n
    sum_i = int(si[:, 1].sum())
    centroid_ijk = np.array([sum_i, sum_j, sum_k], np.float64) / n
    lps = g.ijk_to_world_points(centroid_ijk)
    res.update({"voxel_count": n, "volume_mm3": n * g.voxel_volume, "volume_cm3": n * g.voxel_volume / 1000.0,
                "centroid_lps": [float(v) for v in lps], "centroid_ras": [float(-lps[0]), float(-lps[1]), float(lps[2])]})
    if image is None:
        return res
    nv = int(si[:, 3].sum())
    if nv == 0:
        return res
    sel = si[:, 3] > 0
    s = s2 = 0.0
    for a, b2 in zip(sd[sel, 0], sd[sel, 1]):  # fixed order: ascending k
        s += float(a)
        s2 += float(b2)
    vmin, vmax = float(sd[sel, 2].min()), float(sd[sel, 3].max())
    mean = s / nv
    var = (s2 - s * s / nv) / (nv - 1) if nv > 1 else 0.0
    res.update({"min": vmin, "max": vmax, "mean": mean, "stdev": math.sqrt(max(0.0, var))})
    if image.dtype in (np.int16, np.uint16):
        base, nbins = int(vmin), int(vmax) - int(vmin) + 1
        hist = masked_histogram(mask, image, base, nbins)
        vals = _percentiles_from_histogram(hist, base, [50.0, *percentiles])
        res["median"] = vals[0]
        for q, v in zip(percentiles, vals[1:]):
            res[_pkey(q)] = v
    elif image.dtype in (np.int32, np.float32):
        qs = [50.0, *percentiles]
        pos = [q / 100.0 * (nv - 1) for q in qs]
        vals = _ranked_values(mask, image, [r for p in pos for r in (math.floor(p), math.ceil(p))])
        got = []
        for p in pos:  # numpy.percentile's linear interpolation, in float64
            lo, hi = vals[math.floor(p)], vals[math.ceil(p)]
            got.append(float(lo + (p - math.floor(p)) * (hi - lo)))
        res["median"] = got[0]
        for q, v in zip(percentiles, got[1:]):
            res[_pkey(q)] = v
    return res


def _pkey(q: float) -> str:
    q = float(q)
    return f"percentile_{int(q):02d}" if q.is_integer() else f"percentile_{q:g}"


def statistics(segmentation, image: Image | None = None, *, segments: Iterable[str] | None = None,
               visible_only: bool = False, percentiles: Sequence[float] = DEFAULT_PERCENTILES,
               shape: bool = False, surface: bool = False) -> list[dict]:
    """Statistics of every segment of a :class:`~gpuseg.Segmentation` (one dict per segment,
    with ``segment_id`` and ``segment`` (name) first).

    ``shape=True`` adds the labelmap shape statistics of :func:`gpuseg.ops.shape.segment_shape`
    (Slicer's shape keys; off by default, as in Slicer, because they cost more).
    ``surface=True`` adds Slicer's closed-surface plugin keys, prefixed ``closed_surface_``
    (``closed_surface_surface_mm2``, ``closed_surface_volume_mm3``, ``closed_surface_volume_cm3``),
    from the segmentation's "Closed surface" representation (its conversion parameters, cached).
    """
    rows = []
    chosen = [segmentation.segment(s) for s in segments] if segments is not None else list(segmentation)
    chosen = [s for s in chosen if not (visible_only and not s.visible)]
    meshes = segmentation.representations("Closed surface", [s.id for s in chosen]) if surface and chosen else None
    for n, seg in enumerate(chosen):
        row = {"segment_id": seg.id, "segment": seg.name}
        row.update(segment_statistics(seg.mask, image, percentiles=percentiles))
        if shape:
            from .shape import segment_shape

            row.update(segment_shape(seg.mask))
        if meshes is not None:
            m = meshes[n]
            empty = m is None or m.n_faces == 0
            vol = None if empty else float(m.volume())
            row.update({"closed_surface_surface_mm2": None if empty else float(m.area()),
                        "closed_surface_volume_mm3": vol,
                        "closed_surface_volume_cm3": None if vol is None else vol / 1000.0})
        rows.append(row)
    return rows


#: keys whose value is a 3-vector (or None), split into x, y, z columns by :func:`flatten_rows`
VECTOR_KEYS = ("centroid_lps", "centroid_ras", "principal_moments", "principal_axis_x", "principal_axis_y",
               "principal_axis_z", "obb_origin_ras", "obb_diameter_mm", "obb_direction_ras_x", "obb_direction_ras_y",
               "obb_direction_ras_z")


def flatten_rows(rows: list[dict]) -> list[dict]:
    """Rows for a CSV table: every 3-vector (centroids, moments, axes, box) split into
    ``<key>_x``, ``<key>_y``, ``<key>_z`` columns (None stays None in each)."""
    vec_keys: dict[str, None] = dict.fromkeys(VECTOR_KEYS)
    for r in rows:
        for k, v in r.items():
            if isinstance(v, (list, tuple)) and len(v) == 3:
                vec_keys[k] = None
    flat = []
    for r in rows:
        f = {}
        for k, v in r.items():
            if k in vec_keys and (v is None or isinstance(v, (list, tuple))):
                for axis, x in zip("xyz", v if v is not None else (None, None, None)):
                    f[f"{k}_{axis}"] = x
            else:
                f[k] = v
        flat.append(f)
    return flat
