"""Specs and numba twins of ``kernels/stats.cl`` (segment statistics; same accumulation
order as the kernels, so identical results: docs/architecture.md, invariant 4)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel
from .prelude import JIT, PJIT, decode_row, lowest_bit
from .threshold import IMAGE_TYPES

STATS_ROWS = Kernel("stats", "stats_rows",
                    "words:box, img:image?, img_nj:i32, ni:i32, use_image:i32, acc_i:array, acc_d:array",
                    threads="rows:words", defines={"IMAGE_T": "img"}, specialisations=IMAGE_TYPES)


@njit(**PJIT)
def stats_rows(words, k0, j0, w0, nk, nj, nw, img, img_nj, ni, use_image, acc_i, acc_d):
    for r in prange(nk * nj):
        k, j = decode_row(r, nj)
        n_all = np.int64(0)
        sum_i = np.int64(0)
        n_val = np.int64(0)
        s = 0.0
        s2 = 0.0
        mn = 0.0
        mx = 0.0
        for w in range(nw):
            x = words[k, j, w]
            while x != 0:
                b = np.int64(lowest_bit(x))
                x = np.uint32(x & (x - np.uint32(1)))
                i = (w0 + w) * 32 + b
                n_all += 1
                sum_i += i
                if use_image:
                    v = np.float64(img[k0 + k, j0 + j, i])
                    if v == v:
                        if n_val == 0:
                            mn = v
                            mx = v
                        else:
                            mn = v if v < mn else mn
                            mx = v if v > mx else mx
                        n_val += 1
                        s += v
                        sq = v * v
                        s2 += sq
        acc_i[r, 0] = n_all
        acc_i[r, 1] = sum_i
        acc_i[r, 2] = n_val
        acc_d[r, 0] = s
        acc_d[r, 1] = s2
        acc_d[r, 2] = mn
        acc_d[r, 3] = mx


STATS_SLICES = Kernel("stats", "stats_slices", "acc_i:array, acc_d:array, nk:i32, nj:i32, out_i:array, out_d:array",
                      threads="nk", defines={"IMAGE_T": None}, specialisations=IMAGE_TYPES)


@njit(**PJIT)
def stats_slices(acc_i, acc_d, nk, nj, out_i, out_d):
    for k in prange(nk):
        n_all = np.int64(0)
        sum_i = np.int64(0)
        n_val = np.int64(0)
        sum_j = np.int64(0)
        s = 0.0
        s2 = 0.0
        mn = 0.0
        mx = 0.0
        for j in range(nj):
            r = k * nj + j
            n = acc_i[r, 0]
            n_all += n
            sum_j += n * j
            sum_i += acc_i[r, 1]
            nv = acc_i[r, 2]
            if nv > 0:
                a = acc_d[r, 2]
                b = acc_d[r, 3]
                if n_val == 0:
                    mn = a
                    mx = b
                else:
                    mn = a if a < mn else mn
                    mx = b if b > mx else mx
                n_val += nv
                s += acc_d[r, 0]
                s2 += acc_d[r, 1]
        out_i[k, 0] = n_all
        out_i[k, 1] = sum_i
        out_i[k, 2] = sum_j
        out_i[k, 3] = n_val
        out_d[k, 0] = s
        out_d[k, 1] = s2
        out_d[k, 2] = mn
        out_d[k, 3] = mx


MASKED_HISTOGRAM = Kernel("stats", "masked_histogram",
                          "words:box, img:image, img_nj:i32, ni:i32, base:i32, nbins:i32, hist:array",
                          threads="rows:words", defines={"IMAGE_T": "img"}, specialisations=IMAGE_TYPES)


@njit(**JIT)
def masked_histogram(words, k0, j0, w0, nk, nj, nw, img, img_nj, ni, base, nbins, hist):
    """hist[v - base] += 1 under the mask (serial: the kernel's integer atomics are order-free)."""
    for k in range(nk):
        for j in range(nj):
            for w in range(nw):
                x = words[k, j, w]
                while x != 0:
                    b = np.int64(lowest_bit(x))
                    x = np.uint32(x & (x - np.uint32(1)))
                    binv = np.int64(img[k0 + k, j0 + j, (w0 + w) * 32 + b]) - base
                    if 0 <= binv < nbins:
                        hist[binv] += 1
