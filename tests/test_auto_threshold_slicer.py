"""Slicer's auto-threshold methods (ITK calculators on Slicer's 64-bin histogram) against
SimpleITK's *ThresholdImageFilter with 64 bins, on int16, uint16, int32 and float32 images; the
AutoThresholdMode values; identical on every backend; the threshold step."""

from __future__ import annotations

import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK")

import gpuseg  # noqa: E402
from gpuseg import Editor, ImageGeometry, Segmentation  # noqa: E402
from gpuseg.errors import InvalidInputError  # noqa: E402
from gpuseg.ops.autothreshold import auto_threshold  # noqa: E402
from gpuseg.ops.itk_thresholds import SLICER_METHODS, itk_histogram, itk_threshold  # noqa: E402
from gpuseg.steps import run_steps  # noqa: E402

FILTERS = {"OTSU": "OtsuThresholdImageFilter", "HUANG": "HuangThresholdImageFilter",
           "ISO_DATA": "IsoDataThresholdImageFilter", "KITTLER_ILLINGWORTH": "KittlerIllingworthThresholdImageFilter",
           "MAXIMUM_ENTROPY": "MaximumEntropyThresholdImageFilter", "MOMENTS": "MomentsThresholdImageFilter",
           "RENYI_ENTROPY": "RenyiEntropyThresholdImageFilter", "SHANBHAG": "ShanbhagThresholdImageFilter",
           "TRIANGLE": "TriangleThresholdImageFilter", "YEN": "YenThresholdImageFilter",
           "INTERMODES": "IntermodesThresholdImageFilter", "LI": "LiThresholdImageFilter"}


def sitk_threshold(a, method):
    f = getattr(sitk, FILTERS[method])()
    f.SetNumberOfHistogramBins(64)  # vtkITKImageThresholdCalculator's histogram size
    f.Execute(sitk.GetImageFromArray(a))
    return f.GetThreshold()  # cast to the pixel type by ITK's filter


def _image(dtype, seed, shape=(9, 17, 41)):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    parts = [rng.normal(40, 25, n // 2), rng.normal(260, 45, n // 3)]
    parts.append(rng.normal(150, 15, n - sum(p.size for p in parts)))
    a = rng.permutation(np.concatenate(parts)).reshape(shape)
    if np.dtype(dtype) == np.uint16:
        a = a - a.min()
    return (a * 3.7 if np.dtype(dtype) == np.int32 else a).astype(dtype)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32, np.float32])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_method_equals_simpleitk(backend, dtype, seed):
    a = _image(dtype, seed)
    img = gpuseg.Image.from_numpy(a, backend=backend)
    for m in SLICER_METHODS:
        got = itk_threshold(img, m)
        want = sitk_threshold(a, m)
        assert np.array(got).astype(dtype) == np.array(want).astype(dtype), (m, got, want)


def test_histogram_counts_every_voxel_and_matches_across_backends():
    a = _image(np.float32, 3)
    counts = {}
    for be in ("cpu", "opencl"):
        try:
            img = gpuseg.Image.from_numpy(a, backend=be)
        except Exception as exc:  # pragma: no cover - the backend fixture's rule
            pytest.skip(f"{be}: {exc}")
        c, mins, maxs = itk_histogram(img)
        counts[be] = c
        assert c.sum() == a.size and mins[0] == a.min() and maxs[-1] > a.max()
    np.testing.assert_array_equal(counts["cpu"], counts["opencl"])


def test_modes(backend):
    a = _image(np.int32, 2)
    img = gpuseg.Image.from_numpy(a, backend=backend)
    t = itk_threshold(img, "OTSU")
    lo, hi = float(a.min()), float(a.max())
    assert auto_threshold(img) == (t, hi)  # SET_LOWER_MAX, OTSU: Slicer's defaults
    assert auto_threshold(img, "OTSU", "SET_MIN_UPPER") == (lo, t)
    assert auto_threshold(img, "OTSU", "SET_LOWER", (5.0, 77.0)) == (t, 77.0)
    assert auto_threshold(img, "OTSU", "SET_UPPER", (5.0, 77.0)) == (5.0, t)
    assert auto_threshold(img, "OTSU", "SET_UPPER") == (lo + 0.25 * (hi - lo), t)  # Slicer's first-use range
    with pytest.raises(InvalidInputError, match="unknown auto-threshold mode"):
        auto_threshold(img, "OTSU", "ABOVE")
    with pytest.raises(InvalidInputError, match="int16 or uint16"):
        auto_threshold(img, "otsu")  # the exact-histogram methods stay int16/uint16
    with pytest.raises(InvalidInputError, match="fewer than two"):
        auto_threshold(gpuseg.Image.from_numpy(np.full((2, 3, 4), 7, np.float32), backend=backend))


def test_threshold_step_with_auto_modes():
    a = _image(np.float32, 4)
    g = ImageGeometry(a.shape)
    seg = Segmentation(g, backend="cpu")
    seg.add_segment(name="t")
    ed = Editor(seg, gpuseg.Image.from_numpy(a, g, backend="cpu"))
    t = float(np.float32(sitk_threshold(a, "YEN")))
    run_steps(ed, [{"effect": "threshold", "segment": "t", "auto": "YEN", "auto_mode": "SET_MIN_UPPER"}])
    np.testing.assert_array_equal(seg["t"].mask.to_numpy(), a <= np.float32(ed.auto_threshold("YEN")[0]))
    assert abs(ed.auto_threshold("YEN")[0] - t) < 1e-3
    run_steps(ed, [{"effect": "threshold", "segment": "t", "auto": "OTSU", "auto_mode": "SET_UPPER",
                    "min": 0, "max": 1000}])
    t = ed.auto_threshold("OTSU")[0]
    np.testing.assert_array_equal(seg["t"].mask.to_numpy(), (a >= 0) & (a <= np.float32(t)))
    with pytest.raises(InvalidInputError, match="auto_mode"):
        run_steps(ed, [{"effect": "threshold", "segment": "t", "min": 0, "max": 1, "auto_mode": "SET_LOWER"}])
    with pytest.raises(InvalidInputError, match="either"):
        run_steps(ed, [{"effect": "threshold", "segment": "t", "auto": "OTSU", "min": 0, "max": 1}])
