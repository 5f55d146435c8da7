"""Specs and numba twins of ``kernels/morphology.cl`` (margin: row dilation, offset ORs)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel
from .prelude import PJIT, decode_row, fetch_word, valid_bits

ROW_DILATE = Kernel("morphology", "row_dilate", "dst:box, src:box?, h:i32, ni:i32", threads="words:dst")


@njit(**PJIT)
def row_dilate(dst, k0, j0, w0, nk, nj, nw, src, sk0, sj0, sw0, snk, snj, snw, h, ni):
    for r in prange(nk * nj):
        kk, jj = decode_row(r, nj)
        K = k0 + kk
        J = j0 + jj
        for ww in range(nw):
            W = w0 + ww
            c = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, K, J, W)
            p = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, K, J, W - 1)
            n = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, K, J, W + 1)
            acc = c
            for s in range(1, h + 1):
                us = np.uint32(s)
                vs = np.uint32(32 - s)
                acc |= (c << us) | (p >> vs) | (c >> us) | (n << vs)
            dst[kk, jj, ww] = acc & valid_bits(W, ni)


OR_OFFSETS = Kernel("morphology", "or_offsets", "out:box, src:box?, offs:array, noffs:i32", threads="words:out")


@njit(**PJIT)
def or_offsets(out, k0, j0, w0, nk, nj, nw, src, sk0, sj0, sw0, snk, snj, snw, offs, noffs):
    """Same bits as the kernel; loops are ordered offset-major per row (OR is order-free)."""
    for r in prange(nk * nj):
        kk, jj = decode_row(r, nj)
        K = k0 + kk
        J = j0 + jj
        for q in range(noffs):
            Ks = K + offs[2 * q] - sk0
            Js = J + offs[2 * q + 1] - sj0
            if Ks < 0 or Js < 0 or Ks >= snk or Js >= snj:
                continue
            for ww in range(nw):
                Ws = w0 + ww - sw0
                if 0 <= Ws < snw:
                    out[kk, jj, ww] |= src[Ks, Js, Ws]
