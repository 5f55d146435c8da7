"""Planar contours and fractional labelmaps."""

from __future__ import annotations

import numpy as np
import pytest

from gpuseg.errors import InvalidInputError
from gpuseg.geometry import Extent, ImageGeometry
from gpuseg.mask import Mask
from gpuseg.surface import Surface, closed_surface
from gpuseg.surface.representations import fractional_labelmap, planar_contours, to_slicer_fractional
from gpuseg.surface.voxelize import voxelize


def _polygon_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def test_planar_contours_of_a_box_and_a_ring():
    g = ImageGeometry((4, 20, 40), spacing=(0.5, 0.8, 2.0), origin=(10.0, 20.0, 30.0))
    vol = np.zeros(g.shape, bool)
    vol[1, 4:12, 5:25] = True
    vol[2, 2:16, 2:30] = True
    vol[2, 6:10, 10:20] = False  # a hole: two contours
    c = planar_contours(Mask.from_numpy(vol, g, backend="cpu"))
    assert sorted(c) == [1, 2]
    assert len(c[1]) == 1 and len(c[2]) == 2
    box = c[1][0]
    np.testing.assert_allclose(box[0], box[-1])
    np.testing.assert_allclose(box[:, 2], 30.0 + 1 * 2.0)  # in the plane of slice k = 1
    # marching squares cuts the corners by half a pixel: area = (8 x 20 pixels) - 4 corner triangles
    area_px = abs(_polygon_area(np.stack([(box[:, 0] - 10) / 0.5, (box[:, 1] - 20) / 0.8], 1)))
    assert area_px == pytest.approx(8 * 20 - 4 * 0.125)
    for axis in (1, 2):
        assert planar_contours(Mask.from_numpy(vol, g, backend="cpu"), axis)
    assert planar_contours(Mask.zeros(g, backend="cpu")) == {}
    with pytest.raises(InvalidInputError):
        planar_contours(Mask.zeros(g, backend="cpu"), axis=4)


def _ball(shape, c, r):
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2 <= r * r


def test_fractional_labelmap_of_a_smoothed_sphere():
    pytest.importorskip("scipy")
    g = ImageGeometry((24, 24, 24), spacing=(1.0, 1.2, 0.9))
    s = closed_surface(Mask.from_numpy(_ball(g.shape, (12, 12, 12), 7), g, backend="cpu"), smoothing=0.5,
                       normals=False)
    counts, ext = fractional_labelmap(s, g)
    assert counts.dtype == np.uint8 and counts.max() == 216 and counts.min() == 0
    volume = counts.sum() / 216 * np.prod(g.spacing)
    assert volume == pytest.approx(s.volume(), rel=0.01)
    # one subdivision is the voxelization of voxel centres
    one, ext1 = fractional_labelmap(s, g, subdivisions=1)
    np.testing.assert_array_equal(one.astype(bool), voxelize(s.vertices, s.faces, g)[ext1.slices])
    slicer = to_slicer_fractional(counts)
    assert slicer.dtype == np.int8 and slicer.min() == -108 and slicer.max() == 108
    # slabs give the same answer as one pass
    small, _ = fractional_labelmap(s, g, slab_bytes=1)
    np.testing.assert_array_equal(small, counts)


def test_fractional_errors_and_empty():
    g = ImageGeometry((4, 4, 4))
    empty = Surface(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32))
    counts, ext = fractional_labelmap(empty, g)
    assert counts.size == 0 and ext.is_empty
    with pytest.raises(InvalidInputError):
        fractional_labelmap(empty, g, subdivisions=0)
    with pytest.raises(InvalidInputError):
        to_slicer_fractional(np.zeros(3, np.uint8), 4)
    assert fractional_labelmap(empty, g, extent=Extent(0, 2, 0, 2, 0, 2))[0].shape == (2, 2, 2)
