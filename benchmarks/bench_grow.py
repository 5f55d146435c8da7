"""Grow from seeds with 3 seed segments on the standard volume, against ITK FastGrowCut.

Seeds are small spheres (radius 4 voxels) at the centres of three TotalSegmentator organs
(liver, spleen, right kidney) of the real CT, or of the phantom's liver, spleen and kidney.
ITK FastGrowCut (``pip install itk-growcut``, the algorithm behind Slicer's Grow from seeds)
runs with ``--itk``; it took 218 s here on the full standard volume, so ``--size`` can pick a
smaller grid for a side-by-side run. The fraction of voxels where ITK and gpuseg agree is
reported (they may differ where geodesic distances tie and ITK's heap order decides).

    python -m benchmarks.bench_grow [--size standard|KxJxI] [--itk] [--opencl]

(Import ITK in a process that has not loaded SimpleITK: the two crash together here.)
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks.harness import Result, backends, finish, measure
from benchmarks.standard_volume import load, parse_size


def seed_values(vol, names=("liver", "spleen", "kidney_right", "kidney")):
    rev = {v.lower(): k for k, v in vol.label_names.items()}
    return [rev[n] for n in names if n in rev][:3]


def correction_stroke(vol, seeds, result, length=12):
    """A realistic correction: a short line (``length`` voxels along i) of the first segment,
    where the truth says organ 1 but the grow gave the voxel to another segment. Falls back to a
    line next to the first seed when the grow made no such mistake."""
    truth = vol.labels == seed_values(vol)[0]
    wrong = truth & np.logical_or.reduce([r for r in result[1:]]) if len(result) > 1 else np.zeros_like(truth)
    stroke = seeds[0].copy()
    if wrong.any():
        c = np.argwhere(wrong)[np.count_nonzero(wrong) // 2]
        line = np.zeros_like(truth)
        line[c[0], c[1], max(0, c[2] - length // 2):c[2] + length // 2] = True
        stroke |= line & wrong
        return stroke, "inside a region another segment won wrongly"
    c = np.argwhere(seeds[0])[0]
    stroke[c[0], c[1], max(0, c[2] - length):c[2]] = True
    return stroke, "next to the first seed (the grow made no mistake to correct)"


def seeds_from(vol, names=("liver", "spleen", "kidney_right", "kidney")):
    values = seed_values(vol, names)
    out = []
    kk, jj, ii = np.ogrid[:vol.labels.shape[0], :vol.labels.shape[1], :vol.labels.shape[2]]
    for v in values:
        pts = np.argwhere(vol.labels == v)
        c = pts[len(pts) // 2]
        out.append(((kk - c[0]) ** 2 + (jj - c[1]) ** 2 + (ii - c[2]) ** 2) <= 16)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="standard")
    ap.add_argument("--phantom", action="store_true")
    ap.add_argument("--itk", action="store_true", help="also run ITK FastGrowCut (slow)")
    ap.add_argument("--opencl", action="store_true", help="also run the OpenCL relaxation (slow on PoCL)")
    ap.add_argument("--backends", default=None,
                    help="comma-separated gpuseg backends (default cpu, plus opencl with --opencl); "
                         "unusable ones are skipped with their reason")
    ap.add_argument("--slicer-region", action="store_true",
                    help="grow only over Slicer's region (the seeds' extent + int(max(3, 0.1 * (last - first))) "
                         "voxels per axis) instead of the whole volume, as the ITK filter does")
    args = ap.parse_args(argv)
    size = parse_size(args.size)
    vol = load(size, force_phantom=args.phantom)
    seeds = seeds_from(vol)
    import gpuseg

    case = f"grow from 3 seeds, {vol.name}"
    case2 = f"update after one added stroke, {vol.name}"
    res: list[Result] = []
    results = {}
    names = args.backends or ",".join(["cpu"] + (["opencl"] if args.opencl else []))
    for name, b in backends(names):
        img = gpuseg.Image.from_numpy(vol.image, vol.geometry, backend=b)
        masks = [gpuseg.Mask.from_numpy(s, vol.geometry, backend=b, crop=True) for s in seeds]
        region = None if args.slicer_region else vol.geometry.extent
        first, best, gc = measure(lambda: gpuseg.GrowCut(img, masks, region=region), repeat=1, sync=b.synchronize)
        results[name] = [m.to_numpy() for m in gc.result()]
        res.append(Result(case, f"gpuseg {name}", "gpuseg", first, best, 1,
                          note=f"region {'x'.join(map(str, gc.region.shape))}"))
        # one more stroke: a short correction of the first segment where another one won wrongly
        stroke, where = correction_stroke(vol, seeds, results[name])
        more = [gpuseg.Mask.from_numpy(s, vol.geometry, backend=b, crop=True) for s in [stroke, *seeds[1:]]]
        t = time.perf_counter()
        upd = gc.update(more)
        t_up = time.perf_counter() - t
        res.append(Result(case2, f"gpuseg {name}", "gpuseg", t_up, t_up, 1,
                          note=f"{100 * t_up / best:.1f}% of the initial grow; stroke {where}"))
        del upd
    if args.itk:
        try:
            import itk
        except ImportError:
            print("ITK is not installed: pip install itk-growcut", file=sys.stderr)
        else:
            seedmap = np.zeros(vol.image.shape, np.uint8)
            for n, s in enumerate(seeds, start=1):
                seedmap[s] = n
            image = itk.image_from_array(vol.image)
            seed_img = itk.image_from_array(seedmap)

            def run_itk():
                f = itk.FastGrowCut[type(image), type(seed_img)].New()
                f.SetInput(image)
                f.SetSeedImage(seed_img)
                f.Update()
                return itk.array_from_image(f.GetOutput())

            t = time.perf_counter()
            lab = run_itk()
            t_itk = time.perf_counter() - t
            res.append(Result(case, "ITK FastGrowCut", "peer", t_itk, t_itk, 1))
            ours = np.zeros(vol.image.shape, np.uint8)
            for n, m in enumerate(results["cpu"], start=1):
                ours[m] = n
            region = ours > 0
            agree = float((ours[region] == lab[region]).mean())
            print(f"labels agree with ITK FastGrowCut on {100 * agree:.2f}% of the region's voxels")
            res[-1].note = f"agreement {100 * agree:.2f}%"
    for other in results:
        if other != "cpu" and "cpu" in results:
            same = all(np.array_equal(x, y) for x, y in zip(results["cpu"], results[other]))
            print(f"cpu and {other} labels identical: {same}")
    finish("grow", res, {case: "ITK FastGrowCut"}, vol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
