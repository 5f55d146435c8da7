"""Segment statistics against numpy on every backend, and bit-identical across backends."""

import numpy as np
import pytest

import gpuseg
from gpuseg import Image, ImageGeometry, Mask, Segmentation
from gpuseg.errors import GeometryMismatchError, InvalidInputError

from .conftest import shared_file
from .parity import parity


def numpy_stats(a, m, g):
    v = a[m].astype(np.float64)
    v = v[~np.isnan(v)]
    k, j, i = np.nonzero(m)
    c = g.ijk_to_world_points(np.array([i.mean(), j.mean(), k.mean()]))
    out = {"voxel_count": int(m.sum()), "centroid_lps": c, "min": v.min(), "max": v.max(), "mean": v.mean(),
           "stdev": v.std(ddof=1) if v.size > 1 else 0.0}
    if a.dtype in (np.int16, np.uint16, np.int32, np.float32):  # every type is exact now
        out.update({"median": np.median(v), "percentile_05": np.percentile(v, 5), "percentile_95": np.percentile(v, 95)})
    return out


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32, np.float32])
@pytest.mark.parametrize("shape", [(3, 4, 33), (5, 6, 70), (1, 1, 1)])
def test_statistics_match_numpy(backend, rng, dtype, shape):
    g = ImageGeometry(shape, spacing=(0.7, 0.9, 2.5), origin=(3, -4, 5))
    a = (rng.normal(100, 300, shape) if np.dtype(dtype).kind != "u" else rng.integers(0, 4000, shape)).astype(dtype)
    if a.dtype == np.float32:
        a.flat[1::5] = np.nan
    m = rng.random(shape) < 0.5
    m.flat[0] = True
    img = Image.from_numpy(a, g, backend=backend)
    mask = Mask.from_numpy(m, g, backend=backend).shrink_()
    got = gpuseg.segment_statistics(mask, img)
    want = numpy_stats(a, m, g)
    assert got["voxel_count"] == want["voxel_count"]
    assert got["volume_mm3"] == pytest.approx(want["voxel_count"] * 0.7 * 0.9 * 2.5)
    np.testing.assert_allclose(got["centroid_lps"], want["centroid_lps"], rtol=1e-12, atol=1e-9)
    for key in ("min", "max", "mean", "stdev", "median", "percentile_05", "percentile_95"):
        if key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-9), key
        else:
            assert got[key] is None


def test_statistics_empty_and_no_image(backend):
    g = ImageGeometry((2, 3, 4))
    img = Image.from_numpy(np.ones((2, 3, 4), np.int16), g, backend=backend)
    e = gpuseg.segment_statistics(Mask.empty(g, backend=backend), img)
    assert e["voxel_count"] == 0 and e["mean"] is None and e["centroid_lps"] is None
    f = gpuseg.segment_statistics(Mask.full(g, backend=backend))
    assert f["voxel_count"] == 24 and "mean" not in f
    np.testing.assert_allclose(f["centroid_lps"], [1.5, 1.0, 0.5])


def _stats_reference(rng):
    a = rng.normal(0, 1000, (6, 7, 90)).astype(np.float32)
    m = rng.random(a.shape) < 0.4
    return {"voxel_count": int(m.sum()), "min": float(a[m].min()), "max": float(a[m].max())}


@parity(reference=_stats_reference)
def test_statistics_identical_across_backends(backend, rng):
    a = rng.normal(0, 1000, (6, 7, 90)).astype(np.float32)
    m = rng.random(a.shape) < 0.4
    # float sums in a fixed order: exactly equal on every backend
    res = gpuseg.segment_statistics(Mask.from_numpy(m, backend=backend), Image.from_numpy(a, backend=backend))
    return {k: (np.float64(v) if isinstance(v, float) else v) for k, v in res.items()}


def test_statistics_of_a_segmentation_real_labels(backend):
    import nibabel as nib

    ct = nib.load(str(shared_file("totalseg", "example_ct_sm.nii.gz")))
    lab = nib.load(str(shared_file("totalseg", "example_seg.nii.gz")))
    a = np.asarray(ct.dataobj).transpose(2, 1, 0).astype(np.int16)
    labels = np.asarray(lab.dataobj).transpose(2, 1, 0)
    g = ImageGeometry.from_ras_matrix(a.shape, ct.affine)
    seg = Segmentation(g, backend=backend)
    values = [v for v in np.unique(labels) if v][:8]
    for v in values:
        seg.add_segment(Mask.from_numpy(labels == v, g, backend=backend, crop=True), name=f"label {v}")
    rows = gpuseg.statistics(seg, Image.from_numpy(a, g, backend=backend))
    assert [r["segment"] for r in rows] == [f"label {v}" for v in values]
    for v, r in zip(values, rows):
        vals = a[labels == v].astype(np.float64)
        assert r["voxel_count"] == vals.size
        assert r["mean"] == pytest.approx(vals.mean(), rel=1e-12)
        assert r["median"] == np.median(vals)


def test_statistics_errors(backend):
    g = ImageGeometry((2, 3, 4))
    m = Mask.full(g, backend=backend)
    with pytest.raises(GeometryMismatchError):
        gpuseg.segment_statistics(m, Image.from_numpy(np.zeros((2, 3, 5), np.int16), backend=backend))
    with pytest.raises(InvalidInputError, match="percentiles"):
        gpuseg.segment_statistics(m, percentiles=(101,))
    with pytest.raises(InvalidInputError, match="expected a Mask"):
        gpuseg.segment_statistics(np.zeros((2, 3, 4), bool))
