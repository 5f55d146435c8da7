import numpy as np
import pytest

from gpuseg import Extent, ImageGeometry
from gpuseg.errors import GeometryMismatchError, InvalidInputError, OutOfBoundsError


def rotation(ax, angle):
    c, s = np.cos(angle), np.sin(angle)
    r = np.eye(3)
    i, j = [(1, 2), (0, 2), (0, 1)][ax]
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def test_matrix_from_parts_and_back():
    d = rotation(2, 0.3) @ rotation(0, -0.2)
    g = ImageGeometry((7, 9, 11), spacing=(0.7, 0.8, 2.5), origin=(-10, 20.5, 3), direction=d)
    assert g.shape == (7, 9, 11) and g.size == (11, 9, 7)
    np.testing.assert_allclose(g.spacing, (0.7, 0.8, 2.5))
    np.testing.assert_allclose(g.spacing_kji, (2.5, 0.8, 0.7))
    np.testing.assert_allclose(g.direction, d, atol=1e-12)
    np.testing.assert_allclose(g.ijk_to_world[:3, 3], (-10, 20.5, 3))
    g2 = ImageGeometry.from_matrix(g.shape, g.ijk_to_world)
    assert g2.is_same_grid(g)
    assert np.isclose(g.voxel_volume, 0.7 * 0.8 * 2.5)


def test_world_ijk_round_trip_anisotropic(rng):
    g = ImageGeometry((5, 6, 7), spacing=(0.5, 1.5, 3.0), origin=(1, 2, 3), direction=rotation(1, 0.4))
    ijk = rng.uniform(-2, 8, (20, 3))
    xyz = g.ijk_to_world_points(ijk)
    np.testing.assert_allclose(g.world_to_ijk_points(xyz), ijk, atol=1e-9)
    # a step along i moves spacing_i mm along the first direction column
    step = g.ijk_to_world_points([1, 0, 0]) - g.ijk_to_world_points([0, 0, 0])
    np.testing.assert_allclose(np.linalg.norm(step), 0.5)


def test_ras_helpers():
    ras = np.diag([-2.0, -2.0, 3.0, 1.0])
    ras[:3, 3] = (100, 50, -20)
    g = ImageGeometry.from_ras_matrix((4, 4, 4), ras)
    # LPS = RAS with x, y negated
    np.testing.assert_allclose(g.ijk_to_world[:3, :3], np.diag([2.0, 2.0, 3.0]))
    np.testing.assert_allclose(g.origin, (-100, -50, -20))
    np.testing.assert_allclose(g.ijk_to_ras, ras)
    np.testing.assert_allclose(g.ras_to_lps([1, 2, 3]), [-1, -2, 3])


def test_world_to_index_and_bounds():
    g = ImageGeometry((3, 4, 5), spacing=(2, 2, 2))
    assert g.world_to_index([4.2, 2.1, 3.9]) == (2, 1, 2)
    with pytest.raises(OutOfBoundsError, match="outside the volume"):
        g.world_to_index([100, 0, 0])
    with pytest.raises(InvalidInputError, match="finite"):
        g.world_to_ijk_points([np.nan, 0, 0])


def test_compatibility_checks():
    a = ImageGeometry((3, 4, 5), spacing=(1, 1, 2))
    b = ImageGeometry((3, 4, 5), spacing=(1, 1, 2), origin=(0, 0, 1e-6))
    c = ImageGeometry((3, 4, 5), spacing=(1, 1, 2.5))
    assert a.is_same_grid(b) and a == b
    assert not a.is_same_grid(c)
    with pytest.raises(GeometryMismatchError, match="different grids"):
        a.check_same_grid(c)
    sub = a.sub_geometry(Extent(1, 3, 0, 2, 2, 5))
    assert sub.shape == (2, 2, 3) and a.is_same_lattice(sub)
    np.testing.assert_allclose(sub.origin, a.ijk_to_world_points([2, 0, 1]))


@pytest.mark.parametrize("kwargs,msg", [
    (dict(shape=(3, 4)), "3D shape"),
    (dict(shape=(3, 4, 5), spacing=(1, 0, 1)), "positive"),
    (dict(shape=(3, 4, 5), spacing=(1, np.nan, 1)), "finite"),
    (dict(shape=(3, 4, 5), direction=np.zeros((3, 3))), "direction"),
    (dict(shape=(3, 4, 5), direction=[[1, 0, 0], [1, 0, 0], [0, 0, 1]]), "direction"),
    (dict(shape=(-1, 4, 5)), "negative"),
])
def test_bad_geometry(kwargs, msg):
    with pytest.raises(InvalidInputError, match=msg):
        ImageGeometry(**kwargs)


def test_extent_algebra():
    a = Extent(0, 4, 1, 3, 5, 40)
    b = Extent(2, 6, 0, 2, 30, 70)
    assert a.intersect(b) == Extent(2, 4, 1, 2, 30, 40)
    assert a.union(b) == Extent(0, 6, 0, 3, 5, 70)
    assert a.intersect(Extent(5, 6, 0, 1, 0, 1)).is_empty
    assert Extent.empty().union(a) == a
    assert a.shape == (4, 2, 35) and a.size == 280
    assert Extent.from_slicer(a.to_slicer()) == a
    assert Extent.empty().to_slicer() == (0, -1, 0, -1, 0, -1)
    assert Extent.from_slicer((0, -1, 0, -1, 0, -1)).is_empty
    assert a.pad(1).clip((3, 3, 36)) == Extent(0, 3, 0, 3, 4, 36)
    assert a.contains(Extent(1, 2, 1, 2, 6, 7)) and not a.contains(b)
    with pytest.raises(InvalidInputError):
        Extent(0, 1.5, 0, 1, 0, 1)
