"""Fill between slices: ND morphological contour interpolation of a label volume.

A host-side port of the algorithm of ITK's ``MorphologicalContourInterpolator`` (Zukic et al.,
Insight Journal 977), which Slicer's Fill between slices effect wraps, with Slicer's settings
(all labels, automatic axis, heuristic alignment on, distance-transform median on, cross
structuring element, 4-connected slice components):

* annotated slices: a voxel of label L marks slice s along axis a when both its neighbours along
  a are background and both its neighbours along each other axis are L (an isolated slice's
  interior); with ``axis=None`` every axis with two or more annotated slices of some label is
  interpolated, as ITK does;
* between consecutive annotated slices of a label (not adjacent), the 4-connected regions of the
  two slices are paired by overlap; 1-to-1 pairs are aligned by the translation that maximises
  overlap (ITK's breadth-first heuristic search), 1-to-N / N-to-1 / M-to-N pairs split the single
  region among its partners by competing dilation, unmatched regions collapse to their centroid;
* the middle slice is the distance-field median of the two aligned shapes (signed distance from
  their intersection in index space, tenths of a voxel, the bin that balances both shapes), and
  the halves are filled recursively;
* interpolated voxels take the highest label that reaches them; annotated voxels keep their label.

This is sequential, per-slice-pair work on small 2D boxes, so it runs on the host (numpy/SciPy)
over the labels' bounding boxes; the result therefore is the same on every backend.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numba
import numpy as np
from numba import njit
from scipy import ndimage

from ..errors import InvalidInputError
from ..geometry import Extent

__all__ = ["interpolate_labels", "fill_between_slices", "slicer_extent"]

_CROSS = ndimage.generate_binary_structure(2, 1)


def _tdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@njit(cache=True, nogil=True)
def _ntdiv(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class _Slice:
    """A 2D label slice in ITK index order (d0, d1) with its absolute origin."""

    __slots__ = ("arr", "org")

    def __init__(self, arr, org):
        self.arr = arr
        self.org = np.asarray(org, np.int64)


@njit(cache=True, nogil=True)
def _runs(arr, ids):
    """Runs along d1 of the pixels of ``arr`` whose value is in ``ids``: row pointers (n0 + 1),
    run starts, ends (exclusive) and the 1-based index in ``ids`` of the run's value."""
    n0, n1 = arr.shape
    nr = 0
    for a in range(n0):
        prev = 0
        for b in range(n1):
            x = 0
            v = arr[a, b]
            if v != 0:
                for q in range(ids.shape[0]):
                    if ids[q] == v:
                        x = q + 1
                        break
            if x != 0 and x != prev:
                nr += 1
            prev = x
    ptr = np.zeros(n0 + 1, np.int64)
    st = np.empty(nr, np.int64)
    en = np.empty(nr, np.int64)
    val = np.empty(nr, np.int64)
    r = 0
    for a in range(n0):
        prev = 0
        for b in range(n1):
            x = 0
            v = arr[a, b]
            if v != 0:
                for q in range(ids.shape[0]):
                    if ids[q] == v:
                        x = q + 1
                        break
            if x != prev:
                if prev != 0:
                    en[r - 1] = b
                if x != 0:
                    st[r] = b
                    val[r] = x
                    r += 1
            prev = x
        if prev != 0:
            en[r - 1] = n1
        ptr[a + 1] = r
    return ptr, st, en, val


@njit(cache=True, nogil=True)
def _run_centroid(ptr, st, en, org0, org1):
    """ITK's centroid (truncating mean of absolute indices) of the pixels of some runs."""
    n = 0
    s0 = 0
    s1 = 0
    for a in range(ptr.shape[0] - 1):
        for r in range(ptr[a], ptr[a + 1]):
            m = en[r] - st[r]
            n += m
            s0 += (a + org0) * m
            s1 += (st[r] + en[r] - 1 + 2 * org1) * m // 2
    return _ntdiv(s0, n), _ntdiv(s1, n)


@njit(cache=True, nogil=True)
def _overlap(iptr, ist, ien, io0, io1, jptr, jst, jen, jval, jo0, jo1, nids, t0, t1, counts):
    """ITK's Intersection on runs: overlap of the i region moved by t with each j region; 0
    unless every j region is met."""
    counts[:] = 0
    jn0 = jptr.shape[0] - 1
    off = io1 + t1 - jo1
    for a in range(iptr.shape[0] - 1):
        A = a + io0 + t0 - jo0
        if A < 0 or A >= jn0:
            continue
        for r in range(iptr[a], iptr[a + 1]):
            s = ist[r] + off
            e = ien[r] + off
            for r2 in range(jptr[A], jptr[A + 1]):
                lo = max(s, jst[r2])
                hi = min(e, jen[r2])
                if hi > lo:
                    counts[jval[r2]] += hi - lo
    total = 0
    for x in range(1, nids + 1):
        if counts[x] == 0:
            return 0
        total += counts[x]
    return total


