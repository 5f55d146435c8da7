"""Edit steps: the one schema shared by ``gpuseg edit`` scripts, the service's ``effect``
messages and its journal (docs/protocol.md), their validation and their runner.

A step is a JSON object with ``"effect"`` and that effect's keys (the keyword arguments of the
:class:`gpuseg.Editor` method of the same name). :data:`STEPS` declares every key's type,
range and default; :func:`validate_step` checks a step against it before any work is done
and :func:`json_schema` prints the same table as a JSON Schema (``gpuseg edit --schema``).
Every error is an :class:`~gpuseg.errors.InvalidInputError` that starts with the step's number
and effect, e.g. ``step 3 (paint): diameter_mm: expected a number, got 'big'``.

Bounds on a step's work (checked before it runs): at most :data:`MAX_POINTS` points per
stroke, a brush of at most 1000 mm, sizes (margins, kernels, depths) of at most
:data:`MAX_SIZE_MM`, and, with the grid known, at most :data:`MAX_STAMPS` brush stamps per
stroke. Coordinates: ``"space": "world"`` (LPS millimetres, the default), ``"ras"`` (RAS
millimetres, as Slicer shows them) or ``"ijk"`` (voxel indices).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .errors import FileFormatError, GpusegError, InvalidInputError, OutOfBoundsError, UnknownSegmentError

__all__ = ["STEPS", "MAX_POINTS", "MAX_STAMPS", "MAX_SIZE_MM", "StrokeOutsideWarning", "validate_step",
           "validate_steps", "json_schema", "run_step", "run_steps", "editor_points", "describe"]

#: points in one stroke, polygon or list
MAX_POINTS = 10_000
#: brush stamps one stroke may need (stamps are at most a quarter diameter apart)
MAX_STAMPS = 200_000
#: margins, kernels, depths, thicknesses
MAX_SIZE_MM = 10_000.0
#: brush diameter (the editor refuses larger ones too)
MAX_DIAMETER_MM = 1000.0
#: coordinates (mm or voxels) and intensities
MAX_COORD = 1e7
MAX_NAME = 256
SPACES = ("world", "ras", "ijk")


class StrokeOutsideWarning(UserWarning):
    """A step's stroke or shape lies wholly outside the volume: it changes nothing."""


# --- field types -----------------------------------------------------------------------------
class _Field:
    """One key of a step: ``check`` returns the value or raises ValueError with a message."""

    json: dict = {}

    def __init__(self, *, required: bool = False, default: Any = None, help: str = "") -> None:
        self.required = required
        self.default = default
        self.help = help

    def check(self, v: Any) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def schema(self) -> dict:
        s = dict(self.json)
        if self.default is not None:
            s["default"] = self.default
        if self.help:
            s["description"] = self.help
        return s


def show_value(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _number(v: Any, what: str = "a number") -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"expected {what}, got {show_value(v)}")
    try:
        f = float(v)
    except OverflowError:
        raise ValueError(f"expected {what}, got an integer too large") from None
    if not math.isfinite(f):
        raise ValueError(f"expected a finite number, got {show_value(v)}")
    return f


class Num(_Field):
    def __init__(self, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.lo, self.hi, self.lo_open = lo, hi, lo_open

    def check(self, v: Any) -> Any:
        f = _number(v)
        if self.lo is not None and (f < self.lo or (self.lo_open and f == self.lo)):
            raise ValueError(f"must be {'>' if self.lo_open else '>='} {self.lo:g}, got {f:g}")
        if self.hi is not None and f > self.hi:
            raise ValueError(f"must be <= {self.hi:g}, got {f:g}")
        return v

    def schema(self) -> dict:
        s = {"type": "number", **super().schema()}
        if self.lo is not None:
            s["exclusiveMinimum" if self.lo_open else "minimum"] = self.lo
        if self.hi is not None:
            s["maximum"] = self.hi
        return s


class Int(_Field):
    def __init__(self, lo: int, hi: int, *, choices: tuple[int, ...] | None = None, **kw) -> None:
        super().__init__(**kw)
        self.lo, self.hi, self.choices = lo, hi, choices

    def check(self, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                raise ValueError(f"expected an integer, got the float {v!r}")
            raise ValueError(f"expected an integer, got {show_value(v)}")
        if self.choices is not None and v not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(str, self.choices))}, got {v}")
        if not self.lo <= v <= self.hi:
            raise ValueError(f"must be between {self.lo} and {self.hi}, got {show_value(v)}")
        return v

    def schema(self) -> dict:
        s = {"type": "integer", "minimum": self.lo, "maximum": self.hi, **super().schema()}
        if self.choices is not None:
            s["enum"] = list(self.choices)
        return s


