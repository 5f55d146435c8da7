"""Labelmap shape statistics against SimpleITK's LabelShapeStatisticsImageFilter with the options
Slicer sets (Feret diameter, perimeter, oriented bounding box), in RAS as Slicer runs it.

Tolerances (docs/measurements.md): Feret diameter exact; everything else 1e-6 relative. Axis signs
are compared up to sign (the eigen-solver's choice, see gpuseg/ops/shape.py) and the oriented
bounding box as the set of its 8 corners.
"""

import itertools

import numpy as np
import pytest
from scipy import ndimage

import gpuseg
from gpuseg import ImageGeometry, Mask
from gpuseg.ops.shape import SHAPE_KEYS, segment_shape

from .conftest import shared_file

sitk = pytest.importorskip("SimpleITK")


def itk_shape(labels: np.ndarray, g: ImageGeometry):
    img = sitk.GetImageFromArray(labels.astype(np.uint16))
    a = np.asarray(g.ijk_to_ras, np.float64)
    sp = np.array(g.spacing, np.float64)
    img.SetSpacing(tuple(sp))
    img.SetOrigin(tuple(a[:3, 3]))
    img.SetDirection(tuple((a[:3, :3] / sp).ravel()))
    f = sitk.LabelShapeStatisticsImageFilter()
    f.SetComputeFeretDiameter(True)
    f.SetComputePerimeter(True)
    f.SetComputeOrientedBoundingBox(True)
    f.Execute(img)
    return f


def corners(origin, size, axes):
    o, s, ax = np.asarray(origin), np.asarray(size), np.asarray(axes).reshape(3, 3)
    pts = [o + sum(b * s[r] * ax[r] for r, b in enumerate(bits)) for bits in itertools.product((0, 1), repeat=3)]
    return np.array(sorted(map(tuple, np.round(pts, 6))))


def check_against_itk(got: dict, f, label: int):
    assert got["feret_diameter_mm"] == f.GetFeretDiameter(label)  # exact
    rel = 1e-6
    assert got["surface_area_mm2"] == pytest.approx(f.GetPerimeter(label), rel=rel)
    assert got["roundness"] == pytest.approx(f.GetRoundness(label), rel=rel)
    assert got["flatness"] == pytest.approx(f.GetFlatness(label), rel=rel)
    assert got["elongation"] == pytest.approx(f.GetElongation(label), rel=rel)
    pm = np.array(f.GetPrincipalMoments(label))
    np.testing.assert_allclose(got["principal_moments"], pm, rtol=rel, atol=1e-9 * pm.max())
    want_axes = np.array(f.GetPrincipalAxes(label)).reshape(3, 3)
    mine = np.array([got["principal_axis_x"], got["principal_axis_y"], got["principal_axis_z"]])
    if len(set(np.round(pm / max(pm.max(), 1e-30), 6))) == 3:  # distinct moments: axes defined up to sign
        for r in range(3):
            s = np.sign(mine[r] @ want_axes[r])
            np.testing.assert_allclose(mine[r], s * want_axes[r], atol=1e-6)
        np.testing.assert_allclose(got["obb_direction_ras_x"], mine[0])
        box = corners(got["obb_origin_ras"], got["obb_diameter_mm"],
                      [got["obb_direction_ras_x"], got["obb_direction_ras_y"], got["obb_direction_ras_z"]])
        want = corners(f.GetOrientedBoundingBoxOrigin(label), f.GetOrientedBoundingBoxSize(label),
                       f.GetOrientedBoundingBoxDirection(label))
        np.testing.assert_allclose(box, want, atol=1e-5)
        np.testing.assert_allclose(sorted(got["obb_diameter_mm"]), sorted(f.GetOrientedBoundingBoxSize(label)),
                                   rtol=rel)
    assert np.linalg.det(mine) == pytest.approx(1.0)


def oblique_geometry(rng, shape):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    a = np.eye(4)
    a[:3, :3] = q @ np.diag(rng.uniform(0.4, 3.0, 3))
    a[:3, 3] = rng.normal(0, 80, 3)
    return ImageGeometry.from_ras_matrix(shape, a)


@pytest.mark.parametrize("seed", range(6))
def test_random_shapes_match_itk_on_oblique_anisotropic_grids(backend, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(4, 28, 3))
    m = ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.5
    m.flat[rng.integers(0, m.size)] = True
    g = oblique_geometry(rng, shape) if seed % 2 else ImageGeometry(shape, spacing=tuple(rng.uniform(0.3, 4, 3)),
                                                                     origin=(5.0, -3.0, 12.0))
    got = segment_shape(Mask.from_numpy(m, g, backend=backend).shrink_())
    check_against_itk(got, itk_shape(m, g), 1)


def test_touching_the_grid_border_and_a_full_mask(backend):
    g = ImageGeometry((5, 6, 37), spacing=(0.8, 1.3, 2.0))
    m = np.ones(g.shape, bool)
    check_against_itk(segment_shape(Mask.from_numpy(m, g, backend=backend)), itk_shape(m, g), 1)
    m[2:, :3, 30:] = False
    check_against_itk(segment_shape(Mask.from_numpy(m, g, backend=backend)), itk_shape(m, g), 1)


