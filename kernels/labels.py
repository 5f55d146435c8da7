"""Specs and numba twins of ``kernels/labels.cl`` (labelmap layers <-> packed masks)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import CTYPES, Kernel
from .prelude import PJIT, decode_row, lowest_bit

LABEL_TYPES = [{"LABEL_T": CTYPES[np.dtype(t)]} for t in (np.uint8, np.uint16)]
_LAYER = "words:box, out:array, ok0:i32, oj0:i32, oi0:i32, onk:i32, onj:i32, oni:i32"

PAINT_LABEL = Kernel("labels", "paint_label", _LAYER + ", value:i32", threads="words:words",
                     defines={"LABEL_T": "out"}, specialisations=LABEL_TYPES)


@njit(**PJIT)
def paint_label(words, k0, j0, w0, nk, nj, nw, out, ok0, oj0, oi0, onk, onj, oni, value):
    for r in prange(nk * nj):
        k, j = decode_row(r, nj)
        K = k0 + k - ok0
        J = j0 + j - oj0
        if K < 0 or J < 0 or K >= onk or J >= onj:
            continue
        for w in range(nw):
            x = words[k, j, w]
            while x != 0:
                b = lowest_bit(x)
                x = np.uint32(x & (x - np.uint32(1)))
                I = (w0 + w) * 32 + b - oi0
                if 0 <= I < oni:
                    out[K, J, I] = value


LABEL_CONFLICTS = Kernel("labels", "label_conflicts", _LAYER + ", count:array", threads="words:words",
                         defines={"LABEL_T": "out"}, specialisations=LABEL_TYPES)


@njit(**PJIT)
def label_conflicts(words, k0, j0, w0, nk, nj, nw, out, ok0, oj0, oi0, onk, onj, oni, count):
    """count[0] += the set voxels of the mask whose layer voxel is already non-zero."""
    per_row = np.zeros(nk * nj, np.int64)
    for r in prange(nk * nj):
        k, j = decode_row(r, nj)
        K = k0 + k - ok0
        J = j0 + j - oj0
        if K < 0 or J < 0 or K >= onk or J >= onj:
            continue
        c = 0
        for w in range(nw):
            x = words[k, j, w]
            while x != 0:
                b = lowest_bit(x)
                x = np.uint32(x & (x - np.uint32(1)))
                I = (w0 + w) * 32 + b - oi0
                if 0 <= I < oni and out[K, J, I] != 0:
                    c += 1
        per_row[r] = c
    count[0] += np.uint32(per_row.sum())
