"""The representation graph: Slicer's conversion rules and their parameters.

A segment's source representation is its ``Binary labelmap`` (a :class:`~gpuseg.mask.Mask`).
Every other representation is derived through a path of :class:`ConversionRule` s, the
cheapest by cost (Slicer's ``vtkSegmentationConverter::GetCheapestPath``), and cached on the
segment under a *stamp*: the versions of the masks it was made from and the values of the
parameters each rule on the path read. A stamp that no longer matches is never served, so a
stale representation cannot be returned (docs/representations.md).

Parameters are Slicer's (reference §1.3): each is parsed and checked here, and a value
Slicer defines but gpuseg does not implement raises :class:`UnsupportedParameterError`.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .errors import InvalidInputError, UnsupportedParameterError
from .geometry import parse_geometry

__all__ = ["BINARY_LABELMAP", "CLOSED_SURFACE", "FRACTIONAL_LABELMAP", "PLANAR_CONTOUR", "ConversionParameter",
           "ConversionRule", "ConversionContext", "Representation", "PARAMETERS", "RULES", "REPRESENTATIONS",
           "register_parameter", "parse_reference_geometry", "read_only", "register_representation", "register_rule", "cheapest_path", "parameter_text",
           "parse_parameters"]

BINARY_LABELMAP = "Binary labelmap"
CLOSED_SURFACE = "Closed surface"
FRACTIONAL_LABELMAP = "Fractional labelmap"
#: SlicerRT's name, singular as in code (the developer doc says "Planar contours")
PLANAR_CONTOUR = "Planar contour"


# --- parameters -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConversionParameter:
    """One of Slicer's conversion parameters.

    Attributes
    ----------
    name, default, description : str
        Slicer's name, default value text and description (written to files).
    parse : callable
        ``parse(text) -> value``; raises :class:`InvalidInputError` for text Slicer would not accept.
    unsupported : callable or None
        ``unsupported(value, values) -> reason or None``, with ``values`` the parsed values of
        every parameter the rule reads; a reason means gpuseg does not implement this value.
    """

    name: str
    default: str
    description: str
    parse: Callable[[str], Any]
    unsupported: Callable[[Any, Mapping[str, Any]], str | None] | None = None


def _bad(name: str, text: str, what: str) -> InvalidInputError:
    return InvalidInputError(f"conversion parameter {name!r} must be {what}, got {text!r}")


def _number(name: str, lo: float, hi: float, hi_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except (TypeError, ValueError):
            raise _bad(name, text, "a number") from None
        if math.isnan(v) or v < lo or v > hi or (hi_open and v >= hi):
            raise _bad(name, text, f"in [{lo:g}, {hi:g}{')' if hi_open else ']'}")
        return v
    return parse


def _choice(name: str, values: Sequence[int]) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = float(text)
        except (TypeError, ValueError):
            raise _bad(name, text, " or ".join(map(str, values))) from None
        if not v.is_integer() or int(v) not in values:
            raise _bad(name, text, " or ".join(map(str, values)))
        return int(v)
    return parse


def _oversampling(name: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        t = str(text).strip()
        if t == "A":
            return "A"
        try:
            v = float(t)
        except ValueError:
            raise _bad(name, text, 'a positive number or "A"') from None
        if not v > 0 or math.isinf(v):
            raise _bad(name, text, 'a positive number or "A"')
        return v
    return parse


def parse_reference_geometry(text: str):
    """``(IJK->RAS 4x4 matrix, (i0, i1, j0, j1, k0, k1))`` from Slicer's ``Reference image
    geometry`` text (16 matrix numbers row-major, then the inclusive extent, each followed by
    ``;``; reference §1.4), or None if the text is not one: :func:`gpuseg.geometry.parse_geometry`,
    the one parser that .seg.nrrd files use too."""
    return parse_geometry(text)


def _geometry_text(text: str) -> str:
    t = str(text).strip()
    if t and parse_reference_geometry(t) is None:
        raise _bad("Reference image geometry", text, "16 matrix numbers and 6 extent integers, each followed by ';'")
    return t


_NO_RULE = ("gpuseg has no {rule} rule: a segmentation's source representation is always the binary labelmap, "
            "so this parameter is never read")


def _never_read(rule: str) -> Callable[[Any, Mapping[str, Any]], str | None]:
    return lambda v, _: _NO_RULE.format(rule=rule)


#: every conversion parameter Slicer defines (core and SlicerRT), by name
PARAMETERS: dict[str, ConversionParameter] = {}


def register_parameter(p: ConversionParameter) -> ConversionParameter:
    """Add a conversion parameter (see docs/representations.md, "Adding a representation")."""
    if p.name in PARAMETERS:
        raise InvalidInputError(f"conversion parameter {p.name!r} is already registered")
    p.parse(p.default)  # a default must parse
    PARAMETERS[p.name] = p
    return p


def _surface_nets_smoothing(v, values) -> str | None:
    if v and values.get("Conversion method") == 1 and values.get("Smoothing factor", 0) > 0:
        return ("SurfaceNets smoothing = 1 (vtkSurfaceNets3D's internal constrained smoothing) is not implemented; "
                "set it to 0 (surface nets are then smoothed by the windowed-sinc filter, as Slicer does)")
    return None


def _joint_smoothing(v, values) -> str | None:
    if v and values.get("Conversion method") == 0 and values.get("Smoothing factor", 0) > 0:
        return ("Joint smoothing = 1 is implemented for surface nets only (Conversion method = 1); "
                "with flying edges set it to 0")
    return None


def _reference_geometry(v, values) -> str | None:
    return None  # checked against the segmentation's grid by the rules (it needs the segmentation)


for _p in (
    ConversionParameter("Collapse labelmaps", "1",
                        "Merge the labelmaps into as few shared labelmaps as possible 1 = created labelmaps will be "
                        "shared if possible without overwriting each other.",
                        _choice("Collapse labelmaps", (0, 1)),
                        lambda v, _: None if v == 1 else
                        "Collapse labelmaps = 0 is not implemented: gpuseg computes shared layers only when a file "
                        "is written, always as few as possible"),
    ConversionParameter("Compute surface normals", "1",
                        "Compute surface normals. 1 (default) = surface normals are computed. 0 = surface normals "
                        "are not computed (slightly faster but produces less smooth surface display).",
                        _choice("Compute surface normals", (0, 1))),
    ConversionParameter("Conversion method", "0",
                        "Method used for labelmap to surface conversion. 0 = flying edges, 1 = surface nets.",
                        _choice("Conversion method", (0, 1))),
    ConversionParameter("Crop to reference image geometry", "0",
                        "Crop the model to the extent of reference geometry. 0 (default) = created labelmap will "
                        "contain the entire model. 1 = created labelmap extent will be within reference image "
                        "extent.", _choice("Crop to reference image geometry", (0, 1))),
    ConversionParameter("Decimation factor", "0.0",
                        "Desired reduction in the total number of polygons. Range: 0.0 (no decimation) to 1.0 (as "
                        "much simplification as possible).", _number("Decimation factor", 0.0, 1.0, hi_open=True)),
    ConversionParameter("Fractional labelmap oversampling factor", "1",
                        "Determines the oversampling of the reference image geometry. All segments are oversampled "
                        "with the same value (value of 1 means no oversampling).",
                        _oversampling("Fractional labelmap oversampling factor"),
                        lambda v, _: None if v == 1 else _NO_RULE.format(rule="Fractional labelmap to closed surface")),
    ConversionParameter("Joint smoothing", "0", "Perform joint smoothing.", _choice("Joint smoothing", (0, 1)),
                        _joint_smoothing),
    ConversionParameter("Oversampling factor", "1",
                        "Determines the oversampling of the reference image geometry. If it's a number, then all "
                        "segments are oversampled with the same value (value of 1 means no oversampling). If it has "
                        "the value \"A\", then automatic oversampling is calculated.",
                        _oversampling("Oversampling factor"),
                        lambda v, _: None if v == 1 else
                        f"Oversampling factor = {v} cannot apply inside a segmentation: a segment's labelmap "
                        "lives on the segmentation's reference grid; rasterize onto an oversampled grid instead "
                        "(gpuseg.ops.segmentation_geometry.surface_labelmap_geometry, `gpuseg import-mesh "
                        "--oversampling F|A`, docs/geometry.md)"),
    ConversionParameter("Reference image geometry", "",
                        "Image geometry description string determining the geometry of the labelmap that is "
                        "created in course of conversion.", _geometry_text, _reference_geometry),
    ConversionParameter("Smoothing factor", "0.5",
                        "Smoothing factor. Range: 0.0 (no smoothing) to 1.0 (strong smoothing).",
                        _number("Smoothing factor", -1.0, 1.0)),
    ConversionParameter("SurfaceNets smoothing", "0", "Use SurfaceNets internal smoothing.",
                        _choice("SurfaceNets smoothing", (0, 1)), _surface_nets_smoothing),
    ConversionParameter("Threshold fraction", "0.5",
                        "Determines the threshold that the closed surface is created at as a fractional value "
                        "between 0 and 1.", _number("Threshold fraction", 0.0, 1.0),
                        lambda v, _: None if v == 0.5 else _NO_RULE.format(rule="Fractional labelmap to closed surface")),
):
    register_parameter(_p)

#: SlicerRT's parameters (planar contour rules), kept so that files round-trip and values are checked
SLICERRT_PARAMETERS: dict[str, ConversionParameter] = {
    "Default slice thickness": ConversionParameter(
        "Default slice thickness", "0.0", "Default thickness for contours if slice spacing cannot be calculated.",
        _number("Default slice thickness", 0.0, math.inf),
        lambda v, _: None if v == 0 else _NO_RULE.format(rule="Planar contour to closed surface")),
    "End capping": ConversionParameter(
        "End capping", "1", "Create end cap to close surface inside contours on the top and bottom of the structure.",
        _choice("End capping", (0, 1, 2)),
        lambda v, _: None if v == 1 else _NO_RULE.format(rule="Planar contour to closed surface")),
}


def known_parameter(name: str) -> ConversionParameter | None:
    """The definition of a parameter (core or SlicerRT), or None."""
    return PARAMETERS.get(name) or SLICERRT_PARAMETERS.get(name)


def parameter_text(value: Any) -> str:
    """A parameter value as Slicer's text: booleans 0/1, numbers without noise."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_parameters(texts: Mapping[str, str], names: Sequence[str]) -> dict[str, Any]:
    """Parse and check the parameters ``names`` from ``texts`` (missing ones take their default).

    Raises
    ------
    InvalidInputError
        A value is not valid text for its parameter.
    UnsupportedParameterError
        A valid value that gpuseg does not implement.
    """
    values: dict[str, Any] = {}
    for n in names:
        p = known_parameter(n)
        if p is None:
            raise InvalidInputError(f"unknown conversion parameter {n!r}")
        values[n] = p.parse(texts.get(n, p.default))
    for n in names:
        p = known_parameter(n)
        reason = p.unsupported(values[n], values) if p.unsupported else None  # type: ignore[union-attr]
        if reason:
            raise UnsupportedParameterError(f"conversion parameter {n!r} = {texts.get(n)!r}: {reason}")
    return values


