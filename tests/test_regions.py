"""Flood fill against skimage.segmentation.flood, and local threshold, on every backend."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.segmentation import flood

import gpuseg
from gpuseg import Image, ImageGeometry, Mask
from gpuseg.errors import InvalidInputError, OutOfBoundsError

from .conftest import shared_file


@pytest.mark.parametrize("connectivity,sk_conn", [(6, 1), (26, 3)])
def test_flood_tolerance_matches_skimage(backend, rng, connectivity, sk_conn):
    a = ndimage.gaussian_filter(rng.normal(0, 100, (10, 14, 45)), 1.5).astype(np.float32)
    img = Image.from_numpy(a, backend=backend)
    for seed in [(5, 7, 20), (0, 0, 0), (9, 13, 44)]:
        got = gpuseg.flood_fill(img, seed, tolerance=8.0, connectivity=connectivity).to_numpy()
        want = flood(a.astype(np.float64), seed, tolerance=8.0, connectivity=sk_conn)
        np.testing.assert_array_equal(got, want)


def test_flood_range_mask_and_neighborhood(backend, rng):
    a = rng.integers(-100, 100, (8, 9, 40)).astype(np.int16)
    g = ImageGeometry(a.shape, spacing=(1, 1, 2))
    img = Image.from_numpy(a, g, backend=backend)
    got = gpuseg.flood_fill(img, (4, 4, 20), -50, 100).to_numpy()
    lab, _ = ndimage.label((a >= -50) & (a <= 100))
    if a[4, 4, 20] >= -50:
        np.testing.assert_array_equal(got, lab == lab[4, 4, 20])
    editable = np.zeros(a.shape, bool)
    editable[:, :, :25] = True
    got = gpuseg.flood_fill(img, (4, 4, 20), -1000, 1000, mask=Mask.from_numpy(editable, g, backend=backend))
    np.testing.assert_array_equal(got.to_numpy(), editable)  # the whole editable block, nothing beyond
    c = gpuseg.ops.regions.seed_intensity(img, (4, 4, 20), neighborhood_mm=2.0)
    assert c == pytest.approx(a[4, 3:6, 19:22].mean())  # 1 voxel each side in j and i, none in k
    outside = gpuseg.flood_fill(img, (0, 0, 30), -1000, 1000, mask=Mask.from_numpy(editable, g, backend=backend))
    assert outside.count() == 0


def test_local_threshold_stops_at_thin_bridges(backend):
    g = ImageGeometry((9, 20, 60))
    a = np.zeros(g.shape, np.int16)
    a[2:7, 5:15, 5:20] = 100   # a block
    a[2:7, 5:15, 35:50] = 100  # another block
    a[4, 9, 20:35] = 100       # joined by a one-voxel bridge
    img = Image.from_numpy(a, g, backend=backend)
    leak = gpuseg.flood_fill(img, (4, 9, 10), 50, 200)
    assert leak.count() == int((a == 100).sum())  # a flood fill leaks through the bridge
    bright = a == 100
    a = a + np.random.default_rng(0).integers(0, 10, g.shape).astype(np.int16)  # ties make GrowCut degenerate
    img = Image.from_numpy(a, g, backend=backend)
    first = np.zeros(g.shape, bool)
    first[2:7, 5:15, 5:20] = True
    second = np.zeros(g.shape, bool)
    second[2:7, 5:15, 35:50] = True
    for algorithm in ("GrowCut", "Masking"):
        local = gpuseg.local_threshold(img, (4, 9, 10), 50, 200, minimum_diameter_mm=3.0,
                                       segmentation_algorithm=algorithm).to_numpy()
        assert not (local & second).any(), algorithm  # the bridge did not leak into the other block
        assert local[first].all(), algorithm  # the whole block, eroded corners grown back
        assert local[4, 9, 20:35].sum() < 15, algorithm  # at most part of the bridge
    # GrowCut on a uniform image is all ties (distance 0 from both islands), which go to the first
    # seed (the other islands): only the eroded core stays
    local = gpuseg.local_threshold(Image.from_numpy(np.where(bright, 100, 0).astype(np.int16), g, backend=backend),
                                   (4, 9, 10), 50, 200).to_numpy()
    assert local.sum() == 3 * 8 * 13 and local[first].sum() == local.sum()


def test_flood_on_real_ct_liver(backend):
    import nibabel as nib

    path = shared_file("totalseg", "example_ct_sm.nii.gz")
    img = gpuseg.read_image(path, backend=backend)
    a = np.asarray(nib.load(str(path)).dataobj).transpose(2, 1, 0)
    lab = np.asarray(nib.load(str(shared_file("totalseg", "example_seg.nii.gz"))).dataobj).transpose(2, 1, 0)
    seed = tuple(int(v) for v in np.argwhere(lab == 5)[len(np.argwhere(lab == 5)) // 2])  # inside the liver
    got = gpuseg.flood_fill(img, seed, tolerance=40, neighborhood_mm=6).to_numpy()
    c = gpuseg.ops.regions.seed_intensity(img, seed, 6)
    lab_ok, _ = ndimage.label((a >= c - 40) & (a <= c + 40))
    np.testing.assert_array_equal(got, lab_ok == lab_ok[seed])
    assert got.sum() > 100


def test_flood_errors(backend):
    img = Image.from_numpy(np.zeros((2, 3, 4), np.int16), backend=backend)
    with pytest.raises(OutOfBoundsError):
        gpuseg.flood_fill(img, (5, 0, 0), tolerance=1)
    with pytest.raises(InvalidInputError, match="either a range"):
        gpuseg.flood_fill(img, (0, 0, 0), 0, 1, tolerance=1)
    with pytest.raises(InvalidInputError, match="needs a range"):
        gpuseg.flood_fill(img, (0, 0, 0))
    with pytest.raises(InvalidInputError, match="non-negative"):
        gpuseg.flood_fill(img, (0, 0, 0), tolerance=-1)
    nan = Image.from_numpy(np.full((2, 3, 4), np.nan, np.float32), backend=backend)
    with pytest.raises(InvalidInputError, match="NaN"):
        gpuseg.flood_fill(nan, (0, 0, 0), tolerance=1)
