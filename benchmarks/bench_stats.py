"""Statistics (voxel count, volume, mean HU) for TotalSegmentator's 117 classes on the standard volume.

Peers: TotalSegmentator's own loop (``seg == k`` per class) and scipy.ndimage.mean over labels.

    python -m benchmarks.bench_stats [--size standard|wholebody|KxJxI] [--phantom]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.harness import Result, backends, finish, measure
from benchmarks.standard_volume import load, parse_size


def segmentation_from_labels(labels, geometry, backend, values):
    """One segment per class value, each mask over its own bounding box."""
    from scipy import ndimage

    import gpuseg

    seg = gpuseg.Segmentation(geometry, backend=backend)
    boxes = ndimage.find_objects(labels)
    for v in values:
        box = boxes[v - 1] if v - 1 < len(boxes) else None
        if box is None:
            seg.add_segment(name=f"class {v}")
            continue
        sub = labels[box] == v
        off = tuple(s.start for s in box)
        seg.add_segment(gpuseg.Mask.from_numpy(sub, geometry, offset=off, backend=backend).shrink_(),
                        name=f"class {v}")
    return seg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="standard")
    ap.add_argument("--phantom", action="store_true")
    ap.add_argument("--backends", default="cpu,opencl")
    ap.add_argument("--classes", type=int, default=117)
    args = ap.parse_args(argv)
    size = parse_size(args.size)
    vol = load(size, force_phantom=args.phantom)
    ct, labels = vol.image, vol.labels
    values = list(range(1, args.classes + 1))
    case = f"statistics, {args.classes} classes, {vol.name}"
    res: list[Result] = []

    import gpuseg

    means = {}
    for name, b in backends(args.backends):
        seg = segmentation_from_labels(labels, vol.geometry, b, values)
        img = gpuseg.Image.from_numpy(ct, vol.geometry, backend=b)
        first, best, rows = measure(lambda: gpuseg.statistics(seg, img, percentiles=()), repeat=3,
                                    sync=b.synchronize)
        means[name] = [r["mean"] for r in rows]
        res.append(Result(case, f"gpuseg {name}", "gpuseg", first, best, 3, note="segments resident",
                          extra={"resident_bytes": seg.nbytes, "bytes_per_voxel": seg.nbytes / ct.size}))
        f2, t2, _ = measure(lambda: gpuseg.statistics(segmentation_from_labels(labels, vol.geometry, b, values),
                                                      img, percentiles=()), repeat=1, sync=b.synchronize)
        res.append(Result(case, f"gpuseg {name}", "gpuseg", f2, t2, 1, note="from the labelmap"))

    def totalseg_loop():
        out = []
        for v in values:
            m = labels == v
            n = int(m.sum())
            out.append((n, float(ct[m].mean()) if n else None))
        return out

    f, t, ref = measure(totalseg_loop, repeat=1)
    res.append(Result(case, "TotalSegmentator loop (seg == k)", "peer", f, t, 1))
    from scipy import ndimage

    with np.errstate(invalid="ignore", divide="ignore"):  # classes absent from the volume give NaN
        f, t, _ = measure(lambda: ndimage.mean(ct, labels, values), repeat=2)
    res.append(Result(case, "scipy.ndimage.mean", "peer", f, t, 2))
    for name, m in means.items():
        for (n, mean), got in zip(ref, m):
            assert (mean is None and got is None) or abs(mean - got) <= 1e-9 * max(1.0, abs(mean)), (name, mean, got)

    baseline = {case: "TotalSegmentator loop (seg == k)"}
    finish("stats", res, baseline, vol)
    for r in res:
        if "resident_bytes" in r.extra:
            print(f"{r.impl}: resident masks {r.extra['resident_bytes'] / 2**20:.1f} MiB = "
                  f"{r.extra['bytes_per_voxel']:.4f} byte per voxel of the grid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
