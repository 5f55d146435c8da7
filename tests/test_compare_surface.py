"""Closed-surface distances of segment comparison against VTK's vtkImplicitPolyDataDistance (the
distance SlicerRT's vtkPolyDataDistanceHistogramFilter evaluates at each vertex), brute force and
analytic cases."""

import numpy as np
import pytest
from scipy import ndimage

import gpuseg
from gpuseg import ImageGeometry, Mask, Segmentation, compare_masks, compare_segmentations
from gpuseg.errors import InvalidInputError
from gpuseg.ops.surface_distance import point_triangle_distances, points_to_surface, surface_distances
from gpuseg.surface import Surface

from .parity import backend_or_skip
from .test_compare import fine_copy_pair

vtk = pytest.importorskip("vtk")
from vtk.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray  # noqa: E402


def polydata(surface):
    pd = vtk.vtkPolyData()
    pts = vtk.vtkPoints()
    pts.SetData(numpy_to_vtk(np.ascontiguousarray(surface.vertices, np.float64), deep=1))
    pd.SetPoints(pts)
    f = np.asarray(surface.faces, np.int64)
    v = np.asarray(surface.vertices, np.float64)
    flat = ~np.any(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]) != 0, axis=1)

    def cells(conn, n):
        c = vtk.vtkCellArray()
        c.SetData(numpy_to_vtkIdTypeArray(np.arange(0, n * len(conn) + 1, n, dtype=np.int64), deep=1),
                  numpy_to_vtkIdTypeArray(np.ascontiguousarray(conn.ravel()), deep=1))
        return c

    pd.SetPolys(cells(f[~flat], 3))
    # zero-area triangles as their three edges (vtkTriangle gives them no distance; vtkLine does,
    # also for a zero-length edge): the surface as gpuseg measures it
    lines = f[flat][:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    if len(lines):
        pd.SetLines(cells(lines, 2))
    return pd


def vtk_directed(src, ref):
    """|vtkImplicitPolyDataDistance| of ref at every vertex of src (SlicerRT's vertex sampling).

    Where ref has zero-area triangles (a segment's tiny island collapsed by smoothing), VTK's
    vtkTriangle gives them no distance and vtkImplicitPolyDataDistance (which keeps only the
    polygons) then misses or misjudges them; there the oracle is the same cell locator query
    that vtkImplicitPolyDataDistance makes, vtkCellLocator.FindClosestPoint, on the triangles
    plus the degenerate triangles' edges as lines."""
    pd = polydata(ref)
    pts = np.asarray(src.vertices, np.float64)
    if pd.GetNumberOfLines() == 0:
        dist = vtk.vtkImplicitPolyDataDistance()
        dist.SetInput(pd)
        return np.array([abs(dist.EvaluateFunction(p)) for p in pts])
    loc = vtk.vtkCellLocator()
    loc.SetDataSet(pd)
    loc.BuildLocator()
    cp, cell, sub, d2 = [0.0, 0.0, 0.0], vtk.reference(0), vtk.reference(0), vtk.reference(0.0)
    out = []
    for p in pts:
        loc.FindClosestPoint(p, cp, cell, sub, d2)
        out.append(np.sqrt(d2.get()))
    return np.array(out)


def vtk_reference(sa, sb, tols):
    dab, dba = vtk_directed(sa, sb), vtk_directed(sb, sa)
    alld = np.concatenate([dab, dba])
    out = {"surface_hausdorff_max_mm": max(dab.max(), dba.max()),
           "surface_hausdorff_mean_mm": (dab.mean() + dba.mean()) / 2,
           "surface_hausdorff_95_mm": max(np.percentile(dab, 95), np.percentile(dba, 95)),
           "surface_assd_mm": alld.mean()}
    for t in tols:
        out[f"surface_nsd_{t:g}mm"] = np.mean(alld <= t)
    return out, dab, dba


def random_segmentations(seed, backend):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(12, 26, 3))
    g = ImageGeometry(shape, spacing=tuple(rng.uniform(0.5, 2.0, 3)), origin=tuple(rng.normal(0, 10, 3)),
                      direction=np.linalg.qr(rng.normal(size=(3, 3)))[0] if seed % 2 else None)
    a = ndimage.gaussian_filter(rng.random(shape), 2.0) > 0.5
    b = np.roll(ndimage.binary_dilation(a, iterations=int(rng.integers(1, 3))), 1, axis=int(rng.integers(0, 3)))
    segs = []
    for m in (a, b):
        s = Segmentation(g, backend=backend)
        s.add_segment(Mask.from_numpy(m, g, backend=backend), name="organ")
        segs.append(s)
    return segs


