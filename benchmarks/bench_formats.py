"""Save and load a 117-class segmentation in every format, against slicerio's .seg.nrrd.

The segmentation is TotalSegmentator's labels resampled onto the whole-body grid
(1500 x 512 x 512; the example has 41 of the 117 classes present, the other 76 segments are
empty), or a phantom's labels without ../shared. Reports time, file size and resident memory,
and the gzip levels and HDF5 compressions tried.

    python -m benchmarks.bench_formats [--size wholebody|standard|KxJxI] [--phantom]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import Result, finish, measure


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="wholebody")
    ap.add_argument("--phantom", action="store_true")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--levels", default="1,6,9", help="gzip levels to compare for .seg.nrrd")
    args = ap.parse_args(argv)
    from benchmarks.bench_stats import segmentation_from_labels
    from benchmarks.standard_volume import load, parse_size

    size = parse_size(args.size)
    vol = load(size, force_phantom=args.phantom)
    labels = vol.labels
    vol.image = None  # only the labels are needed: keep memory for the files
    import gpuseg
    import slicerio

    b = gpuseg.get_backend(args.backend)
    t = time.perf_counter()
    seg = segmentation_from_labels(labels, vol.geometry, b, list(range(1, 118)))
    for s in seg:
        if s.label_value in vol.label_names:
            s.name = vol.label_names[s.label_value]
    t_build = time.perf_counter() - t
    n_nonempty = sum(1 for s in seg if s.mask.nbytes)
    case = f"save+load 117 segments ({n_nonempty} non-empty), {vol.name}"
    res: list[Result] = []
    tmp = Path(tempfile.mkdtemp(prefix="gpuseg-bench-"))
    sizes = {}

    def round_trip(name, path, write, read, kind="gpuseg"):
        fw, tw, _ = measure(write, repeat=1)
        sizes[name] = os.path.getsize(path) if Path(path).is_file() else sum(
            f.stat().st_size for f in Path(path).iterdir())
        fr, tr, out = measure(read, repeat=1)
        res.append(Result(case, name, kind, fw + fr, tw + tr, 1,
                          note=f"save {tw * 1e3:.0f} ms + load {tr * 1e3:.0f} ms, {sizes[name] / 2**20:.1f} MiB",
                          extra={"save_s": tw, "load_s": tr, "bytes": sizes[name]}))
        return out

    h5 = tmp / "s.h5"
    back = round_trip("gpuseg .h5 (lzf)", h5, lambda: gpuseg.write_segmentation(seg, h5),
                      lambda: gpuseg.read_segmentation(h5, backend=b))
    assert all(x.mask.equals(y.mask) for x, y in zip(seg, back))
    h5g = tmp / "g.h5"
    round_trip("gpuseg .h5 (gzip)", h5g, lambda: gpuseg.write_segmentation(seg, h5g, compression="gzip"),
               lambda: gpuseg.read_segmentation(h5g, backend=b))
    for level in [int(v) for v in args.levels.split(",")]:
        f = tmp / f"l{level}.seg.nrrd"
        back = round_trip(f"gpuseg .seg.nrrd (gzip {level})", f,
                          lambda: gpuseg.write_segmentation(seg, f, compression_level=level),
                          lambda: gpuseg.read_segmentation(f, backend=b))
    assert all(x.mask.equals(y.mask) for x, y in zip(seg, back))
    nii = tmp / "m.nii.gz"
    round_trip("gpuseg multilabel .nii.gz", nii, lambda: gpuseg.write_segmentation(seg, nii),
               lambda: gpuseg.read_segmentation(nii, backend=b))

    info = slicerio.read_segmentation(str(tmp / "l1.seg.nrrd"))
    ref = tmp / "slicerio.seg.nrrd"
    round_trip("slicerio .seg.nrrd (its default, gzip 9)", ref, lambda: slicerio.write_segmentation(str(ref), info),
               lambda: slicerio.read_segmentation(str(ref)), kind="peer")
    ref1 = tmp / "slicerio1.seg.nrrd"
    round_trip("slicerio .seg.nrrd (gzip 1)", ref1,
               lambda: slicerio.write_segmentation(str(ref1), info, compression_level=1),
               lambda: slicerio.read_segmentation(str(ref1)), kind="peer")

    baseline = {case: "slicerio .seg.nrrd (its default, gzip 9)"}
    finish("formats", res, baseline, vol, {"segments": 117, "non_empty": n_nonempty})
    nvox = int(np.prod(labels.shape))
    print(f"\nresident segmentation: {seg.nbytes / 2**20:.1f} MiB = {seg.nbytes / nvox:.4f} byte per voxel of the "
          f"{labels.shape} grid (a uint8 labelmap is 1, dense bit planes for 117 classes 14.6); built in {t_build:.1f} s")
    get = {r.impl: r for r in res}
    h = get["gpuseg .h5 (lzf)"].best_s
    s = get["slicerio .seg.nrrd (its default, gzip 9)"].best_s
    print(f".h5 save+load vs slicerio .seg.nrrd round trip: {s / h:.1f}x faster")
    for r in res:
        if r.impl.startswith("gpuseg .seg.nrrd"):
            print(f"{r.impl} save vs slicerio save (gzip 9): "
                  f"{get['slicerio .seg.nrrd (its default, gzip 9)'].extra['save_s'] / r.extra['save_s']:.1f}x, "
                  f"size {r.extra['bytes'] / get['slicerio .seg.nrrd (its default, gzip 9)'].extra['bytes']:.2f}x")
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
