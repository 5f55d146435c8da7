"""Spec and numba twins of ``kernels/mask_volume.cl`` (Slicer's Mask volume: fill or blend;
Split volume: crop and fill)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel
from .prelude import PJIT, fetch_word
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


CROP_FILL = Kernel("mask_volume", "crop_fill",
                   "img:image, out:array, m:box, nk:i32, nj:i32, ni:i32, k0:i32, j0:i32, i0:i32, onj:i32, "
                   "oni:i32, a:f64, n:i64", threads="n", defines={"IMAGE_T": "img"}, specialisations=IMAGE_TYPES)


@njit(**PJIT)
def crop_fill(img, out, m, mk0, mj0, mw0, mnk, mnj, mnw, nk, nj, ni, k0, j0, i0, onj, oni, a, n):
    dst = out.reshape(-1)
    ca = dst[:1].copy()
    if n > 0:
        ca[0] = a  # the C cast of the fill value to IMAGE_T (it is checked to be in range)
    nrows = n // oni if oni > 0 else 0
    for r in prange(nrows):
        ok = r // onj
        K = k0 + ok
        J = j0 + (r - ok * onj)
        for oi in range(oni):
            I = i0 + oi
            v = ca[0]
            if 0 <= K < nk and 0 <= J < nj and 0 <= I < ni:
                w = fetch_word(m, mk0, mj0, mw0, mnk, mnj, mnw, K, J, I >> 5)
                if (w >> np.uint32(I & 31)) & np.uint32(1):
                    v = img[K, J, I]
            dst[r * oni + oi] = v
