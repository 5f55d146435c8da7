"""Fill between slices on the liver of the standard volume sampled every 5th slice: gpuseg vs ITK's
MorphologicalContourInterpolator (itk-morphologicalcontourinterpolation, the filter Slicer wraps).

    python -m benchmarks.bench_interpolate [--size standard|KxJxI] [--phantom] [--every 5]

ITK runs in a child process (tests/itk_mci_oracle.py) on the same label box; its time excludes
its module loading (a warm-up call comes first). Agreement (differing voxels, Dice) is reported.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.harness import Result, finish, measure
from benchmarks.standard_volume import load, parse_size


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="standard")
    ap.add_argument("--phantom", action="store_true")
    ap.add_argument("--every", type=int, default=5)
    args = ap.parse_args(argv)
    vol = load(parse_size(args.size), force_phantom=args.phantom)
    rev = {v.lower(): k for k, v in vol.label_names.items()}
    liver = vol.labels == rev["liver"]
    ks, js, is_ = (np.nonzero(liver.any(axis=a))[0] for a in ((1, 2), (0, 2), (0, 1)))
    box = liver[ks[0]:ks[-1] + 1, js[0]:js[-1] + 1, is_[0]:is_[-1] + 1]
    sparse = np.zeros(box.shape, np.int16)  # ITK as short: Slicer's merged labelmap type
    sparse[::args.every] = box[::args.every]
    case = f"fill between slices, liver every {args.every}th slice, box {box.shape}, {vol.name}"
    from gpuseg.ops.interpolate import interpolate_labels
    from tests.itk_mci_oracle import run_itk

    first, best, ours = measure(lambda: interpolate_labels(sparse), repeat=2)
    ref = run_itk({"liver": sparse})
    t_itk = float(ref["liver__s"])
    diff = int((ours != ref["liver"]).sum())
    a, b = ours > 0, ref["liver"] > 0
    dice = 2 * (a & b).sum() / max(1, a.sum() + b.sum())
    note = f"vs ITK: {diff} voxels differ, Dice {dice:.6f}; {int(a.sum())} voxels"
    res = [Result(case, "gpuseg (host port)", "gpuseg", first, best, 2, note=note),
           Result(case, "ITK MorphologicalContourInterpolator", "peer", t_itk, t_itk, 1)]
    print(f"ITK {t_itk:.2f} s, gpuseg {best:.2f} s: {t_itk / best:.1f}x; {note}")
    finish("interpolate", res, {case: "ITK MorphologicalContourInterpolator"}, vol,
           {"every": args.every, "differing_voxels": diff, "dice": float(dice)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
