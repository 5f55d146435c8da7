"""Specs and numba twins of ``kernels/grow.cl`` (grow from seeds), and the propagation
procedure: a worklist relaxation of ``grow_push`` passes on devices; on the CPU, the exact
multi-source Dijkstra of ``kernels/grow_cpu.py``. Both reach the unique minimum of
(distance, label) (see gpuseg/ops/grow.py).

Keys are (cost << 8) | label, uint32 (distances below ``D32_LIMIT``) or uint64; the Dijkstra
takes voxels in increasing key order (buckets by cost, and by label within a cost). Every
kernel and twin is specialised on the key type (``KEY_T``); see docs/grow.md.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import CTYPES, Kernel, Procedure
from .grow_cpu import OVERFLOW, grow_propagate, key_limits  # noqa: F401 (OVERFLOW, the CPU twin)
from .prelude import JIT, PJIT, fetch_word, lowest_bit
from .threshold import IMAGE_TYPES

#: The key types, and every (image type, key type) a grow kernel is compiled for.
KEY_TYPES = (np.dtype(np.uint32), np.dtype(np.uint64))
GROW_TYPES = [{**t, "KEY_T": CTYPES[k]} for t in IMAGE_TYPES for k in KEY_TYPES]

GROW_INIT = Kernel("grow", "grow_init",
                   "keys:array, seed_labels:array, n:i64, editable:box?, use_editable:i32, rk0:i32, rj0:i32, "
                   "ri0:i32, rnj:i32, rni:i32", threads="n", defines={"IMAGE_T": None, "KEY_T": "keys"},
                   specialisations=GROW_TYPES)


@njit(**PJIT)
def grow_init(keys, seed_labels, n, editable, ek0, ej0, ew0, enk, enj, enw, use_editable, rk0, rj0, ri0, rnj, rni):
    inf, blocked, _ = key_limits(keys)
    for v in prange(n):
        i = v % rni
        t = v // rni
        j = t % rnj
        k = t // rnj
        if use_editable:
            I = ri0 + i
            x = fetch_word(editable, ek0, ej0, ew0, enk, enj, enw, rk0 + k, rj0 + j, I >> 5)
            if ((x >> np.uint32(I & 31)) & np.uint32(1)) == 0:
                keys[v] = blocked
                continue
        lab = seed_labels[v]
        keys[v] = lab if lab else inf


GROW_PUSH = Kernel("grow", "grow_push",
                   "keys:array, seed_labels:array, img:image, img_nj:i32, img_ni:i32, rk0:i32, rj0:i32, ri0:i32, "
                   "rnk:i32, rnj:i32, rni:i32, lam:array, scale:i64, active:array, next:array, nwords:i64, "
                   "flags:array", threads="nwords", defines={"IMAGE_T": "img", "KEY_T": "keys"},
                   specialisations=GROW_TYPES)


@njit(**JIT)
def grow_push(keys, seed_labels, img, img_nj, img_ni, rk0, rj0, ri0, rnk, rnj, rni, lam, scale, active, next,
              nwords, flags):
    """One relaxation pass, serial (the kernel's atomic mins give the same fixed point)."""
    inf, blocked, dlimit = key_limits(keys)
    n = rnk * rnj * rni
    for g in range(nwords):
        a = active[g]
        while a != 0:
            b = np.int64(lowest_bit(a))
            a = np.uint32(a & (a - np.uint32(1)))
            v = g * 32 + b
            if v >= n:
                break
            kv = keys[v]
            if kv >= inf:
                continue
            i = v % rni
            t = v // rni
            j = t % rnj
            k = t // rnj
            vp = np.float64(img[rk0 + k, rj0 + j, ri0 + i])
            o = 0
            for dk in range(-1, 2):
                for dj in range(-1, 2):
                    for di in range(-1, 2):
                        if dk == 0 and dj == 0 and di == 0:
                            o += 1
                            continue
                        kk = k + dk
                        jj = j + dj
                        ii = i + di
                        if kk < 0 or jj < 0 or ii < 0 or kk >= rnk or jj >= rnj or ii >= rni:
                            o += 1
                            continue
                        q = (kk * rnj + jj) * rni + ii
                        kq = keys[q]
                        if kq <= kv or kq == blocked or seed_labels[q] != 0:
                            o += 1
                            continue
                        vq = np.float64(img[rk0 + kk, rj0 + jj, ri0 + ii])
                        diff = vp - vq if vp > vq else vq - vp
                        c = np.int64(np.rint(diff * np.float64(scale))) + lam[o]
                        cand = np.uint64(kv) + (np.uint64(c) << np.uint64(8))
                        if np.int64(cand >> np.uint64(8)) >= dlimit:
                            if kq == inf:
                                flags[1] = 1  # not representable: the caller goes to 64-bit keys
                        elif cand < np.uint64(kq):
                            keys[q] = cand
                            next[q >> 5] |= np.uint32(1) << np.uint32(q & 31)
                            flags[0] = 1
                        o += 1


GROW_LABEL_WORDS = Kernel("grow", "grow_label_words",
                          "keys:array, rnk:i32, rnj:i32, rni:i32, lead:i32, label:i32, out:array, nw:i32",
                          threads=lambda keys, rnk, rnj, rni, lead, label, out, nw: rnk * rnj * nw,
                          defines={"IMAGE_T": None, "KEY_T": "keys"}, specialisations=GROW_TYPES)


@njit(**PJIT)
def grow_label_words(keys, rnk, rnj, rni, lead, label, out, nw):
    inf, _, _ = key_limits(keys)
    for r in prange(rnk * rnj):
        k = r // rnj
        j = r - k * rnj
        base = r * rni
        for w in range(nw):
            bits = np.uint32(0)
            for b in range(32):
                i = w * 32 + b - lead
                if i < 0 or i >= rni:
                    continue
                key = keys[base + i]
                if key < inf and np.int64(key & 255) == label:
                    bits |= np.uint32(1) << np.uint32(b)
            out[k, j, w] = bits


GROW_SET_SEEDS = Kernel("grow", "grow_set_seeds", "keys:array, seed_labels:array, idx:array, n_idx:i64",
                        threads="n_idx", defines={"IMAGE_T": None, "KEY_T": "keys"}, specialisations=GROW_TYPES)


@njit(**PJIT)
def grow_set_seeds(keys, seed_labels, idx, n_idx):
    _, blocked, _ = key_limits(keys)
    for t in prange(n_idx):
        v = idx[t]
        if keys[v] != blocked:
            keys[v] = seed_labels[v]


def _propagate_device(b, keys, seed_labels, img, region, lam, scale, start, nlabels, nbuckets, dtype):
    """Worklist relaxation: passes of grow_push from the ``start`` voxels until none lowers a key."""
    rk0, rj0, ri0, rnk, rnj, rni = region
    n = rnk * rnj * rni
    nwords = (n + 31) // 32
    first = np.zeros(nwords * 32, bool)
    first[start] = True
    active = b.asarray(np.packbits(first, bitorder="little").view(np.uint32), what="grow wavefront")
    nxt = b.zeros((nwords,), np.uint32, what="grow wavefront")
    flags = b.zeros((2,), np.int32, what="grow flags")
    passes = 0
    while True:
        passes += 1
        b.fill_zero(flags)
        b.run(GROW_PUSH, keys, seed_labels, img, img.shape[1], img.shape[2], rk0, rj0, ri0, rnk, rnj, rni, lam,
              scale, active, nxt, nwords, flags)
        lowered, overflow = (int(f) for f in b.to_numpy(flags))
        if overflow:
            return OVERFLOW
        if not lowered:
            return passes
        active, nxt = nxt, active
        b.fill_zero(nxt)


GROW_PROPAGATE = Procedure("grow", "grow_propagate", _propagate_device, kernels=(GROW_PUSH,))
