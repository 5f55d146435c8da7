"""Grow from seeds: equal to a plain heapq Dijkstra of the same definition, bit-exact on every
backend, and incremental updates equal to runs from scratch."""

import heapq
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gpuseg
from gpuseg import Extent, Image, ImageGeometry, Mask
from gpuseg.errors import InvalidInputError
from gpuseg.ops.grow import GrowCut, grow_region

from .parity import parity

OFFSETS = [(dk, dj, di) for dk in (-1, 0, 1) for dj in (-1, 0, 1) for di in (-1, 0, 1)]


def reference(a, seeds, spacing, lam=0.0, editable=None):
    """Label per voxel (0 = none) by the definition: lexicographic min of (cost, seed index)
    over 26-connected paths; seeds keep their (later-wins) label; masked voxels are walls."""
    shape = a.shape
    seed_lab = np.zeros(shape, np.int64)
    for n, s in enumerate(seeds, start=1):
        seed_lab[s] = n
    exact = lam == 0 and a.dtype.kind in "iu"
    scale = 1 if exact else 16
    si, sj, sk = spacing
    free = np.ones(shape, bool) if editable is None else editable
    best = {}
    heap = []
    for idx in zip(*np.nonzero((seed_lab > 0) & free)):
        best[idx] = (0, int(seed_lab[idx]))
        heap.append((0, int(seed_lab[idx]), idx))
    heapq.heapify(heap)
    while heap:
        d, l, p = heapq.heappop(heap)
        if best.get(p) != (d, l):
            continue
        for o, (dk, dj, di) in enumerate(OFFSETS):
            if (dk, dj, di) == (0, 0, 0):
                continue
            q = (p[0] + dk, p[1] + dj, p[2] + di)
            if not all(0 <= q[x] < shape[x] for x in range(3)) or not free[q] or seed_lab[q]:
                continue
            lamc = int(np.rint(lam * math.sqrt((di * si) ** 2 + (dj * sj) ** 2 + (dk * sk) ** 2) * 16)) if lam else 0
            c = int(np.rint(abs(float(a[p]) - float(a[q])) * scale)) + lamc
            cand = (d + c, l)
            if q not in best or cand < best[q]:
                best[q] = cand
                heapq.heappush(heap, (d + c, l, q))
    out = np.zeros(shape, np.int64)
    for q, (d, l) in best.items():
        out[q] = l
    return out


def seeds_for(rng, shape, n):
    seeds = []
    for _ in range(n):
        s = np.zeros(shape, bool)
        for _ in range(2):
            s[tuple(int(rng.integers(0, x)) for x in shape)] = True
        seeds.append(s)
    return seeds


@pytest.mark.parametrize("dtype,lam", [(np.int16, 0.0), (np.int16, 2.5), (np.float32, 0.0), (np.uint16, 0.0)])
def test_matches_reference_dijkstra(backend, rng, dtype, lam):
    shape = (5, 7, 40)
    spacing = (0.8, 0.9, 2.0)
    a = (rng.integers(0, 60, shape) if dtype != np.float32 else rng.normal(0, 20, shape)).astype(dtype)
    a[:, :, 18:21] = 500 if dtype != np.float32 else 500.5  # a wall that costs a lot to cross
    g = ImageGeometry(shape, spacing=spacing)
    seeds = seeds_for(rng, shape, 3)
    img = Image.from_numpy(a, g, backend=backend)
    region = g.extent  # the whole grid, so the reference needs no region logic
    got = gpuseg.grow_from_seeds(img, [Mask.from_numpy(s, g, backend=backend) for s in seeds], seed_locality=lam,
                                 region=region)
    want = reference(a, seeds, spacing, lam)
    for n, m in enumerate(got, start=1):
        np.testing.assert_array_equal(m.to_numpy(), want == n, err_msg=f"label {n}")


