"""numba twins of kernels/labels.cl."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends._cpu_kernels import ctz32


@njit(cache=True, nogil=True, parallel=True)
def paint_label(words, k0, j0, w0, out, ok0, oj0, oi0, value):
    nk, nj, nw = words.shape
    onk, onj, oni = out.shape
    for r in prange(nk * nj):
        k = r // nj
        j = r - k * nj
        K = k0 + k - ok0
        J = j0 + j - oj0
        if K < 0 or J < 0 or K >= onk or J >= onj:
            continue
        for w in range(nw):
            x = words[k, j, w]
            while x != 0:
                b = np.int64(ctz32(np.uint32(x)))
                x = np.uint32(x & (x - np.uint32(1)))
                I = (w0 + w) * 32 + b - oi0
                if 0 <= I < oni:
                    out[K, J, I] = value


@njit(cache=True, nogil=True, parallel=True)
def label_conflicts(words, k0, j0, w0, out, ok0, oj0, oi0):
    nk, nj, nw = words.shape
    onk, onj, oni = out.shape
    per_row = np.zeros(nk * nj, np.int64)
    for r in prange(nk * nj):
        k = r // nj
        j = r - k * nj
        K = k0 + k - ok0
        J = j0 + j - oj0
        if K < 0 or J < 0 or K >= onk or J >= onj:
            continue
        c = 0
        for w in range(nw):
            x = words[k, j, w]
            while x != 0:
                b = np.int64(ctz32(np.uint32(x)))
                x = np.uint32(x & (x - np.uint32(1)))
                I = (w0 + w) * 32 + b - oi0
                if 0 <= I < oni and out[K, J, I] != 0:
                    c += 1
        per_row[r] = c
    return per_row.sum()
