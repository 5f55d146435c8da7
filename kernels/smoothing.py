"""Spec and numba twin of ``kernels/smoothing.cl`` (binary median, majority vote)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel
from .prelude import JIT, PJIT, decode_row, fetch_word, popc32, valid_bits

MEDIAN_MAJORITY = Kernel("smoothing", "median_majority",
                         "out:box, src:box?, hk:i32, hj:i32, hi:i32, gk:i32, gj:i32, gi:i32")


@njit(**JIT)
def _window_count(p, c, n, b, h):
    lo = b - h
    hi = b + h
    cnt = 0
    if lo < 0:
        cnt += popc32(np.uint32(p >> np.uint32(32 + lo)))
        lo = 0
    if hi > 31:
        cnt += popc32(np.uint32(n & np.uint32((np.uint32(2) << np.uint32(hi - 32)) - np.uint32(1))))
        hi = 31
    if hi - lo == 31:
        m = np.uint32(0xFFFFFFFF)
    else:
        m = np.uint32(((np.uint32(1) << np.uint32(hi - lo + 1)) - np.uint32(1)) << np.uint32(lo))
    cnt += popc32(np.uint32(c & m))
    return cnt


@njit(**PJIT)
def median_majority(out, k0, j0, w0, nk, nj, nw, src, sk0, sj0, sw0, snk, snj, snw, hk, hj, hi, gk, gj, gi):
    for r in prange(nk * nj):
        kk, jj = decode_row(r, nj)
        K = k0 + kk
        J = j0 + jj
        for ww in range(nw):
            W = w0 + ww
            valid = valid_bits(W, gi)
            anyb = np.uint32(0)
            allb = np.uint32(0xFFFFFFFF)
            for dk in range(-hk, hk + 1):
                for dj in range(-hj, hj + 1):
                    KK = K + dk
                    JJ = J + dj
                    if KK < 0 or JJ < 0 or KK >= gk or JJ >= gj:
                        continue
                    for dw in range(-1, 2):
                        WW = W + dw
                        if WW < 0 or WW * 32 >= gi:
                            continue
                        x = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, KK, JJ, WW)
                        anyb |= x
                        allb &= x | ~valid_bits(WW, gi)
            if anyb == 0:
                out[kk, jj, ww] = 0
                continue
            if allb == np.uint32(0xFFFFFFFF):
                out[kk, jj, ww] = valid
                continue
            ones = np.zeros(32, np.int64)
            rows_in = 0
            for dk in range(-hk, hk + 1):
                KK = K + dk
                if KK < 0 or KK >= gk:
                    continue
                for dj in range(-hj, hj + 1):
                    JJ = J + dj
                    if JJ < 0 or JJ >= gj:
                        continue
                    rows_in += 1
                    p = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, KK, JJ, W - 1)
                    c = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, KK, JJ, W)
                    n = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, KK, JJ, W + 1)
                    if (p | c | n) == 0:
                        continue
                    for b in range(32):
                        ones[b] += _window_count(p, c, n, b, hi)
            bits = np.uint32(0)
            for b in range(32):
                I = W * 32 + b
                if I >= gi:
                    break
                ilo = max(0, I - hi)
                ihi = min(gi - 1, I + hi)
                if 2 * ones[b] > rows_in * (ihi - ilo + 1):
                    bits |= np.uint32(1) << np.uint32(b)
            out[kk, jj, ww] = bits & valid
