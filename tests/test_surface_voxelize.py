"""Closed surface -> binary labelmap (voxel centres inside), and Slicer's default geometry."""

from __future__ import annotations

import numpy as np
import pytest

from gpuseg.errors import InvalidInputError
from gpuseg.geometry import Extent, ImageGeometry
from gpuseg.surface.voxelize import reference_geometry_for_mesh, voxelize

from .test_surface_meshio import box_mesh, octa_sphere


def rotation(axis, angle: float) -> np.ndarray:
    a = np.asarray(axis, float)
    a /= np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def centres(g: ImageGeometry) -> np.ndarray:
    """World LPS position of every voxel centre, shape (nk, nj, ni, 3)."""
    kk, jj, ii = np.indices(g.shape)
    return g.ijk_to_world_points(np.stack([ii, jj, kk], axis=-1).astype(float))


def chord_error(v: np.ndarray, f: np.ndarray, center, radius: float) -> float:
    """How far inside the sphere the mesh's faces reach (all vertices lie on the sphere)."""
    t = v[f] - center
    n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return float(radius - np.abs(np.einsum("ij,ij->i", n, t[:, 0])).min())


def blob_mesh() -> tuple[np.ndarray, np.ndarray]:
    """A random-ish closed, consistently oriented surface (marching cubes of a blob)."""
    from scipy import ndimage
    from skimage.measure import marching_cubes

    rng = np.random.default_rng(7)
    noise = ndimage.gaussian_filter(rng.random((36, 36, 36)), 3.0)
    x = np.linspace(-1, 1, 36)
    xx, yy, zz = np.meshgrid(x, x, x, indexing="ij")
    field = 25.0 * (noise - noise.mean()) + 0.6 - np.sqrt(xx ** 2 + yy ** 2 + zz ** 2)
    field = np.pad(field, 1, constant_values=-1.0)
    v, f, _, _ = marching_cubes(field, 0.0, spacing=(1.3, 1.1, 0.9))
    from gpuseg.surface.topology import check_closed

    check_closed(v, f, "blob")
    return v.astype(np.float64) + (-20.0, -15.0, -10.0), f.astype(np.int64)


def vtk_stencil(vertices: np.ndarray, faces: np.ndarray, g: ImageGeometry) -> np.ndarray:
    """VTK's vtkPolyDataToImageStencil in the geometry's index space (as Slicer does)."""
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray, vtk_to_numpy

    ijk = np.ascontiguousarray(g.world_to_ijk_points(vertices))
    pd = vtk.vtkPolyData()
    pts = vtk.vtkPoints()
    pts.SetData(numpy_to_vtk(ijk, deep=True))
    pd.SetPoints(pts)
    cells = vtk.vtkCellArray()
    cells.SetData(numpy_to_vtkIdTypeArray(np.arange(len(faces) + 1, dtype=np.int64) * 3, deep=True),
                  numpy_to_vtkIdTypeArray(np.ascontiguousarray(faces.reshape(-1), dtype=np.int64), deep=True))
    pd.SetPolys(cells)
    return vtk_index_stencil(pd, g.shape)


def vtk_index_stencil(polydata, shape) -> np.ndarray:
    """vtkPolyDataToImageStencil + vtkImageStencilToImage of a polydata already in (i, j, k)
    index space, on a grid of numpy ``shape`` (k, j, i): the voxels whose centres are inside."""
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    st = vtk.vtkPolyDataToImageStencil()
    st.SetInputData(polydata)
    st.SetOutputOrigin(0, 0, 0)
    st.SetOutputSpacing(1, 1, 1)
    nk, nj, ni = shape
    st.SetOutputWholeExtent(0, ni - 1, 0, nj - 1, 0, nk - 1)
    img = vtk.vtkImageStencilToImage()
    img.SetInputConnection(st.GetOutputPort())
    img.SetInsideValue(1)
    img.SetOutsideValue(0)
    img.SetOutputScalarTypeToUnsignedChar()
    img.Update()
    return vtk_to_numpy(img.GetOutput().GetPointData().GetScalars()).reshape(shape).astype(bool)


# --------------------------------------------------------------------------------------
# voxelize
# --------------------------------------------------------------------------------------

def centred_geometry(shape, spacing, direction, center) -> ImageGeometry:
    """A grid whose middle is at ``center`` (LPS)."""
    g = ImageGeometry(shape, spacing, (0.0, 0.0, 0.0), direction)
    mid = g.ijk_to_world_points((np.array(g.size) - 1) / 2.0)
    return ImageGeometry(shape, spacing, np.asarray(center) - mid + 0.123, direction)