class Bool(_Field):
    json = {"type": "boolean"}

    def check(self, v: Any) -> Any:
        if not isinstance(v, bool):
            raise ValueError(f"expected true or false, got {show_value(v)}")
        return v


class Str(_Field):
    json = {"type": "string", "minLength": 1, "maxLength": MAX_NAME}

    def check(self, v: Any) -> Any:
        if not isinstance(v, str):
            raise ValueError(f"expected a name (a string), got {show_value(v)}")
        if not v or len(v) > MAX_NAME:
            raise ValueError(f"a name has 1 to {MAX_NAME} characters, got {len(v)}")
        if "\x00" in v:
            raise ValueError("a name may not contain NUL")
        return v


class Enum(_Field):
    def __init__(self, choices: Iterable[str], **kw) -> None:
        super().__init__(**kw)
        self.choices = tuple(choices)

    def check(self, v: Any) -> Any:
        if not isinstance(v, str) or v not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}, got {show_value(v)}")
        return v

    def schema(self) -> dict:
        return {"type": "string", "enum": list(self.choices), **super().schema()}


_POINT_SCHEMA = {"type": "array", "items": {"type": "number", "minimum": -MAX_COORD, "maximum": MAX_COORD},
                 "minItems": 3, "maxItems": 3}


def _point(v: Any) -> None:
    if not isinstance(v, (list, tuple)) or len(v) != 3:
        raise ValueError(f"a point is a list of 3 numbers, got {show_value(v)}")
    for c in v:
        if abs(_number(c, "a coordinate (a number)")) > MAX_COORD:
            raise ValueError(f"coordinate {show_value(c)} is beyond +-{MAX_COORD:g}")


class Point(_Field):
    json = _POINT_SCHEMA

    def check(self, v: Any) -> Any:
        _point(v)
        return v


class Points(_Field):
    json = {"type": "array", "items": _POINT_SCHEMA, "minItems": 1, "maxItems": MAX_POINTS}

    def check(self, v: Any) -> Any:
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError(f"expected a non-empty list of [x, y, z] points, got {show_value(v)}")
        if len(v) > MAX_POINTS:
            raise ValueError(f"{len(v)} points; at most {MAX_POINTS} per step")
        for n, p in enumerate(v):
            try:
                _point(p)
            except ValueError as exc:
                raise ValueError(f"point {n}: {exc}") from None
        return v


class Color(_Field):
    json = {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "minItems": 3, "maxItems": 3}

    def check(self, v: Any) -> Any:
        if not isinstance(v, (list, tuple)) or len(v) != 3:
            raise ValueError(f"a colour is [r, g, b] with values 0..1, got {show_value(v)}")
        for c in v:
            if not 0.0 <= _number(c) <= 1.0:
                raise ValueError(f"colour components are 0..1, got {show_value(c)}")
        return v


class Range(_Field):
    json = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}

    def check(self, v: Any) -> Any:
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise ValueError(f"a range is [lo, hi], got {show_value(v)}")
        lo, hi = (_number(c) for c in v)
        if lo > hi:
            raise ValueError(f"empty range: {lo:g} > {hi:g}")
        return v


