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
def _push(pool_v, pool_next, heads, used, v, b, lab):
    if used == pool_v.shape[0]:
        pool_v = np.concatenate((pool_v, np.empty(pool_v.shape[0], np.int64)))
        pool_next = np.concatenate((pool_next, np.empty(pool_next.shape[0], np.int64)))
    pool_v[used] = v
    pool_next[used] = heads[b, lab]
    heads[b, lab] = used
    return pool_v, pool_next


@njit(cache=True, nogil=True)
def dijkstra(keys, seed_labels, vals, rnk, rnj, rni, lam, scale, exact_int, nlabels, nbuckets, start):
    """Propagate from the voxels listed in ``start`` (their keys already set) until no key can
    decrease. ``keys``, ``seed_labels`` and ``vals`` (the region's intensities as float64) are
    flat arrays of the region. Costs: ``|vp - vq| * scale`` (exact for integer images) or
    ``rint(|vp - vq| * scale)``, plus ``lam[offset]``."""
    blocked = np.uint64(0xFFFFFFFFFFFFFFFF)
    plane = rnj * rni
    # the 26 neighbour offsets, in kernels/grow.cl's order (dk, dj, di), with their lam entries
    off = np.empty(26, np.int64)
    dks = np.empty(26, np.int64)
    djs = np.empty(26, np.int64)
    dis = np.empty(26, np.int64)
    lams = np.empty(26, np.int64)
    n = 0
    o = 0
    for dk in range(-1, 2):
        for dj in range(-1, 2):
            for di in range(-1, 2):
                if not (dk == 0 and dj == 0 and di == 0):
                    off[n] = dk * plane + dj * rni + di
                    dks[n] = dk
                    djs[n] = dj
                    dis[n] = di
                    lams[n] = lam[o]
                    n += 1
                o += 1
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
        pool_v, pool_next = _push(pool_v, pool_next, heads, used, v, d % nbuckets, np.int64(key & np.uint64(255)))
        used += 1
        remaining += 1
        dmin = min(dmin, d)
    cur = dmin
    while remaining > 0:
        b = cur % nbuckets
        for lab in range(1, nlabels + 1):
            want = (np.uint64(cur) << np.uint64(8)) | np.uint64(lab)
            while heads[b, lab] != -1:
                e = heads[b, lab]
                heads[b, lab] = pool_next[e]
                remaining -= 1
                v = pool_v[e]
                if keys[v] != want:
                    continue  # stale entry
                k = v // plane
                t = v - k * plane
                j = t // rni
                i = t - j * rni
                interior = 0 < k < rnk - 1 and 0 < j < rnj - 1 and 0 < i < rni - 1
                vp = vals[v]
                for x in range(26):
                    if not interior:
                        kk = k + dks[x]
                        jj = j + djs[x]
                        ii = i + dis[x]
                        if kk < 0 or jj < 0 or ii < 0 or kk >= rnk or jj >= rnj or ii >= rni:
                            continue
                    q = v + off[x]
                    kq = keys[q]
                    if kq <= want:
                        continue  # settled, or as good already: no step cost can beat it
                    if kq == blocked or seed_labels[q] != 0:
                        continue  # masked, or a seed (seeds keep their label)
                    if exact_int:
                        c = abs(np.int64(vp) - np.int64(vals[q])) * scale + lams[x]
                    else:
                        c = np.int64(np.rint(abs(vp - vals[q]) * scale)) + lams[x]
                    cand = want + (np.uint64(c) << np.uint64(8))
                    if cand < kq:
                        keys[q] = cand
                        pool_v, pool_next = _push(pool_v, pool_next, heads, used, q, (cur + c) % nbuckets, lab)
                        used += 1
                        remaining += 1
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
            pool_v, pool_next, used = nv, nn, n2
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
