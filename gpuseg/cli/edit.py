"""``gpuseg edit``: apply a recorded list of Segment Editor effects (reproducible batch editing).

The script is a JSON list of steps, applied in order; each is an object with ``"effect"``:

* ``{"effect": "add_segment", "name": "liver", "color": [0.8, 0.4, 0.3]}``
* ``{"effect": "masking", "editable_area": "everywhere|inside_all|inside_visible|outside_all|
  outside_visible|inside", "mask_segment": "b", "intensity_range": [lo, hi], "overwrite":
  "overwrite_all|overwrite_visible|allow_overlap"}`` (all keys optional)
* ``{"effect": "paint" | "erase", "segment": "a", "points": [[x, y, z], ...], "diameter_mm": 5,
  "shape": "sphere|disc|pixel", "axis": 0, "space": "world|ijk", "all_segments": false}``
* ``{"effect": "draw", "segment": "a", "points": [...], "axis": 0, "space": "world"}``
* ``{"effect": "scissors", "segment": "a", "points": [...], "operation": "erase_inside|erase_outside|
  fill_inside|fill_outside", "shape": "freeform|circle|rectangle", "axis": 0, "extrusion":
  "unlimited|positive|negative|symmetric", "depth_mm": 0, "all_visible": false, "space": "world"}``
* ``{"effect": "threshold", "segment": "a", "min": 200, "max": 3000}`` or ``"auto": "otsu"``
* ``{"effect": "level_trace", "segment": "a", "point": [x, y, z], "axis": 0, "space": "world"}``
* ``{"effect": "grow_from_seeds", "seed_locality": 0, "segments": ["a", "b"]}`` (default seeds: the
  visible segments)
* ``{"effect": "margin", "segment": "a", "margin_mm": 3}``, ``{"effect": "hollow", "segment": "a",
  "thickness_mm": 2, "mode": "inside"}``, ``{"effect": "smooth", "segment": "a", "method": "median",
  "kernel_mm": 3}``, ``{"effect": "islands", "segment": "a", "operation": "keep_largest|remove_small|
  keep_selected|remove_selected|add_selected", "min_size": 1000, "point": [x, y, z]}``,
  ``{"effect": "logical", "segment": "a", "operation": "copy|union|subtract|intersect|invert|clear|fill",
  "modifier": "b", "bypass_masking": true}`` (all through masking, as Slicer's Set mode)
* ``{"effect": "visibility", "segment": "a", "visible": false}``, ``{"effect": "undo"}``, ``{"effect": "redo"}``

Points are LPS millimetres (``"space": "world"``, the default) or voxel indices (i, j, k).
A bad step stops the run with an error naming the step; nothing is written then.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import add_backend_arg

STEP_KEYS = {
    "add_segment": {"name", "color"},
    "masking": {"editable_area", "mask_segment", "intensity_range", "overwrite"},
    "paint": {"segment", "points", "diameter_mm", "shape", "axis", "space"},
    "erase": {"segment", "points", "diameter_mm", "shape", "axis", "space", "all_segments"},
    "draw": {"segment", "points", "axis", "space"},
    "scissors": {"segment", "points", "operation", "shape", "axis", "extrusion", "depth_mm", "all_visible", "space"},
    "threshold": {"segment", "min", "max", "auto"},
    "level_trace": {"segment", "point", "axis", "space"},
    "grow_from_seeds": {"seed_locality", "segments"},
    "margin": {"segment", "margin_mm"},
    "hollow": {"segment", "thickness_mm", "mode"},
    "smooth": {"segment", "method", "kernel_mm"},
    "islands": {"segment", "operation", "min_size", "point", "space", "connectivity"},
    "logical": {"segment", "operation", "modifier", "bypass_masking"},
    "visibility": {"segment", "visible"},
    "undo": set(),
    "redo": set(),
}


def register(sub) -> None:
    p = sub.add_parser("edit", help="apply a JSON script of editor effects (paint, erase, draw, scissors, "
                                    "threshold, level tracing, grow from seeds, margin, hollow, smoothing, "
                                    "islands, logical operators, masking, undo) to a segmentation")
    p.add_argument("segmentation", help="segmentation to edit, or '-' for a new empty one on the image's grid")
    p.add_argument("--image", required=True, help="source image (the grid, and intensities for threshold)")
    p.add_argument("--script", required=True, help="JSON list of steps (see `gpuseg edit --help` in the docs)")
    p.add_argument("-o", "--output", required=True, help="output segmentation")
    add_backend_arg(p)
    p.set_defaults(func=cmd_edit)


def load_script(path: str) -> list[dict]:
    from ..errors import FileFormatError

    p = Path(path)
    if not p.is_file():
        raise FileFormatError(f"{p}: edit script not found")
    try:
        steps = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{p}: not valid JSON ({exc})") from exc
    if not isinstance(steps, list):
        raise FileFormatError(f"{p}: an edit script is a JSON list of steps")
    for n, step in enumerate(steps, start=1):
        if not isinstance(step, dict) or step.get("effect") not in STEP_KEYS:
            raise FileFormatError(f"{p}: step {n} needs an \"effect\" among {', '.join(STEP_KEYS)}")
        extra = set(step) - STEP_KEYS[step["effect"]] - {"effect"}
        if extra:
            raise FileFormatError(f"{p}: step {n} ({step['effect']}) has unknown keys {sorted(extra)}")
    return steps


def run_script(editor, steps: list[dict]) -> list[int]:
    """Apply steps to an Editor; returns the voxels changed by each step."""
    from ..editor import Masking
    from ..errors import GpusegError

    changed = []
    for n, step in enumerate(steps, start=1):
        st = dict(step)
        eff = st.pop("effect")
        try:
            if eff == "add_segment":
                editor.segmentation.add_segment(name=st.get("name"), color=st.get("color"))
                changed.append(0)
            elif eff == "masking":
                rng = st.get("intensity_range")
                editor.masking = Masking(st.get("editable_area", "everywhere"), st.get("mask_segment"),
                                         tuple(rng) if rng is not None else None, st.get("overwrite", "overwrite_all"))
                editor.masking.check(editor.segmentation)
                changed.append(0)
            elif eff == "visibility":
                editor.segmentation.segment(st["segment"]).visible = bool(st["visible"])
                changed.append(0)
            elif eff in ("paint", "erase"):
                seg = st.pop("segment")
                pts = st.pop("points")
                d = st.pop("diameter_mm", 5.0)
                if eff == "paint":
                    changed.append(editor.paint(seg, pts, d, **st))
                else:
                    changed.append(editor.erase(seg, pts, d, all_segments=st.pop("all_segments", False), **st))
            elif eff == "draw":
                changed.append(editor.draw(st.pop("segment"), st.pop("points"), **st))
            elif eff == "scissors":
                changed.append(editor.scissors(st.pop("segment"), st.pop("points"), **st))
            elif eff == "threshold":
                lo, hi = (editor.auto_threshold(st["auto"]) if "auto" in st else (st["min"], st["max"]))
                changed.append(editor.threshold(st["segment"], lo, hi))
            elif eff in ("margin", "hollow", "smooth", "islands", "logical"):
                changed.append(getattr(editor, eff)(st.pop("segment"), **st))
            elif eff == "grow_from_seeds":
                changed.append(editor.grow_from_seeds(**st))
            elif eff == "level_trace":
                changed.append(editor.level_trace(st.pop("segment"), st.pop("point"), **st))
            elif eff == "undo":
                changed.append(int(editor.undo()))
            else:
                changed.append(int(editor.redo()))
        except KeyError as exc:
            from ..errors import InvalidInputError, UnknownSegmentError

            if isinstance(exc, UnknownSegmentError):
                raise type(exc)(f"step {n} ({eff}): {exc}") from exc
            raise InvalidInputError(f"step {n} ({eff}): missing key {exc}") from exc
        except GpusegError as exc:
            raise type(exc)(f"step {n} ({eff}): {exc}") from exc
    return changed


def cmd_edit(args: argparse.Namespace) -> int:
    from .. import Editor, Segmentation, read_image, read_segmentation, write_segmentation

    steps = load_script(args.script)
    img = read_image(args.image, backend=args.backend)
    if args.segmentation == "-":
        seg = Segmentation(img.geometry, backend=img.backend)
    else:
        seg = read_segmentation(args.segmentation, backend=img.backend)
        img.geometry.check_same_grid(seg.geometry, "image and segmentation")
    changed = run_script(Editor(seg, img), steps)
    write_segmentation(seg, args.output)
    print(f"applied {len(steps)} steps ({sum(changed)} voxel changes); wrote {args.output} with {len(seg)} segments")
    return 0
