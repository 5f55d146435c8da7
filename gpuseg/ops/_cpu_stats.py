"""numba twins of kernels/stats.cl (same accumulation order, so identical results)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends._cpu_kernels import ctz32


@njit(cache=True, nogil=True, parallel=True)
def stats_slices(words, k0, j0, w0, img, use_image):
    nk, nj, nw = words.shape
    out_i = np.zeros((nk, 4), np.int64)
    out_d = np.zeros((nk, 4), np.float64)
    for k in prange(nk):
        s_all = np.int64(0)
        s_i = np.int64(0)
        s_j = np.int64(0)
        s_nv = np.int64(0)
        S = 0.0
        S2 = 0.0
        MN = 0.0
        MX = 0.0
        for j in range(nj):
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
                    b = np.int64(ctz32(np.uint32(x)))
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
            s_all += n_all
            s_j += n_all * j
            s_i += sum_i
            if n_val > 0:
                if s_nv == 0:
                    MN = mn
                    MX = mx
                else:
                    MN = mn if mn < MN else MN
                    MX = mx if mx > MX else MX
                s_nv += n_val
                S += s
                S2 += s2
        out_i[k, 0] = s_all
        out_i[k, 1] = s_i
        out_i[k, 2] = s_j
        out_i[k, 3] = s_nv
        out_d[k, 0] = S
        out_d[k, 1] = S2
        out_d[k, 2] = MN
        out_d[k, 3] = MX
    return out_i, out_d


@njit(cache=True, nogil=True)
def masked_histogram(words, k0, j0, w0, img, base, nbins):
    nk, nj, nw = words.shape
    hist = np.zeros(nbins, np.uint32)
    for k in range(nk):
        for j in range(nj):
            for w in range(nw):
                x = words[k, j, w]
                while x != 0:
                    b = np.int64(ctz32(np.uint32(x)))
                    x = np.uint32(x & (x - np.uint32(1)))
                    binv = np.int64(img[k0 + k, j0 + j, (w0 + w) * 32 + b]) - base
                    if 0 <= binv < nbins:
                        hist[binv] += 1
    return hist