@njit(cache=True, nogil=True)
def _align_search(iarr, iid, io0, io1, jarr, jids, jo0, jo1, heuristic):
    """ITK's breadth-first heuristic search for the translation t maximising the overlap of the
    i region (moved by t) with the j regions; (0, 0) if none overlaps."""
    iptr, ist, ien, _ = _runs(iarr, np.array([iid], np.int64))
    jptr, jst, jen, jval = _runs(jarr, jids)
    c0, c1 = _run_centroid(jptr, jst, jen, jo0, jo1)
    d0, d1 = _run_centroid(iptr, ist, ien, io0, io1)
    in0, in1 = iarr.shape
    jn0, jn1 = jarr.shape
    lo0 = jo0 - io0 - in0 + 1
    lo1 = jo1 - io1 - in1 + 1
    sz0 = in0 + jn0 - 1
    sz1 = in1 + jn1 - 1
    npix = sz0 * sz1
    searched = np.zeros((sz0, sz1), np.bool_)
    q0 = np.empty(npix + 2, np.int64)
    q1 = np.empty(npix + 2, np.int64)
    q0[0], q1[0] = 0, 0
    q0[1], q1[1] = c0 - d0, c1 - d1
    nq = 2
    for x in range(2):
        if lo0 <= q0[x] < lo0 + sz0 and lo1 <= q1[x] < lo1 + sz1:
            searched[q0[x] - lo0, q1[x] - lo1] = True
    min_iter = min(8, npix)
    max_iter = max(216, int(math.sqrt(npix)))
    nids = jids.shape[0]
    counts = np.zeros(nids + 1, np.int64)
    max_score = 0
    b0, b1 = 0, 0
    it = 0
    q = 0
    while q < nq:
        t0, t1 = q0[q], q1[q]
        q += 1
        score = _overlap(iptr, ist, ien, io0, io1, jptr, jst, jen, jval, jo0, jo1, nids, t0, t1, counts)
        if score > max_score:
            max_score = score
            b0, b1 = t0, t1
        if not heuristic or max_score == 0 or it <= min_iter or (score > max_score * 0.9 and it <= max_iter):
            for d in range(2):
                for step in (-1, 1):
                    n0 = t0 + step if d == 0 else t0
                    n1 = t1 + step if d == 1 else t1
                    if lo0 <= n0 < lo0 + sz0 and lo1 <= n1 < lo1 + sz1 and not searched[n0 - lo0, n1 - lo1]:
                        searched[n0 - lo0, n1 - lo1] = True
                        q0[nq], q1[nq] = n0, n1
                        nq += 1
                        it += 1
    return b0, b1


@njit(cache=True, nogil=True)
def _sq_edt(seed):
    """Exact squared Euclidean distance (int64) of every pixel of a 2D box to the nearest True
    pixel of ``seed`` (Meijster et al.'s two-pass algorithm, integer arithmetic; equal to SciPy's
    distance_transform_edt squared)."""
    n0, n1 = seed.shape
    inf = n0 + n1
    g = np.empty((n0, n1), np.int64)
    for b in range(n1):
        g[0, b] = 0 if seed[0, b] else inf
    for a in range(1, n0):
        for b in range(n1):
            g[a, b] = 0 if seed[a, b] else g[a - 1, b] + 1
    for a in range(n0 - 2, -1, -1):
        for b in range(n1):
            if g[a + 1, b] < g[a, b]:
                g[a, b] = g[a + 1, b] + 1
    out = np.empty((n0, n1), np.int64)
    s = np.empty(n1, np.int64)
    t = np.empty(n1, np.int64)
    f = np.empty(n1, np.int64)  # g(s[q]) ** 2
    for a in range(n0):
        ga = g[a]
        q = 0
        s[0] = 0
        t[0] = 0
        f[0] = ga[0] * ga[0]
        for u in range(1, n1):
            gu2 = ga[u] * ga[u]
            while q >= 0:
                dt = t[q] - s[q]
                du = t[q] - u
                if dt * dt + f[q] > du * du + gu2:
                    q -= 1
                else:
                    break
            if q < 0:
                q = 0
                s[0] = u
                f[0] = gu2
            else:
                i = s[q]
                # floor division, in float64 (exact here: |numerator| < 2 ** 53 and the
                # quotient's distance to an integer exceeds its rounding error)
                w = 1 + np.int64(math.floor(float(u * u - i * i + gu2 - f[q]) / float(2 * (u - i))))
                if w < n1:
                    q += 1
                    s[q] = u
                    t[q] = w
                    f[q] = gu2
        oa = out[a]
        for u in range(n1 - 1, -1, -1):
            d = u - s[q]
            oa[u] = d * d + f[q]
            if u == t[q]:
                q -= 1
    return out


