"""Region subcommands: islands and grow (from seeds)."""

from __future__ import annotations

import argparse
import time

from . import add_backend_arg


def register(sub) -> None:
    p = sub.add_parser("islands", help="keep the largest island, remove small islands, or split islands "
                                       "into segments")
    p.add_argument("segmentation")
    p.add_argument("--segment", required=True, help="segment name or id")
    op = p.add_mutually_exclusive_group(required=True)
    op.add_argument("--keep-largest", action="store_true")
    op.add_argument("--remove-small", type=int, metavar="N", help="remove islands smaller than N voxels")
    op.add_argument("--split", action="store_true", help="one segment per island (largest stays in place)")
    p.add_argument("--min-size", type=int, default=0, help="with --split: drop islands smaller than this")
    p.add_argument("--connectivity", type=int, choices=[6, 26], default=6, help="6 (faces, Slicer's) or 26")
    p.add_argument("-o", "--output", required=True)
    add_backend_arg(p)
    p.set_defaults(func=cmd_islands)

    p = sub.add_parser("grow", help="grow from seeds (Slicer's Grow from seeds / FastGrowCut)")
    p.add_argument("image", help="intensity volume")
    p.add_argument("seeds", help="segmentation whose (visible) segments are the seeds")
    p.add_argument("-o", "--output", required=True, help="output segmentation (the grown segments)")
    p.add_argument("--seed-locality", type=float, default=0.0, help="lambda: extra cost per mm of path (default 0)")
    p.add_argument("--whole-volume", action="store_true",
                   help="grow over the whole volume instead of the seeds' extent + max(3 voxels, 10%%)")
    add_backend_arg(p)
    p.set_defaults(func=cmd_grow)


def cmd_islands(args: argparse.Namespace) -> int:
    from .. import connected_components, read_segmentation, write_segmentation

    seg = read_segmentation(args.segmentation, backend=args.backend)
    s = seg.segment(args.segment)
    isl = connected_components(s.mask, args.connectivity)
    if args.keep_largest:
        seg.set_mask(s.id, isl.mask_of([isl.largest()]) if isl.n else s.mask)
        print(f"{s.name!r}: kept the largest of {isl.n} islands ({int(isl.sizes[isl.largest()]) if isl.n else 0} voxels)")
    elif args.remove_small is not None:
        if args.remove_small < 0:
            from ..errors import InvalidInputError

            raise InvalidInputError(f"--remove-small must not be negative, got {args.remove_small}")
        keep = [v for v in range(1, isl.n + 1) if isl.sizes[v] >= args.remove_small]
        seg.set_mask(s.id, isl.mask_of(keep))
        print(f"{s.name!r}: kept {len(keep)} of {isl.n} islands")
    else:
        order = [v for v in isl.by_size() if isl.sizes[v] >= args.min_size]
        if order:
            seg.set_mask(s.id, isl.mask_of([order[0]]))
            for n, v in enumerate(order[1:], start=2):
                seg.add_segment(isl.mask_of([v]), name=f"{s.name}_{n}", color=s.color, tags=s.tags)
        print(f"{s.name!r}: split into {len(order)} segments")
    write_segmentation(seg, args.output)
    return 0


def cmd_grow(args: argparse.Namespace) -> int:
    from .. import GrowCut, read_image, read_segmentation, write_segmentation

    t0 = time.perf_counter()
    img = read_image(args.image, backend=args.backend)
    seg = read_segmentation(args.seeds, backend=img.backend)
    img.geometry.check_same_grid(seg.geometry, "image and seed segmentation")
    visible = [s for s in seg if s.visible]
    gc = GrowCut(img, [s.mask for s in visible], seed_locality=args.seed_locality,
                 region=img.geometry.extent if args.whole_volume else None)
    for s, m in zip(visible, gc.result()):
        seg.set_mask(s.id, m)
    write_segmentation(seg, args.output)
    print(f"grew {len(visible)} segments over {'x'.join(map(str, gc.region.shape))} voxels in "
          f"{time.perf_counter() - t0:.1f} s; wrote {args.output}")
    return 0
