"""Specs and numba twins of ``kernels/islands.cl`` (connected components by runs), plus the
host helpers every backend uses on the (small) run table.

The union-find twin ``unite_rows`` joins the rows in raster order with path halving, linking
the larger root to the smaller as the kernel does with atomic min; after ``flatten`` every
run points to its component's first run on every backend.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel
from .prelude import JIT, PJIT, lowest_bit, popc32

COUNT_RUNS = Kernel("islands", "count_runs", "words:array, nrows:i64, nw:i32, counts:array", threads="nrows")


@njit(**PJIT)
def count_runs(words, nrows, nw, counts):
    w2 = words.reshape(nrows, nw)
    for r in prange(nrows):
        prev_msb = np.uint32(0)
        c = 0
        for w in range(nw):
            x = w2[r, w]
            c += popc32(np.uint32(x & ~((x << np.uint32(1)) | prev_msb)))
            prev_msb = x >> np.uint32(31)
        counts[r] = c


FILL_RUNS = Kernel("islands", "fill_runs",
                   "words:array, nrows:i64, nw:i32, offsets:array, run_start:array, run_end:array", threads="nrows")


@njit(**PJIT)
def fill_runs(words, nrows, nw, offsets, run_start, run_end):
    w2 = words.reshape(nrows, nw)
    for r in prange(nrows):
        ns = offsets[r]
        ne = offsets[r]
        prev_msb = np.uint32(0)
        for w in range(nw):
            x = w2[r, w]
            next_lsb = (w2[r, w + 1] & np.uint32(1)) if w + 1 < nw else np.uint32(0)
            s = np.uint32(x & ~((x << np.uint32(1)) | prev_msb))
            e = np.uint32(x & ~((x >> np.uint32(1)) | (next_lsb << np.uint32(31))))
            while s != 0:
                run_start[ns] = w * 32 + lowest_bit(s)
                ns += 1
                s = np.uint32(s & (s - np.uint32(1)))
            while e != 0:
                run_end[ne] = w * 32 + lowest_bit(e)
                ne += 1
                e = np.uint32(e & (e - np.uint32(1)))
            prev_msb = x >> np.uint32(31)


INIT_PARENT = Kernel("islands", "init_parent", "parent:array, n:i64", threads="n")


@njit(**PJIT)
def init_parent(parent, n):
    for i in prange(n):
        parent[i] = i


@njit(**JIT)
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(**JIT)
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


UNITE_ROWS = Kernel("islands", "unite_rows",
                    "offsets:array, nk:i32, nj:i32, rs:array, re:array, parent:array, full:i32",
                    threads=lambda offsets, nk, nj, *rest: nk * nj)


@njit(**JIT)
def unite_rows(offsets, nk, nj, rs, re, parent, full):
    """Serial, in raster order (the kernel's atomic-min unions reach the same roots)."""
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


FLATTEN = Kernel("islands", "flatten", "parent:array, n:i64", threads="n")


@njit(**JIT)
def flatten(parent, n):
    for i in range(n):
        parent[i] = _find(parent, i)


RUNS_TO_WORDS = Kernel("islands", "runs_to_words",
                       "offsets:array, nrows:i64, nw:i32, rs:array?, re:array?, labels:array, selected:array, "
                       "out:array", threads="nrows")


@njit(**PJIT)
def runs_to_words(offsets, nrows, nw, rs, re, labels, selected, out):
    o2 = out.reshape(nrows, nw)
    for r in prange(nrows):
        for w in range(nw):
            o2[r, w] = 0
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
                o2[r, w] |= m


# --- host helpers (run on host copies of the run table, for every backend) ---------------
@njit(**JIT)
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


@njit(**PJIT)
def dense_labels(offsets, rs, re, labels, nk, nj, ni, i0, out):
    for r in prange(nk * nj):
        k = r // nj
        j = r - k * nj
        for q in range(offsets[r], offsets[r + 1]):
            for i in range(rs[q] + i0, re[q] + i0 + 1):
                out[k, j, i] = labels[q]