@njit(cache=True, nogil=True)
def _median_distances(im, jm):
    """ITK's distance-field median of two aligned shapes: signed distance from their intersection
    binned in tenths of a voxel (float32, truncated, as ITK's C++ does), the bin that balances
    both shapes' differences; the intersection itself when it is empty or the shapes are equal.
    Computed on the tight box of ``im | jm`` (the distances do not depend on the box)."""
    n0, n1 = im.shape
    a0, a1, b0, b1 = n0, -1, n1, -1
    ninter = 0
    for a in range(n0):
        for b in range(n1):
            if im[a, b] or jm[a, b]:
                a0 = min(a0, a)
                a1 = max(a1, a)
                b0 = min(b0, b)
                b1 = max(b1, b)
                if im[a, b] and jm[a, b]:
                    ninter += 1
    med = np.zeros((n0, n1), np.bool_)
    if ninter == 0:
        return med
    h0, h1 = a1 - a0 + 1, b1 - b0 + 1
    seed = np.empty((h0, h1), np.bool_)
    for a in range(h0):
        for b in range(h1):
            seed[a, b] = im[a0 + a, b0 + b] and jm[a0 + a, b0 + b]
    sq = _sq_edt(seed)
    ten = np.float32(10.0)
    nh = int(10.0 * math.sqrt(float(h0 * h0 + h1 * h1))) + 2
    ih = np.zeros(nh, np.int64)
    jh = np.zeros(nh, np.int64)
    n = 0
    for a in range(h0):
        for b in range(h1):
            ii = im[a0 + a, b0 + b]
            if ii != jm[a0 + a, b0 + b]:
                d = np.int64(ten * np.float32(math.sqrt(float(sq[a, b]))))
                if ii:
                    ih[d] += 1
                else:
                    jh[d] += 1
                n = max(n, d + 1)
    if n == 0:
        for a in range(h0):
            for b in range(h1):
                med[a0 + a, b0 + b] = seed[a, b]
        return med
    it = 0
    jt = 0
    for x in range(n):
        it += ih[x]
        jt += jh[x]
    isum = 0
    jsum = 0
    best = 0
    mn = -1
    for x in range(n):
        isum += ih[x]
        jsum += jh[x]
        diff = abs(abs(it - isum + jsum) - abs(jt - jsum + isum))
        if mn < 0 or diff < mn:
            mn = diff
            best = x
    thr = np.float32(best) / ten
    # the largest squared distance whose float32 distance is <= thr (float32(sqrt) is monotone)
    smax = np.int64(float(thr) * float(thr))
    while np.float32(math.sqrt(float(smax + 1))) <= thr:
        smax += 1
    while smax >= 0 and np.float32(math.sqrt(float(smax))) > thr:
        smax -= 1
    for a in range(h0):
        for b in range(h1):
            if (im[a0 + a, b0 + b] or jm[a0 + a, b0 + b]) and sq[a, b] <= smax:
                med[a0 + a, b0 + b] = True
    return med


@njit(cache=True, nogil=True)
def _box_of(arr, v):
    """Bounding box (a0, a1, b0, b1, exclusive ends) of the pixels of ``arr`` equal to v;
    a0 = -1 when there are none."""
    n0, n1 = arr.shape
    a0, a1, b0, b1 = n0, -1, n1, -1
    for a in range(n0):
        for b in range(n1):
            if arr[a, b] == v:
                a0 = min(a0, a)
                a1 = max(a1, a)
                b0 = min(b0, b)
                b1 = max(b1, b)
    if a1 < 0:
        return -1, 0, 0, 0
    return a0, a1 + 1, b0, b1 + 1


