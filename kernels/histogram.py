"""Spec and numba twin of ``kernels/histogram.cl`` (read beside it)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..backends.registry import Kernel
from .prelude import JIT, lowest_bit
from .threshold import IMAGE_TYPES

EDGE_HISTOGRAM = Kernel("histogram", "edge_histogram",
                        "words:box, img:image, img_nj:i32, ni:i32, edges:array, nbins:i32, hist:array",
                        threads="rows:words", defines={"IMAGE_T": "img"}, specialisations=IMAGE_TYPES)


@njit(**JIT)
def edge_histogram(words, k0, j0, w0, nk, nj, nw, img, img_nj, ni, edges, nbins, hist):
    """Serial: the kernel's integer atomics are order-free."""
    lo = edges[0]
    up = edges[nbins]
    for k in range(nk):
        for j in range(nj):
            for w in range(nw):
                x = words[k, j, w]
                while x != 0:
                    b = np.int64(lowest_bit(x))
                    x = np.uint32(x & (x - np.uint32(1)))
                    v = np.float64(img[k0 + k, j0 + j, (w0 + w) * 32 + b])
                    if not (v >= lo):
                        continue
                    if v >= up:
                        if v != up:
                            continue
                        bn = nbins - 1
                    else:
                        a = 0
                        c = nbins - 1
                        while a < c:
                            mid = (a + c + 1) // 2
                            if v >= edges[mid]:
                                a = mid
                            else:
                                c = mid - 1
                        bn = a
                    hist[bn] += 1
