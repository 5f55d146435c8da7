"""numba twins of the device kernels in ``kernels/``.

Each function here computes exactly what the kernel of the same name computes (tests
prove it bit for bit). They are compiled on first use and cached on disk (``cache=True``);
parallel loops run over rows of the output, so they scale with cores.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir  # noqa: F401  (numba's own dependency)
from numba import njit, prange, types
from numba.extending import intrinsic

_JIT = dict(cache=True, nogil=True)
_PJIT = dict(cache=True, nogil=True, parallel=True)

OP_COPY, OP_OR, OP_AND, OP_ANDNOT, OP_INVERT, OP_CLEAR, OP_FILL, OP_XOR = range(8)


def _u32_intrinsic(doc: str, emit):
    """A numba intrinsic uint32 -> uint32 whose body is one LLVM bit instruction."""

    def typer(typingctx, x):
        if x != types.uint32:
            return None

        def codegen(context, builder, signature, args):
            return emit(builder, args[0])

        return types.uint32(types.uint32), codegen

    typer.__doc__ = doc
    return intrinsic(typer)


_FALSE = ir.Constant(ir.IntType(1), 0)
popc32 = _u32_intrinsic("Population count of a uint32 (LLVM ctpop).", lambda b, v: b.ctpop(v))
clz32 = _u32_intrinsic("Leading zero bits of a non-zero uint32 (LLVM ctlz).", lambda b, v: b.ctlz(v, _FALSE))
ctz32 = _u32_intrinsic("Trailing zero bits of a non-zero uint32 (LLVM cttz).", lambda b, v: b.cttz(v, _FALSE))


@njit(**_JIT)
def valid_bits(W, ni):
    rem = ni - W * 32
    if rem >= 32:
        return np.uint32(0xFFFFFFFF)
    if rem <= 0:
        return np.uint32(0)
    return np.uint32((np.uint32(1) << np.uint32(rem)) - np.uint32(1))


@njit(**_JIT)
def fetch_word(a, k0, j0, w0, K, J, W):
    k = K - k0
    j = J - j0
    w = W - w0
    if k < 0 or j < 0 or w < 0 or k >= a.shape[0] or j >= a.shape[1] or w >= a.shape[2]:
        return np.uint32(0)
    return a[k, j, w]


#: Multiplying 8 bytes of 0/1 (little-endian in a uint64) by this puts byte b at bit 56 + b.
_GATHER = np.uint64(0x0102040810204080)


@njit(**_PJIT)
def threshold(img, lo, hi, out, k0, j0, w0, mask, mk0, mj0, mw0, use_mask):
    """Same as kernels/threshold.cl. Each row is compared into 0/1 bytes (a loop LLVM
    vectorises), then every 8 bytes are gathered into 8 bits with one multiply."""
    nk, nj, nw = out.shape
    ni = img.shape[2]
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
                    m &= fetch_word(mask, mk0, mj0, mw0, K, J, W)
                out[kk, jj, ww] = bits & m
    return 0


@njit(**_PJIT)
def logic(op, out, k0, j0, w0, a, ak0, aj0, aw0, b, bk0, bj0, bw0, ilo, ihi):
    nk, nj, nw = out.shape
    for r in prange(nk * nj):
        kk = r // nj
        jj = r - kk * nj
        K = k0 + kk
        J = j0 + jj
        for ww in range(nw):
            W = w0 + ww
            x = np.uint32(0)
            y = np.uint32(0)
            if op != OP_CLEAR and op != OP_FILL:
                x = fetch_word(a, ak0, aj0, aw0, K, J, W)
            if op == OP_OR or op == OP_AND or op == OP_ANDNOT or op == OP_XOR:
                y = fetch_word(b, bk0, bj0, bw0, K, J, W)
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
            out[kk, jj, ww] = v & valid_bits(W, ihi) & ~valid_bits(W, ilo)


@njit(**_PJIT)
def count(words):
    nk, nj, nw = words.shape
    per = np.zeros(nk, dtype=np.uint64)
    for k in prange(nk):
        s = np.uint64(0)
        for j in range(nj):
            for w in range(nw):
                s += np.uint64(popc32(words[k, j, w]))
        per[k] = s
    total = np.uint64(0)
    for k in range(nk):
        total += per[k]
    return total


@njit(**_PJIT)
def slice_extents(words):
    """Per slice (jmin, jmax, bmin, bmax), -1 where empty; same as row_extent + slice_extent."""
    nk, nj, nw = words.shape
    per = np.full((nk, 4), -1, dtype=np.int32)
    for k in prange(nk):
        jmin = -1
        jmax = -1
        imin = 2147483647
        imax = -1
        for j in range(nj):
            first = -1
            for w in range(nw):
                x = words[k, j, w]
                if x != 0:
                    first = w * 32 + np.int32(ctz32(x))
                    break
            if first < 0:
                continue
            last = -1
            for w in range(nw - 1, -1, -1):
                x = words[k, j, w]
                if x != 0:
                    last = w * 32 + 31 - np.int32(clz32(x))
                    break
            if jmin < 0:
                jmin = j
            jmax = j
            imin = min(imin, first)
            imax = max(imax, last)
        per[k, 0] = jmin
        per[k, 1] = jmax
        per[k, 2] = imin if jmin >= 0 else -1
        per[k, 3] = imax
    return per


@njit(**_PJIT)
def pack(dense, out):
    nk, nj, nw = out.shape
    n = dense.shape[2]
    for r in prange(nk * nj):
        k = r // nj
        j = r - k * nj
        for w in range(nw):
            i0 = w * 32
            cnt = min(32, n - i0)
            bits = np.uint32(0)
            for b in range(cnt):
                bits |= np.uint32(dense[k, j, i0 + b] != 0) << np.uint32(b)
            out[k, j, w] = bits


@njit(**_PJIT)
def unpack(words, out):
    nk, nj, nw = words.shape
    n = out.shape[2]
    for r in prange(nk * nj):
        k = r // nj
        j = r - k * nj
        for w in range(nw):
            i0 = w * 32
            cnt = min(32, n - i0)
            x = words[k, j, w]
            for b in range(cnt):
                out[k, j, i0 + b] = np.uint8((x >> np.uint32(b)) & np.uint32(1))


@njit(**_JIT)
def extract_slice(words, k0, j0, w0, axis, index, gk, gj, gi):
    if axis == 0:
        rows, cols = gj, gi
    elif axis == 1:
        rows, cols = gk, gi
    else:
        rows, cols = gk, gj
    out = np.zeros((rows, cols), dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            if axis == 0:
                K, J, I = index, r, c
            elif axis == 1:
                K, J, I = r, index, c
            else:
                K, J, I = r, c, index
            x = fetch_word(words, k0, j0, w0, K, J, I >> 5)
            out[r, c] = np.uint8((x >> np.uint32(I & 31)) & np.uint32(1))
    return out


@njit(**_PJIT)
def apply_block(m, mk0, mj0, mw0, blk, k0, j0, w0, op):
    nk, nj, nw = blk.shape
    for r in prange(nk * nj):
        k = r // nj
        j = r - k * nj
        for w in range(nw):
            x = m[k0 + k - mk0, j0 + j - mj0, w0 + w - mw0]
            y = blk[k, j, w]
            if op == 0:
                x = x | y
            elif op == 1:
                x = x & ~y
            elif op == 2:
                x = x ^ y
            else:
                x = y
            m[k0 + k - mk0, j0 + j - mj0, w0 + w - mw0] = x
