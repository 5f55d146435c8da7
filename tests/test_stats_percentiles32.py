"""Exact median and percentiles of int32 and float32 images (two-pass device radix select)
against numpy.percentile, with NaN, signed zeros, ties and extreme values; every backend."""

from __future__ import annotations

import numpy as np
import pytest

import gpuseg
from gpuseg.ops.stats import segment_statistics

QS = (0.0, 5.0, 33.3, 95.0, 99.9, 100.0)


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
@pytest.mark.parametrize("seed", [0, 1])
def test_percentiles_equal_numpy(backend, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (7, 19, 45)
    a = rng.normal(0, 1e4, shape)
    a[0, 0, :40] = 3  # ties across the median's neighbourhood
    if dtype == np.float32:
        a[1, 1, :4] = np.nan
        a[2, 2, :3] = -0.0
        a[3, 3, 0], a[3, 3, 1] = 3.4e38, -3.4e38
    else:
        a[3, 3, 0], a[3, 3, 1] = 2**31 - 1, -2**31
    a = a.astype(dtype)
    m = rng.random(shape) < 0.6
    m[3, 3, :2] = True
    st = segment_statistics(gpuseg.Mask.from_numpy(m, backend=backend), gpuseg.Image.from_numpy(a, backend=backend),
                            percentiles=QS)
    v = a[m].astype(np.float64)
    v = v[~np.isnan(v)]
    assert st["median"] == np.percentile(v, 50)
    for q in QS:
        key = f"percentile_{int(q):02d}" if q.is_integer() else f"percentile_{q:g}"
        assert st[key] == np.percentile(v, q), q


def test_single_voxel_and_empty(backend):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7.5
    m = np.zeros(a.shape, bool)
    m[1, 2, 3] = True
    st = segment_statistics(gpuseg.Mask.from_numpy(m, backend=backend), gpuseg.Image.from_numpy(a, backend=backend))
    assert st["median"] == st["percentile_05"] == st["percentile_95"] == float(a[1, 2, 3])
    nan = np.full(a.shape, np.nan, np.float32)
    st = segment_statistics(gpuseg.Mask.from_numpy(m, backend=backend), gpuseg.Image.from_numpy(nan, backend=backend))
    assert st["median"] is None
