"""Brush latency on a whole-body grid (1500 x 512 x 512, 0.8 mm), against a numpy
bounding-box stamp into a uint8 labelmap.

Reports a single stamp (5, 10, 25 mm; sphere and disc) including the updated display slice,
a 100-point stroke, and the undo memory after 1000 strokes.

    python -m benchmarks.bench_editor [--size KxJxI] [--backends cpu,opencl]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks.harness import Result, backends, measure, save, table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1500x512x512")
    ap.add_argument("--backends", default="cpu,opencl")
    ap.add_argument("--strokes", type=int, default=1000)
    args = ap.parse_args(argv)
    import gpuseg

    shape = tuple(int(v) for v in args.size.split("x"))
    g = gpuseg.ImageGeometry(shape, spacing=(0.8, 0.8, 0.8))
    res: list[Result] = []
    rng = np.random.default_rng(0)
    centre = np.array([shape[2] * 0.4, shape[1] * 0.5, shape[0] * 0.5]) * 0.8
    for name, b in backends(args.backends):
        seg = gpuseg.Segmentation(g, backend=b)
        seg.add_segment(name="a")
        seg.add_segment(name="b")
        ed = gpuseg.Editor(seg)
        for d in (5.0, 10.0, 25.0):
            for shp in ("sphere", "disc"):
                k = int(round(centre[2] / 0.8))

                def stamp():
                    p = centre + rng.uniform(-20, 20, 3)
                    ed.paint("a", [p], d, shape=shp)
                    return seg["a"].mask.slice(0, int(round(p[2] / 0.8)))

                first, best, _ = measure(stamp, repeat=20)
                res.append(Result(f"stamp {d:g} mm {shp} + display slice", f"gpuseg {name}", "gpuseg", first, best, 20))
        pts = centre + np.cumsum(rng.normal(0, 1.5, (100, 3)), axis=0)
        first, best, _ = measure(lambda: ed.paint("b", pts, 10.0), repeat=5)
        res.append(Result("100-point stroke, 10 mm sphere", f"gpuseg {name}", "gpuseg", first, best, 5))
        # undo memory after many strokes
        seg2 = gpuseg.Segmentation(g, backend=b)
        seg2.add_segment(name="a")
        ed2 = gpuseg.Editor(seg2, undo_budget="4GB")
        changed = 0
        t = time.perf_counter()
        for _ in range(args.strokes):
            p = centre + rng.uniform(-60, 60, 3)
            changed += ed2.paint("a", [p, p + rng.normal(0, 5, 3)], 8.0)
        t_all = time.perf_counter() - t
        res.append(Result(f"{args.strokes} two-point strokes, 8 mm", f"gpuseg {name}", "gpuseg", t_all, t_all, 1,
                          note=f"undo holds {ed2.undo_memory / 2**20:.2f} MiB for {changed} changed voxels "
                               f"= {8 * ed2.undo_memory / changed:.2f} bits per changed bit",
                          extra={"undo_bytes": ed2.undo_memory, "changed_voxels": changed}))
    # peer: numpy bounding-box stamp into a uint8 labelmap (+ the display slice)
    lab = np.zeros(shape, np.uint8)
    for d in (5.0, 10.0, 25.0):
        r = d / 2 / 0.8
        n = int(np.ceil(r))
        kk, jj, ii = np.ogrid[-n:n + 1, -n:n + 1, -n:n + 1]
        ball = kk * kk + jj * jj + ii * ii <= r * r

        def np_stamp():
            c = (centre / 0.8)[::-1].astype(int) + rng.integers(-20, 20, 3)
            sl = tuple(slice(x - n, x + n + 1) for x in c)
            lab[sl][ball] = 1
            return lab[c[0]].copy()

        first, best, _ = measure(np_stamp, repeat=20)
        res.append(Result(f"stamp {d:g} mm sphere + display slice", "numpy bbox stamp into uint8", "peer", first,
                          best, 20))
    baseline = {r.case: "numpy bbox stamp into uint8" for r in res if r.kind == "peer"}
    print(f"\nwhole-body grid {shape}, 0.8 mm\n")
    print(table(res, baseline))
    path, png = save("editor", res, baseline, {"volume": "x".join(map(str, shape)), "source": "empty grid"})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
