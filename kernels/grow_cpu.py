"""The exact CPU form of grow from seeds' propagation: a multi-source Dijkstra with a bucket
queue of chunked lists, serial, or over slabs of planes on several threads. It reaches the same
unique minimum of (distance, label) as the device worklist in ``kernels/grow.py`` (see
docs/grow.md).

Keys are (cost << 8) | label, uint32 (distances below ``D32_LIMIT``) or uint64.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .constants import D32_LIMIT, KEY32_BLOCKED, KEY32_INF, KEY_BLOCKED, KEY_INF
from .prelude import JIT, PJIT

#: What the propagation returns when a 32-bit key cannot hold a distance (the caller then
#: starts again with 64-bit keys); otherwise it returns the number of passes (0 on the CPU).
OVERFLOW = -1

#: Chunk of the CPU bucket queue (voxel indices).
CHUNK = 512

def key_limits(keys):
    """(unreached key, masked key, distance limit) of a key array's type, as in grow.cl."""
    if np.dtype(keys.dtype) == np.uint32:
        return np.uint32(KEY32_INF), np.uint32(KEY32_BLOCKED), D32_LIMIT
    return np.uint64(KEY_INF), np.uint64(KEY_BLOCKED), 1 << 62


@overload(key_limits, jit_options=JIT)
def _key_limits(keys):
    if keys.dtype == types.uint32:
        return lambda keys: (np.uint32(KEY32_INF), np.uint32(KEY32_BLOCKED), np.int64(D32_LIMIT))
    return lambda keys: (np.uint64(KEY_INF), np.uint64(KEY_BLOCKED), np.int64(1) << np.int64(62))



def step_cost(vp, vq, scale):
    """The intensity part of a step's cost, as grow.cl computes it: ``|vp - vq| * scale`` for
    integer intensities (exact), ``rint(|vp - vq| * scale)`` for float ones."""
    d = abs(float(vp) - float(vq)) * scale
    return int(d) if isinstance(vp, (int, np.integer)) else int(np.rint(d))


@overload(step_cost, jit_options=JIT)
def _step_cost(vp, vq, scale):
    # chosen when the image's type is known, so the hot loop holds one formula, not a branch
    if isinstance(vp, types.Integer):
        return lambda vp, vq, scale: abs(np.int64(vp) - np.int64(vq)) * scale
    return lambda vp, vq, scale: np.int64(np.rint(abs(np.float64(vp) - np.float64(vq)) * scale))


@njit(**JIT)
def _doubled(a):
    """``a`` copied into an array twice as long; the new half is left unwritten (its pages are
    not touched until used)."""
    out = np.empty(2 * a.shape[0], a.dtype)
    out[:a.shape[0]] = a
    return out


@njit(**JIT)
def _new_chunk(h, heads, cdata, cnext, ccount, nchunks, free):
    """A chunk (from the free list, or a new one, growing the arrays) pushed on bucket ``h``'s
    stack, empty; returns it and the queue's state (the arrays may be new)."""
    if free >= 0:
        c = free
        free = cnext[c]
    else:
        if nchunks == cnext.shape[0]:
            cdata = _doubled(cdata)
            cnext = _doubled(cnext)
            ccount = _doubled(ccount)
        c = nchunks
        nchunks += 1
    cnext[c] = heads[h]
    ccount[c] = 0
    heads[h] = c
    return c, free, cdata, cnext, ccount, nchunks