@njit(cache=True, nogil=True)
def _one_to_one_dt(iarr, iid, i0, i1, jarr, jid, j0, j1, plane, label):
    """The distance-median middle slice of region ``iid`` of ``iarr`` (origin i0, i1, already
    moved by its half translation) and region ``jid`` of ``jarr`` (origin j0, j1), on the tight
    box of the two shapes: raises ``plane`` (ITK-order view of the output slice) to ``label``
    where the median is set and returns the median (uint8) with its origin."""
    ia0, ia1, ib0, ib1 = _box_of(iarr, iid)
    ja0, ja1, jb0, jb1 = _box_of(jarr, jid)
    if ia0 < 0 and ja0 < 0:
        return np.zeros((0, 0), np.uint8), 0, 0
    if ia0 < 0:
        lo0, hi0, lo1, hi1 = ja0 + j0, ja1 + j0, jb0 + j1, jb1 + j1
    elif ja0 < 0:
        lo0, hi0, lo1, hi1 = ia0 + i0, ia1 + i0, ib0 + i1, ib1 + i1
    else:
        lo0, hi0 = min(ia0 + i0, ja0 + j0), max(ia1 + i0, ja1 + j0)
        lo1, hi1 = min(ib0 + i1, jb0 + j1), max(ib1 + i1, jb1 + j1)
    h0, h1 = hi0 - lo0, hi1 - lo1
    im = np.zeros((h0, h1), np.bool_)
    jm = np.zeros((h0, h1), np.bool_)
    if ia0 >= 0:
        for a in range(ia0, ia1):
            for b in range(ib0, ib1):
                if iarr[a, b] == iid:
                    im[a + i0 - lo0, b + i1 - lo1] = True
    if ja0 >= 0:
        for a in range(ja0, ja1):
            for b in range(jb0, jb1):
                if jarr[a, b] == jid:
                    jm[a + j0 - lo0, b + j1 - lo1] = True
    med = _median_distances(im, jm)
    p0, p1 = plane.shape
    res = np.zeros((h0, h1), np.uint8)
    for a in range(h0):
        for b in range(h1):
            if med[a, b]:
                res[a, b] = 1
                x, y = a + lo0, b + lo1
                if 0 <= x < p0 and 0 <= y < p1 and plane[x, y] < label:
                    plane[x, y] = label
    return res, lo0, lo1


@njit(cache=True, nogil=True)
def _compete(mask, jv, jids):
    """ITK's competing dilation of a 1-to-N pair: the pixels of ``mask`` overlapped by j region x
    (``jv`` = the j value under each pixel) seed blob x + 1; cross dilations within the mask
    grow all blobs at once, a pixel reached by several blobs in the same step going to the
    lowest. Returns the owner of each pixel (0 = none)."""
    n0, n1 = mask.shape
    own = np.zeros((n0, n1), np.int64)
    cand = np.zeros((n0, n1), np.int64)
    fa = np.empty(n0 * n1, np.int64)
    fb = np.empty(n0 * n1, np.int64)
    ga = np.empty(n0 * n1, np.int64)
    gb = np.empty(n0 * n1, np.int64)
    nf = 0
    for a in range(n0):
        for b in range(n1):
            if mask[a, b]:
                for x in range(jids.shape[0]):
                    if jv[a, b] == jids[x]:
                        own[a, b] = x + 1
                if own[a, b]:
                    fa[nf], fb[nf] = a, b
                    nf += 1
    while nf > 0:
        ng = 0
        for q in range(nf):
            a, b = fa[q], fb[q]
            lab = own[a, b]
            for k in range(4):
                na, nb = a, b
                if k == 0:
                    na = a - 1
                elif k == 1:
                    na = a + 1
                elif k == 2:
                    nb = b - 1
                else:
                    nb = b + 1
                if 0 <= na < n0 and 0 <= nb < n1 and mask[na, nb] and own[na, nb] == 0:
                    c = cand[na, nb]
                    if c == 0:
                        cand[na, nb] = lab
                        ga[ng], gb[ng] = na, nb
                        ng += 1
                    elif lab < c:
                        cand[na, nb] = lab
        for q in range(ng):
            own[ga[q], gb[q]] = cand[ga[q], gb[q]]
        fa, ga = ga, fa
        fb, gb = gb, fb
        nf = ng
    return own


@njit(cache=True, nogil=True)
def _pairs(a, b):
    """ITK's region pairs of two component slices: every (a, b) value pair present where either
    is nonzero, less (0, v) / (v, 0) for regions that touch a region of the other slice; sorted."""
    na = 0
    nb = 0
    for v in a.ravel():
        na = max(na, v)
    for v in b.ravel():
        nb = max(nb, v)
    aboth = np.zeros(na + 1, np.bool_)
    bboth = np.zeros(nb + 1, np.bool_)
    n0, n1 = a.shape
    keys = np.empty(n0 * n1, np.int64)
    nk = 0
    last = -1
    for x in range(n0):
        for y in range(n1):
            va, vb = a[x, y], b[x, y]
            if va != 0 or vb != 0:
                k = np.int64(va) * (nb + 1) + vb
                if k != last:
                    keys[nk] = k
                    nk += 1
                    last = k
                if va != 0 and vb != 0:
                    aboth[va] = True
                    bboth[vb] = True
    out = []
    for k in np.unique(keys[:nk]):
        va, vb = k // (nb + 1), k % (nb + 1)
        if (va == 0 and bboth[vb]) or (vb == 0 and aboth[va]):
            continue
        out.append((va, vb))
    return out


