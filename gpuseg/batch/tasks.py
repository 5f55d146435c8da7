"""The batch tasks: what one case does, through gpuseg's public API only.

Each task reads the case's inputs, computes, writes its outputs into the folder it is given
(the runner makes that folder appear atomically) and returns its rows (one per segment) and a
few case-level facts. Options are declared per task with a type, so that the CLI, a CSV
manifest (strings) and the Python API (any type) all give the same values.

The edit task calls the edit-script runner through :func:`run_edit_steps`, the one place to
repoint when the runner moves.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InvalidInputError, UnknownSegmentError

REQUIRED = object()


def parse_bool(v) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {v!r}")


def _names(v) -> list[str]:
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v]
    return [s.strip() for s in str(v).split("|") if s.strip()]


def _suffix(v) -> str:
    s = str(v).strip()
    s = s if s.startswith(".") else "." + s
    return s.lower()


@dataclass(frozen=True)
class Option:
    type: Callable
    default: object
    help: str
    file: bool = False  # a path whose content is part of the case's input hash


SEG_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".h5")
MESH_SUFFIXES = (".vtp", ".stl", ".obj", ".ply", ".glb", ".gltf")

_LABELS = Option(str, None, "label table naming labelmap values (TotalSegmentator's total_classes.json, CSV, "
                            "Slicer color table)", file=True)
_SEGMENTS = Option(_names, None, "only these segments (names or ids; '|'-separated in a manifest)")
_FORMAT = Option(_suffix, ".seg.nrrd", "output segmentation type: " + ", ".join(SEG_SUFFIXES))

OPTIONS: dict[str, dict[str, Option]] = {
    "convert": {"labels": _LABELS, "format": _FORMAT,
                "overlap": Option(str, "later", "multilabel NIfTI output: later|earlier|error wins on overlaps")},
    "stats": {"labels": _LABELS, "segments": _SEGMENTS,
              "shape": Option(parse_bool, False, "add Slicer's labelmap shape statistics (Feret, surface area, axes, OBB)")},
    "surface": {"labels": _LABELS, "segments": _SEGMENTS,
                "format": Option(_suffix, ".vtp", "mesh file type: " + ", ".join(MESH_SUFFIXES)),
                "smoothing": Option(float, None, "smoothing factor 0..1 (default: the file's, else 0.5)"),
                "decimation": Option(float, None, "fraction of triangles to remove (default: the file's, else 0)"),
                "method": Option(str, None, "flying-edges or surface-nets (default: the file's)"),
                "normals": Option(parse_bool, None, "compute vertex normals (default: the file's, else yes)"),
                "joint_smoothing": Option(parse_bool, None, "surface nets: smooth all segments as one mesh"),
                "per_segment": Option(parse_bool, False, "one mesh file per segment")},
    "edit": {"script": Option(str, REQUIRED, "JSON edit script (gpuseg edit's steps)", file=True),
             "format": _FORMAT},
    "threshold": {"min": Option(float, REQUIRED, "lower bound (inclusive)"),
                  "max": Option(float, REQUIRED, "upper bound (inclusive)"),
                  "name": Option(str, "threshold", "segment name"), "format": _FORMAT},
    "grow": {"seed_locality": Option(float, 0.0, "lambda: extra cost per mm of path"),
             "whole_volume": Option(parse_bool, False, "grow over the whole volume, not the seeds' extent + margin"),
             "format": _FORMAT},
    "compare": {"labels": _LABELS, "segments": _SEGMENTS,
                "distances": Option(parse_bool, True, "also Hausdorff (max, mean, 95%), ASSD and NSD at 1 mm"),
                "surface": Option(parse_bool, False, "also the same distances between the closed surfaces "
                                                     "(surface_* keys)")},
}

# the inputs each task needs (image, segmentation, reference) and may take
NEEDS = {"convert": ("segmentation",), "stats": ("segmentation",), "surface": ("segmentation",),
         "edit": ("image",), "threshold": ("image",), "grow": ("image", "segmentation"),
         "compare": ("segmentation", "reference")}
TAKES = {"stats": ("image",), "edit": ("segmentation",)}
TASKS = tuple(OPTIONS)


def check_task(task: str) -> None:
    if task not in OPTIONS:
        raise InvalidInputError(f"unknown batch task {task!r}; use one of {', '.join(TASKS)}")


def resolve_options(task: str, batch_options: dict | None, case_options: dict | None = None,
                    where: str = "options", *, require: bool = True) -> dict:
    """The typed options of one case: task defaults < batch options < per-case options
    (``require=False`` checks batch options alone, whose required ones may come per case)."""
    check_task(task)
    spec = OPTIONS[task]
    merged: dict = {}
    for source, opts in (("batch", batch_options or {}), (where, case_options or {})):
        for k, v in opts.items():
            if k not in spec:
                if source == "batch":
                    raise InvalidInputError(f"task {task} has no option {k!r}; its options: {', '.join(spec)}")
                continue  # a manifest column another task uses (e.g. "script" in a stats run)
            if v is None:
                continue
            try:
                merged[k] = spec[k].type(v)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"{where}: option {k}={v!r} of task {task}: {exc}") from exc
    out = {}
    for k, opt in spec.items():
        if k in merged:
            out[k] = merged[k]
        elif opt.default is REQUIRED:
            if not require:
                continue
            raise InvalidInputError(f"{where}: task {task} needs option {k!r} ({opt.help})")
        else:
            out[k] = opt.default
    fmt = out.get("format")
    if fmt is not None:
        allowed = MESH_SUFFIXES if task == "surface" else SEG_SUFFIXES
        if fmt not in allowed:
            raise InvalidInputError(f"{where}: task {task} writes {', '.join(allowed)}, not {fmt!r}")
    return out


def check_inputs(task: str, case) -> None:
    missing = [c for c in NEEDS[task] if not getattr(case, c)]
    if missing:
        raise InvalidInputError(f"case {case.id}: task {task} needs {' and '.join(missing)}")


# ----------------------------------------------------------------------------- helpers

def run_edit_steps(editor, script_path: str) -> list[int]:
    """Validate and apply an edit script to an Editor; voxels changed per step
    (the one edit-step schema and runner, :mod:`gpuseg.steps`, as ``gpuseg edit`` uses)."""
    from ..steps import load_steps, run_steps

    return run_steps(editor, load_steps(script_path))


def _segment_rows(seg) -> list[dict]:
    vv = seg.geometry.voxel_volume
    rows = []
    for s in seg:
        n = s.mask.count()
        rows.append({"segment_id": s.id, "segment": s.name, "voxel_count": n, "volume_mm3": n * vv})
    return rows


def flatten_stats(rows: list[dict]) -> list[dict]:
    """Statistics rows with every 3-vector split into x, y, z columns (as ``gpuseg stats --csv``)."""
    from ..ops.stats import flatten_rows

    return flatten_rows(rows)


def stats_csv(flat: list[dict]) -> str:
    """The CSV text ``gpuseg stats --csv`` writes for these rows."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(flat[0]) if flat else ["segment"])
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue()


