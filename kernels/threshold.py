"""Spec and numba twin of ``kernels/threshold.cl`` (read beside it)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import CTYPES, Kernel
from .prelude import PJIT, fetch_word, valid_bits

IMAGE_TYPES = [{"IMAGE_T": CTYPES[np.dtype(t)]} for t in (np.int16, np.uint16, np.int32, np.float32)]

THRESHOLD = Kernel("threshold", "threshold",
                   "img:array, img_nj:i32, ni:i32, out:box, lo:value, hi:value, mask:box?, use_mask:i32",
                   defines={"IMAGE_T": "img"}, specialisations=IMAGE_TYPES)

#: Multiplying 8 bytes of 0/1 (little-endian in a uint64) by this puts byte b at bit 56 + b.
_GATHER = np.uint64(0x0102040810204080)


@njit(**PJIT)
def threshold(img, img_nj, ni, out, k0, j0, w0, nk, nj, nw, lo, hi, mask, mk0, mj0, mw0, mnk, mnj, mnw, use_mask):
    """Each row is compared into 0/1 bytes (a loop LLVM vectorises), then every 8 bytes are
    gathered into 8 bits with one multiply."""
    ib = w0 * 32
    ie = min(ni, (w0 + nw) * 32)
    n = ie - ib
    for kk in prange(nk):
        flags = np.zeros(nw * 32, np.uint8)  # bytes past n stay 0
        f64 = flags.view(np.uint64)
        K = k0 + kk
        for jj in range(nj):
            J = j0 + jj
            seg = img[K, J, ib:ie]
            for t in range(n):
                v = seg[t]
                flags[t] = np.uint8((v >= lo) & (v <= hi))
            for ww in range(nw):
                W = w0 + ww
                bits = np.uint32(0)
                for q in range(4):
                    byte = (f64[4 * ww + q] * _GATHER) >> np.uint64(56)
                    bits |= np.uint32(byte) << np.uint32(8 * q)
                m = valid_bits(W, ni)
                if use_mask:
                    m &= fetch_word(mask, mk0, mj0, mw0, mnk, mnj, mnw, K, J, W)
                out[kk, jj, ww] = bits & m
