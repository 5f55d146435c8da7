"""Spec and numba twin of ``kernels/regions.cl`` (read beside it)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel
from .prelude import PJIT, fetch_word, valid_bits
from .threshold import IMAGE_TYPES

NEIGHBORHOOD_THRESHOLD = Kernel(
    "regions", "neighborhood_threshold",
    "img:array, img_nj:i32, ni:i32, bk0:i32, bk1:i32, bj0:i32, bj1:i32, bi0:i32, bi1:i32, out:box, lo:value, hi:value, offs:array, n_off:i32, fraction:f64, "
    "mask:box?, use_mask:i32",
    defines={"IMAGE_T": "img"}, specialisations=IMAGE_TYPES)


@njit(**PJIT)
def neighborhood_threshold(img, img_nj, ni, bk0, bk1, bj0, bj1, bi0, bi1, out, k0, j0, w0, nk, nj, nw, lo, hi, offs, n_off, fraction,
                           mask, mk0, mj0, mw0, mnk, mnj, mnw, use_mask):
    for r in prange(nk * nj):
        kk0 = r // nj
        K = k0 + kk0
        J = j0 + (r - kk0 * nj)
        for ww in range(nw):
            W = w0 + ww
            m = valid_bits(W, ni)
            if use_mask:
                m &= fetch_word(mask, mk0, mj0, mw0, mnk, mnj, mnw, K, J, W)
            bits = np.uint32(0)
            for b in range(32):
                if (m >> np.uint32(b)) & np.uint32(1) == 0:
                    continue
                i = W * 32 + b
                v = img[K, J, i]
                if not ((v >= lo) and (v <= hi)):
                    continue
                total = 0
                good = 0
                for q in range(n_off):
                    a = K + offs[3 * q]
                    c = J + offs[3 * q + 1]
                    d = i + offs[3 * q + 2]
                    if a < bk0 or a >= bk1 or c < bj0 or c >= bj1 or d < bi0 or d >= bi1:
                        continue
                    total += 1
                    u = img[a, c, d]
                    if (u >= lo) and (u <= hi):
                        good += 1
                if not (np.float64(good) < np.float64(total) * fraction):
                    bits |= np.uint32(1) << np.uint32(b)
            out[r // nj, r - (r // nj) * nj, ww] = bits
