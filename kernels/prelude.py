"""The numba twin of ``gpuseg.h``: bit intrinsics, word fetches and index decoding, once.

Every twin module imports its helpers from here, as every ``.cl`` file gets ``gpuseg.h``.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

JIT = dict(cache=True, nogil=True)
PJIT = dict(cache=True, nogil=True, parallel=True)


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


@njit(**JIT)
def valid_bits(W, ni):
    """Bits of absolute word W that lie inside the grid (i < ni); gpuseg.h valid_bits."""
    rem = ni - W * 32
    if rem >= 32:
        return np.uint32(0xFFFFFFFF)
    if rem <= 0:
        return np.uint32(0)
    return np.uint32((np.uint32(1) << np.uint32(rem)) - np.uint32(1))


@njit(**JIT)
def range_bits(W, ilo, ihi):
    """Bits of absolute word W for voxels ilo <= i < ihi; gpuseg.h range_bits."""
    return valid_bits(W, ihi) & ~valid_bits(W, ilo)


@njit(**JIT)
def fetch_word(a, k0, j0, w0, nk, nj, nw, K, J, W):
    """The word of mask ``a`` (box k0..nw, words (nk, nj, nw)) at absolute (K, J, W), or 0
    outside the box (the null box holds nothing); gpuseg.h fetch_word."""
    k = K - k0
    j = J - j0
    w = W - w0
    if k < 0 or j < 0 or w < 0 or k >= nk or j >= nj or w >= nw:
        return np.uint32(0)
    return a[k, j, w]


@njit(**JIT)
def decode_row(r, nj):
    """Row index r of an (nk, nj) box -> (k, j); gpuseg.h decode_row."""
    k = r // nj
    return k, r - k * nj


@njit(**JIT)
def lowest_bit(x):
    return np.int32(ctz32(np.uint32(x)))


@njit(**JIT)
def highest_bit(x):
    return np.int32(31) - np.int32(clz32(np.uint32(x)))