class Names(_Field):
    json = {"type": "array", "items": Str.json, "minItems": 1, "maxItems": 1024}

    def check(self, v: Any) -> Any:
        if not isinstance(v, (list, tuple)) or not v or len(v) > 1024:
            raise ValueError(f"expected a list of 1 to 1024 segment names, got {show_value(v)}")
        for x in v:
            Str().check(x)
        return v


# --- the schema ----------------------------------------------------------------------------------
def _seg(**kw) -> Str:
    return Str(required=True, help="segment name or id", **kw)


def _seg_or_visible() -> Str:
    return Str(help="segment name or id (not needed with all_visible)")


_ALL_VISIBLE = Bool(default=False, help="apply to every visible segment (Slicer's ApplyToAllVisibleSegments)")


def space_key() -> Enum:
    return Enum(SPACES, default="world", help="world = LPS mm, ras = RAS mm (as Slicer shows), ijk = voxel indices")


def axis_key() -> Int:
    return Int(0, 2, default=0, help="grid axis of the slice: 0 = k (axial for an axial scan), 1 = j, 2 = i")


_EDITABLE = ("everywhere", "inside_all", "inside_visible", "outside_all", "outside_visible", "inside")
_OVERWRITE = ("overwrite_all", "overwrite_visible", "allow_overlap")
_AUTO = ("OTSU", "HUANG", "ISO_DATA", "KITTLER_ILLINGWORTH", "MAXIMUM_ENTROPY", "MOMENTS", "RENYI_ENTROPY",
         "SHANBHAG", "TRIANGLE", "YEN", "INTERMODES", "LI",
         "otsu", "huang", "isodata", "li", "mean", "minimum", "triangle", "yen")
_AUTO_MODES = ("SET_LOWER_MAX", "SET_MIN_UPPER", "SET_LOWER", "SET_UPPER")
_BRUSH = {"segment": _seg(), "points": Points(required=True, help="the stroke's points"),
          "diameter_mm": Num(0, MAX_DIAMETER_MM, lo_open=True, default=5.0),
          "shape": Enum(("sphere", "disc", "pixel"), default="sphere"), "axis": axis_key(), "space": space_key()}

