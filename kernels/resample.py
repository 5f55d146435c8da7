"""Spec and numba twin of ``kernels/resample.cl``: nearest-neighbour resampling of a packed mask
onto another grid (read beside resample.cl; docs/geometry.md)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel
from .prelude import PJIT, decode_row, fetch_word

RESAMPLE_NEAREST = Kernel("resample", "resample_nearest",
                          "out:box, src:box?, a:array, sni:i32, snj:i32, snk:i32, ni:i32")


@njit(**PJIT)
def resample_nearest(out, k0, j0, w0, nk, nj, nw, src, sk0, sj0, sw0, snk_b, snj_b, snw_b, a, sni, snj, snk, ni):
    for r in prange(nk * nj):
        kk, jj = decode_row(r, nj)
        dk = np.float64(k0 + kk)
        dj = np.float64(j0 + jj)
        for ww in range(nw):
            W = w0 + ww
            v = np.uint32(0)
            for b in range(32):
                I = W * 32 + b
                if I >= ni:
                    break
                di = np.float64(I)
                # the C kernel's order of operations, term by term (no contraction)
                pi = a[0] * di
                pi = pi + a[1] * dj
                pi = pi + a[2] * dk
                pi = pi + a[3]
                pj = a[4] * di
                pj = pj + a[5] * dj
                pj = pj + a[6] * dk
                pj = pj + a[7]
                pk = a[8] * di
                pk = pk + a[9] * dj
                pk = pk + a[10] * dk
                pk = pk + a[11]
                fi = np.floor(pi + 0.5)
                fj = np.floor(pj + 0.5)
                fk = np.floor(pk + 0.5)
                if fi < 0.0 or fj < 0.0 or fk < 0.0 or fi >= sni or fj >= snj or fk >= snk:
                    continue
                si = np.int32(fi)
                sj = np.int32(fj)
                sk = np.int32(fk)
                x = fetch_word(src, sk0, sj0, sw0, snk_b, snj_b, snw_b, sk, sj, si >> 5)
                v |= ((x >> np.uint32(si & 31)) & np.uint32(1)) << np.uint32(b)
            out[kk, jj, ww] = v

