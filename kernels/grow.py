"""Specs and numba twins of ``kernels/grow.cl`` (grow from seeds), and the propagation
procedure: a worklist relaxation of ``grow_push`` passes on devices, an exact multi-source
Dijkstra with a bucket queue on the CPU. Both reach the unique minimum of (distance, label)
(see gpuseg/ops/grow.py).

Keys are (cost << 8) | label; the Dijkstra takes voxels in increasing key order (buckets by
cost, and by label within a cost).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import Kernel, Procedure
from .constants import KEY_BLOCKED, KEY_INF
from .prelude import JIT, PJIT, fetch_word, lowest_bit
from .threshold import IMAGE_TYPES

_KEY_INF = np.uint64(KEY_INF)
_KEY_BLOCKED = np.uint64(KEY_BLOCKED)

GROW_INIT = Kernel("grow", "grow_init",
                   "keys:array, seed_labels:array, n:i64, editable:box?, use_editable:i32, rk0:i32, rj0:i32, "
                   "ri0:i32, rnj:i32, rni:i32", threads="n", defines={"IMAGE_T": None}, specialisations=IMAGE_TYPES)


@njit(**PJIT)
def grow_init(keys, seed_labels, n, editable, ek0, ej0, ew0, enk, enj, enw, use_editable, rk0, rj0, ri0, rnj, rni):
    for v in prange(n):
        i = v % rni
        t = v // rni
        j = t % rnj
        k = t // rnj
        if use_editable:
            I = ri0 + i
            x = fetch_word(editable, ek0, ej0, ew0, enk, enj, enw, rk0 + k, rj0 + j, I >> 5)
            if ((x >> np.uint32(I & 31)) & np.uint32(1)) == 0:
                keys[v] = _KEY_BLOCKED
                continue
        lab = seed_labels[v]
        keys[v] = np.uint64(lab) if lab else _KEY_INF


GROW_PUSH = Kernel("grow", "grow_push",
                   "keys:array, seed_labels:array, img:image, img_nj:i32, img_ni:i32, rk0:i32, rj0:i32, ri0:i32, "
                   "rnk:i32, rnj:i32, rni:i32, lam:array, scale:i64, active:array, next:array, nwords:i64, "
                   "changed:array", threads="nwords", defines={"IMAGE_T": "img"}, specialisations=IMAGE_TYPES)


@njit(**JIT)
def grow_push(keys, seed_labels, img, img_nj, img_ni, rk0, rj0, ri0, rnk, rnj, rni, lam, scale, active, next,
              nwords, changed):
    """One relaxation pass, serial (the kernel's atomic mins give the same fixed point)."""
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
            if kv >= _KEY_INF:
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
                        if kq <= kv or kq == _KEY_BLOCKED or seed_labels[q] != 0:
                            o += 1
                            continue
                        vq = np.float64(img[rk0 + kk, rj0 + jj, ri0 + ii])
                        diff = vp - vq if vp > vq else vq - vp
                        c = np.int64(np.rint(diff * np.float64(scale))) + lam[o]
                        cand = kv + (np.uint64(c) << np.uint64(8))
                        if cand < kq:
                            keys[q] = cand
                            next[q >> 5] |= np.uint32(1) << np.uint32(q & 31)
                            changed[0] = 1
                        o += 1


GROW_LABEL_WORDS = Kernel("grow", "grow_label_words",
                          "keys:array, rnk:i32, rnj:i32, rni:i32, lead:i32, label:i32, out:array, nw:i32",
                          threads=lambda keys, rnk, rnj, rni, lead, label, out, nw: rnk * rnj * nw,
                          defines={"IMAGE_T": None}, specialisations=IMAGE_TYPES)


@njit(**PJIT)
def grow_label_words(keys, rnk, rnj, rni, lead, label, out, nw):
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
                if key < _KEY_INF and np.int64(key & np.uint64(255)) == label:
                    bits |= np.uint32(1) << np.uint32(b)
            out[k, j, w] = bits


GROW_SET_SEEDS = Kernel("grow", "grow_set_seeds", "keys:array, seed_labels:array, idx:array, n_idx:i64",
                        threads="n_idx", defines={"IMAGE_T": None}, specialisations=IMAGE_TYPES)


@njit(**PJIT)
def grow_set_seeds(keys, seed_labels, idx, n_idx):
    for t in prange(n_idx):
        v = idx[t]
        if keys[v] != _KEY_BLOCKED:
            keys[v] = np.uint64(seed_labels[v])


@njit(**JIT)
def _push(pool_v, pool_next, heads, used, v, b, lab):
    if used == pool_v.shape[0]:
        pool_v = np.concatenate((pool_v, np.empty(pool_v.shape[0], np.int64)))
        pool_next = np.concatenate((pool_next, np.empty(pool_next.shape[0], np.int64)))
    pool_v[used] = v
    pool_next[used] = heads[b, lab]
    heads[b, lab] = used
    return pool_v, pool_next


@njit(**JIT)
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



# --- the fast exact CPU propagation (issue 13) ------------------------------------------------
# The region is copied once into a grid padded by one voxel on every side: uint32 keys
# (distance << 8 | label; the border and masked voxels are K32_BLOCKED, so a neighbour needs no
# bounds test and no index division) and the intensities in the narrowest integer type that
# holds them (int16 for CT). The bucket queue keeps, per (distance mod nbuckets, label), a stack
# of fixed-size chunks of int32 voxel indices: pops and pushes walk contiguous memory, and an
# emptied chunk is reused at once (it is still in cache). Distances that would not fit 24 bits
# make it give up (return False) and the caller runs :func:`dijkstra` with 64-bit keys.
K32_INF = np.uint32(0xFFFFFFFE)
K32_BLOCKED = np.uint32(0xFFFFFFFF)
D32_LIMIT = (1 << 24) - 1  # distances stay below this, so (d << 8) | label < K32_INF
CHUNK = 512


@njit(**PJIT)
def keys_to_padded(keys, rnk, rnj, rni, key32):
    """64-bit region keys -> the padded uint32 grid (border blocked); False if a distance is too large."""
    pj = rnj + 2
    pi = rni + 2
    bad = np.zeros(rnk + 2, np.uint8)
    for kk in prange(rnk + 2):
        base = kk * pj * pi
        if kk == 0 or kk == rnk + 1:
            for t in range(pj * pi):
                key32[base + t] = K32_BLOCKED
            continue
        k = kk - 1
        for jj in range(pj):
            row = base + jj * pi
            if jj == 0 or jj == rnj + 1:
                for ii in range(pi):
                    key32[row + ii] = K32_BLOCKED
                continue
            src = (k * rnj + jj - 1) * rni
            key32[row] = K32_BLOCKED
            key32[row + pi - 1] = K32_BLOCKED
            for i in range(rni):
                x = keys[src + i]
                if x == _KEY_BLOCKED:
                    key32[row + 1 + i] = K32_BLOCKED
                elif x == _KEY_INF:
                    key32[row + 1 + i] = K32_INF
                elif (x >> np.uint64(8)) >= np.uint64(D32_LIMIT):
                    bad[kk] = 1
                else:
                    key32[row + 1 + i] = np.uint32(x)
    return bad.max() == 0


@njit(**PJIT)
def padded_to_keys(key32, rnk, rnj, rni, keys):
    pj = rnj + 2
    pi = rni + 2
    for k in prange(rnk):
        for j in range(rnj):
            src = ((k + 1) * pj + j + 1) * pi + 1
            dst = (k * rnj + j) * rni
            for i in range(rni):
                x = key32[src + i]
                if x == K32_BLOCKED:
                    keys[dst + i] = _KEY_BLOCKED
                elif x == K32_INF:
                    keys[dst + i] = _KEY_INF
                else:
                    keys[dst + i] = np.uint64(x)


@njit(**PJIT)
def padded_values(img, rk0, rj0, ri0, rnk, rnj, rni, out):
    """The region's intensities on the padded grid (0 on the border, which is blocked anyway)."""
    pj = rnj + 2
    pi = rni + 2
    for kk in prange(rnk + 2):
        for jj in range(pj):
            row = (kk * pj + jj) * pi
            if kk == 0 or kk == rnk + 1 or jj == 0 or jj == rnj + 1:
                for ii in range(pi):
                    out[row + ii] = 0
                continue
            out[row] = 0
            out[row + pi - 1] = 0
            for i in range(rni):
                out[row + 1 + i] = img[rk0 + kk - 1, rj0 + jj - 1, ri0 + i]


@njit(**JIT)
def _new_chunk(cdata, cnext, ccount, nchunks, free):
    """A chunk index (from the free list, or a new one, growing the arrays); returns arrays too."""
    if free >= 0:
        c = free
        free = cnext[c]
        return c, free, cdata, cnext, ccount, nchunks
    if nchunks == cnext.shape[0]:
        m = cnext.shape[0] * 2
        d2 = np.empty(m * CHUNK, np.int32)
        d2[:cdata.shape[0]] = cdata
        n2 = np.empty(m, np.int32)
        n2[:cnext.shape[0]] = cnext
        c2 = np.empty(m, np.int32)
        c2[:ccount.shape[0]] = ccount
        cdata, cnext, ccount = d2, n2, c2
    c = nchunks
    nchunks += 1
    return c, free, cdata, cnext, ccount, nchunks


@njit(**JIT)
def dijkstra32(key32, seed_labels, vals, rnk, rnj, rni, lam, scale, nlabels, nbuckets, start):
    """Exact multi-source Dijkstra on the padded grid from the padded voxels ``start`` (keys
    set), integer intensities only; the same keys as :func:`dijkstra`. Returns False (keys
    then partly updated: the caller starts again with 64-bit keys) if a distance reaches
    D32_LIMIT."""
    pj = rnj + 2
    pi = rni + 2
    plane = pj * pi
    off = np.empty(26, np.int64)
    lams = np.empty(26, np.int64)
    n = 0
    o = 0
    for dk in range(-1, 2):
        for dj in range(-1, 2):
            for di in range(-1, 2):
                if not (dk == 0 and dj == 0 and di == 0):
                    off[n] = dk * plane + dj * pi + di
                    lams[n] = lam[o]
                    n += 1
                o += 1
    L = nlabels + 1
    heads = np.full(nbuckets * L, -1, np.int32)
    cap = 1024
    cdata = np.empty(cap * CHUNK, np.int32)
    cnext = np.empty(cap, np.int32)
    ccount = np.empty(cap, np.int32)
    nchunks = 0
    free = -1
    remaining = 0
    dmin = np.int64(D32_LIMIT)
    for s in range(start.shape[0]):
        v = start[s]
        key = key32[v]
        d = np.int64(key >> np.uint32(8))
        h = (d % nbuckets) * L + np.int64(key & np.uint32(255))
        c = heads[h]
        if c < 0 or ccount[c] == CHUNK:
            c2, free, cdata, cnext, ccount, nchunks = _new_chunk(cdata, cnext, ccount, nchunks, free)
            cnext[c2] = c
            ccount[c2] = 0
            heads[h] = c2
            c = c2
        cdata[c * CHUNK + ccount[c]] = v
        ccount[c] += 1
        remaining += 1
        dmin = min(dmin, d)
    cur = dmin
    while remaining > 0:
        bb = (cur % nbuckets) * L
        for lab in range(1, L):
            h = bb + lab
            want = np.uint32((cur << 8) | lab)
            while True:
                c = heads[h]
                if c < 0:
                    break
                cnt = ccount[c]
                if cnt == 0:
                    heads[h] = cnext[c]
                    cnext[c] = free
                    free = c
                    continue
                cnt -= 1
                ccount[c] = cnt
                remaining -= 1
                v = np.int64(cdata[c * CHUNK + cnt])
                if key32[v] != want:
                    continue  # stale entry
                vp = np.int64(vals[v])
                for x in range(26):
                    q = v + off[x]
                    kq = key32[q]
                    if kq <= want:
                        continue  # settled, or as good already
                    cost = abs(vp - np.int64(vals[q])) * scale + lams[x]
                    nd = cur + cost
                    cand = (nd << 8) | lab
                    if cand >= np.int64(kq):
                        continue
                    if kq == K32_BLOCKED:
                        continue  # the border, or masked
                    if nd == 0:
                        # only a seed can hold a key below 256 that a zero-cost step could lower
                        kk = q // plane
                        t = q - kk * plane
                        jj = t // pi
                        ii = t - jj * pi
                        if seed_labels[((kk - 1) * rnj + jj - 1) * rni + ii - 1] != 0:
                            continue
                    if nd >= D32_LIMIT:
                        return False
                    key32[q] = np.uint32(cand)
                    h2 = (nd % nbuckets) * L + lab
                    c2 = heads[h2]
                    if c2 < 0 or ccount[c2] == CHUNK:
                        c3, free, cdata, cnext, ccount, nchunks = _new_chunk(cdata, cnext, ccount, nchunks, free)
                        cnext[c3] = c2
                        ccount[c3] = 0
                        heads[h2] = c3
                        c2 = c3
                    cdata[c2 * CHUNK + ccount[c2]] = np.int32(q)
                    ccount[c2] += 1
                    remaining += 1
        cur += 1
    return True



def _propagate_device(b, keys, seed_labels, img, region, lam, scale, start, nlabels, nbuckets, dtype):
    """Worklist relaxation: passes of grow_push from the ``start`` voxels until none lowers a key."""
    rk0, rj0, ri0, rnk, rnj, rni = region
    n = rnk * rnj * rni
    nwords = (n + 31) // 32
    first = np.zeros(nwords * 32, bool)
    first[start] = True
    active = b.asarray(np.packbits(first, bitorder="little").view(np.uint32), what="grow wavefront")
    nxt = b.zeros((nwords,), np.uint32, what="grow wavefront")
    flag = b.zeros((1,), np.int32, what="grow flag")
    passes = 0
    while True:
        passes += 1
        b.fill_zero(flag)
        b.run(GROW_PUSH, keys, seed_labels, img, img.shape[1], img.shape[2], rk0, rj0, ri0, rnk, rnj, rni, lam,
              scale, active, nxt, nwords, flag)
        if int(b.to_numpy(flag)[0]) == 0:
            return passes
        active, nxt = nxt, active
        b.fill_zero(nxt)


_FAST_TYPES = tuple(np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32))