#: effect -> {key: field}; the one table behind validation, the JSON Schema and the help text
STEPS: dict[str, dict[str, _Field]] = {
    "add_segment": {"name": Str(), "color": Color(), "id": Str(help="segment id (default: a new DICOM UID)")},
    "masking": {"editable_area": Enum(_EDITABLE, default="everywhere"), "mask_segment": Str(),
                "intensity_range": Range(), "overwrite": Enum(_OVERWRITE, default="overwrite_all")},
    "visibility": {"segment": _seg(), "visible": Bool(required=True)},
    "paint": dict(_BRUSH),
    "erase": {**_BRUSH, "all_segments": Bool(default=False)},
    "draw": {"segment": _seg(), "points": Points(required=True), "axis": axis_key(), "space": space_key()},
    "scissors": {"segment": _seg(), "points": Points(required=True),
                 "operation": Enum(("erase_inside", "erase_outside", "fill_inside", "fill_outside"),
                                   default="erase_inside"),
                 "shape": Enum(("freeform", "circle", "rectangle"), default="freeform"), "axis": axis_key(),
                 "extrusion": Enum(("unlimited", "positive", "negative", "symmetric"), default="unlimited"),
                 "depth_mm": Num(0, MAX_SIZE_MM, default=0.0), "all_visible": Bool(default=False),
                 "space": space_key()},
    "threshold": {"segment": _seg(), "min": Num(-MAX_COORD, MAX_COORD), "max": Num(-MAX_COORD, MAX_COORD),
                  "auto": Enum(_AUTO, help="instead of min and max (upper case: Slicer's methods)"),
                  "auto_mode": Enum(_AUTO_MODES, default="SET_LOWER_MAX",
                                    help="with auto; SET_LOWER / SET_UPPER replace one end of min, max")},
    "level_trace": {"segment": _seg(), "point": Point(required=True), "axis": axis_key(), "space": space_key()},
    "flood_fill": {"segment": _seg(), "point": Point(required=True),
                   "intensity_tolerance": Num(0, MAX_COORD, default=10.0),
                   "neighborhood_size_mm": Num(0, MAX_SIZE_MM, default=1.0),
                   "roi": Points(help="two corner points of a box that clips the source image"),
                   "space": space_key()},
    "local_threshold": {"segment": _seg(), "point": Point(required=True),
                        "min": Num(-MAX_COORD, MAX_COORD, required=True, help="MinimumThreshold"),
                        "max": Num(-MAX_COORD, MAX_COORD, required=True, help="MaximumThreshold"),
                        "minimum_diameter_mm": Num(0, MAX_SIZE_MM, default=3.0),
                        "segmentation_algorithm": Enum(("GrowCut", "Masking"), default="GrowCut"),
                        "feature_size_mm": Num(0, MAX_SIZE_MM, default=3.0, help="WaterShed only (not offered)"),
                        "roi": Points(help="two corner points of a box that clips the source image"),
                        "space": space_key()},
    "grow_from_seeds": {"seed_locality": Num(0, 10, default=0.0), "segments": Names()},
    "fill_between_slices": {"segments": Names(), "axis": Int(0, 2, help="grid axis to interpolate along "
                                                                     "(0 = k, 1 = j, 2 = i); default: automatic")},
    "margin": {"segment": _seg_or_visible(), "margin_mm": Num(-MAX_SIZE_MM, MAX_SIZE_MM, required=True,
                                                             help="grow (> 0) or shrink (< 0)"),
               "all_visible": _ALL_VISIBLE},
    "hollow": {"segment": _seg_or_visible(), "thickness_mm": Num(0, MAX_SIZE_MM, lo_open=True, required=True),
               "mode": Enum(("inside", "medial", "outside"), default="inside"), "all_visible": _ALL_VISIBLE},
    "smooth": {"segment": _seg_or_visible(),
               "method": Enum(("median", "opening", "closing", "gaussian", "joint_taubin"), default="median"),
               "kernel_mm": Num(0, MAX_SIZE_MM, lo_open=True, default=3.0,
                                help="median, opening, closing: Slicer's KernelSizeMm"),
               "gaussian_sigma_mm": Num(0, MAX_SIZE_MM, lo_open=True, default=3.0,
                                        help="gaussian: Slicer's GaussianStandardDeviationMm"),
               "joint_smoothing_factor": Num(0, 1, default=0.5,
                                             help="joint_taubin: Slicer's JointTaubinSmoothingFactor"),
               "all_visible": _ALL_VISIBLE,
               "points": Points(help="a smoothing brush stroke: smooth only inside it (not with joint_taubin)"),
               "diameter_mm": Num(0, MAX_DIAMETER_MM, lo_open=True, default=5.0, help="the smoothing brush's diameter"),
               "shape": Enum(("sphere", "disc", "pixel"), default="sphere"), "axis": axis_key(),
               "space": space_key()},
    "mask_volume": {"segment": _seg(),
                    "operation": Enum(("fill_outside", "fill_inside", "fill_inside_and_outside"),
                                      default="fill_outside"),
                    "fill_value": Num(-MAX_COORD, MAX_COORD, default=0, help="Slicer's FillValue"),
                    "inside_value": Num(-MAX_COORD, MAX_COORD, default=1, help="Slicer's BinaryMaskFillValueInside"),
                    "outside_value": Num(-MAX_COORD, MAX_COORD, default=0,
                                         help="Slicer's BinaryMaskFillValueOutside"),
                    "soft_edge_mm": Num(0, MAX_SIZE_MM, default=0.0, help="Slicer's SoftEdgeMm (Gaussian sigma)")},
    "islands": {"segment": _seg(), "operation": Enum(("keep_largest", "remove_small", "split", "keep_selected",
                                                      "remove_selected", "add_selected"), default="keep_largest"),
                "min_size": Int(0, 2**50, default=1000), "point": Point(), "space": space_key(),
                "connectivity": Int(6, 26, choices=(6, 26), default=6)},
    "logical": {"segment": _seg(), "operation": Enum(("copy", "union", "subtract", "intersect", "invert", "clear",
                                                       "fill"), required=True),
                "modifier": Str(), "bypass_masking": Bool(default=True)},
    "draw_tube": {"segment": _seg(), "points": Points(required=True, help="the curve's control points"),
                  "radius_mm": Num(0, MAX_DIAMETER_MM, lo_open=True, default=1.0),
                  "interpolation": Enum(("cardinal_spline", "linear"), default="cardinal_spline"),
                  "space": space_key()},
    "surface_cut": {"segment": _seg(), "points": Points(required=True, help="at least 4 points, not in one plane"),
                    "operation": Enum(("set", "erase_inside", "erase_outside", "fill_inside", "fill_outside"),
                                      default="set"),
                    "smooth": Bool(default=True), "space": space_key()},
    "watershed": {"object_scale_mm": Num(0, MAX_SIZE_MM, lo_open=True, default=2.0), "segments": Names()},
    "fast_marching": {"segment": _seg(), "percent_max": Num(0, 100, lo_open=True, default=10.0),
                      "percent": Num(0, 100, help="the final volume, percent of the image (default percent_max)")},
    "engrave": {"segment": _seg(), "text": Str(default="Text"), "mode": Enum(("engrave", "emboss"), default="engrave"),
                "depth_mm": Num(0, MAX_SIZE_MM, lo_open=True, default=5.0),
                "height_mm": Num(0, MAX_SIZE_MM, lo_open=True, default=10.0),
                "point": Point(help="the text's centre (default: the centre of the segment's top face)"),
                "space": space_key()},
    "undo": {},
    "redo": {},
}