def test_editable_mask_and_ties(backend, rng):
    shape = (4, 6, 33)
    g = ImageGeometry(shape)
    a = np.zeros(shape, np.int16)  # a flat image: every distance ties at 0 -> the lower index wins
    seeds = [np.zeros(shape, bool), np.zeros(shape, bool)]
    seeds[0][0, 0, 0] = True
    seeds[1][3, 5, 32] = True
    editable = np.ones(shape, bool)
    editable[:, :, 16] = False  # a wall of non-editable voxels
    img = Image.from_numpy(a, g, backend=backend)
    got = gpuseg.grow_from_seeds(img, [Mask.from_numpy(s, g, backend=backend) for s in seeds],
                                 mask=Mask.from_numpy(editable, g, backend=backend), region=g.extent)
    want = reference(a, seeds, g.spacing, 0.0, editable)
    np.testing.assert_array_equal(got[0].to_numpy(), want == 1)
    np.testing.assert_array_equal(got[1].to_numpy(), want == 2)
    assert not got[0].to_numpy()[:, :, 16].any() and not got[1].to_numpy()[:, :, 16].any()
    assert got[0].to_numpy()[:, :, :16].all() and got[1].to_numpy()[:, :, 17:].all()


def _two_seeds(rng):
    shape = (10, 20, 70)
    a = rng.integers(-100, 100, shape).astype(np.int16)
    s1, s2 = np.zeros(shape, bool), np.zeros(shape, bool)
    s1[4:6, 5:7, 20:24] = True
    s2[4:6, 12:14, 40:44] = True
    return a, ImageGeometry(shape), s1, s2


def _two_seeds_reference(rng):
    a, g, s1, s2 = _two_seeds(rng)
    region = Extent(1, 9, 2, 17, 17, 47)
    want = np.zeros(g.shape, np.int64)
    want[region.slices] = reference(a[region.slices], [s1[region.slices], s2[region.slices]], g.spacing)
    return {"dense": [want == 1, want == 2]}


@parity(reference=_two_seeds_reference)
def test_cross_backend_identical_and_region(backend, rng):
    a, g, s1, s2 = _two_seeds(rng)
    img = Image.from_numpy(a, g, backend=backend)
    gc = GrowCut(img, [Mask.from_numpy(s1, g, backend=backend), Mask.from_numpy(s2, g, backend=backend)])
    assert gc.region == Extent(1, 9, 2, 17, 17, 47)  # seeds' extent + max(3 voxels, 10%)
    res = gc.result()
    return {"dense": [m.to_numpy() for m in res], "masks": res, "distances": gc.distances()}


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_incremental_update_equals_scratch(seed):
    rng = np.random.default_rng(seed)
    shape = (6, 9, 35)
    a = rng.integers(0, 300, shape).astype(np.int16)
    g = ImageGeometry(shape, spacing=(0.7, 0.7, 1.5))
    seeds = seeds_for(rng, shape, 2)
    img = Image.from_numpy(a, g, backend="cpu")
    gc = GrowCut(img, [Mask.from_numpy(s, g, backend="cpu") for s in seeds], region=g.extent)
    more = [s.copy() for s in seeds]
    k, j, i = (int(rng.integers(0, x)) for x in shape)
    if not (more[0][k, j, i] or more[1][k, j, i]):
        more[1][k, j, i] = True  # a new stroke voxel
    updated = gc.update([Mask.from_numpy(s, g, backend="cpu") for s in more])
    scratch = gpuseg.grow_from_seeds(img, [Mask.from_numpy(s, g, backend="cpu") for s in more], region=g.extent)
    for x, y in zip(updated, scratch):
        assert x.equals(y)


def _incremental_case():
    rng = np.random.default_rng(7)
    shape = (5, 8, 40)
    a = rng.integers(0, 300, shape).astype(np.int16)
    seeds = seeds_for(rng, shape, 3)
    more = [x.copy() for x in seeds]
    more[2][2, 4, 30] = True
    return a, ImageGeometry(shape), seeds, more


def _incremental_reference():
    a, g, seeds, more = _incremental_case()
    want = reference(a, more, g.spacing)
    return {"dense": [want == n for n in range(1, 4)]}


@parity(reference=_incremental_reference)
def test_incremental_on_every_backend(backend):
    a, g, seeds, more = _incremental_case()
    img = Image.from_numpy(a, g, backend=backend)
    gc = GrowCut(img, [Mask.from_numpy(s, g, backend=backend) for s in seeds], region=g.extent)
    up = gc.update([Mask.from_numpy(s, g, backend=backend) for s in more])
    return {"dense": [m.to_numpy() for m in up], "masks": up}


