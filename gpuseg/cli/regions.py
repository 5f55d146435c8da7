"""Region subcommands: islands and grow (from seeds)."""

from __future__ import annotations

import argparse
import time

from . import add_backend_arg
from ._checks import add_masking_args, add_quiet_arg, check_output, masking_from_args, progress


def register(sub) -> None:
    p = sub.add_parser("islands", help="keep the largest island, remove small islands, or split islands "
                                       "into segments (Slicer's Islands effect)",
                       description="Slicer's Islands effect. --keep-largest and --remove-small change the segment "
                                   "through the Segment Editor's masking (Slicer's defaults; see the masking "
                                   "options); --split adds one segment per island, coloured from Slicer's colour "
                                   "cycle, and ignores masking.")
    p.add_argument("segmentation", help="segmentation file (.seg.nrrd, .h5, .nii.gz labelmap, ...)")
    p.add_argument("--segment", required=True, help="segment name or id")
    op = p.add_mutually_exclusive_group(required=True)
    op.add_argument("--keep-largest", action="store_true", help="keep only the largest island")
    op.add_argument("--remove-small", type=int, metavar="N", help="remove islands smaller than N voxels")
    op.add_argument("--split", action="store_true", help="one segment per island (largest stays in place)")
    p.add_argument("--min-size", type=int, default=None, help="with --split: drop islands smaller than this (voxels); with --keep-largest: clear the "
                   "segment when its largest island is smaller (Slicer's MinimumSize; default 0 here)")
    p.add_argument("--connectivity", type=int, choices=[6, 26], default=6, help="6 (faces, Slicer's) or 26")
    p.add_argument("-o", "--output", required=True,
                   help="output segmentation file (.seg.nrrd, .nrrd, .nii, .nii.gz, .h5 or .dcm)")
    add_masking_args(p)
    add_backend_arg(p)
    p.set_defaults(func=cmd_islands)

    p = sub.add_parser("grow", help="grow from seeds (Slicer's Grow from seeds / FastGrowCut)")
    p.add_argument("image", help="intensity volume (.nii, .nii.gz, .nrrd or a DICOM folder)")
    p.add_argument("seeds", help="segmentation whose (visible) segments are the seeds")
    p.add_argument("-o", "--output", required=True,
                   help="output segmentation (the grown segments): .seg.nrrd, .nrrd, .nii, .nii.gz, .h5 or .dcm")
    p.add_argument("--seed-locality", type=float, default=0.0, help="lambda: extra cost per mm of path (default 0)")
    p.add_argument("--whole-volume", action="store_true",
                   help="grow over the whole volume instead of Slicer's region (the seeds' extent + "
                        "int(max(3, 0.1 * (last - first))) voxels per axis)")
    add_quiet_arg(p)
    add_backend_arg(p)
    p.set_defaults(func=cmd_grow)


def cmd_islands(args: argparse.Namespace) -> int:
    from .. import Editor, connected_components, read_image, read_segmentation, write_segmentation
    from ..colors import segment_color
    from ..errors import InvalidInputError

    check_output(args.output, "editable")
    if args.remove_small is not None and args.remove_small < 0:
        raise InvalidInputError(f"--remove-small must not be negative, got {args.remove_small}")
    if args.min_size is not None and not (args.split or args.keep_largest):
        raise InvalidInputError("--min-size goes with --split or --keep-largest (use --remove-small N otherwise)")
    if args.min_size is not None and args.min_size < 0:
        raise InvalidInputError(f"--min-size must not be negative, got {args.min_size}")
    masking = masking_from_args(args)
    seg = read_segmentation(args.segmentation, backend=args.backend)
    s = seg.segment(args.segment)
    if args.split:
        isl = connected_components(s.mask, args.connectivity)
        order = [v for v in isl.by_size() if isl.sizes[v] >= (args.min_size or 0)]
        if order:
            seg.set_mask(s.id, isl.mask_of([order[0]]))
            for n, v in enumerate(order[1:], start=2):
                seg.add_segment(isl.mask_of([v]), name=f"{s.name}_{n}", color=segment_color(len(seg)),
                                tags=s.tags)
        print(f"{s.name!r}: split into {len(order)} segments")
    else:
        img = None
        if args.image:
            img = read_image(args.image, backend=seg.backend)
            seg.geometry.check_same_grid(img.geometry, "segmentation and image")
        ed = Editor(seg, img)
        ed.masking = masking
        masking.check(seg)
        n = connected_components(s.mask, args.connectivity).n
        if args.keep_largest:
            # Slicer's MinimumSize: the segment is cleared when its largest island is smaller
            changed = ed.islands(s.id, "keep_largest", min_size=args.min_size or 0, connectivity=args.connectivity)
            print(f"{s.name!r}: kept the largest of {n} islands ({s.mask.count()} voxels; {changed} changed)")
        else:
            changed = ed.islands(s.id, "remove_small", min_size=args.remove_small, connectivity=args.connectivity)
            kept = connected_components(s.mask, args.connectivity).n
            print(f"{s.name!r}: kept {kept} of {n} islands ({changed} voxels changed)")
    write_segmentation(seg, args.output)
    return 0


def cmd_grow(args: argparse.Namespace) -> int:
    from .. import GrowCut, read_image, read_segmentation, write_segmentation

    check_output(args.output, "editable")
    t0 = time.perf_counter()
    with progress(args, total=3, desc="grow from seeds", unit="step") as bar:
        bar.set_postfix_str("reading")
        img = read_image(args.image, backend=args.backend)
        seg = read_segmentation(args.seeds, backend=img.backend)
        img.geometry.check_same_grid(seg.geometry, "image and seed segmentation")
        visible = [s for s in seg if s.visible]
        bar.update(1)
        bar.set_postfix_str(f"growing {len(visible)} segments")
        gc = GrowCut(img, [s.mask for s in visible], seed_locality=args.seed_locality,
                     region=img.geometry.extent if args.whole_volume else None)
        for s, m in zip(visible, gc.result()):
            seg.set_mask(s.id, m)
        bar.update(1)
        bar.set_postfix_str("writing")
        write_segmentation(seg, args.output)
        bar.update(1)
    print(f"grew {len(visible)} segments over {'x'.join(map(str, gc.region.shape))} voxels in "
          f"{time.perf_counter() - t0:.1f} s; wrote {args.output}")
    return 0
