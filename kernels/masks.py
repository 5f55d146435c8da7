"""Specs and numba twins of ``kernels/masks.cl``: logic across boxes, counts, extents,
pack / unpack, display slices and in-place block updates (read beside masks.cl).

Each twin takes exactly the kernel's arguments (boxes expanded to words + 6 ints) and
computes the whole launch; parallel loops run over rows of the output.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel
from .constants import (APPLY_ANDNOT, APPLY_OR, APPLY_XOR, OP_AND, OP_ANDNOT, OP_CLEAR, OP_COPY, OP_FILL,
                        OP_INVERT, OP_OR, OP_XOR)
from .prelude import JIT, PJIT, decode_row, fetch_word, highest_bit, lowest_bit, popc32, range_bits

LOGIC = Kernel("masks", "logic", "out:box, a:box?, b:box?, op:i32, ilo:i32, ihi:i32")


@njit(**PJIT)
def logic(out, k0, j0, w0, nk, nj, nw, a, ak0, aj0, aw0, ank, anj, anw, b, bk0, bj0, bw0, bnk, bnj, bnw,
          op, ilo, ihi):
    for r in prange(nk * nj):
        kk, jj = decode_row(r, nj)
        K = k0 + kk
        J = j0 + jj
        for ww in range(nw):
            W = w0 + ww
            x = np.uint32(0)
            y = np.uint32(0)
            if op != OP_CLEAR and op != OP_FILL:
                x = fetch_word(a, ak0, aj0, aw0, ank, anj, anw, K, J, W)
            if op == OP_OR or op == OP_AND or op == OP_ANDNOT or op == OP_XOR:
                y = fetch_word(b, bk0, bj0, bw0, bnk, bnj, bnw, K, J, W)
            if op == OP_COPY:
                v = x
            elif op == OP_OR:
                v = x | y
            elif op == OP_AND:
                v = x & y
            elif op == OP_ANDNOT:
                v = x & ~y
            elif op == OP_INVERT:
                v = ~x
            elif op == OP_FILL:
                v = np.uint32(0xFFFFFFFF)
            elif op == OP_XOR:
                v = x ^ y
            else:
                v = np.uint32(0)
            out[kk, jj, ww] = v & range_bits(W, ilo, ihi)


COUNT_ROWS = Kernel("masks", "count_rows", "words:array, nrows:i64, nw:i32, counts:array", threads="nrows")


@njit(**PJIT)
def count_rows(words, nrows, nw, counts):
    w2 = words.reshape(nrows, nw)
    for r in prange(nrows):
        c = np.uint32(0)
        for w in range(nw):
            c += popc32(w2[r, w])
        counts[r] = c


SUM_SLICES = Kernel("masks", "sum_slices", "counts:array, nk:i32, nj:i32, out:array", threads="nk")


@njit(**PJIT)
def sum_slices(counts, nk, nj, out):
    for k in prange(nk):
        s = np.uint64(0)
        for j in range(nj):
            s += np.uint64(counts[k * nj + j])
        out[k] = s


ROW_EXTENT = Kernel("masks", "row_extent", "words:array, nrows:i64, nw:i32, lo:array, hi:array", threads="nrows")


@njit(**PJIT)
def row_extent(words, nrows, nw, lo, hi):
    w2 = words.reshape(nrows, nw)
    for r in prange(nrows):
        first = -1
        last = -1
        for w in range(nw):
            if w2[r, w] != 0:
                first = w * 32 + lowest_bit(w2[r, w])
                break
        if first >= 0:
            for w in range(nw - 1, -1, -1):
                if w2[r, w] != 0:
                    last = w * 32 + highest_bit(w2[r, w])
                    break
        lo[r] = first
        hi[r] = last


SLICE_EXTENT = Kernel("masks", "slice_extent", "lo:array, hi:array, nk:i32, nj:i32, out:array", threads="nk")


@njit(**PJIT)
def slice_extent(lo, hi, nk, nj, out):
    for k in prange(nk):
        jmin = -1
        jmax = -1
        imin = 2147483647
        imax = -1
        for j in range(nj):
            a = lo[k * nj + j]
            if a < 0:
                continue
            if jmin < 0:
                jmin = j
            jmax = j
            b = hi[k * nj + j]
            imin = min(imin, a)
            imax = max(imax, b)
        out[k, 0] = jmin
        out[k, 1] = jmax
        out[k, 2] = -1 if jmin < 0 else imin
        out[k, 3] = imax


PACK = Kernel("masks", "pack", "src:array, ni_src:i32, out:array, nk:i32, nj:i32, nw:i32",
              threads=lambda src, ni, out, nk, nj, nw: nk * nj * nw)


@njit(**PJIT)
def pack(src, ni_src, out, nk, nj, nw):
    for r in prange(nk * nj):
        k, j = decode_row(r, nj)
        for w in range(nw):
            i0 = w * 32
            cnt = min(32, ni_src - i0)
            bits = np.uint32(0)
            for b in range(cnt):
                bits |= np.uint32(src[k, j, i0 + b] != 0) << np.uint32(b)
            out[k, j, w] = bits


UNPACK = Kernel("masks", "unpack", "words:array, nk:i32, nj:i32, nw:i32, dst:array, ni_dst:i32",
                threads=lambda words, nk, nj, nw, dst, ni: nk * nj * nw)


@njit(**PJIT)
def unpack(words, nk, nj, nw, dst, ni_dst):
    for r in prange(nk * nj):
        k, j = decode_row(r, nj)
        for w in range(nw):
            i0 = w * 32
            cnt = min(32, ni_dst - i0)
            x = words[k, j, w]
            for b in range(cnt):
                dst[k, j, i0 + b] = np.uint8((x >> np.uint32(b)) & np.uint32(1))


EXTRACT_SLICE = Kernel("masks", "extract_slice",
                       "words:box?, axis:i32, index:i32, grid_nk:i32, grid_nj:i32, grid_ni:i32, out:array",
                       threads=lambda words, axis, index, gk, gj, gi, out: out.shape[0] * out.shape[1])


@njit(**JIT)
def extract_slice(words, k0, j0, w0, nk, nj, nw, axis, index, grid_nk, grid_nj, grid_ni, out):
    rows, cols = out.shape
    for r in range(rows):
        for c in range(cols):
            if axis == 0:
                K, J, I = index, r, c
            elif axis == 1:
                K, J, I = r, index, c
            else:
                K, J, I = r, c, index
            x = fetch_word(words, k0, j0, w0, nk, nj, nw, K, J, I >> 5)
            out[r, c] = np.uint8((x >> np.uint32(I & 31)) & np.uint32(1))


APPLY_BLOCK = Kernel("masks", "apply_block", "m:box, blk:box, op:i32", threads="words:blk")


@njit(**PJIT)
def apply_block(m, mk0, mj0, mw0, mnk, mnj, mnw, blk, k0, j0, w0, nk, nj, nw, op):
    for r in prange(nk * nj):
        k, j = decode_row(r, nj)
        for w in range(nw):
            x = m[k0 + k - mk0, j0 + j - mj0, w0 + w - mw0]
            y = blk[k, j, w]
            if op == APPLY_OR:
                x = x | y
            elif op == APPLY_ANDNOT:
                x = x & ~y
            elif op == APPLY_XOR:
                x = x ^ y
            else:
                x = y
            m[k0 + k - mk0, j0 + j - mj0, w0 + w - mw0] = x