# Slicer's own log lines: (source extent; seeds' effective extent -> expanded extent), all
# inclusive (i0, i1, j0, j1, k0, k1), with the extent growth ratio (issue 13).
SLICER_LOG = [
    (0.1, (0, 124, 0, 121, 0, 92), (21, 112, 13, 107, 11, 84), (12, 121, 4, 116, 4, 91)),
    (0.1, (0, 319, 0, 279, 0, 71), (68, 217, 91, 203, 4, 63), (54, 231, 80, 214, 0, 68)),
    (0.5, (0, 174, 0, 174, 0, 142), (34, 148, 56, 132, 62, 133), (0, 174, 18, 170, 27, 142)),
]


@pytest.mark.parametrize("ratio,source,seeds,expanded", SLICER_LOG)
def test_region_is_slicers_on_its_log_examples(ratio, source, seeds, expanded):
    src = Extent.from_slicer(source)
    assert (src.k0, src.j0, src.i0) == (0, 0, 0)
    g = ImageGeometry(src.shape)
    ext = Extent.from_slicer(seeds)
    a, b = np.zeros(g.shape, bool), np.zeros(g.shape, bool)  # two segments: the union's extent counts
    a[ext.k0, ext.j0, ext.i0] = True
    a[ext.k1 - 1, ext.j0 + 1, ext.i0 + 2] = True
    b[ext.k0 + 3, ext.j1 - 1, ext.i1 - 1] = True
    masks = [Mask.from_numpy(x, g, backend="cpu", crop=True) for x in (a, b)]
    assert grow_region(masks, g.shape, ratio).to_slicer() == expanded
    if ratio == 0.1:
        assert grow_region(masks, g.shape).to_slicer() == expanded  # 0.1 is the default


def test_region_margin_truncates_and_keeps_three_voxels():
    g = ImageGeometry((40, 60, 200))
    s = np.zeros(g.shape, bool)
    s[10, 20, 50] = True  # one voxel: extent 0 long -> margin 3 on each axis
    s[10, 20, 89] = True  # i: last - first = 39 -> int(3.9) = 3; the old ceil(0.1 * 40) rule gave 4
    s[10, 20, 150] = True  # i: 100 -> 10
    m = Mask.from_numpy(s, g, backend="cpu", crop=True)
    assert grow_region([m], g.shape) == Extent(7, 14, 17, 24, 40, 161)
    s[10, 20, 150] = False
    m = Mask.from_numpy(s, g, backend="cpu", crop=True)
    assert grow_region([m], g.shape) == Extent(7, 14, 17, 24, 47, 93)
    assert grow_region([m], g.shape, 0.0) == Extent(7, 14, 17, 24, 47, 93)
    assert grow_region([m], g.shape, 1.0) == Extent(7, 14, 17, 24, 11, 129)
    with pytest.raises(InvalidInputError, match="growth ratio"):
        grow_region([m], g.shape, -0.1)


def test_grow_uses_the_ratio(rng):
    g = ImageGeometry((12, 14, 60))
    a = rng.integers(0, 50, g.shape).astype(np.int16)
    s1, s2 = np.zeros(g.shape, bool), np.zeros(g.shape, bool)
    s1[5, 6, 20] = s2[6, 7, 40] = True
    img = Image.from_numpy(a, g, backend="cpu")
    masks = [Mask.from_numpy(x, g, backend="cpu") for x in (s1, s2)]
    gc = GrowCut(img, masks, extent_growth_ratio=0.5)
    assert gc.region == Extent(2, 10, 3, 11, 10, 51)  # i: 20 -> int(0.5 * 20) = 10 each side
    got = gc.result()
    want = reference(a[gc.region.slices], [s1[gc.region.slices], s2[gc.region.slices]], g.spacing)
    for n, m in enumerate(got, start=1):
        full = np.zeros(g.shape, bool)
        full[gc.region.slices] = want == n
        np.testing.assert_array_equal(m.to_numpy(), full)


