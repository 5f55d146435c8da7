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

import numpy as np
from numba import njit
from scipy import ndimage

from ..errors import InvalidInputError

__all__ = ["interpolate_labels", "fill_between_slices"]

_CROSS = ndimage.generate_binary_structure(2, 1)


def _tdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class _Slice:
    """A 2D label slice in ITK index order (d0, d1) with its absolute origin."""

    __slots__ = ("arr", "org")

    def __init__(self, arr, org):
        self.arr = arr
        self.org = np.asarray(org, np.int64)


def _centroid(s: _Slice, ids) -> np.ndarray:
    m = np.isin(s.arr, ids) & (s.arr != 0)
    idx = np.nonzero(m)
    n = len(idx[0])
    return np.array([_tdiv(int((idx[d] + s.org[d]).sum()), n) for d in range(2)], np.int64)


@njit(cache=True, nogil=True)
def _intersection(pts, jmap, jorg0, jorg1, nids, t0, t1):
    """ITK's Intersection: overlap count of the i region's pixels ``pts`` (absolute) moved by t
    with each j region; 0 unless every j region is met."""
    counts = np.zeros(nids + 1, np.int64)
    n0, n1 = jmap.shape
    for q in range(pts.shape[0]):
        a = pts[q, 0] + t0 - jorg0
        b = pts[q, 1] + t1 - jorg1
        if 0 <= a < n0 and 0 <= b < n1:
            counts[jmap[a, b]] += 1
    total = 0
    for x in range(1, nids + 1):
        if counts[x] == 0:
            return 0
        total += counts[x]
    return total


def _align(ic: _Slice, iid, jc: _Slice, jids, heuristic=True) -> np.ndarray:
    pts = (np.argwhere(ic.arr == iid) + ic.org).astype(np.int64)
    jmap = np.zeros(jc.arr.shape, np.int64)
    for x, v in enumerate(jids):
        jmap[jc.arr == v] = x + 1
    ind0 = _centroid(jc, list(jids)) - _centroid(ic, [iid])
    s_lo = jc.org - ic.org - np.asarray(ic.arr.shape) + 1
    s_size = np.asarray(ic.arr.shape) + np.asarray(jc.arr.shape) - 1
    npix = int(s_size.prod())
    searched = set()
    queue = [(0, 0), tuple(int(v) for v in ind0)]
    searched.update(queue)
    min_iter = min(8, npix)
    max_iter = max(216, int(np.sqrt(npix)))
    max_score, best, it, q = 0, None, 0, 0
    while q < len(queue):
        ind = queue[q]
        q += 1
        score = _intersection(pts, jmap, int(jc.org[0]), int(jc.org[1]), len(jids), ind[0], ind[1])
        if score > max_score:
            max_score, best = score, ind
        if not heuristic or max_score == 0 or it <= min_iter or (score > max_score * 0.9 and it <= max_iter):
            for d in range(2):
                for step in (-1, 1):
                    n = list(ind)
                    n[d] += step
                    n = tuple(n)
                    if all(s_lo[e] <= n[e] < s_lo[e] + s_size[e] for e in range(2)) and n not in searched:
                        queue.append(n)
                        searched.add(n)
                        it += 1
    return np.array(best if best is not None else (0, 0), np.int64)