@pytest.mark.parametrize("geometry", [
    ImageGeometry((40, 44, 48), spacing=(1.0, 1.0, 1.0), origin=(-24.3, -22.1, -20.7)),
    centred_geometry((26, 46, 34), (1.3, 0.9, 1.6), rotation((1, 2, 3), 0.7), (1.2, -0.7, 0.4)),
], ids=["identity", "anisotropic-rotated"])
def test_sphere_matches_analytic(geometry: ImageGeometry) -> None:
    center, radius = np.array([1.2, -0.7, 0.4]), 17.0
    v, f = octa_sphere(radius, 4, center)
    ijk = geometry.world_to_ijk_points(v)        # the whole sphere lies in the grid
    assert np.all(ijk > 0) and np.all(ijk < np.array(geometry.size) - 1)
    err = chord_error(v, f, center, radius)
    assert 0 < err < 0.2
    mask = voxelize(v, f, geometry)
    assert mask.shape == geometry.shape and mask.dtype == bool
    r = np.linalg.norm(centres(geometry) - center, axis=-1)
    sure_in = r < radius - err - 1e-9
    sure_out = r > radius + 1e-9
    assert np.all(mask[sure_in]) and not np.any(mask[sure_out])
    assert sure_in.sum() > 5000
    # the undecided shell is thin: the volume is right to a fraction of a percent
    vol = mask.sum() * geometry.voxel_volume
    assert abs(vol - 4 / 3 * np.pi * (radius - err / 2) ** 3) < 0.01 * vol


def test_box_ties_exact_count() -> None:
    """A box whose faces, edges and vertices lie exactly on voxel centres (every ray is a tie)."""
    g = ImageGeometry((10, 11, 12))
    v, f = box_mesh((2, 3, 4), (7, 6, 8))     # LPS = (i, j, k) for this geometry
    mask = voxelize(v, f, g)
    expected = np.zeros(g.shape, bool)
    expected[4:8, 3:6, 2:7] = True             # half-open [lo, hi) along every axis
    np.testing.assert_array_equal(mask, expected)
    assert mask.sum() == 5 * 3 * 4


@pytest.mark.parametrize("variant", ["other-diagonals", "rotated-corners", "reversed-winding", "shuffled"])
def test_box_ties_independent_of_triangulation(variant: str) -> None:
    g = ImageGeometry((10, 11, 12))
    v, f = box_mesh((2, 3, 4), (7, 6, 8))
    rng = np.random.default_rng(3)
    if variant == "other-diagonals":
        quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
        f = np.array([t for a, b, c, d in quads for t in ((a, b, d), (b, c, d))])
    elif variant == "rotated-corners":
        f = np.roll(f, 1, axis=1)
    elif variant == "reversed-winding":
        f = f[:, ::-1]
    else:
        perm = rng.permutation(len(v))
        inv = np.argsort(perm)
        v, f = v[perm], inv[f][rng.permutation(len(f))]
    assert voxelize(v, f, g).sum() == 60


def test_octahedron_rays_through_edges_and_vertices() -> None:
    """Rays through shared edges and vertices are counted once: no row streaks, exact shape."""
    g = ImageGeometry((21, 23, 25))
    c = np.array([12.5, 11.0, 10.0])          # i centre between voxel centres, (j, k) on a centre
    r = 7.0
    v = c + r * np.array([(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)], float)
    f = np.array([(0, 2, 4), (2, 1, 4), (1, 3, 4), (3, 0, 4), (2, 0, 5), (1, 2, 5), (3, 1, 5), (0, 3, 5)])
    mask = voxelize(v, f, g)
    kk, jj, ii = np.indices(g.shape)
    # the tie rule: a centre sits at (i, j + e_j, k + e_k) with e_j >> e_k > 0
    d = np.abs(ii - c[0]) + np.abs(jj - c[1] + 1e-3) + np.abs(kk - c[2] + 1e-6)
    np.testing.assert_array_equal(mask, d < r)


def test_agrees_with_vtk_stencil_on_blob() -> None:
    pytest.importorskip("vtk")
    pytest.importorskip("skimage")
    v, f = blob_mesh()
    geoms = [ImageGeometry((45, 50, 40), spacing=(1.1, 0.8, 1.3), origin=(-22.0, -18.0, -9.0),
                           direction=rotation((1, 2, 3), 0.4)),
             ImageGeometry((30, 45, 50), spacing=(1.0, 1.0, 1.7), origin=(-21.0, -16.0, -11.0))]
    for g in geoms:
        mask = voxelize(v, f, g)
        ref = vtk_stencil(v, f, g)
        assert ref.sum() > 1000
        np.testing.assert_array_equal(mask, ref)


def test_mesh_partly_outside_is_clipped() -> None:
    v, f = octa_sphere(9.0, 3, (0.3, 0.2, -0.1))
    big = ImageGeometry((30, 32, 34), origin=(-15.0, -16.0, -17.0), spacing=(1.0, 0.9, 1.1))
    full = voxelize(v, f, big)
    # a window that cuts the sphere on every side, with its corner at the sphere's centre
    ext = Extent(14, 30, 17, 32, 15, 34)
    sub = voxelize(v, f, big.sub_geometry(ext))
    np.testing.assert_array_equal(sub, full[ext.slices])
    assert 0 < sub.sum() < full.sum()
    # entirely outside: nothing; enclosing the whole grid: everything
    far = ImageGeometry((5, 5, 5), origin=(100.0, 0.0, 0.0))
    assert not voxelize(v, f, far).any()
    inside = ImageGeometry((3, 4, 5), origin=(-1.0, -1.0, -1.0))
    assert voxelize(v, f, inside).all()