def _read_seg(path, backend, labels=None):
    from .. import read_segmentation

    return read_segmentation(path, backend=backend, labels=labels)


def _read_img(path, backend):
    from .. import read_image

    return read_image(path, backend=backend)


# ----------------------------------------------------------------------------- tasks
# Each: (case, opts, out: Path (an empty folder), backend) -> (rows, facts)

def task_convert(case, o, out: Path, backend):
    from .. import write_segmentation

    seg = _read_seg(case.segmentation, backend, o["labels"])
    target = out / f"{case.id}{o['format']}"
    write_segmentation(seg, target, **({"overlap": o["overlap"]} if o["format"] in (".nii", ".nii.gz") else {}))
    return _segment_rows(seg), {"segments": len(seg)}


def task_stats(case, o, out: Path, backend):
    from .. import statistics

    seg = _read_seg(case.segmentation, backend, o["labels"])
    img = None
    if case.image:
        img = _read_img(case.image, seg.backend)
        seg.geometry.check_same_grid(img.geometry, f"case {case.id}: segmentation and image")
    flat = flatten_stats(statistics(seg, img, segments=o["segments"], shape=o["shape"]))
    (out / "stats.csv").write_text(stats_csv(flat))
    return flat, {"segments": len(flat)}


def task_surface(case, o, out: Path, backend):
    from ..surface import segment_surfaces, write_meshes

    seg = _read_seg(case.segmentation, backend, o["labels"])
    surfaces = segment_surfaces(seg, o["segments"], smoothing=o["smoothing"], decimation=o["decimation"],
                                normals=o["normals"], method=o["method"], joint_smoothing=o["joint_smoothing"])
    files = write_meshes(out / f"{case.id}{o['format']}", surfaces, per_segment=o["per_segment"])
    rows = [{"segment_id": s.segment_id, "segment": s.name, "vertices": s.n_vertices, "triangles": s.n_faces,
             "area_mm2": s.area(), "volume_mm3": s.volume()} for s in surfaces]
    return rows, {"segments": len(rows), "files": [p.name for p in files]}


