"""``gpuseg mask-volume``: Slicer's Mask volume effect on files (a new image masked by a segment)."""

from __future__ import annotations

import argparse

from . import add_backend_arg

_ENDINGS = (".nii", ".nii.gz", ".nrrd")


def register(sub) -> None:
    p = sub.add_parser("mask-volume", help="write a new image masked by a segment (Slicer's Mask volume: fill "
                                           "inside, fill outside, or a binary mask, with an optional soft edge)")
    p.add_argument("image", help="input volume (.nii, .nii.gz, .nrrd or a DICOM folder)")
    p.add_argument("segmentation", help="segmentation on the image's grid (.seg.nrrd, .h5, .nii.gz labelmap, ...)")
    p.add_argument("--segment", required=True, help="segment (name or id)")
    p.add_argument("--operation", default="fill_outside",
                   choices=["fill_outside", "fill_inside", "fill_inside_and_outside"],
                   help="fill_outside (Slicer's default), fill_inside, or fill_inside_and_outside (a binary mask)")
    p.add_argument("--fill-value", type=float, default=0.0, help="FillValue (default 0)")
    p.add_argument("--inside-value", type=float, default=1.0,
                   help="BinaryMaskFillValueInside (default 1; fill_inside_and_outside)")
    p.add_argument("--outside-value", type=float, default=0.0,
                   help="BinaryMaskFillValueOutside (default 0; fill_inside_and_outside)")
    p.add_argument("--soft-edge-mm", type=float, default=0.0,
                   help="SoftEdgeMm: Gaussian standard deviation of the edge in mm (default 0, a hard edge)")
    p.add_argument("-o", "--output", required=True, help="output image (.nii, .nii.gz or .nrrd), same type as the input")
    add_backend_arg(p)
    p.set_defaults(func=cmd_mask_volume)


def cmd_mask_volume(args: argparse.Namespace) -> int:
    from .. import read_image, read_segmentation
    from ..errors import InvalidInputError
    from ..io import write_labelmap
    from ..ops.mask_volume import mask_volume

    if not str(args.output).lower().endswith(_ENDINGS):
        raise InvalidInputError(f"-o {args.output}: unsupported output format; expected .nii, .nii.gz or .nrrd")
    img = read_image(args.image, backend=args.backend)
    seg = read_segmentation(args.segmentation, backend=img.backend)
    img.geometry.check_same_grid(seg.geometry, "image and segmentation")
    s = seg.segment(args.segment)
    out = mask_volume(img, s.mask, args.operation, fill_value=args.fill_value, inside_value=args.inside_value,
                      outside_value=args.outside_value, soft_edge_mm=args.soft_edge_mm)
    write_labelmap(args.output, out.to_numpy(), out.geometry)  # any voxel type: written as the input's type
    print(f"mask volume {s.name!r} ({args.operation}{f', soft edge {args.soft_edge_mm:g} mm' if args.soft_edge_mm else ''}):"
          f" wrote {args.output}")
    return 0
