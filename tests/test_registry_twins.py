"""Twins the CPU does not reach through an op: the device form of a procedure, run on the CPU
backend (where every kernel launch is its numba twin), must give what the CPU form gives."""

from __future__ import annotations

import numpy as np
import pytest

from gpuseg import Image, ImageGeometry, Mask
from gpuseg.backends import get_backend
from gpuseg.kernels.grow import GROW_INIT, GROW_PROPAGATE
from gpuseg.ops.grow import GrowCut


@pytest.mark.parametrize("dtype,lam", [(np.int16, 0.0), (np.float32, 1.5)])
def test_grow_relaxation_twins_equal_dijkstra(rng, dtype, lam):
    """grow_push's serial twin, iterated by the device loop, reaches the Dijkstra's keys."""
    cpu = get_backend("cpu")
    shape = (6, 9, 45)
    a = (rng.random(shape) * 400 - 100).astype(dtype)
    g = ImageGeometry(shape, spacing=(0.8, 0.9, 1.7))
    seeds = []
    for _ in range(3):
        s = np.zeros(shape, bool)
        s[tuple(int(rng.integers(0, x)) for x in shape)] = True
        seeds.append(s)
    editable = rng.random(shape) < 0.9
    img = Image.from_numpy(a, g, backend=cpu)
    gc = GrowCut(img, [Mask.from_numpy(s, g, backend=cpu) for s in seeds], seed_locality=lam,
                 mask=Mask.from_numpy(editable, g, backend=cpu), region=g.extent)
    want = gc.keys.copy()  # the CPU form: Dijkstra
    r = gc.region
    assert gc.keys.dtype == np.uint32
    labels = cpu.asarray(gc.seed_labels().ravel())
    keys = cpu.empty((int(np.prod(r.shape)),), gc.key_dtype)
    m = gc.mask
    cpu.run(GROW_INIT, keys, labels, keys.size, m, True, r.k0, r.j0, r.i0, r.shape[1], r.shape[2])
    start = np.flatnonzero(gc.seed_labels().ravel()).astype(np.int64)
    passes = GROW_PROPAGATE.device(cpu, keys, labels, img.data, (r.k0, r.j0, r.i0, *r.shape), cpu.asarray(gc.lam),
                                   gc.scale, start, gc.nlabels, gc.max_cost + 1, img.dtype)
    assert passes > 1
    np.testing.assert_array_equal(keys, want)
