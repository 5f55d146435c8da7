"""Checks of command-line arguments made before any work (so a bad ``-o`` fails in a second,
not after meshing every segment), and the Editor masking options shared by the effect commands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import InvalidInputError

#: output kind -> (accepted name endings, how to say them, whether a folder is accepted)
OUTPUT_KINDS: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "segmentation": ((".seg.nrrd", ".nrrd", ".seg.nhdr", ".nhdr", ".nii", ".nii.gz", ".h5", ".hdf5", ".dcm"),
                     ".seg.nrrd, .nrrd, .nii, .nii.gz, .h5, .dcm (DICOM SEG) or a folder (one .nii.gz per segment)",
                     True),
    "editable": ((".seg.nrrd", ".nrrd", ".seg.nhdr", ".nhdr", ".nii", ".nii.gz", ".h5", ".hdf5", ".dcm"),
                 ".seg.nrrd, .nrrd, .nii, .nii.gz, .h5 or .dcm (DICOM SEG)", False),
    "threshold": ((".seg.nrrd", ".h5", ".hdf5", ".nii", ".nii.gz", ".nrrd"),
                  ".seg.nrrd or .h5 (a segmentation), or .nii, .nii.gz, .nrrd (a labelmap of value 1)", False),
    "mesh": ((".stl", ".obj", ".ply", ".vtp", ".glb", ".gltf"), ".stl, .obj, .ply, .vtp, .glb or .gltf", False),
    "csv": ((".csv",), ".csv (or - for the standard output)", False),
    "plot": ((".png", ".svg", ".pdf"), ".png, .svg or .pdf", False),
}


def check_output(path: str | os.PathLike, kind: str, option: str = "-o") -> Path:
    """Check an output path before any work: a known extension for ``kind``, and an existing
    folder to write into. Raises InvalidInputError with the accepted formats."""
    endings, said, folder_ok = OUTPUT_KINDS[kind]
    p = Path(path)
    name = p.name.lower()
    if not name.endswith(endings):
        is_folder = p.is_dir() or str(path).endswith(os.sep) or not p.suffix
        if not (folder_ok and is_folder):
            raise InvalidInputError(f"{option} {path}: unsupported output format; expected {said}")
    if p.exists() and p.is_dir() and not (folder_ok and not name.endswith(endings)):
        raise InvalidInputError(f"{option} {path}: is a folder, expected a file ({said})")
    parent = p.parent if str(p.parent) else Path(".")
    for up in [parent, *parent.parents]:
        if up.exists():
            if not up.is_dir():
                raise InvalidInputError(f"{option} {path}: {up} is a file, not a folder")
            break
    if not parent.is_dir():
        raise InvalidInputError(f"{option} {path}: folder {parent} does not exist")
    return p


# The Editor's Masking values (Masking.check validates them; tests/test_first_use.py checks that
# every choice here is accepted there).
EDITABLE_AREAS = ("everywhere", "inside_all", "inside_visible", "outside_all", "outside_visible", "inside")
OVERWRITE_MODES = ("overwrite_all", "overwrite_visible", "allow_overlap")


def add_masking_args(p: argparse.ArgumentParser) -> None:
    """Slicer's Segment Editor masking options, with Slicer's defaults."""
    g = p.add_argument_group(
        "masking (Slicer's Segment Editor settings; defaults are Slicer's)",
        "The change goes through the editor: voxels the segment gains are taken from the other segments "
        "(--overwrite overwrite_all, Slicer's default 'Overwrite all'); only voxels in the editable area "
        "(--editable-area, default everywhere) and the editable intensity range (--intensity-range, with "
        "--image) change.")
    g.add_argument("--editable-area", default="everywhere", choices=EDITABLE_AREAS,
                   help="where voxels may change (default everywhere); 'inside' needs --mask-segment")
    g.add_argument("--mask-segment", metavar="SEGMENT", help="with --editable-area inside: the segment to stay in")
    g.add_argument("--overwrite", default="overwrite_all", choices=OVERWRITE_MODES,
                   help="what happens to other segments under added voxels: overwrite_all (default: they lose "
                        "them), overwrite_visible (only visible ones), allow_overlap (they keep them)")
    g.add_argument("--intensity-range", nargs=2, type=float, metavar=("LO", "HI"),
                   help="only voxels whose --image value is in [LO, HI] may change")
    g.add_argument("--image", help="intensity volume on the segmentation's grid, for --intensity-range")


def masking_from_args(args: argparse.Namespace):
    from ..editor import Masking

    if args.intensity_range is not None and not args.image:
        raise InvalidInputError("--intensity-range needs --image (the volume whose intensities are checked)")
    if args.editable_area == "inside" and not args.mask_segment:
        raise InvalidInputError("--editable-area inside needs --mask-segment SEGMENT")
    if args.mask_segment and args.editable_area != "inside":
        raise InvalidInputError("--mask-segment is used only with --editable-area inside")
    return Masking(editable_area=args.editable_area, mask_segment=args.mask_segment,
                   intensity_range=tuple(args.intensity_range) if args.intensity_range else None,
                   overwrite=args.overwrite)


def add_quiet_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (there is none either when the standard error is not a terminal)")


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars go to the standard error, only when it is a terminal and without --quiet."""
    import sys

    return not getattr(args, "quiet", False) and not getattr(args, "json", False) and sys.stderr.isatty()


def progress(args: argparse.Namespace, **kw):
    """A tqdm bar on the standard error, shown as :func:`show_progress` says."""
    from tqdm import tqdm

    return tqdm(disable=not show_progress(args), leave=False, **kw)