def _where(n: int | None, effect: str | None) -> str:
    head = f"step {n}" if n is not None else "step"
    return f"{head} ({effect})" if effect else head


def validate_step(step: Any, n: int | None = None) -> dict:
    """Check one step against :data:`STEPS`; returns it (unchanged). Raises InvalidInputError
    naming step ``n``, the effect and the key."""
    if not isinstance(step, dict):
        raise InvalidInputError(f"{_where(n, None)}: a step is a JSON object with \"effect\", got {show_value(step)}")
    eff = step.get("effect")
    if not isinstance(eff, str) or eff not in STEPS:
        raise InvalidInputError(f"{_where(n, None)}: \"effect\" must be one of {', '.join(STEPS)}, got {show_value(eff)}")
    fields = STEPS[eff]
    extra = sorted(str(k) for k in step if k != "effect" and k not in fields)
    if extra:
        raise InvalidInputError(f"{_where(n, eff)}: unknown keys {extra}; {eff} takes {', '.join(fields) or 'none'}")
    for key, f in fields.items():
        if key not in step or step[key] is None:
            if f.required:
                raise InvalidInputError(f"{_where(n, eff)}: missing required key {key!r}")
            if key in step and step[key] is None and key not in ("mask_segment", "intensity_range", "modifier",
                                                                  "point", "segments", "name", "color", "id", "roi",
                                                                  "segment"):
                raise InvalidInputError(f"{_where(n, eff)}: {key}: null is not allowed")
            continue
        try:
            f.check(step[key])
        except ValueError as exc:
            raise InvalidInputError(f"{_where(n, eff)}: {key}: {exc}") from None
    if eff == "local_threshold" and float(step["min"]) > float(step["max"]):
        raise InvalidInputError(f"{_where(n, eff)}: min {step['min']} > max {step['max']}")
    if eff == "threshold":
        has_range = "min" in step or "max" in step
        keeps_end = step.get("auto_mode") in ("SET_LOWER", "SET_UPPER")
        if has_range and not ("min" in step and "max" in step):
            raise InvalidInputError(f"{_where(n, eff)}: give both \"min\" and \"max\" (or either \"auto\")")
        if ("auto" in step) == has_range and not ("auto" in step and keeps_end):
            raise InvalidInputError(f"{_where(n, eff)}: give either \"min\" and \"max\", or \"auto\" "
                                    "(min and max go with auto only for auto_mode SET_LOWER or SET_UPPER)")
        if "auto_mode" in step and "auto" not in step:
            raise InvalidInputError(f"{_where(n, eff)}: \"auto_mode\" needs \"auto\"")
        if has_range and float(step["min"]) > float(step["max"]):
            raise InvalidInputError(f"{_where(n, eff)}: min {step['min']} > max {step['max']}")
    if step.get("roi") is not None and len(step["roi"]) != 2:
        raise InvalidInputError(f"{_where(n, eff)}: roi: two corner points, got {len(step['roi'])}")
    if eff == "masking" and step.get("editable_area") == "inside" and step.get("mask_segment") is None:
        raise InvalidInputError(f"{_where(n, eff)}: editable_area 'inside' needs mask_segment")
    if eff == "logical" and step["operation"] in ("copy", "union", "subtract", "intersect") \
            and step.get("modifier") is None:
        raise InvalidInputError(f"{_where(n, eff)}: logical {step['operation']} needs \"modifier\"")
    if eff in ("margin", "hollow", "smooth") and step.get("segment") is None and not step.get("all_visible") \
            and step.get("method") != "joint_taubin":
        raise InvalidInputError(f"{_where(n, eff)}: missing required key 'segment' (or \"all_visible\": true)")
    if eff == "islands" and step.get("operation") in ("keep_selected", "remove_selected", "add_selected") \
            and step.get("point") is None:
        raise InvalidInputError(f"{_where(n, eff)}: islands {step['operation']} needs \"point\"")
    return step


