"""Spec and numba twin of ``kernels/resample_image.cl``: linear resampling of an image onto another
grid (read beside resample_image.cl; docs/geometry.md)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel
from .prelude import PJIT
from .threshold import IMAGE_TYPES


RESAMPLE_LINEAR = Kernel("resample_image", "resample_linear",
                         "img:image, out:array, a:array, sni:i32, snj:i32, snk:i32, ni:i32, nj:i32, background:f64, "
                         "is_int:i32, n:i64", threads="n", defines={"IMAGE_T": "img"}, specialisations=IMAGE_TYPES)


@njit(**PJIT)
def resample_linear(img, out, a, sni, snj, snk, ni, nj, background, is_int, n):
    src = img.reshape(-1)
    dst = out.reshape(-1)
    sn = np.array([sni, snj, snk], np.int64)
    nrows = n // ni if ni > 0 else 0
    sj = np.int64(sni)
    sk = np.int64(sni) * snj
    for row in prange(nrows):
        J = row % nj
        K = row // nj
        dj = np.float64(J)
        dk = np.float64(K)
        p = np.empty(3, np.float64)
        d = np.empty(3, np.float64)
        lo = np.empty(3, np.int64)
        hi = np.empty(3, np.int64)
        for I in range(ni):
            gid = row * ni + I
            di = np.float64(I)
            for r in range(3):
                s = a[4 * r] * di
                s = s + a[4 * r + 1] * dj
                s = s + a[4 * r + 2] * dk
                p[r] = s + a[4 * r + 3]
            outside = False
            for r in range(3):
                top = np.float64(sn[r]) - 0.5
                if not (p[r] >= -0.5 and p[r] <= top):
                    outside = True
                    break
                q = 0.0 if p[r] < 0.0 else p[r]
                last = np.float64(sn[r] - 1)
                q = last if q > last else q
                f = np.floor(q)
                lo[r] = np.int64(f)
                hi[r] = lo[r] + 1 if lo[r] + 1 < sn[r] else lo[r]
                d[r] = q - f
            if outside:
                v = background
            else:
                v000 = np.float64(src[lo[2] * sk + lo[1] * sj + lo[0]])
                v100 = np.float64(src[lo[2] * sk + lo[1] * sj + hi[0]])
                v010 = np.float64(src[lo[2] * sk + hi[1] * sj + lo[0]])
                v110 = np.float64(src[lo[2] * sk + hi[1] * sj + hi[0]])
                v001 = np.float64(src[hi[2] * sk + lo[1] * sj + lo[0]])
                v101 = np.float64(src[hi[2] * sk + lo[1] * sj + hi[0]])
                v011 = np.float64(src[hi[2] * sk + hi[1] * sj + lo[0]])
                v111 = np.float64(src[hi[2] * sk + hi[1] * sj + hi[0]])
                x00 = v000 + (v100 - v000) * d[0]
                x10 = v010 + (v110 - v010) * d[0]
                xx0 = x00 + (x10 - x00) * d[1]
                x01 = v001 + (v101 - v001) * d[0]
                x11 = v011 + (v111 - v011) * d[0]
                xx1 = x01 + (x11 - x01) * d[1]
                v = xx0 + (xx1 - xx0) * d[2]
            if is_int != 0:
                dst[gid] = np.floor(v + 0.5)
            else:
                dst[gid] = v  # the C cast: the nearest float32