def _median_distances(inter, im, jm):
    if not inter.any():
        return inter
    d = ndimage.distance_transform_edt(~inter).astype(np.float32)
    dist = (np.float32(10) * d).astype(np.int64)  # C float -> integer conversion truncates
    ixj, jxi = im & ~jm, jm & ~im
    if not (ixj.any() or jxi.any()):
        return inter
    n = int(max(dist[ixj].max(initial=-1), dist[jxi].max(initial=-1))) + 1
    ih = np.bincount(dist[ixj], minlength=n)
    jh = np.bincount(dist[jxi], minlength=n)
    isum, jsum = np.cumsum(ih), np.cumsum(jh)
    it, jt = isum[-1], jsum[-1]
    diff = np.abs(np.abs(it - isum + jsum) - np.abs(jt - jsum + isum))
    best = int(np.argmin(diff))  # first minimum, as ITK's strict '<'
    return (d <= np.float32(best) / np.float32(10)) & (im | jm)


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
    def __init__(self, out, label, axis, use_dt, heuristic=True):
        self.out, self.label, self.axis, self.use_dt = out, label, axis, use_dt
        self.heuristic = heuristic
        self.plane_shape = np.delete(np.asarray(out.shape), axis)

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
        im0, jm0 = ic.arr == iid, jc.arr == jid
        lo = np.minimum(iorg, jorg)
        hi = np.maximum(iorg + im0.shape, jorg + np.asarray(jm0.shape))
        shape = tuple(int(v) for v in hi - lo)
        im = np.zeros(shape, bool)
        jm = np.zeros(shape, bool)
        a, b = iorg - lo, jorg - lo
        im[a[0]:a[0] + im0.shape[0], a[1]:a[1] + im0.shape[1]] = im0
        jm[b[0]:b[0] + jm0.shape[0], b[1]:b[1] + jm0.shape[1]] = jm0
        inter = im & jm
        med = _median_distances(inter, im, jm) if self.use_dt else _median_dilations(inter, im, jm)
        # write the middle slice, clipped to the volume
        plane = np.moveaxis(self.out, self.axis, 0)[mid]
        c0 = np.maximum(lo, 0)
        c1 = np.minimum(hi, self.plane_shape)
        if np.all(c1 > c0):
            sub = med[c0[0] - lo[0]:c1[0] - lo[0], c0[1] - lo[1]:c1[1] - lo[1]]
            tgt = plane[c0[0]:c1[0], c0[1]:c1[1]]
            tgt[sub & (tgt < self.label)] = self.label
        if abs(i - j) > 2:
            mc = _Slice(med.astype(np.int32), lo)
            if abs(i - mid) > 1:
                self.one_to_one(i, mid, ic, iid, mc, 1, it_, True)
            if abs(j - mid) > 1:
                self.one_to_one(j, mid, jc, jid, mc, 1, jt_, True)

    def one_to_n(self, i, j, ic: _Slice, iid, jc: _Slice, jids, t):
        mask = ic.arr == iid
        nb = len(jids)
        blobs = [np.zeros(mask.shape, bool) for _ in range(nb)]
        belongs = np.zeros(mask.shape, np.int64)
        # j value at each i pixel under the translation
        jv = np.zeros(mask.shape, ic.arr.dtype)
        lo = np.maximum(ic.org, jc.org - t)
        hi = np.minimum(ic.org + mask.shape, jc.org + np.asarray(jc.arr.shape) - t)
        if np.all(hi > lo):
            jv[lo[0] - ic.org[0]:hi[0] - ic.org[0], lo[1] - ic.org[1]:hi[1] - ic.org[1]] = \
                jc.arr[lo[0] + t[0] - jc.org[0]:hi[0] + t[0] - jc.org[0], lo[1] + t[1] - jc.org[1]:hi[1] + t[1] - jc.org[1]]
        for x, v in enumerate(jids):
            sel = mask & (jv == v)
            blobs[x][sel] = True
            belongs[sel] = x + 1
        while True:
            blobs = [_dilate1(bl, mask) for bl in blobs]
            free = mask & (belongs == 0)
            first = np.zeros(mask.shape, np.int64)
            for x in range(nb - 1, -1, -1):
                first[blobs[x]] = x + 1
            newly = free & (first > 0)
            belongs[newly] = first[newly]
            own = mask & (belongs > 0)
            for x in range(nb):
                blobs[x] &= ~(own & (belongs != x + 1))
            if not (free & (first == 0)).any():
                break
        for x in range(nb):
            conn = _Slice(np.where(belongs == x + 1, iid, 0).astype(ic.arr.dtype), ic.org)
            self.one_to_one(i, j, conn, iid, jc, jids[x], t)

    def extrapolate(self, i, j, ic: _Slice, rid):
        c = _centroid(ic, [rid])
        ph = np.zeros((3, 3), ic.arr.dtype)
        ph[1, 1] = rid
        t = self._al(ic, rid, _Slice(ph, c - 1), [rid])
        self.one_to_one(i, j, ic, rid, _Slice(ph, c - 1 - t), rid, np.zeros(2, np.int64))

    def between(self, i, j, ic: _Slice, jc: _Slice):
        a, b = ic.arr.ravel(), jc.arr.ravel()
        nz = (a != 0) | (b != 0)
        unclean = set(zip(a[nz].tolist(), b[nz].tolist()))
        both = (a != 0) & (b != 0)
        unwanted = {(0, v) for v in b[both].tolist()} | {(v, 0) for v in a[both].tolist()}
        pairs = sorted(unclean - unwanted)
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


