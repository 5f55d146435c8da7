"""Fast marching: arrival times against SimpleITK's FastMarching filter, and the effect on real
CT (grow to a target volume, then pick a smaller one without marching again) through masking
and undo, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import gpuseg
from gpuseg import Editor, Masking, Segmentation
from gpuseg.errors import InvalidInputError
from gpuseg.ops.fast_marching import fast_march
from gpuseg.steps import run_steps

from .conftest import ODD_SHAPES, shared_file

sitk = pytest.importorskip("SimpleITK")


def _itk_times(speed, seeds, spacing_kji):
    img = sitk.GetImageFromArray(np.asarray(speed, np.float64))
    img.SetSpacing([float(v) for v in spacing_kji[::-1]])
    fm = sitk.FastMarchingImageFilter()
    fm.SetTrialPoints([[int(i), int(j), int(k)] for k, j, i in np.argwhere(seeds)])
    fm.SetStoppingValue(1e300)
    out = sitk.GetArrayFromImage(fm.Execute(img))
    return np.where(out > 1e37, np.inf, out)  # ITK's "never reached" is the pixel type's max


@pytest.mark.parametrize("shape", ODD_SHAPES[1:] + [(9, 14, 23)])
def test_times_are_itks(shape):
    rng = np.random.default_rng(sum(shape))
    spacing = (1.7, 0.9, 1.2)
    speed = rng.uniform(0.1, 2.0, shape)
    seeds = rng.random(shape) < 0.01
    seeds.ravel()[0] = True
    times, order = fast_march(speed, seeds, spacing, speed.size)
    want = _itk_times(speed, seeds, spacing)
    np.testing.assert_allclose(times, want, rtol=1e-12, atol=1e-12)
    assert len(order) == speed.size and np.all(np.diff(times.ravel()[order]) >= 0)


def test_speed_zero_is_a_wall_and_stop_after_max():
    speed = np.ones((1, 9, 9))
    speed[0, :, 4] = 0.0
    seeds = np.zeros(speed.shape, bool)
    seeds[0, 4, 1] = True
    times, order = fast_march(speed, seeds, (1.0, 1.0, 1.0), 1000)
    assert np.isinf(times[0, :, 4:]).all() and np.isfinite(times[0, :, :4]).all() and len(order) == 36
    times, order = fast_march(speed, seeds, (1.0, 1.0, 1.0), 5)
    assert len(order) == 5 and order[0] == 4 * 9 + 1


def _ct(backend):
    import nibabel as nib

    path = shared_file("totalseg", "example_ct_sm.nii.gz")
    img = gpuseg.read_image(path, backend=backend)
    lab = np.asarray(nib.load(str(shared_file("totalseg", "example_seg.nii.gz"))).dataobj).transpose(2, 1, 0)
    seed = ndimage.binary_erosion(lab == 5, iterations=3)  # inside the liver
    other = lab == 2  # the right kidney, to see overwrite
    seg = Segmentation(img.geometry, backend=backend)
    seg.add_segment(gpuseg.Mask.from_numpy(seed, img.geometry, backend=backend), name="liver")
    seg.add_segment(gpuseg.Mask.from_numpy(other, img.geometry, backend=backend), name="kidney")
    return img, seg, seed, other


def test_fast_marching_on_real_ct(backend):
    img, seg, seed, other = _ct(backend)
    ed = Editor(seg, img)
    res = ed.fast_marching_preview("liver", percent_max=12.0)
    a = img.to_numpy().astype(np.float64)
    mu, sd = a[seed].mean(), max(a[seed].std(), 1.0)
    want_t = _itk_times(np.maximum(np.exp(-(a - mu) ** 2 / (2 * sd * sd)), 1e-4), seed, img.geometry.spacing_kji)
    n = res.n_voxels()
    assert n == int(0.12 * a.size) and seed.sum() < int(0.08 * a.size)
    for pc in (12.0, 8.0):  # the final volume, picked without marching again
        m = res.n_voxels(pc)
        t = np.sort(want_t.ravel())[m - 1]
        want = want_t <= t
        assert want.sum() == m  # no tie at the cut
        p = res.preview(pc)
        got = np.zeros(a.shape, bool)
        got[p.extent.slices] = gpuseg.mask.unpack_bits(p.stroke, p.extent.shape[2])
        np.testing.assert_array_equal(got, want)
    changed = ed.commit(res.preview(8.0))
    np.testing.assert_array_equal(seg["liver"].mask.to_numpy(), seed | want)
    np.testing.assert_array_equal(seg["kidney"].mask.to_numpy(), other & ~want)
    assert changed == int((want & ~seed).sum() + (want & other).sum())
    assert ed.undo()
    np.testing.assert_array_equal(seg["liver"].mask.to_numpy(), seed)
    np.testing.assert_array_equal(seg["kidney"].mask.to_numpy(), other)
    # the step: the same as the method
    img2, seg2, _, _ = _ct(backend)
    run_steps(Editor(seg2, img2), [{"effect": "fast_marching", "segment": "liver", "percent_max": 12,
                                    "percent": 8}])
    np.testing.assert_array_equal(seg2["liver"].mask.to_numpy(), seed | want)


def test_fast_marching_masking_stops_the_front(backend):
    img, seg, seed, other = _ct(backend)
    free = Editor(seg, img).fast_marching_preview("liver", percent_max=9.0).preview()
    reached = np.zeros(seed.shape, bool)
    reached[free.extent.slices] = gpuseg.mask.unpack_bits(free.stroke, free.extent.shape[2])
    wall = reached & ~seed
    wall[:, :, : wall.shape[2] // 2] = False  # a segment where the unmasked front went
    assert wall.sum() > 1000
    seg.add_segment(gpuseg.Mask.from_numpy(wall, img.geometry, backend=backend), name="wall")
    ed = Editor(seg, img)
    ed.masking = Masking("outside_all", overwrite="allow_overlap")
    ed.fast_marching("liver", percent_max=9.0)
    got = seg["liver"].mask.to_numpy()
    assert got.sum() == int(0.09 * got.size)  # every voxel the front reached was editable
    assert not (got & (wall | other)).any()  # not editable: the front went around them
    np.testing.assert_array_equal(seg["wall"].mask.to_numpy(), wall)


def test_fast_marching_errors(backend):
    img, seg, seed, other = _ct(backend)
    with pytest.raises(InvalidInputError, match="source image"):
        Editor(seg).fast_marching("liver")
    ed = Editor(seg, img)
    for bad in (0.0, -1.0, 101.0, float("nan")):
        with pytest.raises(InvalidInputError, match="percent_max"):
            ed.fast_marching("liver", percent_max=bad)
    res = ed.fast_marching_preview("liver", percent_max=1.0)
    with pytest.raises(InvalidInputError, match="percent"):
        res.preview(2.0)
    assert res.preview(0.0) is None
    seg.add_segment(name="empty")
    with pytest.raises(InvalidInputError, match="non-empty seed"):
        ed.fast_marching("empty")
    with pytest.raises(gpuseg.errors.UnknownSegmentError):
        ed.fast_marching("nope")
    with pytest.raises(InvalidInputError, match="one shape"):
        fast_march(np.ones((2, 2, 2)), np.ones((2, 2, 3), bool), (1, 1, 1), 4)