# --- representations and rules ----------------------------------------------------------------
@dataclass(frozen=True)
class Representation:
    """A representation name and how a cached value is labelled for its segment.

    Attributes
    ----------
    name : str
        Slicer's name.
    annotate : callable or None
        ``annotate(value, segment)``, run on every value handed out (e.g. a surface's name
        and color follow the segment's, which are not part of the conversion).
    """

    name: str
    annotate: Callable[[Any, Any], None] | None = None


@dataclass
class ConversionContext:
    """What a rule's ``convert`` may use besides its inputs.

    Attributes
    ----------
    segmentation : Segmentation
    segments : list of Segment
        The segments being converted, in the order of the inputs.
    progress : bool
        Whether to show a progress bar.
    """

    segmentation: Any
    segments: list
    progress: bool = False


@dataclass(frozen=True)
class ConversionRule:
    """One conversion, as Slicer's ``vtkSegmentationConverterRule``.

    Attributes
    ----------
    name : str
        Slicer's ``GetName`` (or gpuseg's, for its own rules).
    source, target : str
        Representation names.
    cost : int
        Rough cost (Slicer's numbers, about milliseconds); the cheapest path wins.
    parameters : tuple of str
        The conversion parameters ``convert`` reads; their values are part of the cache stamp.
    convert : callable
        ``convert(inputs, values, context) -> outputs``: one output per input, in order;
        ``values`` holds the parsed ``parameters``.
    joint : callable or None
        ``joint(values) -> bool``: whether each output depends on *all* the converted
        segments (then they are converted together and the stamp holds every one's version).
        Only a rule from the source representation may be joint.
    """

    name: str
    source: str
    target: str
    cost: int
    parameters: tuple[str, ...]
    convert: Callable[[list, dict[str, Any], ConversionContext], list]
    joint: Callable[[Mapping[str, Any]], bool] | None = field(default=None)