def _centroid(s: _Slice, ids) -> np.ndarray:
    ptr, st, en, _ = _runs(s.arr, np.asarray(ids, np.int64))
    return np.array(_run_centroid(ptr, st, en, int(s.org[0]), int(s.org[1])), np.int64)


def _align(ic: _Slice, iid, jc: _Slice, jids, heuristic=True) -> np.ndarray:
    t = _align_search(ic.arr, int(iid), int(ic.org[0]), int(ic.org[1]), jc.arr, np.asarray(jids, np.int64),
                      int(jc.org[0]), int(jc.org[1]), bool(heuristic))
    return np.array(t, np.int64)


def _dilate1(seed, mask):
    return ndimage.binary_dilation(seed, _CROSS) & mask


def _median_dilations(inter, im, jm):
    def seq(begin, end):
        out = [_dilate1(begin, end)]
        while True:
            out.append(_dilate1(out[-1], end))
            if np.array_equal(out[-1], out[-2]):
                out.pop()
                return out
    iseq, jseq = seq(inter, im)[::-1], seq(inter, jm)
    if len(iseq) < len(jseq):
        iseq, jseq = jseq, iseq
    ratio = np.float32(len(jseq)) / np.float32(len(iseq))
    cand = [iseq[x] | jseq[int(ratio * np.float32(x))] for x in range(len(iseq))]
    best, mn = 0, im.size
    for x, c in enumerate(cand):
        score = abs(int((c != im).sum()) - int((c != jm).sum()))
        if score < mn:
            mn, best = score, x
    return cand[best]