def task_edit(case, o, out: Path, backend):
    from .. import Editor, Segmentation, write_segmentation

    img = _read_img(case.image, backend)
    if case.segmentation:
        seg = _read_seg(case.segmentation, img.backend)
        img.geometry.check_same_grid(seg.geometry, f"case {case.id}: image and segmentation")
    else:
        seg = Segmentation(img.geometry, backend=img.backend)
    changed = run_edit_steps(Editor(seg, img), o["script"])
    write_segmentation(seg, out / f"{case.id}{o['format']}")
    return _segment_rows(seg), {"steps": len(changed), "changed_voxels": int(sum(changed))}


def task_threshold(case, o, out: Path, backend):
    from .. import Segmentation, threshold, write_segmentation

    img = _read_img(case.image, backend)
    mask = threshold(img, o["min"], o["max"])
    seg = Segmentation(img.geometry, backend=img.backend)
    seg.add_segment(mask.shrink_(), name=o["name"], color=(0.9, 0.85, 0.4))  # gpuseg threshold's colour
    write_segmentation(seg, out / f"{case.id}{o['format']}")
    return _segment_rows(seg), {}


def task_grow(case, o, out: Path, backend):
    from .. import grow_from_seeds, write_segmentation

    img = _read_img(case.image, backend)
    seg = _read_seg(case.segmentation, img.backend)
    img.geometry.check_same_grid(seg.geometry, f"case {case.id}: image and seed segmentation")
    visible = [s for s in seg if s.visible]
    if not visible:
        raise InvalidInputError(f"case {case.id}: {case.segmentation} has no visible segment to grow from")
    grown = grow_from_seeds(img, [s.mask for s in visible], seed_locality=o["seed_locality"],
                            region=img.geometry.extent if o["whole_volume"] else None)
    for s, m in zip(visible, grown):
        seg.set_mask(s.id, m)
    write_segmentation(seg, out / f"{case.id}{o['format']}")
    return _segment_rows(seg), {"segments": len(visible)}


def task_compare(case, o, out: Path, backend):
    """Per segment pair (matched by name, then label value): overlap, volumes and, unless
    ``distances`` is off, boundary distances of ``segmentation`` (test) against ``reference``
    (:func:`gpuseg.ops.compare.compare_segmentations`; both empty: Dice and Jaccard empty)."""
    from ..ops.compare import compare_segmentations

    test = _read_seg(case.segmentation, backend, o["labels"])
    ref = _read_seg(case.reference, test.backend, o["labels"])
    test.geometry.check_same_grid(ref.geometry, f"case {case.id}: segmentation and reference")
    try:
        rows = compare_segmentations(test, ref, segments=o["segments"], distances=o["distances"],
                                     surface=o["surface"])
    except UnknownSegmentError as exc:
        raise UnknownSegmentError(f"case {case.id}: {exc}") from exc
    (out / "compare.json").write_text(json.dumps(rows, indent=1))
    return rows, {"segments": len(rows)}


TASK_FUNCS = {"convert": task_convert, "stats": task_stats, "surface": task_surface, "edit": task_edit,
              "threshold": task_threshold, "grow": task_grow, "compare": task_compare}


def file_options(task: str) -> list[str]:
    return [k for k, opt in OPTIONS[task].items() if opt.file]