@njit(**JIT)
def dijkstra(keys, seed_labels, img, rk0, rj0, ri0, rnk, rnj, rni, lam, scale, nlabels, nbuckets, start, cdata):
    """Exact multi-source Dijkstra from the region voxels ``start`` (keys set, none masked)
    until no key can decrease, in place on the region's keys (uint32 or uint64, flat). The
    intensities are read in place from the 3D image ``img``. Costs: :func:`step_cost` plus
    ``lam[offset]``.

    The bucket queue keeps, per (distance mod nbuckets, label), a stack of chunks of CHUNK
    voxel indices (``cdata``'s type: int32 below 2**31 voxels), so pops and pushes walk
    contiguous memory and an emptied chunk is reused at once, while still in cache. Returns
    False (keys then partly updated) if a distance reaches the key type's limit."""
    inf, blocked, dlimit = key_limits(keys)
    flat = img.reshape(img.size)
    inj = img.shape[1]
    ini = img.shape[2]
    plane = rnj * rni
    off = np.empty(26, np.int64)   # neighbour offsets in the region's keys, in grow.cl's order
    ioff = np.empty(26, np.int64)  # and in the image
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
                    ioff[n] = (dk * inj + dj) * ini + di
                    dks[n] = dk
                    djs[n] = dj
                    dis[n] = di
                    lams[n] = lam[o]
                    n += 1
                o += 1
    L = nlabels + 1
    heads = np.full(nbuckets * L, -1, np.int32)
    cnext = np.empty(cdata.shape[0] // CHUNK, np.int32)
    ccount = np.empty(cdata.shape[0] // CHUNK, np.int32)
    nchunks = 0
    free = -1
    remaining = 0
    dmin = np.int64(1) << np.int64(62)
    for s in range(start.shape[0]):
        v = start[s]
        key = keys[v]
        d = np.int64(key >> 8)
        h = (d % nbuckets) * L + np.int64(key & 255)
        c = heads[h]
        if c < 0 or ccount[c] == CHUNK:
            c, free, cdata, cnext, ccount, nchunks = _new_chunk(h, heads, cdata, cnext, ccount, nchunks, free)
        cdata[c * CHUNK + ccount[c]] = v
        ccount[c] += 1
        remaining += 1
        dmin = min(dmin, d)
    cur = dmin
    while remaining > 0:
        bb = (cur % nbuckets) * L
        for lab in range(1, L):
            h = bb + lab
            want = np.uint64((cur << 8) | lab)
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
                if np.uint64(keys[v]) != want:
                    continue  # stale entry
                k = v // plane
                t = v - k * plane
                j = t // rni
                i = t - j * rni
                interior = 0 < k < rnk - 1 and 0 < j < rnj - 1 and 0 < i < rni - 1
                p = ((rk0 + k) * inj + rj0 + j) * ini + ri0 + i
                vp = flat[p]
                for x in range(26):
                    if not interior:
                        kk = k + dks[x]
                        jj = j + djs[x]
                        ii = i + dis[x]
                        if kk < 0 or jj < 0 or ii < 0 or kk >= rnk or jj >= rnj or ii >= rni:
                            continue
                    q = v + off[x]
                    kq = np.uint64(keys[q])
                    if kq <= want:
                        continue  # settled, or as good already: no step cost can beat it
                    cost = step_cost(vp, flat[p + ioff[x]], scale) + lams[x]
                    nd = cur + cost
                    if nd >= dlimit:
                        if kq == np.uint64(inf):
                            return False  # unreached, and the key type cannot hold this distance
                        continue  # reached already, so at a lower key; or masked
                    cand = np.uint64((nd << 8) | lab)
                    if cand >= kq or kq == np.uint64(blocked):
                        continue  # as good already, or masked
                    if nd == 0 and seed_labels[q] != 0:
                        continue  # only a seed holds a key a zero-cost step could lower: seeds keep theirs
                    keys[q] = cand
                    h2 = (nd % nbuckets) * L + lab
                    c2 = heads[h2]
                    if c2 < 0 or ccount[c2] == CHUNK:
                        c2, free, cdata, cnext, ccount, nchunks = _new_chunk(h2, heads, cdata, cnext, ccount,
                                                                             nchunks, free)
                    cdata[c2 * CHUNK + ccount[c2]] = q
                    ccount[c2] += 1
                    remaining += 1
        cur += 1
    return True


# --- the fast CPU path for integer images (docs/grow.md) ------------------------------------------
# The region's 32-bit keys are copied into a grid padded by one voxel on every side (the border
# KEY32_BLOCKED, so a neighbour needs no bounds test and no index division), and the intensities
# into the same grid in the narrowest integer type that holds them (int16 for CT). Keys and
# intensities of a voxel then share one index, and :func:`dijkstra_slabs` runs on them. This
# costs 6 B per voxel more than reading the keys and the image in place (:func:`dijkstra`), and
# it is 25-35% faster on this project's machines; float images and 64-bit keys take
# :func:`dijkstra`.
@njit(**PJIT)
def pad_keys(keys, rnk, rnj, rni, key32):
    """The region's uint32 keys -> the padded grid (the border blocked)."""
    pj = rnj + 2
    pi = rni + 2
    blocked = np.uint32(KEY32_BLOCKED)
    for kk in prange(rnk + 2):
        base = kk * pj * pi
        if kk == 0 or kk == rnk + 1:
            for t in range(pj * pi):
                key32[base + t] = blocked
            continue
        for jj in range(pj):
            row = base + jj * pi
            if jj == 0 or jj == rnj + 1:
                for ii in range(pi):
                    key32[row + ii] = blocked
                continue
            src = ((kk - 1) * rnj + jj - 1) * rni
            key32[row] = blocked
            key32[row + pi - 1] = blocked
            for i in range(rni):
                key32[row + 1 + i] = keys[src + i]


@njit(**PJIT)
def unpad_keys(key32, rnk, rnj, rni, keys):
    """The padded grid's keys back into the region's keys."""
    pj = rnj + 2
    pi = rni + 2
    for k in prange(rnk):
        for j in range(rnj):
            src = ((k + 1) * pj + j + 1) * pi + 1
            dst = (k * rnj + j) * rni
            for i in range(rni):
                keys[dst + i] = key32[src + i]


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


#: The integer image types the padded grid holds (in int16 or int32).
_FAST_TYPES = tuple(np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32))


def _narrow_int(dtype):
    """The int16 or int32 the padded intensities of an integer image are held in."""
    d = np.dtype(dtype)
    return np.int16 if d.itemsize == 1 or d == np.int16 else np.int32


def _queue(n_voxels):
    """The bucket queue's first chunk storage: room for half an entry per voxel, reserved but
    not touched (the system gives pages as chunks are first used), so that the queue does not
    grow, and hold two copies, while the grow runs."""
    n_chunks = max(64, n_voxels // (2 * CHUNK))
    return np.empty(n_chunks * CHUNK, np.int32 if n_voxels < 2 ** 31 else np.int64)


# --- several threads: the padded Dijkstra over slabs of planes (docs/grow.md) ---------------------
# The padded grid's planes are cut into slabs of SLAB planes, slab s owned by thread s % T, so
# that every thread holds part of the wavefront wherever it is. Each thread runs the padded
# Dijkstra on its own voxels with its own bucket queue, in windows of distances [.., d_end):
# a step into another thread's voxel is not taken but sent to that thread (an outbox of
# (voxel, key) pairs), which takes it at the start of the next pass if it beats the voxel's key.
# A window is run again while candidates below d_end cross between threads, so when the window
# moves on, every key below it is final, and a thread's queued distances span at most one window
# and one step (the circular bucket array's length). Keys only decrease, and every candidate is a
# real path's key, so the passes end at the same unique minimum as the serial Dijkstra. A step
# reads the key of another thread's voxel while that thread may lower it: a stale (higher) key
# only sends a candidate the owner then drops.
#: Planes per slab of the threaded CPU Dijkstra.
SLAB = 16


@njit(**JIT)
def _emit(box, n, q, cand):
    """Append the pair (q, cand) to an outbox holding ``n`` pairs; returns it (maybe grown)."""
    if 2 * n + 2 > box.shape[0]:
        box = _doubled(box)
    box[2 * n] = q
    box[2 * n + 1] = cand
    return box


@njit(**JIT)
def slab_pass(S, key32, seed_labels, vals, rnj, rni, off, lams, scale, L, nbuckets, d_end,
              heads, cdata, cnext, ccount, st, in1, n1, in2, n2, force, odown, oup):
    """One pass of one thread of the slab Dijkstra: take the pairs of the inboxes ``in1`` and
    ``in2`` (all of them if ``force``, else those that lower a key), then settle this thread's
    voxels in key order up to distance ``d_end``; steps into the slab below or above go to
    ``odown`` / ``oup`` (``S`` = 0: one slab, no neighbours). ``st`` carries the thread's
    queue state between passes: chunks used, free list, entries queued, current distance; it
    returns the outbox sizes, an overflow flag and the lowest distance sent (``st[4:8]``).
    Returns the (maybe grown) arrays."""
    inf = np.uint32(KEY32_INF)
    blocked = np.uint32(KEY32_BLOCKED)
    pj = rnj + 2
    pi = rni + 2
    plane = pj * pi
    nchunks = st[0]
    free = st[1]
    remaining = st[2]
    cur = st[3]
    ndown = 0
    nup = 0
    omin = np.int64(D32_LIMIT)
    for b in range(2):
        box = in1 if b == 0 else in2
        nb = n1 if b == 0 else n2
        for e in range(nb):
            q = box[2 * e]
            cand = box[2 * e + 1]
            kq = key32[q]
            if not force and (cand >= np.int64(kq) or kq == blocked):
                continue
            key32[q] = np.uint32(cand)
            nd = cand >> 8
            if remaining == 0 or nd < cur:
                cur = nd
            h = (nd % nbuckets) * L + (cand & 255)
            c = heads[h]
            if c < 0 or ccount[c] == CHUNK:
                c, free, cdata, cnext, ccount, nchunks = _new_chunk(h, heads, cdata, cnext, ccount, nchunks, free)
            cdata[c * CHUNK + ccount[c]] = q
            ccount[c] += 1
            remaining += 1
    while remaining > 0 and cur < d_end:
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
                r = -1  # v's plane in its slab, found when a step leaves v's plane
                vp = np.int64(vals[v])
                for x in range(26):
                    q = v + off[x]
                    kq = key32[q]  # another thread's voxel may be lowered meanwhile: then only lower
                    if kq <= want:
                        continue
                    cost = abs(vp - np.int64(vals[q])) * scale + lams[x]
                    nd = cur + cost
                    if nd >= D32_LIMIT:
                        if kq == inf:
                            st[6] = 1  # unreached, and 32 bits cannot hold this distance
                            st[0] = nchunks
                            st[1] = free
                            st[2] = remaining
                            st[3] = cur
                            return cdata, cnext, ccount, odown, oup
                        continue
                    cand = (nd << 8) | lab
                    if cand >= np.int64(kq) or kq == blocked:
                        continue
                    if nd == 0:
                        kk = q // plane
                        t = q - kk * plane
                        jj = t // pi
                        ii = t - jj * pi
                        if seed_labels[((kk - 1) * rnj + jj - 1) * rni + ii - 1] != 0:
                            continue
                    if S > 0 and (x < 9 or x >= 17):
                        if r < 0:
                            r = (v // plane - 1) % S
                        if x < 9 and r == 0:
                            odown = _emit(odown, ndown, q, cand)
                            ndown += 1
                            omin = min(omin, nd)
                            continue
                        if x >= 17 and r == S - 1:
                            oup = _emit(oup, nup, q, cand)
                            nup += 1
                            omin = min(omin, nd)
                            continue
                    key32[q] = np.uint32(cand)
                    h2 = (nd % nbuckets) * L + lab
                    c2 = heads[h2]
                    if c2 < 0 or ccount[c2] == CHUNK:
                        c2, free, cdata, cnext, ccount, nchunks = _new_chunk(h2, heads, cdata, cnext, ccount,
                                                                             nchunks, free)
                    cdata[c2 * CHUNK + ccount[c2]] = np.int32(q)
                    ccount[c2] += 1
                    remaining += 1
        cur += 1
    if remaining > 0:  # on to the next distance with an entry (within nbuckets of cur)
        while True:
            bb = (cur % nbuckets) * L
            found = False
            for lab in range(1, L):
                if heads[bb + lab] >= 0:
                    found = True
            if found:
                break
            cur += 1
    st[0] = nchunks
    st[1] = free
    st[2] = remaining
    st[3] = cur
    st[4] = ndown
    st[5] = nup
    st[6] = 0
    st[7] = omin
    return cdata, cnext, ccount, odown, oup


def cpu_threads():
    """The threads the CPU Dijkstra may use: numba's (``NUMBA_NUM_THREADS``, default: the cores)."""
    return numba.get_num_threads()


def _offsets(rnj, rni, lam):
    """The padded grid's 26 neighbour offsets and their ``lam`` costs, in grow.cl's order."""
    pj, pi = rnj + 2, rni + 2
    lam = np.asarray(lam, np.int64).reshape(27)
    d = [(dk, dj, di) for dk in (-1, 0, 1) for dj in (-1, 0, 1) for di in (-1, 0, 1)]
    keep = [n for n, o in enumerate(d) if o != (0, 0, 0)]
    off = np.array([(d[n][0] * pj + d[n][1]) * pi + d[n][2] for n in keep], np.int64)
    return off, lam[keep]


def dijkstra_slabs(key32, seed_labels, vals, rnk, rnj, rni, lam, scale, nlabels, nbuckets, start, threads,
                   slab=None, window=None):
    """:func:`dijkstra` on the padded grid (``start``: padded indices, none masked; integer
    intensities), on ``threads`` threads over slabs of ``slab`` planes; the same keys for any
    number of threads. ``window``: the distances a pass settles (default: ``nbuckets`` / 512).
    Returns False (keys then partly updated) if a distance reaches D32_LIMIT."""
    start = np.asarray(start, np.int64)
    if start.size == 0:
        return True
    T = int(threads)
    if T == 1:  # one slab, one window: the serial Dijkstra
        S, window, nb = 0, D32_LIMIT, nbuckets
    else:
        S = int(slab or SLAB)
        window = max(1, int(window or nbuckets // 512))
        nb = nbuckets + window  # the queued distances span at most one window and one step
    L = nlabels + 1
    off, lams = _offsets(rnj, rni, lam)
    plane = (rnj + 2) * (rni + 2)
    owner = ((start // plane - 1) // max(S, 1)) % T
    # each thread reserves room for twice its share of the queue (untouched until used): its part
    # of the wavefront varies
    reserve = key32.size if T == 1 else 2 * key32.size // T
    threads_state = []
    for t in range(T):
        mine = start[owner == t]
        pairs = np.empty(2 * mine.size, np.int64)
        pairs[0::2] = mine
        pairs[1::2] = key32[mine]
        threads_state.append({
            "heads": np.full(nb * L, -1, np.int32), "cdata": _queue(reserve),
            "st": np.zeros(8, np.int64), "inbox": pairs,
            "out": [np.empty(2048, np.int64) for _ in range(4)],  # down, up; two sets, alternating
        })
    for s in threads_state:
        n = s["cdata"].shape[0] // CHUNK
        s["cnext"] = np.empty(n, np.int32)
        s["ccount"] = np.empty(n, np.int32)
        s["st"][1] = -1
    d_end = min(int(key32[start].min() >> 8) + window, D32_LIMIT)
    parity = 0
    force = True
    if T == 1:
        s = threads_state[0]
        slab_pass(S, key32, seed_labels, vals, rnj, rni, off, lams, scale, L, nb, d_end, s["heads"], s["cdata"],
                  s["cnext"], s["ccount"], s["st"], s["inbox"], s["inbox"].size // 2, s["inbox"], 0, True,
                  s["out"][0], s["out"][1])
        return not s["st"][6]
    with ThreadPoolExecutor(T) as pool:
        while True:
            jobs = []
            sent = [(int(s["st"][4]), int(s["st"][5])) for s in threads_state]  # before a job rewrites them
            for t, s in enumerate(threads_state):
                if force:
                    in1, n1, in2, n2 = s["inbox"], s["inbox"].size // 2, s["inbox"], 0
                else:
                    in1, n1 = threads_state[(t - 1) % T]["out"][2 * (1 - parity) + 1], sent[(t - 1) % T][1]
                    in2, n2 = threads_state[(t + 1) % T]["out"][2 * (1 - parity)], sent[(t + 1) % T][0]
                jobs.append(pool.submit(slab_pass, S, key32, seed_labels, vals, rnj, rni, off, lams, scale, L, nb,
                                        d_end, s["heads"], s["cdata"], s["cnext"], s["ccount"], s["st"], in1, n1,
                                        in2, n2, force, s["out"][2 * parity], s["out"][2 * parity + 1]))
            for s, job in zip(threads_state, jobs):
                s["cdata"], s["cnext"], s["ccount"], s["out"][2 * parity], s["out"][2 * parity + 1] = job.result()
            if any(s["st"][6] for s in threads_state):
                return False
            force = False
            lo = D32_LIMIT
            for s in threads_state:
                if s["st"][2] > 0:
                    lo = min(lo, int(s["st"][3]))
                if s["st"][4] or s["st"][5]:
                    lo = min(lo, int(s["st"][7]))
            if lo >= D32_LIMIT:
                return True
            if lo >= d_end:
                d_end = lo + window
            parity = 1 - parity


def grow_propagate(keys, seed_labels, img, region, lam, scale, start, nlabels, nbuckets, dtype):
    """CPU twin of the propagation: exact Dijkstra from ``start`` (keys set), in place; 0, or
    OVERFLOW if 32-bit keys cannot hold a distance.

    Integer images with 32-bit keys take :func:`dijkstra_slabs` on the padded grid, on up to
    :func:`cpu_threads` threads (one per slab at most); the rest :func:`dijkstra`."""
    rk0, rj0, ri0, rnk, rnj, rni = region
    _, blocked, _ = key_limits(keys)
    start = np.asarray(start, np.int64)
    start = start[keys[start] != blocked]
    if keys.dtype == np.uint32 and np.dtype(dtype) in _FAST_TYPES:
        n_pad = (rnk + 2) * (rnj + 2) * (rni + 2)
        key32 = np.empty(n_pad, np.uint32)
        pad_keys(keys, rnk, rnj, rni, key32)
        vals = np.empty(n_pad, _narrow_int(dtype))
        padded_values(img, rk0, rj0, ri0, rnk, rnj, rni, vals)
        k, t = np.divmod(start, rnj * rni)
        j, i = np.divmod(t, rni)
        pstart = ((k + 1) * (rnj + 2) + j + 1) * (rni + 2) + i + 1
        done = dijkstra_slabs(key32, seed_labels, vals, rnk, rnj, rni, lam, scale, nlabels, nbuckets, pstart,
                              max(1, min(cpu_threads(), -(-rnk // SLAB))))
        del vals
        if done:
            unpad_keys(key32, rnk, rnj, rni, keys)
    else:
        done = dijkstra(keys, seed_labels, img, rk0, rj0, ri0, rnk, rnj, rni, lam, scale, nlabels, nbuckets,
                        start, _queue(keys.size))
    return 0 if done else OVERFLOW
