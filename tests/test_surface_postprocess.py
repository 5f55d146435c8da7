"""Windowed-sinc smoothing, decimation and normals against VTK (the filters Slicer runs)."""

from __future__ import annotations

import numpy as np
import pytest

from gpuseg.errors import InvalidInputError
from gpuseg.mask import Mask
from gpuseg.surface import Surface, mesh_index_space
from gpuseg.surface.postprocess import (decimate, filter_coefficients, slicer_smoothing_parameters, vertex_normals,
                                        windowed_sinc)

vtk = pytest.importorskip("vtk")
ndimage = pytest.importorskip("scipy.ndimage")
from vtk.util import numpy_support as vtk_np  # noqa: E402


def _poly(v, f):
    pts = vtk.vtkPoints()
    pts.SetData(vtk_np.numpy_to_vtk(np.ascontiguousarray(v, dtype=np.float64), deep=1))
    cells = vtk.vtkCellArray()
    offsets = np.arange(0, 3 * len(f) + 1, 3, dtype=np.int64)
    cells.SetData(vtk_np.numpy_to_vtkIdTypeArray(offsets, deep=1),
                  vtk_np.numpy_to_vtkIdTypeArray(np.ascontiguousarray(f, dtype=np.int64).ravel(), deep=1))
    p = vtk.vtkPolyData()
    p.SetPoints(pts)
    p.SetPolys(cells)
    return p


def _blob(seed=1, shape=(30, 40, 50)):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape), 2) > 0.5


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.0])
def test_windowed_sinc_matches_vtk_with_slicers_settings(factor):
    v, f = mesh_index_space(Mask.from_numpy(_blob(), backend="cpu"))
    passband, iterations = slicer_smoothing_parameters(factor)
    ref = _vtk_sinc(v, f, passband, iterations)
    got = windowed_sinc(v, f, passband=passband, iterations=iterations)
    # VTK keeps float32 points between iterations; we stay in float64
    assert np.abs(got - ref).max() < 1e-4
    assert np.abs(got - v).max() > (0.01 if factor == 0 else 0.05)  # it did smooth (pass band 1 barely)


def test_slicer_parameters_and_coefficients():
    assert slicer_smoothing_parameters(0.5) == (pytest.approx(0.01), 40)
    assert slicer_smoothing_parameters(0) == (1.0, 20)
    assert slicer_smoothing_parameters(1) == (pytest.approx(1e-4), 60)
    for bad in (-0.1, 1.5, float("nan"), "x"):
        with pytest.raises(InvalidInputError):
            slicer_smoothing_parameters(bad)
    c = filter_coefficients(0.01, 40)
    # the filter is 1 at the pass band (the Newton offset's purpose) and at zero frequency ~1
    theta = np.arccos(1 - 0.005)
    assert abs(c[0] + np.dot(c[1:], np.cos(np.arange(1, 41) * theta)) - 1) < 1e-3


