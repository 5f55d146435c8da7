"""Spec and numba twin of ``kernels/radix.cl`` (read beside it)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..backends.registry import Kernel
from .prelude import JIT, lowest_bit


KEY_HISTOGRAM = Kernel("radix", "key_histogram",
                       "words:box, img:image, img_nj:i32, ni:i32, is_float:i32, shift:i32, prefix:i64, use_prefix:i32, "
                       "hist:array", threads="rows:words")


@njit(**JIT)
def key_histogram(words, k0, j0, w0, nk, nj, nw, img, img_nj, ni, is_float, shift, prefix, use_prefix, hist):
    """Serial: the kernel's integer atomics are order-free."""
    for k in range(nk):
        for j in range(nj):
            for w in range(nw):
                x = words[k, j, w]
                while x != 0:
                    b = np.int64(lowest_bit(x))
                    x = np.uint32(x & (x - np.uint32(1)))
                    u = np.uint32(img[k0 + k, j0 + j, (w0 + w) * 32 + b])
                    if is_float:
                        if (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
                            continue
                        key = np.uint32(~u) if (u & np.uint32(0x80000000)) else np.uint32(u ^ np.uint32(0x80000000))
                    else:
                        key = np.uint32(u ^ np.uint32(0x80000000))
                    if use_prefix and np.int64(key >> np.uint32(16)) != prefix:
                        continue
                    hist[(key >> np.uint32(shift)) & np.uint32(0xFFFF)] += 1
