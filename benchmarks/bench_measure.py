"""Shape statistics and segment comparison on TotalSegmentator's classes, against SimpleITK.

Cases (one run, ratios against SimpleITK):

* shape statistics of every class present (Feret, perimeter, moments, oriented bounding box):
  gpuseg's ``segment_shape`` per segment vs ``LabelShapeStatisticsImageFilter`` with Slicer's options
  on the whole labelmap; the script checks Feret equal and the rest to 1e-6;
* Hausdorff distances of every class against a shifted copy of the labels: gpuseg's
  ``compare_masks`` (Dice, Jaccard, HD max/mean/95, ASSD, NSD) vs ``HausdorffDistanceImageFilter``
  per class, on the class masks (ITK's all-voxel definition, what a pipeline calls) and on their
  boundary images (gpuseg's definition; the script checks max and mean equal to 1e-9).

    python -m benchmarks.bench_measure [--size 100x256x256|KxJxI] [--phantom] [--backends cpu,opencl]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.bench_stats import segmentation_from_labels
from benchmarks.harness import Result, backends, finish, measure
from benchmarks.standard_volume import load, parse_size


def _sitk_labels(labels, spacing):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(labels)
    img.SetSpacing(tuple(float(s) for s in spacing))
    return img


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="100x256x256")
    ap.add_argument("--phantom", action="store_true")
    ap.add_argument("--backends", default="cpu,opencl")
    ap.add_argument("--classes", type=int, default=0, help="at most this many classes (0: every class present)")
    ap.add_argument("--repeat", type=int, default=1, help="steady-state runs of each implementation (best kept)")
    args = ap.parse_args(argv)
    import SimpleITK as sitk
    from scipy import ndimage

    import gpuseg
    from gpuseg.ops.compare import compare_masks

    vol = load(parse_size(args.size), force_phantom=args.phantom)
    labels = vol.labels
    values = [int(v) for v in np.unique(labels) if v]
    if args.classes:
        values = values[:args.classes]
    sub = np.where(np.isin(labels, values), labels, 0).astype(np.uint8)
    other = np.roll(sub, (1, 1), axis=(1, 2))  # a second "model": every organ shifted by one voxel in j and i
    res: list[Result] = []
    shape_case = f"shape statistics, {len(values)} classes, {vol.name}"
    hd_case = f"Hausdorff/Dice vs shifted copy, {len(values)} classes, {vol.name}"

    f = sitk.LabelShapeStatisticsImageFilter()
    f.SetComputeFeretDiameter(True)
    f.SetComputePerimeter(True)
    f.SetComputeOrientedBoundingBox(True)
    img = _sitk_labels(sub, vol.spacing_ijk)
    first, best, _ = measure(lambda: f.Execute(img), repeat=args.repeat)
    res.append(Result(shape_case, "SimpleITK LabelShapeStatistics (Slicer's options)", "peer", first, best, args.repeat))

    def sitk_hd(binary_of):
        out = []
        for v in values:
            h = sitk.HausdorffDistanceImageFilter()
            h.Execute(_sitk_labels(binary_of(sub == v), vol.spacing_ijk),
                      _sitk_labels(binary_of(other == v), vol.spacing_ijk))
            out.append((h.GetHausdorffDistance(), h.GetAverageHausdorffDistance()))
        return out

    six = ndimage.generate_binary_structure(3, 1)

    def bnd(m):
        p = np.pad(m, 1)
        return (p & ~ndimage.binary_erosion(p, six, border_value=0))[1:-1, 1:-1, 1:-1].astype(np.uint8)

    first, best, _ = measure(lambda: sitk_hd(lambda m: m.astype(np.uint8)), repeat=args.repeat)
    res.append(Result(hd_case, "SimpleITK HausdorffDistance (class masks)", "peer", first, best, args.repeat,
                      note="ITK's all-voxel definition"))
    first, best, ref_b = measure(lambda: sitk_hd(bnd), repeat=args.repeat)
    res.append(Result(hd_case, "SimpleITK HausdorffDistance (boundary images)", "peer", first, best, args.repeat,
                      note="gpuseg's definition"))

    for name, b in backends(args.backends):
        seg = segmentation_from_labels(sub, vol.geometry, b, values)
        seg2 = segmentation_from_labels(other, vol.geometry, b, values)
        masks = [s.mask for s in seg]
        first, best, rows = measure(lambda: [gpuseg.segment_shape(m) for m in masks], repeat=args.repeat, sync=b.synchronize)
        for v, r in zip(values, rows):
            assert r["feret_diameter_mm"] == f.GetFeretDiameter(v), (v, "feret")
            assert abs(r["surface_area_mm2"] - f.GetPerimeter(v)) <= 1e-6 * f.GetPerimeter(v), (v, "perimeter")
            np.testing.assert_allclose(r["principal_moments"], f.GetPrincipalMoments(v), rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(sorted(r["obb_diameter_mm"]), sorted(f.GetOrientedBoundingBoxSize(v)),
                                       rtol=1e-6)
        res.append(Result(shape_case, f"gpuseg {name}", "gpuseg", first, best, args.repeat,
                          note="host numpy over each segment's box"))
        pairs = [(a.mask, c.mask) for a, c in zip(seg, seg2)]
        first, best, cmp_rows = measure(lambda: [compare_masks(x, y) for x, y in pairs], repeat=args.repeat,
                                        sync=b.synchronize)
        for (hd, avg), r in zip(ref_b, cmp_rows):
            assert abs(r["hausdorff_max_mm"] - hd) <= 1e-9 * max(hd, 1.0)
            assert abs(r["hausdorff_mean_mm"] - avg) <= 1e-9 * max(avg, 1.0)
        res.append(Result(hd_case, f"gpuseg {name}", "gpuseg", first, best, args.repeat,
                          note="Dice, Jaccard, HD max/mean/95, ASSD, NSD"))
    finish(f"measure_{vol.name}", res, {shape_case: "SimpleITK LabelShapeStatistics (Slicer's options)",
                                        hd_case: "SimpleITK HausdorffDistance (class masks)"}, vol)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