class _Run:
    """One label along one axis; ``plane(k)`` is the output's slice k as an ITK-order (d0, d1)
    view."""

    def __init__(self, out, label, axis, use_dt, heuristic=True):
        self.out, self.label, self.axis, self.use_dt = out, label, axis, use_dt
        self.heuristic = heuristic
        self.plane_shape = np.delete(np.asarray(out.shape[::-1]), axis)
        self._planes = np.moveaxis(out, 2 - axis, 0)

    def _al(self, ic, iid, jc, jids):
        return _align(ic, iid, jc, jids, self.heuristic)

    def one_to_one(self, i, j, ic: _Slice, iid, jc: _Slice, jid, t, recursive=False):
        it_ = np.zeros(2, np.int64)
        carry = False
        for d in range(2):
            td = int(t[d])
            if not carry:
                it_[d] = _tdiv(td, 2)
                carry = td % 2 != 0
            elif td % 2 == 0:
                it_[d] = _tdiv(td, 2)
            else:
                it_[d] = _tdiv(td, 2) + (1 if td > 0 else -1)
                carry = False
        jt_ = it_ - t
        mid = (i + j + (1 if carry else 0)) // 2
        iorg, jorg = ic.org + it_, jc.org + jt_
        if self.use_dt:
            res, m0, m1 = _one_to_one_dt(ic.arr, iid, int(iorg[0]), int(iorg[1]), jc.arr, jid, int(jorg[0]),
                                         int(jorg[1]), self._planes[mid].T, self.label)
            mc = _Slice(res, (m0, m1))
        else:
            mc = self._one_to_one_dilations(mid, ic.arr == iid, iorg, jc.arr == jid, jorg)
        if abs(i - j) > 2:
            if abs(i - mid) > 1:
                self.one_to_one(i, mid, ic, iid, mc, 1, it_, True)
            if abs(j - mid) > 1:
                self.one_to_one(j, mid, jc, jid, mc, 1, jt_, True)

    def _one_to_one_dilations(self, mid, im0, iorg, jm0, jorg):
        """The morphological-dilation median (``use_distance_transform=False``) on the union box
        of the two shapes' slices, with NumPy/SciPy (Slicer never uses it)."""
        lo = np.minimum(iorg, jorg)
        hi = np.maximum(iorg + im0.shape, jorg + np.asarray(jm0.shape))
        shape = tuple(int(v) for v in hi - lo)
        im = np.zeros(shape, bool)
        jm = np.zeros(shape, bool)
        a, b = iorg - lo, jorg - lo
        im[a[0]:a[0] + im0.shape[0], a[1]:a[1] + im0.shape[1]] = im0
        jm[b[0]:b[0] + jm0.shape[0], b[1]:b[1] + jm0.shape[1]] = jm0
        med = _median_dilations(im & jm, im, jm)
        # write the middle slice, clipped to the volume
        plane = self._planes[mid].T
        c0 = np.maximum(lo, 0)
        c1 = np.minimum(hi, self.plane_shape)
        if np.all(c1 > c0):
            sub = med[c0[0] - lo[0]:c1[0] - lo[0], c0[1] - lo[1]:c1[1] - lo[1]]
            tgt = plane[c0[0]:c1[0], c0[1]:c1[1]]
            tgt[sub & (tgt < self.label)] = self.label
        return _Slice(med.astype(np.int32), lo)

    def one_to_n(self, i, j, ic: _Slice, iid, jc: _Slice, jids, t):
        mask = ic.arr == iid
        # j value at each i pixel under the translation
        jv = np.zeros(mask.shape, ic.arr.dtype)
        lo = np.maximum(ic.org, jc.org - t)
        hi = np.minimum(ic.org + mask.shape, jc.org + np.asarray(jc.arr.shape) - t)
        if np.all(hi > lo):
            jv[lo[0] - ic.org[0]:hi[0] - ic.org[0], lo[1] - ic.org[1]:hi[1] - ic.org[1]] = \
                jc.arr[lo[0] + t[0] - jc.org[0]:hi[0] + t[0] - jc.org[0], lo[1] + t[1] - jc.org[1]:hi[1] + t[1] - jc.org[1]]
        belongs = _compete(mask, jv, np.asarray(jids, jv.dtype))
        for x in range(len(jids)):
            conn = _Slice(np.where(belongs == x + 1, iid, 0).astype(ic.arr.dtype), ic.org)
            self.one_to_one(i, j, conn, iid, jc, jids[x], t)

    def extrapolate(self, i, j, ic: _Slice, rid):
        c = _centroid(ic, [rid])
        ph = np.zeros((3, 3), ic.arr.dtype)
        ph[1, 1] = rid
        t = self._al(ic, rid, _Slice(ph, c - 1), [rid])
        self.one_to_one(i, j, ic, rid, _Slice(ph, c - 1 - t), rid, np.zeros(2, np.int64))

    def between(self, i, j, ic: _Slice, jc: _Slice):
        pairs = _pairs(ic.arr, jc.arr)
        keep = []
        for p in pairs:
            if p[1] == 0:
                self.extrapolate(i, j, ic, p[0])
            elif p[0] == 0:
                self.extrapolate(j, i, jc, p[1])
            else:
                keep.append(p)
        pairs = keep
        ic_n, jc_n = {}, {}
        for p in pairs:
            ic_n[p[0]] = ic_n.get(p[0], 0) + 1
            jc_n[p[1]] = jc_n.get(p[1], 0) + 1
        rest = []
        for p in pairs:
            if ic_n.get(p[0], 0) == 1 and jc_n.get(p[1], 0) == 1:
                self.one_to_one(i, j, ic, p[0], jc, p[1], self._al(ic, p[0], jc, [p[1]]))
                ic_n.pop(p[0], None)
                jc_n.pop(p[1], None)
            else:
                rest.append(p)
        pairs = rest
        k = 0
        while k < len(pairs):
            p = pairs[k]
            if ic_n.get(p[0], 0) == 1:  # M-to-1
                ids = [r[0] for r in pairs if r[1] == p[1]]
                self.one_to_n(j, i, jc, p[1], ic, ids, self._al(jc, p[1], ic, ids))
                for r in [r for r in pairs if r != p and r[1] == p[1]]:
                    ic_n[r[0]] = ic_n.get(r[0], 0) - 1
                    jc_n[r[1]] = jc_n.get(r[1], 0) - 1
                    pairs.remove(r)
            elif jc_n.get(p[1], 0) == 1:  # 1-to-N
                ids = [r[1] for r in pairs if r[0] == p[0]]
                self.one_to_n(i, j, ic, p[0], jc, ids, self._al(ic, p[0], jc, ids))
                for r in [r for r in pairs[1:] if r != p and r[0] == p[0]]:  # ITK skips the first pair
                    ic_n[r[0]] = ic_n.get(r[0], 0) - 1
                    jc_n[r[1]] = jc_n.get(r[1], 0) - 1
                    pairs.remove(r)
            else:
                k += 1
                continue
            ic_n[p[0]] = ic_n.get(p[0], 0) - 1
            jc_n[p[1]] = jc_n.get(p[1], 0) - 1
            k = pairs.index(p)
            pairs.pop(k)
        while pairs:  # M-to-N
            p = pairs[0]
            ids = [r[1] for r in pairs if r[0] == p[0]]
            self.one_to_n(i, j, ic, p[0], jc, ids, self._al(ic, p[0], jc, ids))
            pairs = [r for r in pairs[1:] if r[0] != p[0]]