@pytest.mark.parametrize("seed", range(3))
def test_surface_distances_match_vtk(backend, seed):
    sa, sb = random_segmentations(seed, backend)
    if seed == 2:  # unsmoothed meshes too (flying-edges triangles as they are)
        for s in (sa, sb):
            s.set_conversion_parameter("Smoothing factor", 0.0)
    tols = (1.0, 2.5)
    (row,) = compare_segmentations(sa, sb, surface=True, tolerances=tols)
    ma, mb = sa.representation("organ", "Closed surface"), sb.representation("organ", "Closed surface")
    assert ma.n_faces and mb.n_faces and np.unique(ma.faces).size == ma.n_vertices
    want, wab, wba = vtk_reference(ma, mb, tols)
    dab, dba = surface_distances(ma, mb)
    np.testing.assert_allclose(dab, wab, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dba, wba, rtol=1e-9, atol=1e-9)
    for k, v in want.items():
        assert row[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k
    # against the voxel-boundary version: same order of magnitude, never a wild number
    assert 0.2 < row["surface_hausdorff_max_mm"] / row["hausdorff_max_mm"] < 3


def test_backends_give_identical_surface_measures():
    rows = {}
    for name in ("cpu", "opencl"):
        b = backend_or_skip(name)
        sa, sb = random_segmentations(1, b)
        (rows[name],) = compare_segmentations(sa, sb, surface=True, tolerances=(1.0, 2.0))
    keys = [k for k in rows["cpu"] if k.startswith("surface_")]
    assert len(keys) == 6
    assert {k: rows["opencl"][k] for k in keys} == {k: rows["cpu"][k] for k in keys}


def test_exact_point_triangle_distance_not_nearest_vertex():
    # a point above the middle of a large triangle: the distance is the height, not the vertex distance
    tri = Surface(np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0]], float), np.array([[0, 1, 2]]))
    p = Surface(np.array([[2, 2, 3.0], [12, 0, 0], [-1, -1, -1], [5, 5, 1]]), np.array([[0, 1, 2]]))
    got = points_to_surface(p.vertices, tri.vertices, tri.faces)
    np.testing.assert_allclose(got, [3.0, 2.0, np.sqrt(3), 1.0], rtol=1e-12)
    np.testing.assert_allclose(got, vtk_directed(p, tri), rtol=1e-12)


def test_points_to_surface_matches_brute_force_on_a_triangle_soup():
    rng = np.random.default_rng(7)
    v = rng.normal(size=(200, 3)) * [5, 1, 1]
    f = rng.integers(0, 200, (400, 3))
    f[:5, 2] = f[:5, 1]  # degenerate triangles: a segment ...
    f[5:8, :] = f[5:8, :1]  # ... and a point
    v[f[8, 2]] = (v[f[8, 0]] + v[f[8, 1]]) / 2  # and a flat (collinear) one
    p = rng.normal(size=(500, 3)) * 4
    p[:3] = [[1e3, 0, 0], [0, -500, 20], [0, 0, 0]]  # far away points too
    t = v[f]
    brute = point_triangle_distances(p[:, None], t[None, :, 0], t[None, :, 1], t[None, :, 2]).min(axis=1)
    got = points_to_surface(p, v, f)
    np.testing.assert_allclose(got, brute, rtol=1e-12, atol=1e-12)


def test_concentric_spheres():
    trimesh = pytest.importorskip("trimesh")
    ico = trimesh.creation.icosphere(subdivisions=5)
    inner = Surface(np.asarray(ico.vertices) * 20.0 + [1, 2, 3], np.asarray(ico.faces))
    outer = Surface(np.asarray(ico.vertices) * 23.0 + [1, 2, 3], np.asarray(ico.faces))
    d_in, d_out = surface_distances(inner, outer)
    # the outer mesh's flat triangles lie inside its sphere by at most its sagitta (~0.01 mm here)
    assert d_in.size == inner.n_vertices and d_out.size == outer.n_vertices
    np.testing.assert_allclose(d_in, 3.0, atol=0.02)
    np.testing.assert_allclose(d_out, 3.0, atol=0.02)
    assert np.all(d_in <= 3.0 + 1e-9) and np.all(d_out >= 3.0 - 1e-9)  # vertices lie on their spheres
    same_in, same_out = surface_distances(inner, inner)
    assert same_in.max() < 1e-12 and same_out.max() < 1e-12