def test_grow_errors(backend):
    g = ImageGeometry((3, 4, 5))
    img = Image.from_numpy(np.zeros(g.shape, np.int16), g, backend=backend)
    s = Mask.full(g, Extent(0, 1, 0, 1, 0, 1), backend=backend)
    with pytest.raises(InvalidInputError, match="at least two"):
        gpuseg.grow_from_seeds(img, [s])
    with pytest.raises(InvalidInputError, match="empty"):
        gpuseg.grow_from_seeds(img, [Mask.empty(g, backend=backend), Mask.empty(g, backend=backend)])
    with pytest.raises(InvalidInputError, match="locality"):
        gpuseg.grow_from_seeds(img, [s, s], seed_locality=-1)
    nan = np.zeros(g.shape, np.float32)
    nan[1, 1, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        gpuseg.grow_from_seeds(Image.from_numpy(nan, g, backend=backend), [s, s])
    with pytest.raises(gpuseg.GeometryMismatchError):
        gpuseg.grow_from_seeds(img, [s, Mask.empty(ImageGeometry((3, 4, 6)), backend=backend)])


def _stroke(rng, shape):
    """A short random line of voxels (a brush stroke) along one axis."""
    axis = int(rng.integers(0, 3))
    p = [int(rng.integers(0, x)) for x in shape]
    n = int(rng.integers(1, 6))
    out = np.zeros(shape, bool)
    for t in range(n):
        q = list(p)
        q[axis] = min(shape[axis] - 1, p[axis] + t)
        out[tuple(q)] = True
    return out


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), levels=st.sampled_from([2, 4, 300]), lam=st.sampled_from([0.0, 1.5]),
       dtype=st.sampled_from([np.int16, np.float32]))
def test_incremental_stroke_sequences_equal_scratch(seed, levels, lam, dtype):
    """Several strokes in a row, each of a random segment and anywhere (in its own domain, in
    another's, over nothing yet); few intensity levels make many zero-cost steps and ties.
    (int16 takes the CPU's padded Dijkstra, float32 the in-place one.)"""
    rng = np.random.default_rng(seed)
    shape = (5, 8, 30)
    a = rng.integers(0, levels, shape).astype(dtype)
    g = ImageGeometry(shape, spacing=(0.7, 0.9, 1.6))
    seeds = seeds_for(rng, shape, 3)
    img = Image.from_numpy(a, g, backend="cpu")
    gc = GrowCut(img, [Mask.from_numpy(s, g, backend="cpu") for s in seeds], seed_locality=lam, region=g.extent)
    for _ in range(4):
        n = int(rng.integers(0, 3))
        seeds[n] = seeds[n] | (_stroke(rng, shape) & ~np.any(seeds, axis=0))  # strokes add, never relabel
        masks = [Mask.from_numpy(s, g, backend="cpu") for s in seeds]
        updated = gc.update(masks)
        want = reference(a, seeds, g.spacing, lam)
        for k, m in enumerate(updated, start=1):
            np.testing.assert_array_equal(m.to_numpy(), want == k, err_msg=f"label {k}")
        scratch = GrowCut(img, masks, seed_locality=lam, region=g.extent)
        np.testing.assert_array_equal(gc.distances(), scratch.distances())


