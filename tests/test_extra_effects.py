"""Slicer's SegmentEditorExtraEffects in the Editor: Draw tube and Surface cut, against
independent oracles (brute-force world distances, VTK's splines and subdivision, Qhull's
half-spaces), through masking and undo, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import gpuseg
from gpuseg import Editor, ImageGeometry, Masking, Segmentation
from gpuseg.editor.brush import StrokeLimits
from gpuseg.editor.surface_cut import butterfly_subdivide, hull_surface
from gpuseg.editor.tube import tube_centerline
from gpuseg.errors import InvalidInputError

# an oblique, anisotropic, odd-sized grid
_R = np.linalg.qr(np.array([[0.9, 0.3, -0.2], [0.1, 1.0, 0.4], [-0.3, 0.2, 0.8]]))[0]
_M = np.eye(4)
_M[:3, :3] = _R @ np.diag([0.8, 1.1, 1.7])  # columns: i, j, k steps
_M[:3, 3] = [-12.0, 5.0, 30.0]
G = ImageGeometry.from_matrix((17, 29, 35), _M)


def _centres(geometry):
    nk, nj, ni = geometry.shape
    kk, jj, ii = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    ijk = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], 1).astype(np.float64)
    return geometry.ijk_to_world_points(ijk)


def _brute_tube(geometry, line, r):
    """Voxel centres within r of the polyline ``line``: the minimum over segments of the exact
    point-segment distance (projection parameter clipped to [0, 1])."""
    x = _centres(geometry)
    best = np.full(len(x), np.inf)
    segs = [(line[0], line[0])] if len(line) == 1 else list(zip(line[:-1], line[1:]))
    for a, b in segs:
        d = b - a
        t = np.zeros(len(x)) if not d.any() else np.clip((x - a) @ d / (d @ d), 0, 1)
        best = np.minimum(best, np.linalg.norm(x - a - t[:, None] * d, axis=1))
    return (best <= r).reshape(geometry.shape)


def _scene(backend, seed=3):
    rng = np.random.default_rng(seed)
    a = np.zeros(G.shape, bool)
    a[3:9, 4:15, 6:20] = True
    b = np.zeros(G.shape, bool)
    b[6:14, 10:25, 12:30] = True
    x = rng.random(G.shape) < 0.5
    seg = Segmentation(G, backend=backend)
    for name, arr in (("a", a), ("b", b), ("x", x)):
        seg.add_segment(gpuseg.Mask.from_numpy(arr, G, backend=backend), name=name)
    return seg, a, b, x


def _world(ijk):
    return G.ijk_to_world_points(np.asarray(ijk, np.float64))


# --- draw tube ----------------------------------------------------------------------------------
def test_cardinal_spline_is_vtks_parametric_spline():
    vtk = pytest.importorskip("vtk")
    rng = np.random.default_rng(1)
    for n in (3, 4, 7):
        p = rng.normal(size=(n, 3)) * 20
        pts = vtk.vtkPoints()
        pts.SetDataTypeToDouble()
        for q in p:
            pts.InsertNextPoint(*q)
        sp = vtk.vtkParametricSpline()
        sp.SetPoints(pts)
        line = tube_centerline(p, "cardinal_spline")
        m = 15 * (n - 1)
        assert line.shape == (m + 1, 3)
        want = np.empty_like(line)
        for t in range(m + 1):
            out = [0.0, 0.0, 0.0]
            sp.Evaluate([t / m, 0.0, 0.0], out, [0.0] * 9)
            want[t] = out
        np.testing.assert_allclose(line, want, atol=1e-9)
    np.testing.assert_array_equal(tube_centerline(p, "linear"), p)


@pytest.mark.parametrize("interpolation", ["linear", "cardinal_spline"])
def test_draw_tube_exact_with_masking_and_undo(backend, interpolation):
    seg, a, b, x = _scene(backend)
    ed = Editor(seg)
    ed.masking = Masking("inside", "x", overwrite="overwrite_all")
    pts = _world([[2.3, 3.1, 1.2], [15.7, 12.2, 8.9], [30.1, 20.4, 4.3], [33.0, 27.5, 15.2]])
    r = 2.3
    tube = _brute_tube(G, tube_centerline(pts, interpolation), r)
    assert 200 < tube.sum() < tube.size // 4
    n = ed.draw_tube("a", pts, r, interpolation=interpolation)
    mod = tube & (x | a)
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), a | mod)
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), b & ~mod)
    np.testing.assert_array_equal(seg["x"].mask.to_numpy(), x & ~mod)
    assert n == int(((a | mod) != a).sum() + (b & mod).sum() + (x & mod).sum())
    assert ed.undo()
    for name, arr in (("a", a), ("b", b), ("x", x)):
        np.testing.assert_array_equal(seg[name].mask.to_numpy(), arr)


def test_draw_tube_one_point_is_a_ball_and_clipped(backend):
    seg, a, b, x = _scene(backend)
    ed = Editor(seg)
    ed.masking = Masking(overwrite="allow_overlap")
    p = _world([[0.2, 28.4, 16.6]])  # at the grid's edge: clipped
    ed.draw_tube("b", p, 3.1, space="world")
    want = b | _brute_tube(G, p, 3.1)
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), want)
    assert ed.draw_tube("b", _world([[-40, -40, -40], [-30, -45, -40]]), 1.0) == 0  # misses the grid


def test_draw_tube_errors():
    seg = Segmentation(G)
    seg.add_segment(name="a")
    ed = Editor(seg)
    pts = _world([[1, 1, 1], [10, 10, 10]])
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InvalidInputError, match="radius"):
            ed.draw_tube("a", pts, bad)
    with pytest.raises(InvalidInputError, match="interpolation"):
        ed.draw_tube("a", pts, 1.0, interpolation="kochanek_spline")
    ed.stroke_limits = StrokeLimits(max_tests=1000)
    with pytest.raises(InvalidInputError, match="max_tests"):
        ed.draw_tube("a", pts, 5.0)
    with pytest.raises(gpuseg.errors.UnknownSegmentError):
        Editor(seg).draw_tube("nope", pts, 1.0)


# --- surface cut ----------------------------------------------------------------------------------
def _vtk_poly(vtk, v, f):
    from vtk.util.numpy_support import numpy_to_vtk

    poly = vtk.vtkPolyData()
    pts = vtk.vtkPoints()
    pts.SetDataTypeToDouble()
    pts.SetData(numpy_to_vtk(np.ascontiguousarray(v, np.float64), deep=True))
    poly.SetPoints(pts)
    cells = vtk.vtkCellArray()
    for t in f:
        cells.InsertNextCell(3, [int(c) for c in t])
    poly.SetPolys(cells)
    return poly


def test_butterfly_subdivision_is_vtks():
    vtk = pytest.importorskip("vtk")
    from scipy.spatial import cKDTree
    from vtk.util.numpy_support import vtk_to_numpy

    rng = np.random.default_rng(4)
    for n in (5, 12, 40):
        v, f = hull_surface(rng.normal(size=(n, 3)) * 10, smooth=False)
        mine_v, mine_f = v, f
        for _ in range(3):
            mine_v, mine_f = butterfly_subdivide(mine_v, mine_f)
        bf = vtk.vtkButterflySubdivisionFilter()
        bf.SetNumberOfSubdivisions(3)
        bf.SetInputData(_vtk_poly(vtk, v, f))
        bf.Update()
        theirs = vtk_to_numpy(bf.GetOutput().GetPoints().GetData()).astype(np.float64)
        assert len(theirs) == len(mine_v) and bf.GetOutput().GetNumberOfCells() == len(mine_f)
        # the same point set both ways (VTK numbers the edge points its own way and computes
        # them in single precision)
        assert cKDTree(theirs).query(mine_v)[0].max() < 1e-4
        assert cKDTree(mine_v).query(theirs)[0].max() < 1e-4
    np.testing.assert_array_equal(mine_v[:len(v)], v)  # interpolating: the points stay


def _hull_inside(points):
    from scipy.spatial import ConvexHull

    h = ConvexHull(points)
    x = _centres(G)
    return np.all(x @ h.equations[:, :3].T + h.equations[:, 3] <= 0, axis=1).reshape(G.shape)


_CUT = _world([[4.2, 6.1, 2.2], [28.3, 5.4, 3.1], [16.2, 26.7, 4.4], [14.9, 14.3, 15.6], [22.1, 18.2, 11.8],
               [8.3, 20.9, 9.7], [30.4, 22.1, 6.5]])


@pytest.mark.parametrize("operation", ["set", "fill_inside", "erase_inside", "fill_outside", "erase_outside"])
def test_surface_cut_operations(backend, operation):
    seg, a, b, x = _scene(backend)
    ed = Editor(seg)
    ed.masking = Masking(overwrite="overwrite_all")
    inside = _hull_inside(_CUT)
    assert 500 < inside.sum() < inside.size // 2
    ed.surface_cut("a", _CUT, operation=operation, smooth=False)
    region = {"set": inside, "fill_inside": inside, "erase_inside": inside, "fill_outside": ~inside,
              "erase_outside": ~inside}[operation]
    if operation.startswith("erase"):
        want_a, want_b = a & ~region, b
    elif operation == "set":
        want_a, want_b = region.copy(), b & ~region
    else:
        want_a, want_b = a | region, b & ~region
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want_a)
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), want_b)
    assert ed.undo()
    for name, arr in (("a", a), ("b", b), ("x", x)):
        np.testing.assert_array_equal(seg[name].mask.to_numpy(), arr)


def test_surface_cut_set_inside_x(backend):
    seg, a, b, x = _scene(backend)
    ed = Editor(seg)
    ed.masking = Masking("inside", "x", overwrite="allow_overlap")
    inside = _hull_inside(_CUT)
    ed.surface_cut("a", _CUT, smooth=False)  # default operation: set
    e = x | a
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), np.where(e, inside, a))
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), b)


def test_surface_cut_smoothed_is_vtks_enclosed_points(backend):
    """The smoothed surface (MarkupsToModel's hull + 3 butterfly levels, built with VTK) and
    VTK's own point-in-surface test give the same voxels, up to voxel centres within VTK's
    tolerance of the surface."""
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import numpy_to_vtk, vtk_to_numpy

    seg, a, b, x = _scene(backend)
    mine = Editor(seg).surface_cut_region(_CUT).to_numpy()
    v, f = hull_surface(_CUT, smooth=False)
    bf = vtk.vtkButterflySubdivisionFilter()
    bf.SetNumberOfSubdivisions(3)
    bf.SetInputData(_vtk_poly(vtk, v, f))
    bf.Update()
    pts = vtk.vtkPoints()
    pts.SetData(numpy_to_vtk(np.ascontiguousarray(_centres(G)), deep=True))
    cloud = vtk.vtkPolyData()
    cloud.SetPoints(pts)
    sel = vtk.vtkSelectEnclosedPoints()
    sel.SetInputData(cloud)
    sel.SetSurfaceData(bf.GetOutput())
    sel.SetTolerance(1e-9)
    sel.Update()
    theirs = vtk_to_numpy(sel.GetOutput().GetPointData().GetArray("SelectedPoints")).reshape(G.shape).astype(bool)
    hull = _hull_inside(_CUT)
    assert theirs.sum() > 0.8 * hull.sum() and (theirs & ~hull).any()  # it bulges out of the hull
    assert (mine != theirs).sum() <= 2, (mine != theirs).sum()


def test_surface_cut_errors():
    seg = Segmentation(G)
    seg.add_segment(name="a")
    ed = Editor(seg)
    with pytest.raises(InvalidInputError, match="at least 4"):
        ed.surface_cut("a", _CUT[:3])
    flat = _world([[1, 1, 3], [9, 1, 3], [1, 9, 3], [9, 9, 3], [5, 5, 3]])
    with pytest.raises(InvalidInputError, match="one plane"):
        ed.surface_cut("a", flat)
    with pytest.raises(InvalidInputError, match="operation"):
        ed.surface_cut("a", _CUT, operation="cut")


# --- edit-script steps ------------------------------------------------------------------------------
def test_steps_match_the_editor_methods():
    from gpuseg.steps import run_steps, validate_steps

    pts = _world([[2.3, 3.1, 1.2], [15.7, 12.2, 8.9], [30.1, 20.4, 4.3]])
    seg1, *_ = _scene("cpu")
    seg2, *_ = _scene("cpu")
    ed1, ed2 = Editor(seg1), Editor(seg2)
    ed1.draw_tube("a", pts, 1.7, interpolation="linear")
    ed1.surface_cut("b", _CUT, operation="erase_inside")
    ras = (pts * [-1, -1, 1]).tolist()
    changed = run_steps(ed2, [
        {"effect": "draw_tube", "segment": "a", "points": ras, "radius_mm": 1.7, "interpolation": "linear",
         "space": "ras"},
        {"effect": "surface_cut", "segment": "b", "points": _CUT.tolist(), "operation": "erase_inside"}])
    assert all(c > 0 for c in changed)
    for name in ("a", "b", "x"):
        assert seg1[name].mask.equals(seg2[name].mask)
    for bad, word in (({"radius_mm": 0}, "radius_mm"), ({"interpolation": "kochanek"}, "interpolation")):
        with pytest.raises(InvalidInputError, match=f"step 1 .draw_tube.: {word}"):
            validate_steps([{"effect": "draw_tube", "segment": "a", "points": ras, **bad}])
    with pytest.raises(InvalidInputError, match="step 1 .surface_cut.: .*at least 4"):
        run_steps(ed2, [{"effect": "surface_cut", "segment": "b", "points": _CUT[:2].tolist()}])


# --- engrave / emboss on a box ------------------------------------------------------------------------
def _prism(geometry, text, point, normal, up, height, depth, mode):
    """Brute force over every voxel centre of the grid: the text prism of gpuseg.editor.engrave's
    definition, with the frame built here."""
    from gpuseg.editor.engrave import text_bitmap

    bits = text_bitmap(text)
    rows, cols = bits.shape
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    u = np.asarray(up, float) - (np.dot(up, n)) * n
    u /= np.linalg.norm(u)
    r = np.cross(u, n)
    d = _centres(geometry) - point
    px = height / rows
    col = np.floor((d @ r + cols * px / 2) / px).astype(int)
    row = np.floor((rows * px / 2 - d @ u) / px).astype(int)
    w = d @ n
    ok = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
    ok &= ((w >= -depth) & (w <= 0)) if mode == "engrave" else ((w > 0) & (w <= depth))
    out = np.zeros(len(d), bool)
    out[ok] = bits[row[ok], col[ok]]
    return out.reshape(geometry.shape)


@pytest.mark.parametrize("grid", ["axis", "oblique"])
def test_engrave_and_emboss_a_box(backend, grid):
    geom = ImageGeometry((24, 40, 70), spacing=(0.5, 0.45, 0.6)) if grid == "axis" else ImageGeometry.from_matrix(
        (24, 40, 70), _M @ np.diag([0.5, 0.5, 0.4, 1.0]))
    box = np.zeros(geom.shape, bool)
    box[2:14, 5:35, 4:66] = True
    other = np.zeros(geom.shape, bool)
    other[14:, 5:35, 4:66] = True  # sits on the box's top face
    seg = Segmentation(geom, backend=backend)
    seg.add_segment(gpuseg.Mask.from_numpy(box, geom, backend=backend), name="box")
    seg.add_segment(gpuseg.Mask.from_numpy(other, geom, backend=backend), name="lid")
    ed = Editor(seg)
    m = np.asarray(geom.ijk_to_world)[:3, :3]
    top = geom.ijk_to_world_points([[34.5, 19.5, 13.5]])[0]  # the centre of the top face
    cut = _prism(geom, "GPU", top, m[:, 2], m[:, 1], 6.0, 2.0, "engrave")
    assert cut.sum() > 100 and not (cut & ~box).any()  # the letters fit the face, the depth the box
    n = ed.engrave("box", "GPU", "engrave", 2.0, height_mm=6.0)  # the default point, normal and up
    np.testing.assert_array_equal(seg["box"].mask.to_numpy(), box & ~cut)
    np.testing.assert_array_equal(seg["lid"].mask.to_numpy(), other)
    assert n == int((box & cut).sum())
    ks = np.nonzero((box & cut).any(axis=(1, 2)))[0]
    assert ks.max() == 13 and ks.min() >= 13 - int(np.ceil(2.0 / min(geom.spacing))) - 1  # only under the face
    assert ed.undo()
    emb = _prism(geom, "GPU", top, m[:, 2], m[:, 1], 6.0, 2.0, "emboss")
    ed.engrave("box", "GPU", "emboss", 2.0, height_mm=6.0, point=top)
    np.testing.assert_array_equal(seg["box"].mask.to_numpy(), box | emb)
    np.testing.assert_array_equal(seg["lid"].mask.to_numpy(), other & ~emb)  # overwritten
    assert not (emb & box).any() and emb.sum() > 100
    assert ed.undo()
    np.testing.assert_array_equal(seg["box"].mask.to_numpy(), box)


def test_engrave_errors_and_step():
    from gpuseg.steps import run_steps

    g = ImageGeometry((10, 20, 30))
    seg = Segmentation(g)
    seg.add_segment(name="e")
    a = np.zeros(g.shape, bool)
    a[2:8, 2:18, 2:28] = True
    seg.add_segment(gpuseg.Mask.from_numpy(a, g), name="a")
    ed = Editor(seg)
    with pytest.raises(InvalidInputError, match="is empty"):
        ed.engrave("e")
    for kw, word in (({"mode": "carve"}, "mode"), ({"depth_mm": 0}, "depth_mm"), ({"height_mm": -1}, "height_mm"),
                     ({"text": ""}, "text"), ({"text": "a\nb"}, "text"), ({"text": "   "}, "text"),
                     ({"normal": [0, 0, 0]}, "normal"), ({"normal": [0, 1, 0], "up": [0, 2, 0]}, "parallel")):
        with pytest.raises(InvalidInputError, match=word):
            ed.engrave("a", **kw)
    assert ed.engrave("a", point=[500, 500, 500]) == 0  # misses the grid
    seg2 = Segmentation(g)
    seg2.add_segment(gpuseg.Mask.from_numpy(a, g), name="a")
    n1 = ed.engrave("a", "Hi", "engrave", 1.5, height_mm=8.0)
    n2 = run_steps(Editor(seg2), [{"effect": "engrave", "segment": "a", "text": "Hi", "depth_mm": 1.5,
                                   "height_mm": 8.0}])[0]
    assert n1 == n2 > 0 and seg["a"].mask.equals(seg2["a"].mask)
