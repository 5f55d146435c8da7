"""Grow from seeds on the CPU: exact multi-source Dijkstra with a bucket queue (numba).

Keys are (cost << 8) | label like kernels/grow.cl; voxels are taken in increasing key order
(buckets by cost, and by label within a cost), so the result is the same unique minimum the
device relaxation converges to.
"""

from __future__ import annotations

import numpy as np
from numba import njit

KEY_INF = np.uint64(0xFFFFFFFFFFFFFFFE)
KEY_BLOCKED = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True)
def dijkstra(keys, seed_labels, img, rk0, rj0, ri0, rnk, rnj, rni, lam, scale, nlabels, nbuckets, start):
    """Propagate from the voxels listed in ``start`` (their keys already set) until no key can
    decrease. ``keys`` is the region's flat uint64 array."""
    inf = np.uint64(0xFFFFFFFFFFFFFFFE)
    cap = max(1024, 2 * start.shape[0])
    pool_v = np.empty(cap, np.int64)
    pool_next = np.empty(cap, np.int64)
    heads = np.full((nbuckets, nlabels + 1), -1, np.int64)
    used = 0
    remaining = 0
    dmin = np.int64(1) << 62
    for s in range(start.shape[0]):
        v = start[s]
        key = keys[v]
        d = np.int64(key >> np.uint64(8))
        lab = np.int64(key & np.uint64(255))
        if used == cap:
            cap *= 2
            pool_v = np.concatenate((pool_v, np.empty(cap - pool_v.shape[0], np.int64)))
            pool_next = np.concatenate((pool_next, np.empty(cap - pool_next.shape[0], np.int64)))
        b = d % nbuckets
        pool_v[used] = v
        pool_next[used] = heads[b, lab]
        heads[b, lab] = used
        used += 1
        remaining += 1
        if d < dmin:
            dmin = d
    cur = dmin
    plane = rnj * rni
    while remaining > 0:
        b = cur % nbuckets
        for lab in range(1, nlabels + 1):
            while heads[b, lab] != -1:
                e = heads[b, lab]
                heads[b, lab] = pool_next[e]
                remaining -= 1
                v = pool_v[e]
                key = keys[v]
                if key != (np.uint64(cur) << np.uint64(8)) | np.uint64(lab):
                    continue  # stale entry
                k = v // plane
                t = v - k * plane
                j = t // rni
                i = t - j * rni
                vp = np.float64(img[rk0 + k, rj0 + j, ri0 + i])
                o = 0
                for dk in range(-1, 2):
                    for dj in range(-1, 2):
                        for di in range(-1, 2):
                            oo = o
                            o += 1
                            if dk == 0 and dj == 0 and di == 0:
                                continue
                            kk = k + dk
                            jj = j + dj
                            ii = i + di
                            if kk < 0 or jj < 0 or ii < 0 or kk >= rnk or jj >= rnj or ii >= rni:
                                continue
                            q = (kk * rnj + jj) * rni + ii
                            kq = keys[q]
                            if kq == np.uint64(0xFFFFFFFFFFFFFFFF) or seed_labels[q] != 0:
                                continue  # masked, or a seed (seeds keep their label)
                            vq = np.float64(img[rk0 + kk, rj0 + jj, ri0 + ii])
                            c = np.int64(np.rint(abs(vp - vq) * scale)) + lam[oo]
                            cand = key + (np.uint64(c) << np.uint64(8))
                            if cand < kq:
                                keys[q] = cand
                                if used == cap:
                                    cap *= 2
                                    pool_v = np.concatenate((pool_v, np.empty(cap - pool_v.shape[0], np.int64)))
                                    pool_next = np.concatenate((pool_next, np.empty(cap - pool_next.shape[0], np.int64)))
                                nb = (cur + c) % nbuckets
                                pool_v[used] = q
                                pool_next[used] = heads[nb, lab]
                                heads[nb, lab] = used
                                used += 1
                                remaining += 1
            # the pool only grows; reuse it from the start once the queue is empty
        if remaining == 0:
            break
        cur += 1
        if used > 64 * 1024 * 1024 and remaining < used // 4:
            # compact the pool: rebuild the lists from the live entries
            nv = np.empty(remaining + 1024, np.int64)
            nn = np.empty(remaining + 1024, np.int64)
            n2 = 0
            for bb in range(nbuckets):
                for ll in range(nlabels + 1):
                    e = heads[bb, ll]
                    head2 = -1
                    while e != -1:
                        nv[n2] = pool_v[e]
                        nn[n2] = head2
                        head2 = n2
                        n2 += 1
                        e = pool_next[e]
                    heads[bb, ll] = head2
            pool_v, pool_next, used, cap = nv, nn, n2, nv.shape[0]
    return keys


@njit(cache=True, nogil=True)
def label_words(keys, rnk, rnj, rni, lead, label, out):
    nk, nj, nw = out.shape
    for k in range(rnk):
        for j in range(rnj):
            base = (k * rnj + j) * rni
            for w in range(nw):
                bits = np.uint32(0)
                for b in range(32):
                    i = w * 32 + b - lead
                    if i < 0 or i >= rni:
                        continue
                    key = keys[base + i]
                    if key < np.uint64(0xFFFFFFFFFFFFFFFE) and np.int64(key & np.uint64(255)) == label:
                        bits |= np.uint32(1) << np.uint32(b)
                out[k, j, w] = bits