def test_empty_inputs() -> None:
    g = ImageGeometry((4, 5, 6))
    assert not voxelize(np.zeros((0, 3)), np.zeros((0, 3), np.int64), g).any()
    v, _ = box_mesh()
    assert voxelize(v, np.zeros((0, 3), np.int64), g).shape == (4, 5, 6)
    assert voxelize(*box_mesh(), ImageGeometry((0, 5, 6))).shape == (0, 5, 6)


def test_open_mesh_is_deterministic() -> None:
    g = ImageGeometry((8, 8, 8))
    v, f = box_mesh((1.5, 1.5, 1.5), (5.5, 5.5, 5.5))
    keep = np.ones(len(f), bool)
    keep[10:12] = False                        # remove the x = hi side: rows run to the end
    mask = voxelize(v, f[keep], g)
    expected = np.zeros(g.shape, bool)
    expected[2:6, 2:6, 2:] = True
    np.testing.assert_array_equal(mask, expected)


def test_invalid_inputs() -> None:
    g = ImageGeometry((4, 4, 4))
    v, f = box_mesh()
    with pytest.raises(InvalidInputError, match="face indices"):
        voxelize(v, f + 8, g)
    with pytest.raises(InvalidInputError, match="NaN"):
        voxelize(v * np.nan, f, g)
    with pytest.raises(InvalidInputError, match="shape"):
        voxelize(v[:, :2], f, g)
    with pytest.raises(InvalidInputError, match="ImageGeometry"):
        voxelize(v, f, (4, 4, 4))
    with pytest.raises(InvalidInputError, match="too far"):
        voxelize(v + 1e9, f, g)


# --------------------------------------------------------------------------------------
# reference geometry
# --------------------------------------------------------------------------------------

def test_reference_geometry_mirrors_slicer() -> None:
    v, _ = box_mesh((-10.0, 5.0, 2.0), (30.0, 25.0, 12.0))   # 40 x 20 x 10 mm
    g = reference_geometry_for_mesh(v)
    s = (40 * 20 * 10 / 250 ** 3) ** (1 / 3)
    np.testing.assert_allclose(g.spacing, (s, s, s))
    assert g.size == tuple(int(np.ceil(e / s)) + 1 for e in (40, 20, 10))
    # Slicer works in RAS: identity there is diag(-1, -1, 1) in LPS, origin at the RAS minimum corner
    np.testing.assert_allclose(g.direction, np.diag([-1.0, -1.0, 1.0]))
    np.testing.assert_allclose(g.origin, (30.0, 25.0, 2.0))
    ijk = g.world_to_ijk_points(v)
    assert np.all(ijk >= -1e-9) and np.all(ijk <= np.array(g.size) - 1 + 1e-9)
    assert 0.9 * 250 ** 3 < g.n_voxels < 1.1 * 250 ** 3

    lps = reference_geometry_for_mesh(v, frame="lps", margin=2, target_voxels=100 ** 3)
    s2 = (40 * 20 * 10 / 100 ** 3) ** (1 / 3)
    np.testing.assert_allclose(lps.direction, np.eye(3))
    np.testing.assert_allclose(lps.origin, np.array([-10.0, 5.0, 2.0]) - 2 * s2)
    assert lps.size == tuple(int(np.ceil(e / s2)) + 1 + 4 for e in (40, 20, 10))


def test_reference_geometry_flat_and_point() -> None:
    flat = np.array([[0, 0, 0], [10, 0, 0], [0, 40, 0]], float)
    g = reference_geometry_for_mesh(flat)
    s = (10 * 40 / (250 ** 3) ** (2 / 3)) ** 0.5
    np.testing.assert_allclose(g.spacing, (s,) * 3)
    assert g.shape[0] == 1
    assert reference_geometry_for_mesh(np.ones((1, 3))).shape == (1, 1, 1)
    with pytest.raises(InvalidInputError):
        reference_geometry_for_mesh(np.zeros((0, 3)))
    with pytest.raises(InvalidInputError):
        reference_geometry_for_mesh(flat, target_voxels=0)


def test_reference_geometry_voxelizes_whole_mesh() -> None:
    center, radius = np.array([5.0, -3.0, 2.0]), 12.0
    v, f = octa_sphere(radius, 3, center)
    g = reference_geometry_for_mesh(v, target_voxels=60 ** 3, margin=1)
    mask = voxelize(v, f, g)
    assert not mask[[0, -1]].any() and not mask[:, [0, -1]].any() and not mask[:, :, [0, -1]].any()
    vol = mask.sum() * g.voxel_volume
    assert abs(vol - 4 / 3 * np.pi * radius ** 3) < 0.03 * vol
