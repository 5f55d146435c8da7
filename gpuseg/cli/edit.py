"""``gpuseg edit``: apply a recorded list of Segment Editor effects (reproducible batch editing).

The script is a JSON list of steps applied in order; the schema (effects, keys, types, ranges,
bounds on a step's work) lives in :mod:`gpuseg.steps`, shared with the service's ``effect``
messages and journal. ``gpuseg edit --schema`` prints it as a JSON Schema. Every step is
validated before any work starts; a bad or failing step stops the run with an error naming
the step, and nothing is written then.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from . import add_backend_arg


class _SchemaAction(argparse.Action):
    def __init__(self, option_strings, dest, **kw) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from ..steps import json_schema

        json.dump(json_schema(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        parser.exit(0)


def register(sub) -> None:
    from ..steps import describe

    epilog = ("steps (keys marked * are required; see --schema for types, ranges and defaults):\n"
              + describe() + "\n\nPoints are LPS millimetres (\"space\": \"world\", the default), RAS millimetres "
              "(\"space\": \"ras\", as Slicer shows them) or voxel indices (\"space\": \"ijk\").\n"
              "Example: [{\"effect\": \"add_segment\", \"name\": \"tumor\"}, {\"effect\": \"paint\", "
              "\"segment\": \"tumor\", \"points\": [[10, 20, 30]], \"diameter_mm\": 8}]")
    p = sub.add_parser("edit", help="apply a JSON script of editor effects (paint, erase, draw, scissors, "
                                    "threshold, level tracing, grow from seeds, margin, hollow, smoothing, "
                                    "islands, logical operators, masking, undo) to a segmentation",
                       epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("segmentation", nargs="?",
                   help="segmentation to edit, or '-' for a new empty one on the image's grid")
    p.add_argument("--image", help="source image (the grid, and intensities for threshold)")
    p.add_argument("--script", help="JSON list of steps (listed below; --schema prints the JSON Schema)")
    p.add_argument("-o", "--output", help="output segmentation")
    p.add_argument("--strict", action="store_true",
                   help="a stroke wholly outside the volume is an error (default: a warning)")
    p.add_argument("--schema", action=_SchemaAction, help="print the edit script's JSON Schema and exit")
    add_backend_arg(p)
    p.set_defaults(func=cmd_edit)


def load_script(path: str) -> list[dict]:
    """Read and validate an edit script (see :func:`gpuseg.steps.load_steps`)."""
    from ..steps import load_steps

    return load_steps(path)


def run_script(editor, steps: list[dict], *, strict: bool = False) -> list[int]:
    """Apply steps to an Editor; returns the voxels changed by each step."""
    from ..steps import run_steps

    return run_steps(editor, steps, strict=strict)


def cmd_edit(args: argparse.Namespace) -> int:
    from .. import Editor, Segmentation, read_image, read_segmentation, write_segmentation
    from ..errors import InvalidInputError
    from ..steps import StrokeOutsideWarning

    missing = [name for name, v in (("SEG", args.segmentation), ("--image", args.image),
                                    ("--script", args.script), ("-o/--output", args.output)) if v is None]
    if missing:
        raise InvalidInputError(f"missing {', '.join(missing)} (see gpuseg edit --help)")
    steps = load_script(args.script)
    img = read_image(args.image, backend=args.backend)
    if args.segmentation == "-":
        seg = Segmentation(img.geometry, backend=img.backend)
    else:
        seg = read_segmentation(args.segmentation, backend=img.backend)
        img.geometry.check_same_grid(seg.geometry, "image and segmentation")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StrokeOutsideWarning)
        changed = run_script(Editor(seg, img), steps, strict=args.strict)
    for w in caught:
        if issubclass(w.category, StrokeOutsideWarning):
            print(f"gpuseg edit: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    write_segmentation(seg, args.output)
    print(f"applied {len(steps)} steps ({sum(changed)} voxel changes); wrote {args.output} with {len(seg)} segments")
    return 0