def validate_steps(steps: Any) -> list[dict]:
    """Check a whole script (a list of steps, numbered from 1)."""
    if not isinstance(steps, list):
        raise InvalidInputError(f"an edit script is a JSON list of steps, got {type(steps).__name__}")
    for n, step in enumerate(steps, start=1):
        validate_step(step, n)
    return steps


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of an edit script, from :data:`STEPS`."""
    variants = []
    for eff, fields in STEPS.items():
        variants.append({
            "title": eff, "type": "object", "additionalProperties": False,
            "required": ["effect", *[k for k, f in fields.items() if f.required]],
            "properties": {"effect": {"const": eff}, **{k: f.schema() for k, f in fields.items()}},
        })
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "gpuseg edit script",
            "description": "A list of Segment Editor steps applied in order (gpuseg/steps.py).",
            "type": "array", "items": {"oneOf": variants}}


def describe() -> str:
    """One line per effect with its keys (``*`` = required), for ``gpuseg edit --help``."""
    lines = []
    for eff, fields in STEPS.items():
        keys = ", ".join(k + ("*" if f.required else "") for k, f in fields.items())
        lines.append(f"  {eff:<16}{keys or '(no keys)'}")
    return "\n".join(lines)


# --- running steps ---------------------------------------------------------------------------------
def editor_points(geometry, points, space: str) -> tuple[np.ndarray, str]:
    """Points as the Editor takes them: (array, "world" or "ijk"); RAS becomes LPS."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    if space == "ras":
        p = p * np.array([-1.0, -1.0, 1.0])
        return p, "world"
    return p, space


def _ijk(geometry, points, space: str) -> np.ndarray:
    p, sp = editor_points(geometry, points, space)
    return geometry.world_to_ijk_points(p) if sp == "world" else p


