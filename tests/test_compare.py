"""Segment comparison against SimpleITK (LabelOverlapMeasures, HausdorffDistance on the boundary
images) and a brute-force k-d tree reference for the percentiles, ASSD and NSD."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

import gpuseg
from gpuseg import ImageGeometry, Mask, Segmentation, compare_masks, compare_segmentations
from gpuseg.errors import GeometryMismatchError, InvalidInputError, UnknownSegmentError

from .conftest import shared_file

sitk = pytest.importorskip("SimpleITK")


def boundary(m):
    six = ndimage.generate_binary_structure(3, 1)
    p = np.pad(m, 1)
    return (p & ~ndimage.binary_erosion(p, six, border_value=0))[1:-1, 1:-1, 1:-1]


def sitk_image(x, g):
    img = sitk.GetImageFromArray(x.astype(np.uint8))
    img.SetSpacing(g.spacing)
    return img


def reference(a, b, g, tols):
    sp = np.array(g.spacing_kji)
    pa, pb = np.argwhere(boundary(a)) * sp, np.argwhere(boundary(b)) * sp
    dab, _ = cKDTree(pb).query(pa)
    dba, _ = cKDTree(pa).query(pb)
    h = sitk.HausdorffDistanceImageFilter()
    h.Execute(sitk_image(boundary(a), g), sitk_image(boundary(b), g))
    o = sitk.LabelOverlapMeasuresImageFilter()
    o.Execute(sitk_image(a, g), sitk_image(b, g))
    alld = np.concatenate([dab, dba])
    out = {"dice": o.GetDiceCoefficient(), "jaccard": o.GetJaccardCoefficient(),
           "hausdorff_max_mm": h.GetHausdorffDistance(), "hausdorff_mean_mm": h.GetAverageHausdorffDistance(),
           "hausdorff_95_mm": max(np.percentile(dab, 95), np.percentile(dba, 95)), "assd_mm": alld.mean()}
    for t in tols:
        out[f"nsd_{t:g}mm"] = np.mean(alld <= t + 1e-9)
    return out


def random_pair(rng, shape):
    a = ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.5
    b = ndimage.binary_dilation(a, iterations=int(rng.integers(0, 3))) ^ (rng.random(shape) < 0.02)
    a.flat[0] = b.flat[-1] = True
    return a, b


@pytest.mark.parametrize("seed", range(4))
def test_compare_matches_sitk_and_kdtree(backend, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(3, 30, 3))
    g = ImageGeometry(shape, spacing=tuple(rng.uniform(0.4, 3.0, 3)), origin=(1.0, 2.0, 3.0),
                      direction=np.linalg.qr(rng.normal(size=(3, 3)))[0] if seed % 2 else None)
    a, b = random_pair(rng, shape)
    tols = (1.0, 2.5)
    got = compare_masks(Mask.from_numpy(a, g, backend=backend), Mask.from_numpy(b, g, backend=backend).shrink_(),
                        tolerances=tols)
    want = reference(a, b, g, tols)
    assert got["voxels"] == a.sum() and got["voxels_reference"] == b.sum() and got["voxels_both"] == (a & b).sum()
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k


def test_identical_disjoint_and_empty(backend):
    g = ImageGeometry((6, 7, 40), spacing=(1.0, 1.0, 2.0))
    a = np.zeros(g.shape, bool)
    a[1:4, 2:5, 3:9] = True
    b = np.zeros(g.shape, bool)
    b[1:4, 2:5, 30:36] = True
    ma, mb = Mask.from_numpy(a, g, backend=backend), Mask.from_numpy(b, g, backend=backend)
    same = compare_masks(ma, ma.copy())
    assert same["dice"] == 1.0 and same["hausdorff_max_mm"] == 0.0 and same["nsd_1mm"] == 1.0
    apart = compare_masks(ma, mb)
    assert apart["dice"] == 0.0 and apart["jaccard"] == 0.0
    assert apart["hausdorff_max_mm"] == pytest.approx(reference(a, b, g, ())["hausdorff_max_mm"])
    e = Mask.empty(g, backend=backend)
    none = compare_masks(e, e)
    assert none["dice"] is None and none["hausdorff_max_mm"] is None
    one = compare_masks(ma, e)
    assert one["dice"] == 0.0 and one["hausdorff_95_mm"] is None and one["nsd_1mm"] is None


def test_bad_inputs():
    g = ImageGeometry((3, 4, 5))
    m = Mask.full(g, backend="cpu")
    with pytest.raises(GeometryMismatchError):
        compare_masks(m, Mask.full(ImageGeometry((3, 4, 6)), backend="cpu"))
    with pytest.raises(InvalidInputError):
        compare_masks(m, m, tolerances=(-1,))
    with pytest.raises(InvalidInputError):
        compare_masks(m, np.ones((3, 4, 5), bool))


def test_segmentations_matched_by_name_then_label_value():
    g = ImageGeometry((4, 10, 20))
    rng = np.random.default_rng(3)

    def seg(names_values):
        s = Segmentation(g, backend="cpu")
        for name, v in names_values:
            s.add_segment(Mask.from_numpy(rng.random(g.shape) < 0.3, g, backend="cpu"), name=name).label_value = v
        return s

    a = seg([("liver", 1), ("spleen", 2), ("kidney", 3)])
    b = seg([("spleen", 7), ("Segment_3", 3), ("lung", 9)])
    rows = compare_segmentations(a, b)
    pairs = [(r["segment"], r["segment_reference"]) for r in rows]
    assert pairs == [("spleen", "spleen"), ("liver", "liver"), ("kidney", "Segment_3"), ("lung", "lung")]
    assert [r["in_segmentation"] for r in rows] == [True, True, True, False]
    assert rows[1]["in_reference"] is False and rows[1]["dice"] == 0.0
    want = compare_masks(a.segment("kidney").mask, b.segment("Segment_3").mask)
    assert {k: rows[2][k] for k in want} == want
    seen = []
    only = compare_segmentations(a, b, segments=["spleen"], on_pair=lambda d, t: seen.append((d, t)))
    assert len(only) == 1 and seen == [(1, 1)]
    with pytest.raises(UnknownSegmentError):
        compare_segmentations(a, b, segments=["heart"])
    within = compare_segmentations(a, pairs=[("liver", "spleen")])
    assert within[0]["dice"] == compare_masks(a.segment("liver").mask, a.segment("spleen").mask)["dice"]


def test_totalsegmentator_fast_against_full():
    labels = shared_file("totalseg", "total_classes.json")
    full = gpuseg.read_segmentation(shared_file("totalseg", "example_seg.nii.gz"), backend="cpu", labels=labels)
    fast = gpuseg.read_segmentation(shared_file("totalseg", "example_seg_fast.nii.gz"), backend="cpu", labels=labels)
    rows = {r["segment"]: r for r in compare_segmentations(fast, full) if r["in_segmentation"] and r["in_reference"]}
    assert len(rows) > 20
    g = full.geometry
    for name in list(rows)[:6]:
        a, b = fast.segment(name).mask.to_numpy(), full.segment(name).mask.to_numpy()
        want = reference(a, b, g, (1.0,))
        for k, v in want.items():
            assert rows[name][k] == pytest.approx(v, rel=1e-9, abs=1e-12), (name, k)


def test_cli_compare_json_csv_and_errors(tmp_path, capsys):
    import csv
    import json

    from gpuseg.cli import main

    g = ImageGeometry((5, 12, 40), spacing=(0.8, 0.8, 2.0))
    a = np.zeros(g.shape, np.uint8)
    a[1:4, 2:9, 3:20] = 1
    a[2:5, 5:11, 25:38] = 2
    b = a.copy()
    b[1:4, 2:9, 3:22] = np.where(b[1:4, 2:9, 3:22] == 2, 2, 1)
    b[b == 2] = 0
    b[2:4, 6:10, 26:36] = 2
    pa, pb = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    gpuseg.write_labelmap(pa, a, g)
    gpuseg.write_labelmap(pb, b, g)
    table = tmp_path / "labels.json"
    table.write_text(json.dumps({"1": "liver", "2": "spleen"}))
    assert main(["compare", str(pa), str(pb), "--labels", str(table), "--json", "--backend", "cpu",
                 "--tolerance", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["segment"] for r in rows] == ["liver", "spleen"]
    want = reference(a == 2, b == 2, gpuseg.read_segmentation(pa, backend="cpu").geometry, (2.0,))  # float32 spacing
    for k, v in want.items():
        assert rows[1][k] == pytest.approx(v, rel=1e-9), k
    out = tmp_path / "cmp.csv"
    assert main(["compare", str(pa), str(pb), "--labels", str(table), "--segment", "liver", "--csv", str(out),
                 "--backend", "cpu"]) == 0
    (row,) = list(csv.DictReader(out.read_text().splitlines()))
    assert row["segment"] == "liver" and float(row["dice"]) == pytest.approx(rows[0]["dice"])
    other = tmp_path / "c.nii.gz"
    gpuseg.write_labelmap(other, a[:, :, :30].copy(), ImageGeometry((5, 12, 30), spacing=(0.8, 0.8, 2.0)))
    assert main(["compare", str(pa), str(other), "--backend", "cpu", "--same-grid"]) == 2
    assert "different grids" in capsys.readouterr().err
    assert main(["compare", str(pa), str(pb), "--labels", str(table), "--segment", "heart", "--backend", "cpu"]) == 2


def _sitk_geo_image(x, g):
    img = sitk.GetImageFromArray(x.astype(np.uint8))
    img.SetSpacing(g.spacing)
    img.SetOrigin(g.origin)
    img.SetDirection(tuple(np.asarray(g.direction).ravel()))
    return img


@pytest.mark.parametrize("seed", range(3))
def test_resample_nearest_matches_sitk(backend, seed):
    from gpuseg.ops.resample import resample_nearest

    rng = np.random.default_rng(seed)
    src_shape = tuple(int(v) for v in rng.integers(6, 25, 3))
    gs = ImageGeometry(src_shape, spacing=tuple(rng.uniform(0.5, 2.5, 3)), origin=tuple(rng.normal(0, 5, 3)),
                       direction=np.linalg.qr(rng.normal(size=(3, 3)))[0])
    gt = ImageGeometry(tuple(int(v) for v in rng.integers(6, 30, 3)), spacing=tuple(rng.uniform(0.4, 2.0, 3)),
                       origin=tuple(np.array(gs.ijk_to_world_points(np.array(src_shape[::-1]) / 3)) + rng.normal(0, 1, 3)))
    m = ndimage.gaussian_filter(rng.random(src_shape), 1.2) > 0.5
    got = resample_nearest(Mask.from_numpy(m, gs, backend=backend), gt).to_numpy()
    f = sitk.ResampleImageFilter()
    f.SetReferenceImage(_sitk_geo_image(np.zeros(gt.shape, np.uint8), gt))
    f.SetInterpolator(sitk.sitkNearestNeighbor)
    f.SetDefaultPixelValue(0)
    want = sitk.GetArrayFromImage(f.Execute(_sitk_geo_image(m, gs))).astype(bool)
    assert got.shape == want.shape and want.any()
    assert (got != want).sum() == 0


def fine_copy_pair():
    """Segment ``x`` on a grid and the same voxels on a grid twice as fine (same outer box)."""
    g1 = ImageGeometry((8, 20, 24), spacing=(1.0, 1.0, 2.0))
    g2 = ImageGeometry((16, 40, 48), spacing=(0.5, 0.5, 1.0), origin=(-0.25, -0.25, -0.5))  # twice as fine
    m1 = np.zeros(g1.shape, bool)
    m1[2:6, 4:15, 5:18] = True
    m2 = np.repeat(np.repeat(np.repeat(m1, 2, 0), 2, 1), 2, 2)
    a, b = Segmentation(g1, backend="cpu"), Segmentation(g2, backend="cpu")
    a.add_segment(Mask.from_numpy(m1, g1, backend="cpu"), name="x")
    b.add_segment(Mask.from_numpy(m2, g2, backend="cpu"), name="x")
    return a, b


def test_compare_segmentations_resamples_the_second_onto_the_first():
    a, b = fine_copy_pair()
    (row,) = compare_segmentations(a, b)
    assert row["dice"] == 1.0 and row["hausdorff_max_mm"] == 0.0
    with pytest.raises(GeometryMismatchError):
        compare_segmentations(a, b, resample=False)
