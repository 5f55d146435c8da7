"""Threshold the standard volume to a bone mask: gpuseg backends vs numpy, SimpleITK, copy floor.

    python -m benchmarks.bench_threshold [--size standard|wholebody|KxJxI] [--phantom] [--repeat N]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.harness import Result, backends, finish, measure
from benchmarks.standard_volume import load, parse_size

LO, HI = 200, 3000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="standard")
    ap.add_argument("--phantom", action="store_true", help="use the generated phantom even if ../shared exists")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--backends", default="cpu,opencl")
    args = ap.parse_args(argv)
    size = parse_size(args.size)
    vol = load(size, force_phantom=args.phantom)
    a = vol.image
    case = f"threshold {vol.name}"
    res: list[Result] = []

    import gpuseg

    ref_words = None
    for name, b in backends(args.backends):
        img = gpuseg.Image.from_numpy(a, vol.geometry, backend=b)
        first, best, m = measure(lambda: gpuseg.threshold(img, LO, HI), repeat=args.repeat, sync=b.synchronize)
        words = m.words_numpy()
        if ref_words is None:
            ref_words = words
        same = np.array_equal(words, ref_words)
        res.append(Result(case, f"gpuseg {name}", "gpuseg", first, best, args.repeat,
                          note="" if same else "DIFFERS", extra={"voxels": int(m.count())}))
        del img, m

    f, t, ref = measure(lambda: (a >= LO) & (a <= HI), repeat=3)
    res.append(Result(case, "numpy bool", "peer", f, t, 3))
    assert ref_words is None or int(ref.sum()) == res[0].extra["voxels"]
    f, t, _ = measure(lambda: np.packbits((a >= LO) & (a <= HI), axis=-1, bitorder="little"), repeat=3)
    res.append(Result(case, "numpy + packbits", "peer", f, t, 3))
    try:
        import SimpleITK as sitk

        simg = sitk.GetImageFromArray(a)
        f, t, _ = measure(lambda: sitk.BinaryThreshold(simg, LO, HI, 1, 0), repeat=3)
        res.append(Result(case, "SimpleITK BinaryThreshold", "peer", f, t, 3))
    except ImportError:
        print("SimpleITK not installed: skipped", file=sys.stderr)
    dst = np.empty_like(a)
    f, t, _ = measure(lambda: np.copyto(dst, a), repeat=5)
    res.append(Result(case, "copy the input once (floor)", "floor", f, t, 5))

    baseline = {case: "numpy bool"}
    finish("threshold", res, baseline, vol)
    floor = next(r for r in res if r.kind == "floor").best_s
    for r in res:
        if r.kind == "gpuseg":
            print(f"{r.impl}: {next(x for x in res if x.impl == 'numpy bool').best_s / r.best_s:.2f}x numpy bool, "
                  f"{r.best_s / floor:.2f}x the copy floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