def _narrow_int(dtype):
    """The int16 or int32 the padded intensities of an integer image are held in."""
    d = np.dtype(dtype)
    return np.int16 if d.itemsize == 1 or d == np.int16 else np.int32


def grow_propagate(keys, seed_labels, img, region, lam, scale, start, nlabels, nbuckets, dtype):
    """CPU twin of the propagation: exact Dijkstra from ``start`` (keys set), in place.

    Integer images take :func:`dijkstra32` (padded uint32 keys, int16/int32 intensities, chunked
    buckets), unless a distance needs more than 24 bits; float images, and that case, take
    :func:`dijkstra` (uint64 keys, float64 intensities, linked-list buckets)."""
    rk0, rj0, ri0, rnk, rnj, rni = region
    exact_int = np.dtype(dtype).kind in "iu"
    if np.dtype(dtype) in _FAST_TYPES:
        pshape = (rnk + 2) * (rnj + 2) * (rni + 2)
        key32 = np.empty(pshape, np.uint32)
        if keys_to_padded(keys, rnk, rnj, rni, key32):
            vals = np.empty(pshape, _narrow_int(dtype))
            padded_values(img, rk0, rj0, ri0, rnk, rnj, rni, vals)
            s = np.asarray(start, np.int64)
            k, t = np.divmod(s, rnj * rni)
            j, i = np.divmod(t, rni)
            ps = ((k + 1) * (rnj + 2) + j + 1) * (rni + 2) + i + 1
            ps = ps[key32[ps] != K32_BLOCKED]
            done = dijkstra32(key32, seed_labels, vals, rnk, rnj, rni, lam, scale, nlabels, nbuckets, ps)
            if done:
                padded_to_keys(key32, rnk, rnj, rni, keys)
                return 0
        del key32  # a distance needs more than 24 bits: the 64-bit keys (untouched so far) below
    vals = np.ascontiguousarray(img[rk0:rk0 + rnk, rj0:rj0 + rnj, ri0:ri0 + rni],
                                dtype=np.int32 if exact_int else np.float64).ravel()
    start = np.asarray(start, np.int64)
    start = start[keys[start] != _KEY_BLOCKED]
    dijkstra(keys, seed_labels, vals, rnk, rnj, rni, lam, scale, exact_int, nlabels, nbuckets, start)
    return 0


GROW_PROPAGATE = Procedure("grow", "grow_propagate", _propagate_device, kernels=(GROW_PUSH,))
