"""threshold against numpy on every backend: dtypes, odd shapes, NaN, masks, extents, bounds."""

import numpy as np
import pytest

import gpuseg
from gpuseg import Extent, Image, ImageGeometry, Mask
from gpuseg.errors import (DeviceMemoryError, EmptyRangeError, GeometryMismatchError, InvalidInputError,
                           UnsupportedDtypeError)
from gpuseg.ops.threshold import threshold_bounds

from .conftest import ODD_SHAPES, shared_file
from .parity import parity


def reference(a, lo, hi):
    """The definition: lo <= v <= hi on the real numbers (float64 holds every input exactly)."""
    v = a.astype(np.float64)
    return (v >= lo) & (v <= hi)


def random_image(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        a = rng.normal(0, 500, shape).astype(dtype)
        a.flat[:: 7] = np.nan
        return a
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -3000), min(info.max, 3000), shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32, np.float32])
@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_threshold_matches_numpy(backend, rng, dtype, shape):
    a = random_image(rng, shape, dtype)
    img = Image.from_numpy(a, ImageGeometry(shape, spacing=(0.6, 0.6, 2.5)), backend=backend)
    for lo, hi in [(-200, 400), (0.5, 0.5), (100.25, 1e9), (-np.inf, 0), (5000, 6000)]:
        m = gpuseg.threshold(img, lo, hi)
        want = reference(a, lo, hi)
        np.testing.assert_array_equal(m.to_numpy(), want, err_msg=f"{dtype} [{lo}, {hi}]")
        assert m.count() == int(want.sum())


def test_float_bounds_are_exact_on_float32(backend):
    x = np.float32(0.1)  # 0.1 is not representable: float32(0.1) > 0.1
    a = np.array([[[np.nextafter(x, np.float32(0)), x, np.nextafter(x, np.float32(1)), np.nan]]], np.float32)
    img = Image.from_numpy(a, backend=backend)
    np.testing.assert_array_equal(gpuseg.threshold(img, 0.1, 1).to_numpy()[0, 0], [False, True, True, False])
    np.testing.assert_array_equal(gpuseg.threshold(img, -1, float(x)).to_numpy()[0, 0], [True, True, False, False])


def test_integer_bounds_clip_and_round():
    assert threshold_bounds(np.int16, -1e9, 1e9) == (-32768, 32767)
    assert threshold_bounds(np.int16, 0.2, 0.8) is None
    assert threshold_bounds(np.uint16, -5, -1) is None
    assert threshold_bounds(np.int32, 1.5, 3.5) == (2, 3)
    assert threshold_bounds(np.float32, -np.inf, np.inf) == (-np.inf, np.inf)


def test_threshold_with_mask_and_extent(backend, rng):
    shape = (5, 6, 75)
    a = random_image(rng, shape, np.int16)
    g = ImageGeometry(shape)
    img = Image.from_numpy(a, g, backend=backend)
    mn = np.zeros(shape, bool)
    mn[1:4, 2:6, 20:60] = rng.random((3, 4, 40)) < 0.5
    mask = Mask.from_numpy(mn, g, backend=backend).shrink_()
    m = gpuseg.threshold(img, -100, 800, mask=mask)
    np.testing.assert_array_equal(m.to_numpy(), reference(a, -100, 800) & mn)
    assert m.box == mask.box  # the result lives on the mask's box only
    ext = Extent(1, 4, 0, 5, 7, 41)
    sel = np.zeros(shape, bool)
    sel[ext.slices] = True
    np.testing.assert_array_equal(gpuseg.threshold(img, -100, 800, extent=ext).to_numpy(),
                                  reference(a, -100, 800) & sel)
    np.testing.assert_array_equal(gpuseg.threshold(img, -100, 800, extent=ext, mask=mask).to_numpy(),
                                  reference(a, -100, 800) & sel & mn)
    empty = Mask.empty(g, backend=backend)
    assert gpuseg.threshold(img, -1e9, 1e9, mask=empty).count() == 0


def _threshold_reference(rng):
    a = random_image(rng, (7, 9, 101), np.float32)
    return {"dense": (a >= np.float32(-300.5)) & (a <= np.float32(250.25))}


@parity(reference=_threshold_reference)
def test_cross_backend_identical(backend, rng):
    a = random_image(rng, (7, 9, 101), np.float32)
    m = gpuseg.threshold(Image.from_numpy(a, backend=backend), -300.5, 250.25)
    return {"dense": m.to_numpy(), "words": m.words_numpy()}


@pytest.mark.parametrize("lo,hi,err,msg", [
    (10, 5, EmptyRangeError, "lower bound 10 > upper bound 5"),
    (np.nan, 5, EmptyRangeError, "NaN"),
    (0, np.nan, EmptyRangeError, "NaN"),
    ("a", 5, InvalidInputError, "must be a number"),
])
def test_bad_bounds(backend, lo, hi, err, msg):
    img = Image.from_numpy(np.zeros((1, 2, 3), np.int16), backend=backend)
    with pytest.raises(err, match=msg):
        gpuseg.threshold(img, lo, hi)


def test_bad_images_and_masks(backend):
    with pytest.raises(UnsupportedDtypeError, match="float64"):
        Image.from_numpy(np.zeros((2, 2, 2)), backend=backend)
    with pytest.raises(InvalidInputError, match="3D"):
        Image.from_numpy(np.zeros((2, 2), np.int16), backend=backend)
    with pytest.raises(InvalidInputError, match="needs an Image"):
        gpuseg.threshold(np.zeros((2, 2, 2), np.int16), 0, 1)
    img = Image.from_numpy(np.zeros((2, 2, 2), np.int16), backend=backend)
    other = Mask.zeros(ImageGeometry((2, 2, 3)), backend=backend)
    with pytest.raises(GeometryMismatchError):
        gpuseg.threshold(img, 0, 1, mask=other)


def test_memory_budget_is_enforced_before_allocating():
    from gpuseg.backends.cpu import CPUBackend

    small = CPUBackend(memory_budget="1MB")
    with pytest.raises(DeviceMemoryError, match="memory budget"):
        Image.from_numpy(np.zeros((64, 64, 257), np.int16), backend=small)
    img = Image.from_numpy(np.zeros((8, 64, 64), np.int16), backend=small)
    assert gpuseg.threshold(img, 0, 1).count() == 8 * 64 * 64
    with pytest.raises(InvalidInputError, match="memory size"):
        CPUBackend(memory_budget="lots")


def test_real_ct_bone(backend):
    path = shared_file("totalseg", "example_ct.nii.gz")
    img = gpuseg.read_image(path, backend=backend)
    import nibabel as nib

    ref = np.asarray(nib.load(str(path)).dataobj).transpose(2, 1, 0)
    assert img.shape == ref.shape == (112, 101, 122)
    np.testing.assert_allclose(img.geometry.spacing, (3, 3, 3))
    bone = gpuseg.threshold(img, 200, 3000)
    want = (ref >= 200) & (ref <= 3000)
    assert 1000 < want.sum() < want.size // 5  # real bone, not an empty or full mask
    np.testing.assert_array_equal(bone.to_numpy(), want)