def _stroke_outside(geometry, step: dict) -> bool:
    """True when the step's stroke or shape cannot reach a voxel of the grid."""
    eff = step["effect"]
    if eff in ("draw_tube", "surface_cut"):
        return False  # their regions are exact and may reach the grid from outside points
    ijk = _ijk(geometry, step["points"], step.get("space", "world"))
    n = np.array(geometry.shape[::-1], dtype=np.float64)  # (ni, nj, nk)
    if eff in ("paint", "erase"):
        r = 0.0 if step.get("shape") == "pixel" else float(step.get("diameter_mm", 5.0)) / 2.0
        # a voxel-space box that holds the ball: columns of the inverse matrix bound it exactly
        inv = np.asarray(geometry.world_to_ijk)[:3, :3]
        half = r * np.sqrt((inv ** 2).sum(axis=1)) + 0.5
        lo, hi = ijk.min(0) - half, ijk.max(0) + half
        return bool(np.any(hi < -0.5) or np.any(lo > n - 0.5))
    # draw / scissors: the shape lies in the slice plane of `axis` through the first point;
    # its in-plane box must meet the grid and, except for unlimited scissors, the plane too
    axis = int(step.get("axis", 0))
    gaxis = 2 - axis  # (k, j, i) axis -> column of (i, j, k)
    inplane = [a for a in range(3) if a != gaxis]
    lo, hi = ijk.min(0), ijk.max(0)
    if step.get("operation", "erase_inside").endswith("outside"):
        return False  # "outside" cuts the rest of the volume
    if np.any(hi[inplane] < -0.5) or np.any(lo[inplane] > n[inplane] - 0.5):
        return True
    return False


def check_work(geometry, step: dict, n: int | None = None) -> None:
    """Bounds that need the grid: brush stamps per stroke."""
    eff = step["effect"]
    if eff in ("paint", "erase") and step.get("shape") != "pixel":
        p, sp = editor_points(geometry, step["points"], step.get("space", "world"))
        world = geometry.ijk_to_world_points(p) if sp == "ijk" else p
        r = float(step.get("diameter_mm", 5.0)) / 2.0
        length = float(np.linalg.norm(np.diff(world, axis=0), axis=1).sum()) if len(world) > 1 else 0.0
        stamps = len(world) + length / (r / 2.0)
        if not math.isfinite(stamps) or stamps > MAX_STAMPS:
            raise InvalidInputError(f"{_where(n, eff)}: the stroke needs {stamps:.3g} brush stamps "
                                    f"({length:.6g} mm long with a {2 * r:g} mm brush); at most {MAX_STAMPS}")


