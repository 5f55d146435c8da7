"""Spec and numba twin of ``kernels/gaussian.cl`` (one axis pass of a separable Gaussian)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel
from .prelude import PJIT

GAUSS_AXIS = Kernel("gaussian", "gauss_axis",
                    "src:array, dst:array, nk:i32, nj:i32, ni:i32, axis:i32, weights:array, radius:i32, "
                    "in_scale:i32, thresh:i32, n:i64", threads="n")


@njit(**PJIT)
def gauss_axis(src, dst, nk, nj, ni, axis, weights, radius, in_scale, thresh, n):
    s = src.reshape(-1)
    d = dst.reshape(-1)
    w2 = weights.reshape(-1)
    width = 2 * radius + 1
    length = nk if axis == 0 else (nj if axis == 1 else ni)
    stride = nj * ni if axis == 0 else (ni if axis == 1 else 1)
    for r in prange(nk * nj):
        j = r % nj
        k = r // nj
        for i in range(ni):
            gid = r * ni + i
            p = k if axis == 0 else (j if axis == 1 else i)
            acc = 0.0
            for t in range(width):
                q = p - radius + t
                if q < 0 or q >= length:
                    continue
                acc += w2[p * width + t] * np.float64(np.int32(s[gid + (q - p) * stride]) * in_scale)
            o = np.uint8(int(acc))
            if thresh >= 0:
                o = np.uint8(1) if np.int32(o) >= thresh else np.uint8(0)
            d[gid] = o
