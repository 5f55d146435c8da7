"""Marching cubes on packed masks: against VTK's discrete flying edges, across backends, topology."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import gpuseg
from gpuseg.errors import InvalidInputError
from gpuseg.geometry import ImageGeometry
from gpuseg.mask import Mask
from gpuseg.surface import Surface, closed_surface, mesh_index_space, segment_surfaces
from gpuseg.surface._tables import CORNERS, EDGES, triangle_table

from .conftest import ODD_SHAPES, shared_file

vtk = pytest.importorskip("vtk")
from vtk.util import numpy_support as vtk_np  # noqa: E402


def vtk_flying_edges(vol: np.ndarray, pad: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """VTK's vtkDiscreteFlyingEdges3D of a (k, j, i) boolean volume, in the volume's index space."""
    v = np.pad(vol.astype(np.uint8), 1) if pad else vol.astype(np.uint8)
    img = vtk.vtkImageData()
    img.SetDimensions(v.shape[2], v.shape[1], v.shape[0])
    img.GetPointData().SetScalars(vtk_np.numpy_to_vtk(v.ravel(), deep=1))
    fe = vtk.vtkDiscreteFlyingEdges3D()
    fe.SetInputData(img)
    fe.SetValue(0, 1)
    fe.ComputeNormalsOff()
    fe.ComputeGradientsOff()
    fe.ComputeScalarsOff()
    fe.Update()
    out = fe.GetOutput()
    if out.GetNumberOfCells() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    pts = vtk_np.vtk_to_numpy(out.GetPoints().GetData()).astype(np.float64) - (1 if pad else 0)
    tri = vtk_np.vtk_to_numpy(out.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    return pts, tri


def index_surface(vol: np.ndarray, backend="cpu") -> Surface:
    v, f = mesh_index_space(Mask.from_numpy(vol, backend=backend))
    return Surface(v, f)


def assert_matches_vtk(vol: np.ndarray, rtol: float = 1e-9) -> Surface:
    s = index_surface(vol)
    pv, pf = vtk_flying_edges(vol)
    ref = Surface(pv, pf)
    assert s.n_faces == ref.n_faces
    assert s.n_vertices == ref.n_vertices
    # the same vertices (edge midpoints), each once
    got = np.unique(s.vertices.astype(np.float64), axis=0)
    assert got.shape[0] == s.n_vertices
    np.testing.assert_array_equal(got, np.unique(pv, axis=0))
    assert s.area() == pytest.approx(ref.area(), rel=rtol, abs=1e-9)
    assert s.volume() == pytest.approx(ref.volume(), rel=rtol, abs=1e-9)
    assert s.is_watertight()
    return s


# --- the case table -------------------------------------------------------------------
def test_every_case_has_vtks_triangle_count():
    counts, _ = triangle_table()
    for case in range(256):
        cube = np.zeros((2, 2, 2), bool)
        for c in range(8):
            if (case >> c) & 1:
                i, j, k = CORNERS[c]
                cube[k, j, i] = True
        assert vtk_flying_edges(cube, pad=False)[1].shape[0] == counts[case], case


def test_every_case_is_closed_and_oriented_alone():
    for case in range(1, 255):
        cube = np.zeros((2, 2, 2), bool)
        for c in range(8):
            if (case >> c) & 1:
                i, j, k = CORNERS[c]
                cube[k, j, i] = True
        s = index_surface(cube)
        assert s.is_watertight(), case
        assert s.volume() > 0, case


def test_table_only_uses_crossed_edges():
    counts, table = triangle_table()
    for case in range(256):
        used = set(table[case, : counts[case]].ravel().tolist())
        crossed = {e for e, (a, b) in enumerate(EDGES) if ((case >> a) & 1) != ((case >> b) & 1)}
        assert used == crossed, case


# --- against VTK ----------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 6, 7), (9, 13, 70), (3, 2, 33), (1, 1, 1), (2, 3, 31)])
@pytest.mark.parametrize("density", [0.1, 0.5, 0.9])
def test_random_masks_match_vtk(shape, density):
    rng = np.random.default_rng(hash((shape, density)) % 2**32)
    assert_matches_vtk(rng.random(shape) < density)


def test_smooth_blobs_match_vtk():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(7)
    vol = ndimage.gaussian_filter(rng.random((40, 50, 67)), 2) > 0.5
    assert_matches_vtk(vol)


def test_real_ct_bone_matches_vtk():
    nib = pytest.importorskip("nibabel")
    ct = np.asarray(nib.load(shared_file("totalseg", "example_ct.nii.gz")).dataobj).transpose(2, 1, 0)
    for hu in (200, 400):
        s = assert_matches_vtk(ct > hu)
        assert s.n_faces > 10_000


@settings(max_examples=40, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 40))))
def test_any_mask_is_watertight_and_matches_vtk(vol):
    s = assert_matches_vtk(vol)
    if vol.any():
        assert s.volume() > 0
    else:
        assert s.is_empty()


# --- backends ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ODD_SHAPES + [(7, 9, 95)])
def test_backends_give_identical_arrays(backend, shape, rng):
    vol = rng.random(shape) < 0.45
    ref_v, ref_f = mesh_index_space(Mask.from_numpy(vol, backend="cpu"))
    v, f = mesh_index_space(Mask.from_numpy(vol, backend=backend))
    np.testing.assert_array_equal(v, ref_v)
    np.testing.assert_array_equal(f, ref_f)
    assert f.dtype == np.int32


def test_backends_identical_on_an_offset_box(backend, rng):
    """A mask whose box starts inside the grid (k0, j0, w0 > 0) meshes at absolute indices."""
    g = ImageGeometry((20, 30, 130))
    vol = np.zeros(g.shape, bool)
    vol[5:12, 9:20, 70:101] = rng.random((7, 11, 31)) < 0.6
    m = Mask.from_numpy(vol, g, backend=backend).cropped()
    assert m.box[0] > 0 and m.box[2] > 0
    v, f = mesh_index_space(m)
    rv, rf = mesh_index_space(Mask.from_numpy(vol, g, backend="cpu"))
    np.testing.assert_array_equal(v, rv)
    np.testing.assert_array_equal(f, rf)
    pv, _ = vtk_flying_edges(vol)
    np.testing.assert_array_equal(np.unique(v.astype(np.float64), axis=0), np.unique(pv, axis=0))


# --- topology and geometry ----------------------------------------------------------------
def _ball(shape, center, radius):
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (k - center[0]) ** 2 + (j - center[1]) ** 2 + (i - center[2]) ** 2 <= radius**2


def test_euler_characteristic_of_known_shapes():
    sphere = _ball((24, 24, 24), (12, 12, 12), 8)
    assert index_surface(sphere).euler_characteristic() == 2
    k, j, i = np.ogrid[:16, :40, :40]
    ring = (np.sqrt((j - 20.0) ** 2 + (i - 20.0) ** 2) - 12) ** 2 + (k - 8.0) ** 2 <= 16
    torus = index_surface(ring)
    assert torus.is_watertight() and torus.euler_characteristic() == 0
    two = _ball((24, 24, 60), (12, 12, 12), 6) | _ball((24, 24, 60), (12, 12, 45), 6)
    assert index_surface(two).euler_characteristic() == 4
    shell = sphere & ~_ball((24, 24, 24), (12, 12, 12), 4)  # a cavity: outer and inner sphere
    s = index_surface(shell)
    assert s.euler_characteristic() == 4
    assert s.volume() == pytest.approx(index_surface(sphere).volume() - index_surface(
        _ball((24, 24, 24), (12, 12, 12), 4)).volume(), rel=1e-9)


def test_empty_and_full_masks():
    g = ImageGeometry((3, 4, 40))
    empty = closed_surface(Mask.zeros(g, backend="cpu"))
    assert empty.is_empty() and empty.n_vertices == 0 and empty.area() == 0 and empty.volume() == 0
    assert empty.normals is not None and empty.normals.shape == (0, 3)
    full = closed_surface(Mask.full(g, backend="cpu"), normals=False)
    assert full.is_watertight() and full.euler_characteristic() == 2
    # a full box is cut at half-voxel corners: volume = box minus the corner/edge bevels
    assert 0 < full.volume() < 3 * 4 * 40


def test_world_coordinates_anisotropic_and_mirrored(rng):
    vol = _ball((20, 22, 24), (10, 11, 12), 7)
    ref = index_surface(vol)
    g = ImageGeometry(vol.shape, spacing=(0.5, 0.8, 2.5), origin=(10.0, -20.0, 30.0))
    s = closed_surface(Mask.from_numpy(vol, g, backend="cpu"), normals=False)
    assert s.volume() == pytest.approx(ref.volume() * 0.5 * 0.8 * 2.5, rel=1e-6)
    np.testing.assert_allclose(s.vertices, ref.vertices * np.array([0.5, 0.8, 2.5]) + [10, -20, 30],
                               rtol=0, atol=1e-5)
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0])
    gm = ImageGeometry.from_matrix(vol.shape, mirror @ g.ijk_to_world)
    sm = closed_surface(Mask.from_numpy(vol, gm, backend="cpu"), normals=False)
    assert sm.volume() == pytest.approx(s.volume(), rel=1e-6)  # still outward
    assert sm.is_watertight()


def test_parameter_errors():
    m = Mask.from_numpy(np.ones((2, 2, 2), bool), backend="cpu")
    for bad in (1.5, float("nan"), "x", -2):
        with pytest.raises(InvalidInputError, match="smoothing factor"):
            closed_surface(m, smoothing=bad)
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(InvalidInputError, match="decimation factor"):
            closed_surface(m, decimation=bad)
    with pytest.raises(InvalidInputError, match="unknown surface method"):
        closed_surface(m, method="dual-contouring")
    with pytest.raises(InvalidInputError, match="expected a Mask"):
        mesh_index_space(np.ones((2, 2, 2), bool))


def test_segment_surfaces_cache_and_invalidation():
    g = ImageGeometry((12, 12, 40), spacing=(1.0, 1.0, 2.0))
    seg = gpuseg.Segmentation(g, backend="cpu")
    a = seg.add_segment(Mask.from_numpy(_ball(g.shape, (6, 6, 10), 4), g, backend="cpu"), name="a")
    seg.add_segment(Mask.from_numpy(_ball(g.shape, (6, 6, 30), 3), g, backend="cpu"), name="b")
    first = segment_surfaces(seg, smoothing=0, normals=False)
    assert [s.name for s in first] == ["a", "b"] and all(s.is_watertight() for s in first)
    again = segment_surfaces(seg, smoothing=0, normals=False)
    assert again[0] is first[0] and again[1] is first[1]
    editor = gpuseg.Editor(seg, gpuseg.Image.from_numpy(np.zeros(g.shape, np.int16), g, backend="cpu"))
    editor.paint(a.id, [(20, 6, 6)], 6.0, space="ijk")
    after = segment_surfaces(seg, smoothing=0, normals=False)
    assert after[0] is not first[0] and after[1] is first[1]
    assert after[0].volume() > first[0].volume()


@pytest.mark.parametrize("oblique", [False, True])
def test_mask_mesh_mask_round_trip(oblique):
    """The unsmoothed surface encloses exactly the mask's voxel centres: voxelizing it gives the
    mask back, and meshing that again gives the same mesh."""
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(11)
    vol = ndimage.gaussian_filter(rng.random((18, 23, 37)), 1.5) > 0.5
    g = ImageGeometry(vol.shape, spacing=(0.7, 1.1, 2.5), origin=(3.0, -4.0, 5.0))
    if oblique:
        c, s = np.cos(0.4), np.sin(0.4)
        rot = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
        g = ImageGeometry.from_matrix(vol.shape, rot @ g.ijk_to_world)
    m = Mask.from_numpy(vol, g, backend="cpu")
    s1 = closed_surface(m, normals=False)
    back = gpuseg.mesh_to_mask(s1.vertices, s1.faces, g, backend="cpu")
    np.testing.assert_array_equal(back.to_numpy(), vol)
    s2 = closed_surface(back, normals=False)
    np.testing.assert_array_equal(s2.faces, s1.faces)
    np.testing.assert_allclose(s2.vertices, s1.vertices, atol=1e-5)


def test_int64_indices_when_vertices_exceed_int32(backend, rng, monkeypatch):
    """The int64 index path (meshes beyond 2^31 - 1 vertices) gives the same triangles: forced
    here by lowering the threshold, on every backend, for marching cubes and surface nets."""
    import gpuseg.surface.marching as marching
    import gpuseg.surface.nets as nets

    vol = rng.random((6, 9, 45)) < 0.4
    m = Mask.from_numpy(vol, backend=backend)
    v32, f32 = mesh_index_space(m)
    sv32, (sf32,) = nets.surface_nets_index_space([m])
    monkeypatch.setattr(marching, "_INT32_MAX", 10)
    monkeypatch.setattr(nets, "_INT32_MAX", 10)
    v64, f64 = mesh_index_space(m)
    sv64, (sf64,) = nets.surface_nets_index_space([m])
    assert f64.dtype == np.int64 and sf64.dtype == np.int64 and f32.dtype == np.int32
    np.testing.assert_array_equal(v64, v32)
    np.testing.assert_array_equal(f64, f32)
    np.testing.assert_array_equal(sv64, sv32)
    np.testing.assert_array_equal(sf64, sf32)


def test_mesh_to_mask_voxelizes_only_the_mesh_box_with_the_same_result():
    """mesh_to_mask works on the mesh's bounding box; the voxels equal a whole-grid voxelization,
    also for a mesh that leaves the grid and on an oblique grid."""
    trimesh = pytest.importorskip("trimesh")
    from gpuseg.surface.voxelize import voxelize

    c, s = np.cos(0.3), np.sin(0.3)
    m = np.array([[0.8 * c, -1.1 * s, 0, 4.0], [0.8 * s, 1.1 * c, 0, -3.0], [0, 0, 2.0, 1.0], [0, 0, 0, 1.0]])
    g = ImageGeometry.from_matrix((20, 40, 50), m)
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=12.0)
    for centre in ((10.0, 15.0, 20.0), (-2.0, 5.0, 3.0)):  # inside, and across the grid's corner
        v = sphere.vertices + centre
        got = gpuseg.mesh_to_mask(v, sphere.faces, g, backend="cpu").to_numpy()
        want = voxelize(v, sphere.faces, g)
        assert want.any()
        np.testing.assert_array_equal(got, want)
    assert gpuseg.mesh_to_mask(sphere.vertices + 1e4, sphere.faces, g, backend="cpu").count() == 0
