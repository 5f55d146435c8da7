"""Margin: grow bone of the standard volume by 3 mm. gpuseg vs SimpleITK BinaryDilate and SciPy.

The peers get the same physical ball (radius per axis = 3 mm / spacing, rounded) where they
accept one; SimpleITK's ball of radius 3 voxels is the figure of performance.md.

    python -m benchmarks.bench_margin [--size standard|KxJxI] [--phantom] [--mm 3] [--no-scipy]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.harness import Result, backends, finish, measure
from benchmarks.standard_volume import load, parse_size


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="standard")
    ap.add_argument("--phantom", action="store_true")
    ap.add_argument("--mm", type=float, default=3.0)
    ap.add_argument("--backends", default="cpu,opencl")
    ap.add_argument("--no-scipy", action="store_true", help="skip the slow SciPy peer")
    args = ap.parse_args(argv)
    size = parse_size(args.size)
    vol = load(size, force_phantom=args.phantom)
    a = vol.image
    bone = (a >= 200) & (a <= 3000)
    case = f"margin +{args.mm:g} mm, bone, {vol.name}"
    res: list[Result] = []

    import gpuseg
    from gpuseg.ops.morphology import ball_structure

    counts = {}
    for name, b in backends(args.backends):
        m = gpuseg.Mask.from_numpy(bone, vol.geometry, backend=b)
        first, best, out = measure(lambda: gpuseg.margin(m, args.mm), repeat=3, sync=b.synchronize)
        counts[name] = out.count()
        res.append(Result(case, f"gpuseg {name}", "gpuseg", first, best, 3, extra={"voxels": counts[name]}))

    import SimpleITK as sitk

    si, sj, sk = vol.spacing_ijk
    radius = [max(1, round(args.mm / s)) for s in (si, sj, sk)]
    simg = sitk.GetImageFromArray(bone.astype(np.uint8))
    f, t, _ = measure(lambda: sitk.BinaryDilate(simg, radius, sitk.sitkBall), repeat=1)
    res.append(Result(case, f"SimpleITK BinaryDilate, ball {radius}", "peer", f, t, 1))
    f, t, _ = measure(lambda: sitk.BinaryDilate(simg, [3, 3, 3], sitk.sitkBall), repeat=1)
    res.append(Result(case, "SimpleITK BinaryDilate, ball radius 3", "peer", f, t, 1))
    if not args.no_scipy:
        from scipy import ndimage

        se = ball_structure(vol.spacing_ijk, args.mm)
        f, t, ref = measure(lambda: ndimage.binary_dilation(bone, structure=se), repeat=1)
        res.append(Result(case, "scipy binary_dilation, same ball", "peer", f, t, 1))
        for name, n in counts.items():
            assert n == int(ref.sum()), f"{name} differs from SciPy"

    # median smoothing (Slicer's default Smoothing effect), same box for every implementation
    from gpuseg.ops.smoothing import median_kernel_voxels

    hk, hj, hi = median_kernel_voxels(vol.spacing_ijk, args.mm)
    case2 = f"median {args.mm:g} mm (box {2 * hi + 1}x{2 * hj + 1}x{2 * hk + 1}), bone, {vol.name}"
    for name, b in backends(args.backends):
        m = gpuseg.Mask.from_numpy(bone, vol.geometry, backend=b)
        first, best, out = measure(lambda: gpuseg.smooth(m, "median", args.mm), repeat=3, sync=b.synchronize)
        res.append(Result(case2, f"gpuseg {name}", "gpuseg", first, best, 3, extra={"voxels": out.count()}))
    f, t, _ = measure(lambda: sitk.BinaryMedian(simg, [hi, hj, hk], 1, 0), repeat=1)
    res.append(Result(case2, "SimpleITK BinaryMedian", "peer", f, t, 1))

    baseline = {case: f"SimpleITK BinaryDilate, ball {radius}", case2: "SimpleITK BinaryMedian"}
    finish("margin", res, baseline, vol, {"mm": args.mm})
    return 0


if __name__ == "__main__":
    sys.exit(main())