def test_open_boundary_vertices_stay_and_empty_input():
    # an open mesh: a grid of triangles in a plane, bumped in the middle
    n = 8
    jj, ii = np.mgrid[:n, :n]
    v = np.stack([ii.ravel(), jj.ravel(), np.zeros(n * n)], 1).astype(np.float64)
    v[(n * n) // 2 + n // 2, 2] = 3.0
    quads = [(j * n + i, j * n + i + 1, (j + 1) * n + i + 1, (j + 1) * n + i) for j in range(n - 1) for i in range(n - 1)]
    f = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    out = windowed_sinc(v, f, passband=0.01, iterations=40)
    edge = (v[:, 0] == 0) | (v[:, 0] == n - 1) | (v[:, 1] == 0) | (v[:, 1] == n - 1)
    np.testing.assert_array_equal(out[edge], v[edge])
    assert out[(n * n) // 2 + n // 2, 2] < 3.0
    e = windowed_sinc(np.zeros((0, 3)), np.zeros((0, 3), np.int32), passband=0.1, iterations=20)
    assert e.shape == (0, 3)
    with pytest.raises(InvalidInputError):
        windowed_sinc(v, f, passband=3, iterations=20)


def test_vertex_normals_match_vtk():
    v, f = mesh_index_space(Mask.from_numpy(_blob(2), backend="cpu"))
    nm = vtk.vtkPolyDataNormals()
    nm.SetInputData(_poly(v, f))
    nm.SplittingOff()
    nm.ConsistencyOn()
    nm.ComputePointNormalsOn()
    nm.Update()
    ref = vtk_np.vtk_to_numpy(nm.GetOutput().GetPointData().GetNormals())
    np.testing.assert_allclose(vertex_normals(v, f), ref, atol=1e-5)
    # outward: on a sphere, normals point away from the centre
    k, j, i = np.ogrid[:20, :20, :20]
    sv, sf = mesh_index_space(Mask.from_numpy((k - 10) ** 2 + (j - 10) ** 2 + (i - 10) ** 2 <= 49, backend="cpu"))
    radial = sv - np.array([10, 10, 10])
    assert (np.einsum("ij,ij->i", vertex_normals(sv, sf), radial) > 0).all()


def test_decimation_keeps_a_closed_surface():
    k, j, i = np.ogrid[:30, :30, :30]
    v, f = mesh_index_space(Mask.from_numpy((k - 15) ** 2 + (j - 15) ** 2 + (i - 15) ** 2 <= 144, backend="cpu"))
    ref = Surface(v, f)
    dv, df = decimate(v, f, 0.8)
    dec = Surface(dv, df)
    assert 0.15 * ref.n_faces < dec.n_faces < 0.3 * ref.n_faces
    assert dec.is_watertight()
    assert dec.volume() == pytest.approx(ref.volume(), rel=0.02)
    same_v, same_f = decimate(v, f, 0.0)
    assert same_f is f or np.array_equal(same_f, f)
    for bad in (1.0, -0.2, float("nan")):
        with pytest.raises(InvalidInputError):
            decimate(v, f, bad)


def _vtk_sinc(v, f, passband, iterations):
    sm = vtk.vtkWindowedSincPolyDataFilter()
    sm.SetInputData(_poly(v, f))
    sm.SetNumberOfIterations(iterations)
    sm.SetPassBand(passband)
    sm.BoundarySmoothingOff()
    sm.FeatureEdgeSmoothingOff()
    sm.NonManifoldSmoothingOn()
    sm.NormalizeCoordinatesOn()
    sm.Update()
    return vtk_np.vtk_to_numpy(sm.GetOutput().GetPoints().GetData()).astype(np.float64)


@pytest.mark.parametrize("iterations", [2, 3, 5])
def test_few_iterations_match_vtk(iterations):
    """The pass-band search runs in VTK's order of operations, so it ends where VTK's does even
    with few iterations, where it is sensitive to rounding."""
    v, f = mesh_index_space(Mask.from_numpy(_blob(3, (20, 24, 30)), backend="cpu"))
    got = windowed_sinc(v, f, passband=0.1, iterations=iterations)
    assert np.abs(got - _vtk_sinc(v, f, 0.1, iterations)).max() < 1e-4


def test_non_manifold_mesh_matches_vtk():
    """Surface nets meshes have edges of four triangles; VTK weighs a neighbour once per triangle."""
    from gpuseg.surface.nets import compact, surface_nets_index_space

    rng = np.random.default_rng(2)
    vol = rng.random((12, 14, 40)) < 0.35
    verts, (faces,) = surface_nets_index_space([Mask.from_numpy(vol, backend="cpu")])
    v, f = compact(verts, faces)
    assert not Surface(v, f).edge_use_counts().max() == 2  # non-manifold indeed
    got = windowed_sinc(v, f, passband=0.01, iterations=40)
    assert np.abs(got - _vtk_sinc(v, f, 0.01, 40)).max() < 1e-4


def test_unstable_filter_is_an_error():
    with pytest.raises(InvalidInputError, match="does not converge"):
        filter_coefficients(1.0, 2)