@pytest.mark.parametrize("dtype,step", [(np.int32, 200_000), (np.float32, 12_000.0)])
def test_keys_are_32_bit_and_go_to_64_bit_when_distances_outgrow_them(backend, dtype, step):
    """A CT-like grow keeps 4-byte keys; a grow whose distances pass 2**24 - 1 (here steps of
    200,000 over 200 voxels; float costs are 16 times the step) starts again with 8-byte keys
    and still equals the definition. (The CPU runs the padded Dijkstra on integer images, the
    in-place one on float images.)"""
    from gpuseg.kernels.constants import D32_LIMIT

    shape = (2, 3, 200)
    g = ImageGeometry(shape)
    a = np.zeros(shape, dtype)
    a[:, :, 1::2] = step  # every step along i costs 200,000
    seeds = [np.zeros(shape, bool), np.zeros(shape, bool)]
    seeds[0][0, 0, 0] = True
    seeds[1][1, 2, 0] = True
    img = Image.from_numpy(a, g, backend=backend)
    small = GrowCut(img, [Mask.from_numpy(s, g, backend=backend) for s in seeds], region=Extent(0, 2, 0, 3, 0, 40))
    assert small.keys.dtype == np.uint32 and small.distances().max() * small.scale < D32_LIMIT
    gc = GrowCut(img, [Mask.from_numpy(s, g, backend=backend) for s in seeds], region=g.extent)
    assert gc.keys.dtype == np.uint64 and gc.distances().max() * gc.scale > D32_LIMIT  # in fixed point
    want = reference(a, seeds, g.spacing)
    for n, m in enumerate(gc.result(), start=1):
        np.testing.assert_array_equal(m.to_numpy(), want == n, err_msg=f"label {n}")
    wide = np.zeros(shape, dtype)
    wide[0, 0, 5] = 1 << 20  # a step cost this wide starts with 64-bit keys
    gw = GrowCut(Image.from_numpy(wide, g, backend=backend), [Mask.from_numpy(s, g, backend=backend) for s in seeds],
                 region=g.extent)
    assert gw.keys.dtype == np.uint64
    np.testing.assert_array_equal(gw.result()[0].to_numpy(), reference(wide, seeds, g.spacing) == 1)


# --- the CPU Dijkstra on several threads (kernels/grow_cpu.py, docs/grow.md) -------------------------
@pytest.fixture
def threaded(monkeypatch):
    """The CPU grow on 3 threads over slabs of one plane, so that small grids cross slabs often."""
    from gpuseg.kernels import grow_cpu

    monkeypatch.setattr(grow_cpu, "SLAB", 1)
    monkeypatch.setattr(grow_cpu, "cpu_threads", lambda: 3)
    calls = []
    slabs = grow_cpu.dijkstra_slabs
    monkeypatch.setattr(grow_cpu, "dijkstra_slabs", lambda *a, **k: calls.append(a[-1]) or slabs(*a, **k))
    return calls


def _padded_case(rng, shape, levels, lam_max, nlabels, blocked):
    from gpuseg.kernels import grow_cpu as G

    rnk, rnj, rni = shape
    n = rnk * rnj * rni
    img = rng.integers(0, levels, shape).astype(np.int16)
    lam = rng.integers(0, lam_max + 1, 27).astype(np.int64)
    labels = np.zeros(n, np.uint8)
    for lab in range(1, nlabels + 1):
        labels[rng.integers(0, n, int(rng.integers(1, 4)))] = lab
    keys = np.full(n, G.KEY32_INF, np.uint32)
    keys[rng.random(n) < blocked] = G.KEY32_BLOCKED
    keys[labels > 0] = labels[labels > 0]
    key32 = np.empty((rnk + 2) * (rnj + 2) * (rni + 2), np.uint32)
    G.pad_keys(keys, rnk, rnj, rni, key32)
    vals = np.empty(key32.size, np.int16)
    G.padded_values(img, 0, 0, 0, rnk, rnj, rni, vals)
    k, t = np.divmod(np.flatnonzero(labels), rnj * rni)
    j, i = np.divmod(t, rni)
    start = ((k + 1) * (rnj + 2) + j + 1) * (rni + 2) + i + 1
    return key32, labels, vals, lam, levels + lam_max + 1, start


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), shape=st.tuples(st.integers(1, 13), st.integers(1, 7), st.integers(1, 12)),
       levels=st.sampled_from([1, 3, 200]), lam_max=st.sampled_from([0, 2]), nlabels=st.integers(1, 3),
       blocked=st.sampled_from([0.0, 0.15]), threads=st.integers(2, 4), slab=st.integers(1, 3),
       window=st.sampled_from([1, 4, 10_000]))
