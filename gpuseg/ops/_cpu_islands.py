"""numba twins of kernels/islands.cl (run extraction in parallel, union-find in raster order)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends._cpu_kernels import ctz32, popc32


@njit(cache=True, nogil=True, parallel=True)
def count_runs(words):
    nk, nj, nw = words.shape
    counts = np.zeros(nk * nj, np.int64)
    for r in prange(nk * nj):
        k = r // nj
        j = r - k * nj
        prev_msb = np.uint32(0)
        c = 0
        for w in range(nw):
            x = words[k, j, w]
            c += popc32(np.uint32(x & ~((x << np.uint32(1)) | prev_msb)))
            prev_msb = x >> np.uint32(31)
        counts[r] = c
    return counts


@njit(cache=True, nogil=True, parallel=True)
def fill_runs(words, offsets, run_start, run_end):
    nk, nj, nw = words.shape
    for r in prange(nk * nj):
        k = r // nj
        j = r - k * nj
        ns = offsets[r]
        ne = offsets[r]
        prev_msb = np.uint32(0)
        for w in range(nw):
            x = words[k, j, w]
            next_lsb = (words[k, j, w + 1] & np.uint32(1)) if w + 1 < nw else np.uint32(0)
            s = np.uint32(x & ~((x << np.uint32(1)) | prev_msb))
            e = np.uint32(x & ~((x >> np.uint32(1)) | (next_lsb << np.uint32(31))))
            while s != 0:
                run_start[ns] = w * 32 + np.int32(ctz32(s))
                ns += 1
                s = np.uint32(s & (s - np.uint32(1)))
            while e != 0:
                run_end[ne] = w * 32 + np.int32(ctz32(e))
                ne += 1
                e = np.uint32(e & (e - np.uint32(1)))
            prev_msb = x >> np.uint32(31)


@njit(cache=True, nogil=True)
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True, nogil=True)
def _join(parent, rs, re, a, a_end, b, b_end, touch):
    while a < a_end and b < b_end:
        if rs[a] <= re[b] + touch and rs[b] <= re[a] + touch:
            x = _find(parent, a)
            y = _find(parent, b)
            if x != y:
                if x < y:
                    parent[y] = x
                else:
                    parent[x] = y
        if re[a] < re[b]:
            a += 1
        else:
            b += 1


@njit(cache=True, nogil=True)
def components(offsets, nk, nj, rs, re, full):
    """Root (the first run of its component) of every run."""
    n = offsets[-1]
    parent = np.arange(n, dtype=np.int64)
    for r in range(nk * nj):
        a, a_end = offsets[r], offsets[r + 1]
        if a == a_end:
            continue
        k = r // nj
        j = r - k * nj
        if j > 0:
            _join(parent, rs, re, a, a_end, offsets[r - 1], offsets[r], full)
        if k > 0:
            q = r - nj
            _join(parent, rs, re, a, a_end, offsets[q], offsets[q + 1], full)
            if full and j > 0:
                _join(parent, rs, re, a, a_end, offsets[q - 1], offsets[q], 1)
            if full and j + 1 < nj:
                _join(parent, rs, re, a, a_end, offsets[q + 1], offsets[q + 2], 1)
    for i in range(n):
        parent[i] = _find(parent, i)
    return parent


@njit(cache=True, nogil=True, parallel=True)
def runs_to_words(offsets, rs, re, labels, selected, out):
    nk, nj, nw = out.shape
    for r in prange(nk * nj):
        k = r // nj
        j = r - k * nj
        for w in range(nw):
            out[k, j, w] = 0
        for q in range(offsets[r], offsets[r + 1]):
            if not selected[labels[q]]:
                continue
            s = rs[q]
            e = re[q]
            for w in range(s >> 5, (e >> 5) + 1):
                lo = 0 if w * 32 > s else s - w * 32
                hi = 31 if w * 32 + 31 < e else e - w * 32
                if hi - lo == 31:
                    m = np.uint32(0xFFFFFFFF)
                else:
                    m = np.uint32(((np.uint32(1) << np.uint32(hi - lo + 1)) - np.uint32(1)) << np.uint32(lo))
                out[k, j, w] |= m


@njit(cache=True, nogil=True)
def label_runs(roots, rs, re):
    """Labels 1..N in order of each component's first run, and each component's voxel count."""
    n = roots.shape[0]
    labels = np.zeros(n, np.int32)
    sizes = np.zeros(n + 1, np.int64)
    count = 0
    for i in range(n):
        if roots[i] == i:
            count += 1
            labels[i] = count
        else:
            labels[i] = labels[roots[i]]
        sizes[labels[i]] += re[i] - rs[i] + 1
    return labels, sizes[:count + 1]


@njit(cache=True, nogil=True, parallel=True)
def dense_labels(offsets, rs, re, labels, nk, nj, ni, i0, out):
    for r in prange(nk * nj):
        k = r // nj
        j = r - k * nj
        for q in range(offsets[r], offsets[r + 1]):
            for i in range(rs[q] + i0, re[q] + i0 + 1):
                out[k, j, i] = labels[q]