def run_step(editor, step: dict, n: int | None = None, *, strict: bool = False,
             validated: bool = False) -> int:
    """Validate and apply one step to an Editor; returns the voxels it changed. A stroke wholly
    outside the volume warns (:class:`StrokeOutsideWarning`), or raises OutOfBoundsError with
    ``strict``. Errors name step ``n``."""
    from .editor import Masking

    if not validated:
        validate_step(step, n)
    st = {k: v for k, v in step.items() if v is not None}
    eff = st.pop("effect")
    geom = editor.segmentation.geometry
    try:
        if "points" in st:
            check_work(geom, step, n)
            if _stroke_outside(geom, step):
                msg = f"{_where(n, eff)}: the stroke lies wholly outside the volume (space {st.get('space', 'world')!r})"
                if strict:
                    raise OutOfBoundsError(msg)
                warnings.warn(msg, StrokeOutsideWarning, stacklevel=2)
            pts, sp = editor_points(geom, st.pop("points"), st.pop("space", "world"))
            st["space"] = sp
            st["points"] = pts
        elif "point" in st:
            pts, sp = editor_points(geom, st.pop("point"), st.pop("space", "world"))
            st["space"] = sp
            st["point"] = pts[0]
        else:
            st.pop("space", None)
        if eff == "add_segment":
            editor.segmentation.add_segment(name=st.get("name"), color=st.get("color"), segment_id=st.get("id"))
            return 0
        if eff == "masking":
            rng = st.get("intensity_range")
            m = Masking(st.get("editable_area", "everywhere"), st.get("mask_segment"),
                        tuple(float(v) for v in rng) if rng is not None else None, st.get("overwrite", "overwrite_all"))
            m.check(editor.segmentation)
            editor.masking = m
            return 0
        if eff == "visibility":
            editor.segmentation.segment(st["segment"]).visible = bool(st["visible"])
            return 0
        if eff in ("paint", "erase"):
            seg = st.pop("segment")
            pts = st.pop("points")
            d = float(st.pop("diameter_mm", 5.0))
            if eff == "paint":
                return editor.paint(seg, pts, d, **st)
            return editor.erase(seg, pts, d, all_segments=st.pop("all_segments", False), **st)
        if eff == "draw":
            return editor.draw(st.pop("segment"), st.pop("points"), **st)
        if eff == "scissors":
            return editor.scissors(st.pop("segment"), st.pop("points"), **st)
        if eff in ("draw_tube", "surface_cut"):
            return getattr(editor, eff)(st.pop("segment"), st.pop("points"), **st)
        if eff == "threshold":
            cur = (float(st["min"]), float(st["max"])) if "min" in st else None
            lo, hi = editor.auto_threshold(st["auto"], st.get("auto_mode", "SET_LOWER_MAX"), cur) \
                if "auto" in st else cur
            return editor.threshold(st["segment"], lo, hi)
        if eff in ("margin", "hollow", "smooth"):
            return getattr(editor, eff)(st.pop("segment", None), **st)
        if eff == "mask_volume":  # the masked volume becomes the source image of the steps after it
            editor.image = editor.mask_volume(st.pop("segment"), **st)
            return 0
        if eff in ("islands", "logical"):
            return getattr(editor, eff)(st.pop("segment"), **st)
        if eff == "grow_from_seeds":
            return editor.grow_from_seeds(**st)
        if eff == "fill_between_slices":
            return editor.fill_between_slices(st.get("segments"), st.get("axis"))
        if eff == "watershed":
            return editor.watershed(**st)
        if eff == "fast_marching":
            return editor.fast_marching(st.pop("segment"), **st)
        if eff == "engrave":
            return editor.engrave(st.pop("segment"), **st)
        if eff == "level_trace":
            return editor.level_trace(st.pop("segment"), st.pop("point"), **st)
        if eff in ("flood_fill", "local_threshold"):
            if "roi" in st:
                st["roi"] = editor_points(geom, st["roi"], step.get("space", "world"))[0]
            if eff == "local_threshold":
                lo, hi = float(st.pop("min")), float(st.pop("max"))
                return editor.local_threshold(st.pop("segment"), st.pop("point"), lo, hi, **st)
            return editor.flood_fill(st.pop("segment"), st.pop("point"), **st)
        if eff == "undo":
            return int(editor.undo())
        return int(editor.redo())
    except UnknownSegmentError as exc:
        raise UnknownSegmentError(f"{_where(n, eff)}: {exc}") from exc
    except GpusegError as exc:
        text = str(exc)
        if text.startswith(_where(n, eff)):
            raise
        raise type(exc)(f"{_where(n, eff)}: {text}") from exc
    except (ValueError, TypeError, OverflowError) as exc:  # a value the schema let through and numpy refused
        raise InvalidInputError(f"{_where(n, eff)}: {exc}") from exc


def load_steps(path) -> list[dict]:
    """Read and validate an edit script: a UTF-8 JSON list of steps.

    Errors are typed and name the file (and the step, for a bad step).
    """
    p = Path(path)
    if not p.is_file():
        raise FileFormatError(f"{p}: edit script not found")
    try:
        steps = json.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FileFormatError(f"{p}: not valid JSON ({exc})") from exc
    except OSError as exc:
        raise FileFormatError(f"{p}: cannot read the edit script ({exc.strerror or exc})") from exc
    try:
        return validate_steps(steps)
    except GpusegError as exc:
        raise type(exc)(f"{p}: {exc}") from exc


def run_steps(editor, steps: list[dict], *, strict: bool = False,
              on_step: Callable[[int, dict, int], None] | None = None) -> list[int]:
    """Validate every step first, then apply them in order; returns the voxels changed per step."""
    validate_steps(steps)
    changed = []
    for n, step in enumerate(steps, start=1):
        c = run_step(editor, step, n, strict=strict, validated=True)
        changed.append(c)
        if on_step is not None:
            on_step(n, step, c)
    return changed
