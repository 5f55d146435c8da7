"""Fill between slices on the liver of the standard volume sampled every 5th slice: gpuseg vs ITK's
MorphologicalContourInterpolator (itk-morphologicalcontourinterpolation, the filter Slicer wraps).

    python -m benchmarks.bench_interpolate [--size standard|KxJxI] [--phantom] [--every 5]

The label box is the region Slicer hands ITK (the liver's extent plus the auto-complete margin,
``gpuseg.ops.interpolate.slicer_extent``). ITK runs in a child process (tests/itk_mci_oracle.py)
on the same box; its time excludes its module loading (a warm-up call comes first); best of
``--itk-repeat`` runs, as gpuseg's is the best of ``--repeat`` after a first (numba cache load)
run. Agreement (differing voxels, Dice) is reported.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.harness import Result, finish, measure
from benchmarks.standard_volume import load, parse_size
from gpuseg.geometry import Extent
from gpuseg.ops.interpolate import interpolate_labels, slicer_extent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="standard")
    ap.add_argument("--phantom", action="store_true")
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5, help="timed gpuseg runs after the first (best kept)")
    ap.add_argument("--itk-repeat", type=int, default=3, help="timed ITK runs (best kept)")
    args = ap.parse_args(argv)
    vol = load(parse_size(args.size), force_phantom=args.phantom)
    rev = {v.lower(): k for k, v in vol.label_names.items()}
    liver = vol.labels == rev["liver"]
    ks, js, is_ = (np.nonzero(liver.any(axis=a))[0] for a in ((1, 2), (0, 2), (0, 1)))
    every = np.zeros_like(liver)
    every[ks[0]::args.every] = liver[ks[0]::args.every]
    # the region Slicer gives ITK: the liver's extent plus its auto-complete margin
    ext = slicer_extent(Extent(ks[0], ks[-1] + 1, js[0], js[-1] + 1, is_[0], is_[-1] + 1), liver.shape)
    box = every[ext.slices]
    sparse = box.astype(np.int16)  # ITK as short: Slicer's merged labelmap type
    case = f"fill between slices, liver every {args.every}th slice, box {box.shape}, {vol.name}"
    from tests.itk_mci_oracle import run_itk

    first, best, ours = measure(lambda: interpolate_labels(sparse), repeat=args.repeat)
    ref = run_itk({"liver": sparse}, repeat=args.itk_repeat)
    t_itk = float(ref["liver__s"])
    diff = int((ours != ref["liver"]).sum())
    a, b = ours > 0, ref["liver"] > 0
    dice = 2 * (a & b).sum() / max(1, a.sum() + b.sum())
    note = f"vs ITK: {diff} voxels differ, Dice {dice:.6f}; {int(a.sum())} voxels"
    res = [Result(case, "gpuseg (numba host port)", "gpuseg", first, best, args.repeat, note=note),
           Result(case, "ITK MorphologicalContourInterpolator", "peer", float(ref["liver__first_s"]), t_itk,
                  args.itk_repeat)]
    print(f"ITK {t_itk:.2f} s, gpuseg {best:.2f} s: {t_itk / best:.1f}x; {note}")
    finish("interpolate", res, {case: "ITK MorphologicalContourInterpolator"}, vol,
           {"every": args.every, "differing_voxels": diff, "dice": float(dice)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