@njit(cache=True, nogil=True)
def _scan(y, nlab):
    """One pass over a (k, j, i) label volume with labels 0..nlab - 1: each label's bounding box
    (numpy axes) and ITK's annotated slices: a voxel of label L marks slice s along numpy axis
    ax when both its neighbours along ax are background and both its neighbours along each other
    axis are L. Returns lo, hi (nlab, 3) and flags (3, nlab, max extent)."""
    n0, n1, n2 = y.shape
    lo = np.full((nlab, 3), 1 << 40, np.int64)
    hi = np.full((nlab, 3), -1, np.int64)
    flags = np.zeros((3, nlab, max(n0, n1, n2)), np.bool_)
    for k in range(n0):
        for j in range(n1):
            for i in range(n2):
                v = y[k, j, i]
                if v == 0:
                    continue
                if k < lo[v, 0]:
                    lo[v, 0] = k
                if k > hi[v, 0]:
                    hi[v, 0] = k
                if j < lo[v, 1]:
                    lo[v, 1] = j
                if j > hi[v, 1]:
                    hi[v, 1] = j
                if i < lo[v, 2]:
                    lo[v, 2] = i
                if i > hi[v, 2]:
                    hi[v, 2] = i
                c_true = 0
                c_adj = 0
                iso_ax = -1
                for ax in range(3):
                    if ax == 0:
                        p = y[k - 1, j, i] if k > 0 else 0
                        q = y[k + 1, j, i] if k + 1 < n0 else 0
                    elif ax == 1:
                        p = y[k, j - 1, i] if j > 0 else 0
                        q = y[k, j + 1, i] if j + 1 < n1 else 0
                    else:
                        p = y[k, j, i - 1] if i > 0 else 0
                        q = y[k, j, i + 1] if i + 1 < n2 else 0
                    if p == 0 and q == 0:
                        c_true += 1
                        iso_ax = ax
                    elif p == v and q == v:
                        c_adj += 1
                if c_true == 1 and c_adj == 2:
                    s = k if iso_ax == 0 else (j if iso_ax == 1 else i)
                    flags[iso_ax, v, s] = True
    return lo, hi + 1, flags


def interpolate_labels(labels: np.ndarray, axis: int | None = None, *, use_distance_transform: bool = True,
                       heuristic_alignment: bool = True) -> np.ndarray:
    """Morphological contour interpolation of a label volume (numpy, (k, j, i) order).

    Parameters
    ----------
    labels : ndarray of non-negative integers, 3D
        The sparsely annotated labels (0 = background).
    axis : int or None
        The numpy axis (0 = k, 1 = j, 2 = i) to interpolate along, or None for ITK's automatic
        choice (every axis with annotated slices).
    use_distance_transform, heuristic_alignment : bool
        ITK's options; Slicer uses the defaults (True, True).

    Returns
    -------
    ndarray
        Labels of the same shape and dtype: the input plus the interpolated voxels.
    """
    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise InvalidInputError(f"labels must be 3D, got shape {lab.shape}")
    if lab.dtype.kind not in "iub" or (lab.size and lab.min() < 0):
        raise InvalidInputError("labels must be non-negative integers")
    if axis is not None and axis not in (0, 1, 2):
        raise InvalidInputError(f"axis must be 0, 1, 2 or None, got {axis!r}")
    y = np.ascontiguousarray(lab.view(np.uint8) if lab.dtype == bool else lab)
    top = int(y.max()) if y.size else 0
    values = None
    if top > 4096:  # sparse label values: work on their ranks
        values, inv = np.unique(y, return_inverse=True)
        y = inv.reshape(y.shape).astype(np.int32)
        top = len(values) - 1
    out = np.zeros(y.shape, y.dtype)
    nthreads = numba.get_num_threads()
    with ThreadPoolExecutor(nthreads, "gpuseg-interpolate") if nthreads > 1 and top > 0 else nullcontext() as pool:
        if top > 0:
            _interpolate_into(out, y, top, axis, use_distance_transform, heuristic_alignment, pool)
    np.copyto(out, y, where=y != 0)
    if values is not None:
        out = values[out]
    return out.astype(lab.dtype, copy=False)


