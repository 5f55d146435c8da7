"""Core subcommands: backends, threshold, demo."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import add_backend_arg, print_json
from ._checks import add_quiet_arg, check_output


def register(sub) -> None:
    p = sub.add_parser("backends", help="list compute backends and why unusable ones are unusable")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_backends)

    p = sub.add_parser("threshold", help="threshold an image into a segment (a .seg.nrrd/.h5 segmentation, "
                                         "or a labelmap of value 1)")
    p.add_argument("image", help="input volume (.nii, .nii.gz, .nrrd, .nhdr or a DICOM folder)")
    p.add_argument("--min", dest="lo", type=float, required=True, help="lower bound (inclusive)")
    p.add_argument("--max", dest="hi", type=float, required=True, help="upper bound (inclusive)")
    p.add_argument("-o", "--output", required=True,
                   help="output: .seg.nrrd or .h5 (a segmentation), or .nii.gz/.nrrd (a labelmap of value 1)")
    p.add_argument("--name", default="threshold", help="segment name in a segmentation output")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    add_backend_arg(p)
    p.set_defaults(func=cmd_threshold)

    p = sub.add_parser("demo", help="run the main job on a generated CT phantom and print timings")
    p.add_argument("--size", default="400x512x512",
                   help="phantom size as KxJxI (slices x rows x columns), default 400x512x512")
    p.add_argument("-o", "--output", default="gpuseg-demo", help="output folder (default ./gpuseg-demo)")
    p.add_argument("--backends", default=None,
                   help="comma-separated backends to time (default: every usable one)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the phantom")
    p.add_argument("--json", action="store_true", help="print a JSON summary (and no progress bars)")
    add_quiet_arg(p)
    p.set_defaults(func=cmd_demo)


def cmd_backends(args: argparse.Namespace) -> int:
    from ..backends import backend_report

    rows = backend_report()
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        if r["usable"]:
            star = "*" if r["auto"] else " "
            print(f"{star} {r['backend']:<7} usable    {r['device']}  (budget {r['memory_budget']})")
        else:
            print(f"  {r['backend']:<7} unusable  {r['reason']}")
    print("(* = chosen by 'auto'; set GPUSEG_BACKEND or --backend to choose)")
    return 0


def cmd_threshold(args: argparse.Namespace) -> int:
    from .. import read_image, threshold, write_labelmap

    check_output(args.output, "threshold")
    t0 = time.perf_counter()
    img = read_image(args.image, backend=args.backend)
    t1 = time.perf_counter()
    mask = threshold(img, args.lo, args.hi)
    n = mask.count()
    t2 = time.perf_counter()
    name = str(args.output).lower()
    if name.endswith((".seg.nrrd", ".h5")):
        from .. import Segmentation, write_segmentation

        seg = Segmentation(img.geometry, backend=img.backend)
        seg.add_segment(mask.shrink_(), name=args.name, color=(0.9, 0.85, 0.4))
        out = write_segmentation(seg, args.output)
    else:
        out = write_labelmap(args.output, mask.to_numpy().astype("uint8"), img.geometry)
    t3 = time.perf_counter()
    summary = {"input": str(args.image), "output": str(out), "backend": img.backend.name,
               "shape_kji": list(img.shape), "range": [args.lo, args.hi], "voxels": n,
               "volume_mm3": n * img.geometry.voxel_volume,
               "seconds": {"read": t1 - t0, "threshold": t2 - t1, "write": t3 - t2}}
    if args.json:
        print_json(summary)
    else:
        print(f"{n} voxels ({summary['volume_mm3'] / 1000:.1f} cm3) in [{args.lo:g}, {args.hi:g}] "
              f"on {img.backend.name}; wrote {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo, parse_size
    from ._checks import show_progress

    summary = run_demo(parse_size(args.size), Path(args.output), backends=args.backends, seed=args.seed,
                       progress=show_progress(args), log=(lambda *a: None) if args.json else print)
    if args.json:
        print_json(summary)
    return 0
