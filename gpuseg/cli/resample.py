"""``gpuseg resample``: put a segmentation on another labelmap grid (Slicer's "Specify geometry")."""

from __future__ import annotations

import argparse
import time

from . import add_backend_arg
from ._checks import add_quiet_arg, check_output, progress


def _spacing(text: str):
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"spacing must be one number or three (i,j,k) in mm, got {text!r}") from None
    if len(vals) not in (1, 3):
        raise argparse.ArgumentTypeError(f"spacing must be one number or three (i,j,k) in mm, got {text!r}")
    return vals[0] if len(vals) == 1 else tuple(vals)


def register(sub) -> None:
    p = sub.add_parser("resample", help="resample a segmentation onto another grid (Slicer's Specify geometry: a "
                                        "reference image, a spacing or an oversampling factor; nearest neighbour)",
                       description="Resample every segment nearest-neighbour onto a new labelmap grid computed "
                                   "with Slicer's Specify geometry formulas (docs/geometry.md). The grid is padded "
                                   "so that no segment is cropped unless --no-pad is given.")
    p.add_argument("segmentation", help="input segmentation (.seg.nrrd, .nii.gz labelmap, .h5, ...)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--reference", metavar="IMAGE", help="take the grid of this image (or DICOM folder)")
    src.add_argument("--spacing", type=_spacing, metavar="MM",
                     help="re-grid the segmentation's box at this spacing (one number, or 'si,sj,sk')")
    src.add_argument("--oversampling", type=float, metavar="F",
                     help="oversampling factor of the segmentation's own grid (2 = twice as fine, 0.5 = coarser)")
    p.add_argument("--factor", type=float, default=1.0, metavar="F",
                   help="oversampling factor applied after --reference or --spacing (Slicer's OversamplingFactor, "
                        "default 1)")
    p.add_argument("--isotropic", action="store_true", help="every axis at the smallest spacing (IsotropicSpacing)")
    p.add_argument("--no-pad", action="store_true",
                   help="do not grow the grid to hold every segment (PadOutputGeometry off: segments may be cropped)")
    p.add_argument("--labels", help="label table naming the labels of a labelmap input")
    p.add_argument("-o", "--output", required=True, help="output segmentation (.seg.nrrd, .nii.gz, .h5, ...)")
    add_backend_arg(p)
    add_quiet_arg(p)
    p.set_defaults(func=cmd_resample)


def cmd_resample(args: argparse.Namespace) -> int:
    from .. import read_segmentation, write_segmentation
    from ..io.images import read_image_geometry
    from ..ops.segmentation_geometry import resample_segmentation, specify_geometry

    t0 = time.perf_counter()
    check_output(args.output, "segmentation", "-o")
    seg = read_segmentation(args.segmentation, backend=args.backend, labels=args.labels)
    if args.reference:
        source, factor = read_image_geometry(args.reference), args.factor
    else:
        source, factor = seg.geometry, args.factor if args.oversampling is None else args.oversampling * args.factor
    geometry = specify_geometry(seg, source, oversampling=factor, isotropic=args.isotropic, spacing=args.spacing,
                                pad=not args.no_pad)
    with progress(args, total=len(seg), desc="resample", unit="segment") as bar:
        out = resample_segmentation(seg, geometry, progress=lambda done, total: bar.update(1))
    written = write_segmentation(out, args.output)
    sp = ", ".join(f"{v:.4g}" for v in geometry.spacing)
    print(f"resampled {len(seg)} segments onto {geometry.shape[::-1]} voxels (i, j, k) of ({sp}) mm: wrote {written} "
          f"in {time.perf_counter() - t0:.2f} s")
    return 0
