"""Segment-level effects and statistics on segmentation files: stats, margin, hollow, smooth."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_backend_arg, print_json, write_csv_rows
from ._checks import add_masking_args, add_quiet_arg, check_output, masking_from_args, progress


def register(sub) -> None:
    p = sub.add_parser("stats", help="segment statistics (volume, centroid, intensity) of a segmentation")
    p.add_argument("segmentation", help="segmentation file (.seg.nrrd, .h5, .nii.gz labelmap, ...)")
    p.add_argument("--image", help="intensity volume on the same grid (.nii, .nii.gz, .nrrd or a DICOM folder), "
                                   "for intensity statistics")
    p.add_argument("--segment", action="append", help="only this segment (name or id); repeatable")
    p.add_argument("--labels", help="label table (JSON, CSV or Slicer color table) naming the values of a multilabel "
                                    "labelmap (TotalSegmentator's total_classes.json, nnU-Net's dataset.json)")
    p.add_argument("--shape", action="store_true",
                   help="add Slicer's labelmap shape statistics (Feret diameter, surface area, roundness, flatness, "
                        "elongation, principal moments and axes, oriented bounding box)")
    p.add_argument("--surface", action="store_true",
                   help="add closed-surface area and volume (Slicer's closed surface statistics, from the "
                        "segmentation's surface conversion parameters)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--csv", metavar="OUT", help="write a CSV table ('-' for stdout)")
    p.add_argument("--plot", metavar="PICTURE", help="also draw volumes (bars) and, with --image, intensities "
                                                     "(box plots) per segment into a .png, .svg or .pdf")
    add_quiet_arg(p)
    add_backend_arg(p)
    p.set_defaults(func=cmd_stats)

    for name, helptext in (("margin", "grow (positive mm) or shrink (negative mm) a segment"),
                           ("hollow", "replace a segment by a shell of the given thickness"),
                           ("smooth", "smooth a segment (median, opening, closing, gaussian), or all visible "
                                      "segments together (joint_taubin)")):
        p = sub.add_parser(name, help=helptext + " (through the Segment Editor's masking, Slicer's defaults)",
                           description=helptext + ". The change is applied as Slicer's Segment Editor applies "
                           "it: by default the segment may change everywhere and takes the voxels it gains "
                           "from the other segments (Overwrite all); see the masking options.")
        p.add_argument("segmentation", help="segmentation file (.seg.nrrd, .h5, .nii.gz labelmap, ...)")
        p.add_argument("--segment", action="append", required=name != "smooth",
                       help="segment to change (name or id); repeatable"
                            + (" (not with joint_taubin, which smooths all visible segments)" if name == "smooth" else ""))
        p.add_argument("--mm", type=float, required=name != "smooth",
                       help={"margin": "margin in mm (negative shrinks)", "hollow": "shell thickness in mm",
                             "smooth": "kernel size in mm (gaussian: the standard deviation in mm)"}[name])
        if name == "hollow":
            p.add_argument("--mode", default="inside", choices=["inside", "medial", "outside"],
                           help="where the current boundary ends up (default inside)")
        if name == "smooth":
            p.add_argument("--method", default="median",
                           choices=["median", "opening", "closing", "gaussian", "joint_taubin"],
                           help="median (default), opening (removes extrusions), closing (fills holes), gaussian "
                                "(vtkImageGaussianSmooth, re-thresholded at 50%%) or joint_taubin (all visible "
                                "segments smoothed as one surface, Slicer's joint smoothing; bypasses masking)")
            p.add_argument("--joint-smoothing-factor", type=float, default=0.5, metavar="F",
                           help="JointTaubinSmoothingFactor in [0, 1] for joint_taubin (default 0.5)")
        p.add_argument("-o", "--output", required=True,
                       help="output segmentation file (.seg.nrrd, .nrrd, .nii, .nii.gz, .h5 or .dcm)")
        add_masking_args(p)
        add_backend_arg(p)
        p.set_defaults(func=cmd_effect, effect=name)


def _load(path: str, backend, labels=None):
    from .. import read_segmentation

    return read_segmentation(path, backend=backend, labels=labels)


def cmd_stats(args: argparse.Namespace) -> int:
    from .. import read_image, statistics
    from ..ops.stats import DEFAULT_PERCENTILES, flatten_rows

    if args.csv and args.csv != "-":
        check_output(args.csv, "csv", "--csv")
    if args.plot:
        check_output(args.plot, "plot", "--plot")
    seg = _load(args.segmentation, args.backend, args.labels)
    img = read_image(args.image, backend=seg.backend) if args.image else None
    if img is not None:
        seg.geometry.check_same_grid(img.geometry, "segmentation and image")
    chosen = [seg.segment(s).id for s in args.segment] if args.segment else seg.segment_ids
    rows = []
    percentiles = tuple(DEFAULT_PERCENTILES)
    if args.plot:
        from ..plots import BOX_PERCENTILES

        percentiles = tuple(sorted(set(percentiles) | set(BOX_PERCENTILES)))
    with progress(args, total=len(chosen), desc="statistics", unit="segment") as bar:
        for sid in chosen:
            rows.extend(statistics(seg, img, segments=[sid], shape=args.shape, surface=args.surface,
                                   percentiles=percentiles))
            bar.update(1)
    if args.plot:
        from ..plots import plot_statistics

        plot_statistics(rows, args.plot, colors={s.id: s.color for s in seg},
                        title=f"{Path(args.segmentation).name}: {len(rows)} segments")
    if args.json:
        print_json(rows)
        return 0
    flat = flatten_rows(rows)
    if args.csv:
        write_csv_rows(flat, args.csv)
        return 0
    cols = ["segment", "voxel_count", "volume_cm3"] + (["mean", "stdev", "median", "min", "max"] if img else [])
    cols += ["surface_area_mm2", "feret_diameter_mm", "roundness"] if args.shape else []
    cols += ["closed_surface_surface_mm2", "closed_surface_volume_mm3"] if args.surface else []
    width = {c: max(12, len(c)) for c in cols}
    print("  ".join(f"{c:>{width[c]}}" if c != "segment" else f"{c:<28}" for c in cols))
    for f in flat:
        cells = []
        for c in cols:
            v, w = f.get(c), width[c]
            if c == "segment":
                cells.append(f"{str(v)[:28]:<28}")
            elif isinstance(v, float):
                cells.append(f"{v:>{w}.{4 if c == 'roundness' else 2}f}")
            else:
                cells.append(f"{'-' if v is None else v:>{w}}")
        print("  ".join(cells))
    return 0


def cmd_effect(args: argparse.Namespace) -> int:
    from .. import Editor, read_image, write_segmentation

    check_output(args.output, "editable")
    masking = masking_from_args(args)
    seg = _load(args.segmentation, args.backend)
    joint = args.effect == "smooth" and args.method == "joint_taubin"
    if args.effect == "smooth":
        from ..errors import InvalidInputError

        if joint and args.segment:
            raise InvalidInputError("--method joint_taubin smooths all visible segments together; drop --segment")
        if not joint and not args.segment:
            raise InvalidInputError(f"--method {args.method} needs --segment NAME")
        if not joint and args.mm is None:
            raise InvalidInputError(f"--method {args.method} needs --mm (the kernel size, or the Gaussian sigma)")
    targets = [seg.segment(s) for s in args.segment or []]  # unknown names fail before any change
    img = None
    if args.image:
        img = read_image(args.image, backend=seg.backend)
        seg.geometry.check_same_grid(img.geometry, "segmentation and image")
    ed = Editor(seg, img)
    ed.masking = masking
    masking.check(seg)
    if joint:
        before = {o.id: o.mask.count() for o in seg}
        changed = ed.smooth(None, "joint_taubin", joint_smoothing_factor=args.joint_smoothing_factor)
        visible = [o for o in seg if o.visible]
        print(f"smooth (joint_taubin, factor {args.joint_smoothing_factor:g}): {len(visible)} visible segments, "
              f"{changed} voxels changed: " + ", ".join(f"{o.name!r} {before[o.id]} -> {o.mask.count()}" for o in visible))
    for s in targets:
        before = {o.id: o.mask.count() for o in seg}
        if args.effect == "margin":
            changed = ed.margin(s.id, args.mm)
        elif args.effect == "hollow":
            changed = ed.hollow(s.id, args.mm, args.mode)
        else:
            changed = ed.smooth(s.id, args.method, args.mm, gaussian_sigma_mm=args.mm)
        taken = {o.name: before[o.id] - o.mask.count() for o in seg if o.id != s.id and before[o.id] > o.mask.count()}
        print(f"{args.effect} {s.name!r}: {s.mask.count()} voxels ({changed} changed"
              + (", taken from " + ", ".join(f"{n!r} ({v})" for n, v in taken.items()) if taken else "") + ")")
    write_segmentation(seg, args.output)
    return 0
