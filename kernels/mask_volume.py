"""Spec and numba twin of ``kernels/mask_volume.cl`` (Slicer's Mask volume: fill or blend)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel
from .prelude import PJIT
from .threshold import IMAGE_TYPES

MASK_BLEND = Kernel("mask_volume", "mask_blend",
                    "img:image, out:array, weight:array, nj:i32, ni:i32, wni:i32, mode:i32, soft:i32, a:f64, "
                    "b:f64, n:i64", threads="n", defines={"IMAGE_T": "img"}, specialisations=IMAGE_TYPES)


@njit(**PJIT)
def mask_blend(img, out, weight, nj, ni, wni, mode, soft, a, b, n):
    src = img.reshape(-1)
    dst = out.reshape(-1)
    wt = weight.reshape(-1)
    ca = src[:1].copy()
    cb = src[:1].copy()
    if n > 0:
        ca[0] = a  # the C cast of the fill values to IMAGE_T (they are checked to be in range)
        cb[0] = b
    nrows = n // ni
    for r in prange(nrows):
        for i in range(ni):
            gid = r * ni + i
            m = wt[r * wni + i]
            x = src[gid]
            if soft == 0:
                inside = m != 0
                if mode == 0:
                    dst[gid] = x if inside else ca[0]
                elif mode == 1:
                    dst[gid] = ca[0] if inside else x
                else:
                    dst[gid] = ca[0] if inside else cb[0]
                continue
            w = np.float64(m) / 255.0
            if mode == 0:
                v = np.float64(x) * w + a * (1.0 - w)
            elif mode == 1:
                v = np.float64(x) * (1.0 - w) + a * w
            else:
                v = a * w + b * (1.0 - w)
            dst[gid] = v  # the C cast: nearest for float32, truncation toward zero for integers