def test_flat_and_thin_shapes(backend):
    """A single slice (flat: qhull degenerate) and a single row: Feret and area still as ITK's."""
    g = ImageGeometry((6, 40, 70), spacing=(0.6, 0.9, 1.7))
    for sl in [(slice(3, 4), slice(5, 35), slice(2, 60)), (slice(2, 3), slice(7, 8), slice(3, 66))]:
        m = np.zeros(g.shape, bool)
        m[sl] = True
        m[sl[0], sl[1].start, sl[2].start] = False
        got = segment_shape(Mask.from_numpy(m, g, backend=backend).shrink_())
        f = itk_shape(m, g)
        assert got["feret_diameter_mm"] == f.GetFeretDiameter(1)
        assert got["surface_area_mm2"] == pytest.approx(f.GetPerimeter(1), rel=1e-6)
        np.testing.assert_allclose(got["principal_moments"], f.GetPrincipalMoments(1), rtol=1e-6, atol=1e-9)


def test_single_voxel_and_empty(backend):
    g = ImageGeometry((3, 3, 3), spacing=(1.0, 2.0, 3.0))
    m = np.zeros(g.shape, bool)
    m[1, 1, 1] = True
    got = segment_shape(Mask.from_numpy(m, g, backend=backend))
    f = itk_shape(m, g)
    assert got["feret_diameter_mm"] == 0.0 == f.GetFeretDiameter(1)
    assert got["surface_area_mm2"] == pytest.approx(f.GetPerimeter(1), rel=1e-6)
    assert got["flatness"] == f.GetFlatness(1) and got["elongation"] == f.GetElongation(1)
    assert got["obb_diameter_mm"] == pytest.approx(sorted(f.GetOrientedBoundingBoxSize(1)))
    assert all(v is None for v in segment_shape(Mask.empty(g, backend=backend)).values())
    assert set(segment_shape(Mask.empty(g, backend=backend))) == set(SHAPE_KEYS)


def test_same_on_every_backend():
    from .parity import backend_or_skip

    rng = np.random.default_rng(7)
    m = ndimage.gaussian_filter(rng.random((9, 14, 45)), 1.2) > 0.5
    g = oblique_geometry(rng, m.shape)
    ref = segment_shape(Mask.from_numpy(m, g, backend="cpu"))
    other = segment_shape(Mask.from_numpy(m, g, backend=backend_or_skip("opencl")))
    assert ref == other


def test_totalsegmentator_organs_match_itk():
    seg = gpuseg.read_segmentation(shared_file("totalseg", "example_seg.nii.gz"), backend="cpu",
                                   labels=shared_file("totalseg", "total_classes.json"))
    g = seg.geometry
    labels = np.zeros(g.shape, np.uint16)
    for n, s in enumerate(seg, start=1):
        labels[s.mask.to_numpy()] = n
    f = itk_shape(labels, g)
    for n, s in enumerate(seg, start=1):
        check_against_itk(segment_shape(s.mask), f, n)


def test_statistics_with_shape_columns():
    g = ImageGeometry((4, 8, 40), spacing=(0.5, 0.7, 1.9))
    m = np.zeros(g.shape, bool)
    m[1:3, 2:7, 5:30] = True
    seg = gpuseg.Segmentation(g, backend="cpu")
    seg.add_segment(Mask.from_numpy(m, g, backend="cpu"), name="box")
    (row,) = gpuseg.statistics(seg, shape=True)
    assert row["voxel_count"] == int(m.sum()) and row["feret_diameter_mm"] == itk_shape(m, g).GetFeretDiameter(1)
    (plain,) = gpuseg.statistics(seg)
    assert "feret_diameter_mm" not in plain


def test_cli_stats_reads_totalsegmentator_labels_with_shape(tmp_path, capsys):
    import csv

    from gpuseg.cli import main

    seg_path = shared_file("totalseg", "example_seg.nii.gz")
    labels = shared_file("totalseg", "total_classes.json")
    out = tmp_path / "stats.csv"
    assert main(["stats", str(seg_path), "--labels", str(labels), "--shape", "--segment", "liver",
                 "--segment", "spleen", "--csv", str(out), "--backend", "cpu", "-q"]) == 0
    rows = {r["segment"]: r for r in csv.DictReader(out.read_text().splitlines())}
    assert set(rows) == {"liver", "spleen"}
    seg = gpuseg.read_segmentation(seg_path, backend="cpu", labels=labels)
    want = segment_shape(seg.segment("liver").mask)
    assert float(rows["liver"]["feret_diameter_mm"]) == want["feret_diameter_mm"]
    assert float(rows["liver"]["obb_diameter_mm_z"]) == pytest.approx(want["obb_diameter_mm"][2])
    assert main(["stats", str(seg_path), "--labels", str(labels), "--segment", "liver", "--surface",
                 "--json", "--backend", "cpu", "-q"]) == 0
    import json

    (row,) = json.loads(capsys.readouterr().out)
    surf = seg.representation("liver", "Closed surface")
    assert row["closed_surface_surface_mm2"] == pytest.approx(surf.area())
    assert row["closed_surface_volume_mm3"] == pytest.approx(surf.volume())
    assert row["closed_surface_volume_mm3"] == pytest.approx(row["volume_mm3"], rel=0.05)
