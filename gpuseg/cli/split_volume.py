"""``gpuseg split-volume``: SegmentEditorExtraEffects' Split volume on files (one cropped image per
segment, filled outside the segment)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_backend_arg

#: --format -> file name ending
FORMATS = {"nii.gz": ".nii.gz", "nii": ".nii", "nrrd": ".nrrd"}
_IMAGE_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".hdr", ".img")


def register(sub) -> None:
    p = sub.add_parser("split-volume", help="write one image per segment, cropped to the segment's extent plus "
                                            "padding and filled outside the segment (Slicer's Split volume)")
    p.add_argument("image", help="input volume (.nii, .nii.gz, .nrrd or a DICOM folder)")
    p.add_argument("segmentation", help="segmentation on the image's grid (.seg.nrrd, .h5, .nii.gz labelmap, ...)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="folder for the images, created if missing (its parent must exist); files are named "
                        "<image>_<segment>.<format> and replace files of the same name")
    p.add_argument("--segment", action="append", metavar="NAME",
                   help="segment (name or id); repeat for several. Default: every visible segment "
                        "(Slicer's ApplyToAllVisibleSegments)")
    p.add_argument("--fill-value", type=float, default=0.0,
                   help="FillValue (default 0): voxels outside the segment, and past the image")
    p.add_argument("--padding-voxels", type=int, default=5,
                   help="PaddingVoxels (default 5): voxels added on each side of each axis (0..1000)")
    p.add_argument("--clip-to-image", action="store_true",
                   help="cut the padded box to the image (Slicer does not: it pads past the image with the fill "
                        "value)")
    p.add_argument("--format", default="nii.gz", choices=list(FORMATS),
                   help="output file format (default nii.gz); the voxel type is the input's")
    add_backend_arg(p)
    p.set_defaults(func=cmd_split_volume)


def image_stem(path: str) -> str:
    """The input's name without its image ending (a DICOM folder: the folder's name)."""
    name = Path(path.rstrip("/\\") or path).name
    low = name.lower()
    for end in _IMAGE_ENDINGS:
        if low.endswith(end) and len(name) > len(end):
            return name[:-len(end)]
    return name


def output_names(stem: str, segment_names: list[str], ending: str) -> list[str]:
    """``<stem>_<segment><ending>``: both reduced to ``[A-Za-z0-9._-]``, the segment part to 120
    characters; names equal but for case get ``_2``, ``_3``..."""
    from ..io.mesh_common import safe_name, unique_names

    base = safe_name(stem, "image")
    parts = unique_names([safe_name(n, f"segment{i + 1}")[:120] for i, n in enumerate(segment_names)])
    return [f"{base}_{part}{ending}" for part in parts]


def _check_outdir(path: str) -> Path:
    from ..errors import InvalidInputError

    d = Path(path)
    if d.exists() and not d.is_dir():
        raise InvalidInputError(f"-o {path}: is a file, expected a folder (one image per segment is written there)")
    parent = d.parent if str(d.parent) else Path(".")
    if not d.exists() and not parent.is_dir():
        raise InvalidInputError(f"-o {path}: folder {parent} does not exist")
    return d


def cmd_split_volume(args: argparse.Namespace) -> int:
    from .. import Editor, read_image, read_segmentation
    from ..errors import InvalidInputError
    from ..io import write_labelmap
    from ..ops.split_volume import check_padding_voxels

    outdir = _check_outdir(args.output)
    check_padding_voxels(args.padding_voxels)  # a bad padding fails before any file is read
    img = read_image(args.image, backend=args.backend)
    seg = read_segmentation(args.segmentation, backend=img.backend)
    if not img.geometry.is_same_grid(seg.geometry):
        # Slicer resamples the segment onto the volume's grid (maskVolumeWithSegment), nearest
        # neighbour: only the segments that will be split
        from ..ops.segmentation_geometry import resample_segmentation

        wanted = [seg.segment(k).id for k in args.segment] if args.segment else [s.id for s in seg if s.visible]
        seg.keep_only(wanted)
        seg = resample_segmentation(seg, img.geometry)
    ed = Editor(seg, img)
    images = ed.split_volume(args.segment, fill_value=args.fill_value, padding_voxels=args.padding_voxels,
                             clip_to_image=args.clip_to_image)
    # the segments split_volume took, in its order (a segment named twice counts once)
    picked = [seg.segment(k) for k in args.segment] if args.segment else [s for s in seg if s.visible]
    chosen = list({s.id: s for s in picked}.values())
    names = output_names(image_stem(args.image), [s.name for s in chosen], FORMATS[args.format])
    inputs = {Path(args.image).resolve(), Path(args.segmentation).resolve()}
    targets = [outdir / n for n in names]
    for t in targets:
        if t.resolve() in inputs:
            raise InvalidInputError(f"-o {args.output}: {t.name} would replace an input file; choose another folder")
    empty = [s for s in chosen if s.id not in images]
    if not images:
        raise InvalidInputError("split volume: every chosen segment is empty; nothing was written ("
                                + ", ".join(repr(s.name) for s in empty) + ")")
    outdir.mkdir(exist_ok=True)
    for s, t in zip(chosen, targets):
        if s.id not in images:
            print(f"split volume: skipped {s.name!r}: the segment is empty")
            continue
        out = images[s.id]
        replaced = t.exists()
        write_labelmap(t, out.to_numpy(), out.geometry)  # atomic; the voxel type is the input's
        nk, nj, ni = out.shape
        print(f"split volume {s.name!r}: {'replaced' if replaced else 'wrote'} {t} ({ni} x {nj} x {nk} voxels)")
    return 0