RULES: list[ConversionRule] = []
REPRESENTATIONS: dict[str, Representation] = {}


def register_representation(rep: Representation) -> Representation:
    """Add a representation name (docs/representations.md, "Adding a representation")."""
    if rep.name in REPRESENTATIONS:
        raise InvalidInputError(f"representation {rep.name!r} is already registered")
    REPRESENTATIONS[rep.name] = rep
    return rep


def register_rule(rule: ConversionRule) -> ConversionRule:
    """Add a conversion rule between registered representations."""
    for n in (rule.source, rule.target):
        if n not in REPRESENTATIONS:
            raise InvalidInputError(f"rule {rule.name!r}: unknown representation {n!r}")
    for n in rule.parameters:
        if n not in PARAMETERS:
            raise InvalidInputError(f"rule {rule.name!r}: unknown conversion parameter {n!r}")
    if rule.cost <= 0:
        raise InvalidInputError(f"rule {rule.name!r}: the cost must be positive")
    if any(r.name == rule.name for r in RULES):
        raise InvalidInputError(f"a rule named {rule.name!r} is already registered")
    RULES.append(rule)
    return rule


def cheapest_path(source: str, target: str, rules: Sequence[ConversionRule] | None = None) -> list[ConversionRule]:
    """The cheapest chain of rules from ``source`` to ``target`` (empty if they are equal).

    Raises
    ------
    InvalidInputError
        The target is unknown or cannot be reached.
    """
    rules = RULES if rules is None else rules
    if target not in REPRESENTATIONS:
        raise InvalidInputError(f"unknown representation {target!r}; known: {', '.join(REPRESENTATIONS)}")
    if source == target:
        return []
    best: dict[str, int] = {source: 0}
    heap: list[tuple[int, int, str, list[ConversionRule]]] = [(0, 0, source, [])]
    tie = 0
    while heap:
        cost, _, node, path = heapq.heappop(heap)
        if node == target:
            return path
        if cost > best.get(node, math.inf):
            continue
        for r in rules:
            if r.source != node:
                continue
            c = cost + r.cost
            if c < best.get(r.target, math.inf):
                best[r.target] = c
                tie += 1
                heapq.heappush(heap, (c, tie, r.target, path + [r]))
    raise InvalidInputError(f"no conversion path from {source!r} to {target!r}")


