"""Surface nets on packed masks: against VTK's vtkSurfaceNets3D, across backends, shared boundaries."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import gpuseg
from gpuseg.errors import GeometryMismatchError, InvalidInputError
from gpuseg.geometry import ImageGeometry
from gpuseg.mask import Mask
from gpuseg.surface import Surface, closed_surface, segment_surfaces
from gpuseg.surface.nets import compact, surface_nets_index_space

from .conftest import shared_file

vtk = pytest.importorskip("vtk")
from vtk.util import numpy_support as vtk_np  # noqa: E402


def vtk_nets(labels: np.ndarray, values):
    p = np.pad(labels.astype(np.uint16), 1)
    img = vtk.vtkImageData()
    img.SetDimensions(p.shape[2], p.shape[1], p.shape[0])
    img.GetPointData().SetScalars(vtk_np.numpy_to_vtk(p.ravel(), deep=1))
    sn = vtk.vtkSurfaceNets3D()
    sn.SetInputData(img)
    for n, v in enumerate(values):
        sn.SetValue(n, int(v))
    sn.SmoothingOff()
    sn.SetOutputMeshTypeToQuads()
    sn.Update()
    out = sn.GetOutput()
    pts = vtk_np.vtk_to_numpy(out.GetPoints().GetData()).astype(np.float64) - 1
    quads = vtk_np.vtk_to_numpy(out.GetPolys().GetConnectivityArray()).reshape(-1, 4)
    sides = vtk_np.vtk_to_numpy(out.GetCellData().GetScalars()).reshape(-1, 2)
    return pts, quads, sides


def balanced(faces: np.ndarray) -> bool:
    """Every directed edge is matched by as many uses in the opposite direction (closed, oriented)."""
    d = Counter(map(tuple, np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).tolist()))
    return all(d[(a, b)] == d[(b, a)] for (a, b) in d)


def check_against_vtk(labels: np.ndarray, backend="cpu"):
    values = [int(v) for v in np.unique(labels) if v]
    masks = [Mask.from_numpy(labels == v, backend=backend).cropped() for v in values]
    verts, faces = surface_nets_index_space(masks)
    pts, quads, sides = vtk_nets(labels, values)
    used = np.unique(np.concatenate([f.ravel() for f in faces])) if faces else np.zeros(0, int)
    assert used.size == verts.shape[0]  # every vertex is used
    np.testing.assert_array_equal(np.unique(verts.astype(np.float64), axis=0),
                                  np.unique(pts[np.unique(quads)], axis=0))
    for v, f in zip(values, faces):
        assert f.shape[0] == 2 * int((sides == v).any(axis=1).sum())
        assert balanced(f)
        s = Surface(*compact(verts, f))
        assert s.volume() == pytest.approx(float((labels == v).sum()), rel=1e-9)  # the voxels' own boundary
    return verts, faces


@pytest.mark.parametrize("shape", [(6, 7, 40), (1, 1, 1), (3, 5, 33), (4, 2, 64)])
def test_random_labels_match_vtk(shape):
    rng = np.random.default_rng(sum(shape))
    labels = rng.integers(0, 4, shape)
    check_against_vtk(labels)


def test_real_totalsegmentator_labels_match_vtk():
    nib = pytest.importorskip("nibabel")
    lab = np.asarray(nib.load(shared_file("totalseg", "example_seg.nii.gz")).dataobj).transpose(2, 1, 0)
    check_against_vtk(lab[:, :, :])


def test_backends_identical(backend):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, (7, 9, 70))
    ref_v, ref_f = surface_nets_index_space([Mask.from_numpy(labels == v, backend="cpu").cropped() for v in (1, 2)])
    v, f = surface_nets_index_space([Mask.from_numpy(labels == v, backend=backend).cropped() for v in (1, 2)])
    np.testing.assert_array_equal(v, ref_v)
    for a, b in zip(f, ref_f):
        np.testing.assert_array_equal(a, b)


def _two_touching_boxes():
    g = ImageGeometry((16, 18, 40), spacing=(0.8, 0.8, 1.5))
    a = np.zeros(g.shape, bool)
    b = np.zeros(g.shape, bool)
    a[3:12, 4:14, 5:20] = True
    b[3:12, 4:14, 20:34] = True
    seg = gpuseg.Segmentation(g, backend="cpu")
    seg.add_segment(Mask.from_numpy(a, g, backend="cpu").cropped(), name="a")
    seg.add_segment(Mask.from_numpy(b, g, backend="cpu").cropped(), name="b")
    return seg


def _shared_vertices(sa: Surface, sb: Surface) -> np.ndarray:
    pa = {tuple(p) for p in sa.vertices.round(4).tolist()}
    return np.array([p for p in sb.vertices.round(4).tolist() if tuple(p) in pa])


def test_joint_smoothing_keeps_a_shared_boundary():
    pytest.importorskip("scipy")
    seg = _two_touching_boxes()
    joint = segment_surfaces(seg, smoothing=0.5, method="surface-nets", joint_smoothing=True, normals=False)
    sep = segment_surfaces(seg, smoothing=0.5, method="surface-nets", joint_smoothing=False, normals=False)
    raw = segment_surfaces(seg, smoothing=0, method="surface-nets", normals=False)
    n_interface = len(_shared_vertices(raw[0], raw[1]))
    assert n_interface > 100
    # jointly smoothed, the interface vertices stay identical in both surfaces ...
    assert len(_shared_vertices(joint[0], joint[1])) == n_interface
    # ... smoothed one by one, they drift apart
    assert len(_shared_vertices(sep[0], sep[1])) < n_interface // 2
    for s in joint + sep:
        assert balanced(s.faces)


def test_cache_of_a_joint_group_is_recomputed_when_one_segment_changes():
    seg = _two_touching_boxes()
    kw = dict(smoothing=0.5, method="surface-nets", joint_smoothing=True, normals=False)
    first = segment_surfaces(seg, **kw)
    again = segment_surfaces(seg, **kw)
    assert again[0] is first[0] and again[1] is first[1]
    seg.set_mask("a", Mask.zeros(seg.geometry, backend="cpu"))
    after = segment_surfaces(seg, **kw)
    assert after[0].is_empty() and after[1] is not first[1]
    assert after[1].n_faces == first[1].n_faces
    # without joint smoothing a segment's surface does not depend on the others: it stays cached
    plain = dict(smoothing=0, method="surface-nets", normals=False)
    one = segment_surfaces(seg, **plain)
    seg.set_mask("a", seg["b"].mask.copy())
    two = segment_surfaces(seg, **plain)
    assert two[1] is one[1] and two[0] is not one[0]


def test_closed_surface_surface_nets_world_volume():
    g = ImageGeometry((10, 12, 50), spacing=(0.5, 0.7, 2.0), origin=(5.0, 6.0, 7.0))
    vol = np.zeros(g.shape, bool)
    vol[2:8, 3:9, 10:41] = True
    s = closed_surface(Mask.from_numpy(vol, g, backend="cpu"), method="surface-nets", normals=True)
    assert s.volume() == pytest.approx(vol.sum() * 0.5 * 0.7 * 2.0, rel=1e-6)
    assert s.is_watertight() and s.euler_characteristic() == 2
    assert s.normals is not None and s.normals.shape == s.vertices.shape


def test_errors():
    g = ImageGeometry((4, 4, 4))
    with pytest.raises(InvalidInputError, match="at least one mask"):
        surface_nets_index_space([])
    with pytest.raises(GeometryMismatchError):
        surface_nets_index_space([Mask.zeros(g, backend="cpu"), Mask.zeros(ImageGeometry((4, 4, 5)), backend="cpu")])
    v, f = surface_nets_index_space([Mask.zeros(g, backend="cpu")])
    assert v.shape == (0, 3) and f[0].shape == (0, 3)