def test_empty_and_bad_inputs():
    g = ImageGeometry((8, 9, 10))
    a = np.zeros(g.shape, bool)
    a[2:6, 2:7, 3:8] = True
    m = Mask.from_numpy(a, g, backend="cpu")
    e = Mask.empty(g, backend="cpu")
    for x, y in ((m, e), (e, m), (e, e)):
        out = compare_masks(x, y, surface=True, tolerances=(1.0, 2.0))
        keys = [k for k in out if k.startswith("surface_")]
        assert len(keys) == 6 and all(out[k] is None for k in keys)
    same = compare_masks(m, m.copy(), surface=True)
    assert same["surface_hausdorff_max_mm"] == 0.0 and same["surface_nsd_1mm"] == 1.0
    assert "surface_assd_mm" not in compare_masks(m, m)
    only = compare_masks(m, m, surface=True, distances=False)
    assert "hausdorff_max_mm" not in only and only["surface_assd_mm"] == 0.0
    with pytest.raises(InvalidInputError):
        surface_distances(Surface(np.zeros((0, 3)), np.zeros((0, 3), np.int64)),
                          Surface(np.eye(3), np.array([[0, 1, 2]])))
    with pytest.raises(InvalidInputError):
        compare_masks(m, m, surfaces=(None,))
    s = Segmentation(g, backend="cpu")
    s.add_segment(m, name="x")
    t = Segmentation(g, backend="cpu")
    t.add_segment(e, name="x")
    t.add_segment(m.copy(), name="y")
    rows = compare_segmentations(s, t, surface=True)
    assert [r["segment"] for r in rows] == ["x", "y"]
    assert all(r["surface_hausdorff_max_mm"] is None for r in rows)


def test_resampled_reference_uses_its_own_surface():
    a, b = fine_copy_pair()
    (row,) = compare_segmentations(a, b, surface=True)
    want = compare_masks(a.segment("x").mask, a.segment("x").mask,
                         surfaces=(a.representation("x", "Closed surface"), b.representation("x", "Closed surface")))
    assert row["dice"] == 1.0
    for k in want:
        if k.startswith("surface_"):
            assert row[k] == want[k], k
    assert 0 < row["surface_hausdorff_max_mm"] < 2.0  # the same box, meshed on two grids


def test_cli_compare_surface(tmp_path, capsys):
    import csv
    import json

    from gpuseg.cli import main

    g = ImageGeometry((8, 14, 30), spacing=(1.5, 0.8, 0.8))
    a = np.zeros(g.shape, np.uint8)
    a[1:6, 2:10, 3:14] = 1
    a[2:7, 5:12, 17:28] = 2
    b = np.zeros(g.shape, np.uint8)
    b[1:7, 2:11, 3:15] = 1
    b[2:6, 6:12, 18:27] = 2
    pa, pb = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    gpuseg.write_labelmap(pa, a, g)
    gpuseg.write_labelmap(pb, b, g)
    table = tmp_path / "labels.json"
    table.write_text(json.dumps({"1": "liver", "2": "spleen"}))
    args = ["compare", str(pa), str(pb), "--labels", str(table), "--backend", "cpu", "--tolerance", "1.5"]
    assert main(args + ["--surface", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    sa = gpuseg.read_segmentation(pa, backend="cpu", labels=table)
    sb = gpuseg.read_segmentation(pb, backend="cpu", labels=table)
    for r in rows:
        want, _, _ = vtk_reference(sa.representation(r["segment"], "Closed surface"),
                                   sb.representation(r["segment"], "Closed surface"), (1.5,))
        for k, v in want.items():
            assert r[k] == pytest.approx(v, rel=1e-6), (r["segment"], k)
        assert r["hausdorff_max_mm"] is not None
    assert main(args + ["--surface"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[-4:] == ["surface_hausdorff_max_mm", "surface_hausdorff_95_mm", "surface_assd_mm",
                           "surface_nsd_1.5mm"]
    out = tmp_path / "cmp.csv"
    assert main(args + ["--surface", "--no-distances", "--csv", str(out)]) == 0
    got = list(csv.DictReader(out.read_text().splitlines()))
    assert "hausdorff_max_mm" not in got[0]
    assert float(got[1]["surface_assd_mm"]) == pytest.approx(rows[1]["surface_assd_mm"])
    assert main(args) == 0
    assert "surface_" not in capsys.readouterr().out


def test_totalsegmentator_organs_against_vtk():
    """The example's pancreas (full model) has an island that smoothing collapses to a point
    (zero-area triangles): gpuseg measures the distance to that point, as the oracle's lines do."""
    from .conftest import shared_file

    labels = shared_file("totalseg", "total_classes.json")
    full = gpuseg.read_segmentation(shared_file("totalseg", "example_seg.nii.gz"), backend="cpu", labels=labels)
    fast = gpuseg.read_segmentation(shared_file("totalseg", "example_seg_fast.nii.gz"), backend="cpu", labels=labels)
    names = ["liver", "pancreas", "spleen"]
    rows = {r["segment"]: r for r in compare_segmentations(fast, full, segments=names, surface=True)}
    for name in names:
        want, _, _ = vtk_reference(fast.representation(name, "Closed surface"),
                                   full.representation(name, "Closed surface"), (1.0,))
        for k, v in want.items():
            assert rows[name][k] == pytest.approx(v, rel=1e-6, abs=1e-9), (name, k)