def _interpolate_into(out, y, top, axis, use_distance_transform, heuristic_alignment, pool):
    """Every label along every chosen axis into ``out`` (both (k, j, i)); pairs in ``pool``."""
    lo_np, hi_np, flags = _scan(y, top + 1)
    # ITK index order (i, j, k): ITK axis a is numpy axis 2 - a
    ann = {a: {int(v): np.nonzero(flags[2 - a, v])[0].tolist() for v in range(1, top + 1)
               if flags[2 - a, v].any()} for a in range(3)}
    itk_axis = None if axis is None else 2 - axis
    axes = [itk_axis] if itk_axis is not None else [a for a in range(3) if any(len(s) > 1 for s in ann[a].values())]
    for a in axes:
        keep = [d for d in range(3) if d != a]
        for label, s in ann[a].items():
            lo, hi = lo_np[label][::-1], hi_np[label][::-1]  # ITK order
            org = lo[keep]
            run = _Run(out, label, a, use_distance_transform, heuristic_alignment)
            box = [slice(None)] * 3
            for d in keep:
                box[2 - d] = slice(int(lo[d]), int(hi[d]))
            jobs = [(p, q) for p, q in zip(s[:-1], s[1:]) if p + 1 < q]
            conns = {}
            for k in sorted({k for pq in jobs for k in pq}):
                box[2 - a] = k
                lab2, _ = ndimage.label(y[tuple(box)] == label, _CROSS)  # ITK raster order
                conns[k] = _Slice(np.ascontiguousarray(lab2.T, np.int32), org)
            # the pairs of one label write disjoint slices (strictly between their own two):
            # run them in threads (the numba parts release the GIL); labels and axes run one
            # after another, as two labels' raise-to-the-higher writes to a voxel must not race
            work = [lambda p=p, q=q: run.between(p, q, conns[p], conns[q]) for p, q in jobs]
            if pool is not None and len(work) > 1:
                for f in [pool.submit(w) for w in work]:
                    f.result()
            else:
                for w in work:
                    w()


def slicer_extent(extent: Extent, shape) -> Extent:
    """The region Slicer's auto-complete effects (Fill between slices among them) hand to ITK:
    ``extent`` (the union of the segments' effective extents) grown on each side of each axis
    by ``int(max(3, 0.1 * (max - min)))`` voxels (inclusive indices), clipped to ``shape``.

    It matters: aligned middle shapes may reach past the segments' extent, and ITK clips them
    only to its image, so the image's extent is part of the answer (a few voxels at most).
    """
    if extent.is_empty:
        return extent
    return extent.pad([int(max(3, 0.1 * (n - 1))) for n in extent.shape]).clip(shape)


def fill_between_slices(masks, axis: int | None = None):
    """Fill between slices of several segments at once (Slicer's Fill between slices).

    ``masks`` is a sequence of :class:`~gpuseg.mask.Mask` on one grid (the visible segments in
    order). They are merged into one label volume over :func:`slicer_extent` (label n = the
    n-th mask; where masks overlap the later one wins, as in Slicer's merged labelmap),
    interpolated with :func:`interpolate_labels`, and split back. Returns one new Mask per input: the
    interpolated voxels of its label plus all of its own voxels (an overlapped segment never
    loses voxels; Slicer's merged labelmap would drop them).
    """
    from ..mask import Mask
    masks = list(masks)
    if not masks:
        raise InvalidInputError("fill between slices needs at least one segment")
    g = masks[0].geometry
    for m in masks[1:]:
        g.check_same_grid(m.geometry, "fill between slices segments")
    ext = Extent.empty()
    for m in masks:
        if m.nbytes:
            ext = ext.union(m.extent())
    ext = slicer_extent(ext, g.shape)
    if ext.is_empty:
        return [m.copy() for m in masks]
    dense = [m.to_numpy(ext) for m in masks]
    lab = np.zeros(dense[0].shape, np.uint16 if len(masks) > 255 else np.uint8)
    for n, d in enumerate(dense, start=1):
        lab[d] = n
    res = interpolate_labels(lab, axis)
    out = []
    for n, (m, d) in enumerate(zip(masks, dense), start=1):
        # a mask over the segments' union box only (the rest of the grid stays empty)
        out.append(Mask.from_numpy((res == n) | d, g, offset=(ext.k0, ext.j0, ext.i0), backend=m.backend))
    return out