def read_only(value: Any) -> Any:
    """Make the numpy arrays of a converted value read-only (in place; arrays inside
    dataclasses, dicts, lists and tuples too), so that a cached value cannot be changed by
    whoever it is handed to. Returns ``value``."""
    import dataclasses

    import numpy as np

    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            read_only(getattr(value, f.name))
    elif isinstance(value, dict):
        for v in value.values():
            read_only(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            read_only(v)
    return value


# --- gpuseg's rules -----------------------------------------------------------------------------
def _annotate_surface(surface, segment) -> None:
    surface.name = segment.name
    surface.color = tuple(float(c) for c in segment.color)
    surface.segment_id = segment.id


def _labelmap_to_surface(masks, v, ctx):
    from .surface.mesh import METHODS, surfaces_of_masks

    return surfaces_of_masks(masks, smoothing=v["Smoothing factor"], decimation=v["Decimation factor"],
                             normals=bool(v["Compute surface normals"]), method=METHODS[v["Conversion method"]],
                             joint_smoothing=bool(v["Joint smoothing"]), progress=ctx.progress)


def _joint(v) -> bool:
    return bool(v["Joint smoothing"]) and v["Conversion method"] == 1 and v["Smoothing factor"] > 0


def check_reference_geometry(values: Mapping[str, Any], segmentation) -> None:
    """``Reference image geometry`` must be empty or the segmentation's own grid: a segment's
    labelmap always lives on that grid.

    Raises
    ------
    UnsupportedParameterError
        It describes another grid.
    """
    text = values.get("Reference image geometry", "")
    if not text:
        return
    import numpy as np

    g = segmentation.geometry
    nk, nj, ni = g.shape
    theirs = parse_reference_geometry(text)
    assert theirs is not None  # checked by the parameter's parser
    if tuple(theirs[1]) != (0, ni - 1, 0, nj - 1, 0, nk - 1) or not np.allclose(theirs[0], g.ijk_to_ras, rtol=1e-6,
                                                                                atol=1e-6):
        raise UnsupportedParameterError(
            f"conversion parameter 'Reference image geometry' = {text!r} is not the segmentation's grid "
            f"(shape {g.shape} (k, j, i)); gpuseg keeps every labelmap on that grid")


def _check_inside(surface, segmentation, crop: int, what: str) -> None:
    """With ``Crop to reference image geometry`` = 0 the labelmap must hold the whole model: no
    voxel centre inside the model's bounding box may lie outside the grid."""
    if crop or surface.is_empty():
        return
    import numpy as np

    ijk = segmentation.geometry.world_to_ijk_points(np.asarray(surface.vertices, np.float64))
    lo = np.ceil(ijk.min(0) - 1e-9)
    hi = np.floor(ijk.max(0) + 1e-9)
    n = np.array(segmentation.geometry.shape[::-1], float)  # (ni, nj, nk)
    if np.any(lo < 0) or np.any(hi > n - 1):
        raise UnsupportedParameterError(
            f"{what} reaches past the reference grid and 'Crop to reference image geometry' is 0 (the labelmap "
            "would have to hold the whole model, but gpuseg keeps labelmaps on the reference grid); set it to 1 "
            "to crop")


_GEOMETRY_PARAMETERS = ("Reference image geometry", "Oversampling factor", "Crop to reference image geometry")


def _surface_to_labelmap(surfaces, v, ctx):
    from .surface.mesh import mesh_to_mask

    seg = ctx.segmentation
    check_reference_geometry(v, seg)
    out = []
    for s, x in zip(surfaces, ctx.segments):
        what = f"closed surface of {x.name!r}"
        _check_inside(s, seg, v["Crop to reference image geometry"], what)
        out.append(mesh_to_mask(s.vertices, s.faces, seg.geometry, backend=seg.backend, what=what))
    return out


def _surface_to_fractional(surfaces, v, ctx):
    from .surface.representations import FractionalLabelmap, fractional_labelmap

    seg = ctx.segmentation
    check_reference_geometry(v, seg)
    out = []
    for s, x in zip(surfaces, ctx.segments):
        _check_inside(s, seg, v["Crop to reference image geometry"], f"closed surface of {x.name!r}")
        counts, ext = fractional_labelmap(s, seg.geometry, subdivisions=6)
        out.append(FractionalLabelmap(counts, ext, seg.geometry, 6))
    return out


def _labelmap_to_contours(masks, v, ctx):
    from .surface.representations import planar_contours

    return [planar_contours(m, axis=0) for m in masks]


for _r in (Representation(BINARY_LABELMAP), Representation(CLOSED_SURFACE, _annotate_surface),
           Representation(FRACTIONAL_LABELMAP), Representation(PLANAR_CONTOUR)):
    register_representation(_r)

for _rule in (
    ConversionRule("Binary labelmap to closed surface", BINARY_LABELMAP, CLOSED_SURFACE, 500,
                   ("Smoothing factor", "Decimation factor", "Compute surface normals", "Conversion method",
                    "SurfaceNets smoothing", "Joint smoothing"), _labelmap_to_surface, _joint),
    ConversionRule("Closed surface to binary labelmap (simple image stencil)", CLOSED_SURFACE, BINARY_LABELMAP, 500,
                   _GEOMETRY_PARAMETERS + ("Collapse labelmaps",), _surface_to_labelmap),
    ConversionRule("Closed surface to fractional labelmap (simple image stencil)", CLOSED_SURFACE,
                   FRACTIONAL_LABELMAP, 7000, _GEOMETRY_PARAMETERS + ("Collapse labelmaps",), _surface_to_fractional),
    # gpuseg's own (SlicerRT only goes planar contour -> surface): axial (k) slices, as RT structure sets
    ConversionRule("Binary labelmap to planar contour", BINARY_LABELMAP, PLANAR_CONTOUR, 300, (),
                   _labelmap_to_contours),
):
    register_rule(_rule)
