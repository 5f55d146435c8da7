"""numba twins of kernels/morphology.cl."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends._cpu_kernels import fetch_word, valid_bits


@njit(cache=True, nogil=True, parallel=True)
def row_dilate(dst, k0, j0, w0, src, sk0, sj0, sw0, h, ni):
    nk, nj, nw = dst.shape
    for r in prange(nk * nj):
        kk = r // nj
        jj = r - kk * nj
        K = k0 + kk
        J = j0 + jj
        for ww in range(nw):
            W = w0 + ww
            c = fetch_word(src, sk0, sj0, sw0, K, J, W)
            p = fetch_word(src, sk0, sj0, sw0, K, J, W - 1)
            n = fetch_word(src, sk0, sj0, sw0, K, J, W + 1)
            acc = c
            for s in range(1, h + 1):
                us = np.uint32(s)
                vs = np.uint32(32 - s)
                acc |= (c << us) | (p >> vs) | (c >> us) | (n << vs)
            dst[kk, jj, ww] = acc & valid_bits(W, ni)


@njit(cache=True, nogil=True, parallel=True)
def or_offsets(out, k0, j0, w0, src, sk0, sj0, sw0, offs):
    nk, nj, nw = out.shape
    noffs = offs.shape[0]
    for r in prange(nk * nj):
        kk = r // nj
        jj = r - kk * nj
        K = k0 + kk
        J = j0 + jj
        for q in range(noffs):
            Ks = K + offs[q, 0] - sk0
            Js = J + offs[q, 1] - sj0
            if Ks < 0 or Js < 0 or Ks >= src.shape[0] or Js >= src.shape[1]:
                continue
            for ww in range(nw):
                Ws = w0 + ww - sw0
                if 0 <= Ws < src.shape[2]:
                    out[kk, jj, ww] |= src[Ks, Js, Ws]