def _annotated(x: np.ndarray):
    """ITK's slice detection on a label volume ``x`` in ITK index order: {axis: {label: set}}."""
    nd = x.ndim
    res = {a: {} for a in range(nd)}
    c_true = np.zeros(x.shape, np.int8)
    c_adj = np.zeros(x.shape, np.int8)
    iso_axis = np.zeros(x.shape, np.int8)
    for a in range(nd):
        pad = [(0, 0)] * nd
        pad[a] = (1, 1)
        p = np.pad(x, pad)
        prev = np.take(p, np.arange(0, x.shape[a]), axis=a)
        nxt = np.take(p, np.arange(2, x.shape[a] + 2), axis=a)
        iso = (prev == 0) & (nxt == 0)
        c_true += iso
        iso_axis[iso] = a
        c_adj += (prev == x) & (nxt == x) & ~iso
    sel = (x != 0) & (c_true == 1) & (c_adj == nd - 1)
    idx = np.nonzero(sel)
    vals = x[idx]
    axs = iso_axis[idx]
    for a in range(nd):
        m = axs == a
        for v, s in set(zip(vals[m].tolist(), idx[a][m].tolist())):
            res[a].setdefault(v, set()).add(s)
    return res


def _components(plane: np.ndarray) -> np.ndarray:
    """4-connected components of a 2D boolean slice in ITK order, numbered in ITK's raster order
    (d0 fastest)."""
    lab, _ = ndimage.label(plane.T, _CROSS)
    return lab.T.astype(np.int32)


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
    x = np.ascontiguousarray(lab.astype(np.int32).transpose())  # ITK index order (i, j, k)
    out = np.zeros_like(x)
    itk_axis = None if axis is None else 2 - axis
    ann = _annotated(x)
    if ann and np.any(x):
        axes = [itk_axis] if itk_axis is not None else [a for a in range(3) if any(len(s) > 1 for s in ann[a].values())]
        for a in axes:
            for label, slices in ann[a].items():
                nzi = np.nonzero(x == label)
                lo = np.array([v.min() for v in nzi])
                hi = np.array([v.max() for v in nzi]) + 1
                keep = [d for d in range(3) if d != a]
                org = lo[keep]
                s = sorted(slices)
                run = _Run(out, label, a, use_distance_transform, heuristic_alignment)
                conns = {}

                def conn(k):
                    if k not in conns:
                        pl = np.moveaxis(x, a, 0)[k][lo[keep[0]]:hi[keep[0]], lo[keep[1]]:hi[keep[1]]]
                        conns[k] = _Slice(_components(pl == label), org)
                    return conns[k]
                for p, q in zip(s[:-1], s[1:]):
                    if p + 1 < q:
                        run.between(p, q, conn(p), conn(q))
    out[x != 0] = x[x != 0]
    return out.transpose().astype(lab.dtype)


def fill_between_slices(masks, axis: int | None = None):
    """Fill between slices of several segments at once (Slicer's Fill between slices).

    ``masks`` is a sequence of :class:`~gpuseg.mask.Mask` on one grid (the visible segments in
    order). They are merged into one label volume over their union box (label n = the n-th
    mask; where masks overlap the later one wins, as in Slicer's merged labelmap), interpolated
    with :func:`interpolate_labels`, and split back. Returns one new Mask per input: the
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
    ext = None
    for m in masks:
        if m.nbytes and not m.box_extent.is_empty:
            ext = m.box_extent if ext is None else ext.union(m.box_extent)
    if ext is None:
        return [m.copy() for m in masks]
    dense = [m.to_numpy(ext) for m in masks]
    lab = np.zeros(dense[0].shape, np.uint16 if len(masks) > 255 else np.uint8)
    for n, d in enumerate(dense, start=1):
        lab[d] = n
    res = interpolate_labels(lab, axis)
    out = []
    for n, (m, d) in enumerate(zip(masks, dense), start=1):
        full = np.zeros(g.shape, bool)
        full[ext.k0:ext.k1, ext.j0:ext.j1, ext.i0:ext.i1] = (res == n) | d
        out.append(Mask.from_numpy(full, g, backend=m.backend))
    return out
