"""``gpuseg compare``: Dice, Jaccard, volumes and boundary distances between two segmentations
(and, with ``--surface``, distances between their closed surfaces)."""

from __future__ import annotations

import argparse

from . import add_backend_arg, print_json, write_csv_rows
from ._checks import add_quiet_arg, check_output, progress


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare two segmentations segment by segment (Dice, Jaccard, Hausdorff, "
                                       "ASSD, NSD)",
                       description="Compare segmentation A (e.g. a model's output) with B (a reference; resampled "
                                   "nearest-neighbour onto A's grid if it is on another). Segments are matched by name, then by label value; one row per pair "
                                   "(unmatched segments get a row with the other side empty). Definitions: "
                                   "docs/measurements.md.")
    p.add_argument("a", help="segmentation to assess (.seg.nrrd, .h5, .nii.gz labelmap, ...)")
    p.add_argument("b", help="reference segmentation (resampled onto A's grid, nearest neighbour, if needed)")
    p.add_argument("--labels", help="label table naming the values of multilabel labelmaps (both inputs), e.g. "
                                    "TotalSegmentator's total_classes.json")
    p.add_argument("--segment", action="append", help="only the pair with this segment name (or id); repeatable")
    p.add_argument("--tolerance", action="append", type=float, metavar="MM",
                   help="NSD tolerance in mm (repeatable; default 1)")
    p.add_argument("--same-grid", action="store_true", help="fail (exit 2) if B is on another grid, instead of "
                                                            "resampling it")
    p.add_argument("--no-distances", action="store_true", help="overlap and volumes only (no Hausdorff, ASSD, NSD)")
    p.add_argument("--surface", action="store_true",
                   help="also Hausdorff (max, mean, 95th), ASSD and NSD between the segments' closed surfaces "
                        "(surface_* columns): every surface vertex to the nearest point of the other surface's "
                        "triangles, both directions (SlicerRT's surface distance)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON (one object per pair)")
    out.add_argument("--csv", metavar="OUT", help="write a CSV table, one row per pair ('-' for stdout)")
    p.add_argument("--plot", metavar="PICTURE", help="also draw Dice and HD95 per segment pair into a .png, .svg "
                                                     "or .pdf")
    add_quiet_arg(p)
    add_backend_arg(p)
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from .. import read_segmentation
    from ..ops.compare import DEFAULT_TOLERANCES_MM, compare_segmentations, nsd_key

    if args.csv and args.csv != "-":
        check_output(args.csv, "csv", "--csv")
    if args.plot:
        check_output(args.plot, "plot", "--plot")
    a = read_segmentation(args.a, backend=args.backend, labels=args.labels)
    b = read_segmentation(args.b, backend=a.backend, labels=args.labels)
    tols = args.tolerance or list(DEFAULT_TOLERANCES_MM)
    with progress(args, desc="comparing", unit="pair") as bar:
        def step(done, total):
            bar.total = total
            bar.update(1)

        rows = compare_segmentations(a, b, segments=args.segment, tolerances=tols, distances=not args.no_distances,
                                     resample=not args.same_grid, surface=args.surface, on_pair=step)
    if args.plot:
        from pathlib import Path

        from ..plots import plot_comparison

        plot_comparison(rows, args.plot, title=f"{Path(args.a).name} against {Path(args.b).name}")
    if args.json:
        print_json(rows)
        return 0
    if args.csv:
        write_csv_rows(rows, args.csv)
        return 0
    cols = ["dice", "jaccard", "volume_difference_mm3"]
    if not args.no_distances:
        cols += ["hausdorff_max_mm", "hausdorff_95_mm", "assd_mm", nsd_key(tols[0])]
    if args.surface:
        cols += ["surface_hausdorff_max_mm", "surface_hausdorff_95_mm", "surface_assd_mm",
                 "surface_" + nsd_key(tols[0])]
    width = {c: max(10, len(c)) for c in cols}
    print(f"{'segment':<28}  " + "  ".join(f"{c:>{width[c]}}" for c in cols))
    for r in rows:
        cells = [f"{str(r['segment'])[:28]:<28}"]
        for c in cols:
            v = r.get(c)
            cells.append(f"{'-' if v is None else f'{v:.4f}':>{width[c]}}")
        print("  ".join(cells))
    return 0