def test_slab_dijkstra_gives_the_serial_keys(seed, shape, levels, lam_max, nlabels, blocked, threads, slab, window):
    """Every thread count, slab thickness and window reaches the one-thread Dijkstra's keys
    (which equal the definition: the tests above), bit for bit: with walls, zero-cost steps
    (few levels) and ties, on odd grids."""
    from gpuseg.kernels import grow_cpu as G

    rng = np.random.default_rng(seed)
    key32, labels, vals, lam, nbuckets, start = _padded_case(rng, shape, levels, lam_max, nlabels, blocked)
    want = key32.copy()
    assert G.dijkstra_slabs(want, labels, vals, *shape, lam, 1, nlabels, nbuckets, start, 1)
    got = key32.copy()
    assert G.dijkstra_slabs(got, labels, vals, *shape, lam, 1, nlabels, nbuckets, start, threads, slab, window)
    np.testing.assert_array_equal(got, want)


def test_slab_dijkstra_without_seeds_changes_nothing(rng):
    from gpuseg.kernels import grow_cpu as G

    key32, labels, vals, lam, nbuckets, start = _padded_case(rng, (4, 3, 5), 10, 0, 1, 0.1)
    before = key32.copy()
    assert G.dijkstra_slabs(key32, labels, vals, 4, 3, 5, lam, 1, 1, nbuckets, start[:0], 2, 1)
    np.testing.assert_array_equal(key32, before)


@pytest.mark.parametrize("lam", [0.0, 2.5])
def test_threaded_grow_matches_reference(threaded, rng, lam):
    shape = (9, 6, 23)
    spacing = (0.8, 0.9, 2.0)
    a = rng.integers(0, 60, shape).astype(np.int16)
    a[3:5] = 500  # a wall across slabs that costs a lot to cross
    g = ImageGeometry(shape, spacing=spacing)
    seeds = seeds_for(rng, shape, 3)
    img = Image.from_numpy(a, g, backend="cpu")
    got = gpuseg.grow_from_seeds(img, [Mask.from_numpy(s, g, backend="cpu") for s in seeds], seed_locality=lam,
                                 region=g.extent)
    assert threaded == [3]  # the threaded path ran, on 3 threads
    want = reference(a, seeds, spacing, lam)
    for n, m in enumerate(got, start=1):
        np.testing.assert_array_equal(m.to_numpy(), want == n, err_msg=f"label {n}")


def test_threaded_incremental_strokes_equal_reference(threaded):
    rng = np.random.default_rng(11)
    shape = (8, 7, 19)
    a = rng.integers(0, 4, shape).astype(np.int16)  # many zero-cost steps and ties
    g = ImageGeometry(shape, spacing=(0.7, 0.9, 1.6))
    seeds = seeds_for(rng, shape, 3)
    img = Image.from_numpy(a, g, backend="cpu")
    gc = GrowCut(img, [Mask.from_numpy(s, g, backend="cpu") for s in seeds], region=g.extent)
    for _ in range(4):
        n = int(rng.integers(0, 3))
        seeds[n] = seeds[n] | (_stroke(rng, shape) & ~np.any(seeds, axis=0))
        updated = gc.update([Mask.from_numpy(s, g, backend="cpu") for s in seeds])
        want = reference(a, seeds, g.spacing)
        for k, m in enumerate(updated, start=1):
            np.testing.assert_array_equal(m.to_numpy(), want == k, err_msg=f"label {k}")
    assert len(threaded) == 5


def test_threaded_grow_goes_to_64_bit_keys(threaded):
    """A distance past 2**24 - 1 found by one of the threads sends the grow to 64-bit keys."""
    shape = (4, 3, 120)
    g = ImageGeometry(shape)
    a = np.zeros(shape, np.int32)
    a[:, :, 1::2] = 200_000
    seeds = [np.zeros(shape, bool), np.zeros(shape, bool)]
    seeds[0][0, 0, 0] = True
    seeds[1][3, 2, 0] = True
    img = Image.from_numpy(a, g, backend="cpu")
    gc = GrowCut(img, [Mask.from_numpy(s, g, backend="cpu") for s in seeds], region=g.extent)
    assert threaded and gc.keys.dtype == np.uint64
    want = reference(a, seeds, g.spacing)
    for n, m in enumerate(gc.result(), start=1):
        np.testing.assert_array_equal(m.to_numpy(), want == n, err_msg=f"label {n}")
