"""Scissors geometry: a 2D shape in one slice, extruded along the slice normal (docs/editor.md).

A pixel is inside the shape when its centre is: even-odd rule for a free-form polygon; within
the radius in world mm for a circle whose rim passes through the second point (measured with
the grid's full matrix, so sheared grids are exact: the pixel box comes from
:func:`~gpuseg.editor.brush.ball_half_widths`); between the corners for a rectangle.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInputError
from ..geometry import Extent, ImageGeometry
from ..segmentation import Segmentation
from .brush import ball_half_widths

__all__ = ["SCISSORS_SHAPES", "SCISSORS_OPERATIONS", "EXTRUSIONS", "shape_in_slice", "extrusion_range",
           "scissors_region"]

SCISSORS_SHAPES = ("freeform", "circle", "rectangle")
SCISSORS_OPERATIONS = ("erase_inside", "erase_outside", "fill_inside", "fill_outside")
EXTRUSIONS = ("unlimited", "positive", "negative", "symmetric", "slice")


def shape_in_slice(geometry: ImageGeometry, ijk: np.ndarray, shape: str, axis: int):
    """``(slice index, dense in-plane bool array, (row0, col0))`` of a 2D shape drawn in the slice
    of grid axis ``axis`` (0 k, 1 j, 2 i) through the first point (continuous ijk). In-plane
    rows/columns are the other two grid axes in (k, j, i) order.

    Raises
    ------
    InvalidInputError
        Bad axis or shape, too few points, or a slice outside the volume.
    """
    g = geometry
    if axis not in (0, 1, 2):
        raise InvalidInputError(f"slice axis must be 0 (k), 1 (j) or 2 (i), got {axis!r}")
    kji = ijk[:, ::-1]
    plane = int(np.rint(kji[0, axis]))
    if not 0 <= plane < g.shape[axis]:
        raise InvalidInputError(f"the shape's slice {plane} is outside the volume along axis {axis}")
    ra, ca = [a for a in range(3) if a != axis]
    nr, nc = g.shape[ra], g.shape[ca]
    uv = kji[:, [ra, ca]]
    if shape == "freeform":
        if len(uv) < 3:
            raise InvalidInputError(f"a free-form shape needs at least 3 points, got {len(uv)}")
        lo = np.clip(np.floor(uv.min(0)).astype(int), 0, [nr, nc])
        hi = np.clip(np.ceil(uv.max(0)).astype(int) + 1, 0, [nr, nc])
        R, C = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), indexing="ij")
        inside = np.zeros(R.shape, bool)
        for (y1, x1), (y2, x2) in zip(uv, np.roll(uv, -1, axis=0)):
            if y1 == y2:
                continue
            cross = ((y1 > R) != (y2 > R)) & (C < (x2 - x1) * (R - y1) / (y2 - y1) + x1)
            inside ^= cross
    elif shape == "rectangle":
        if len(uv) < 2:
            raise InvalidInputError("a rectangle needs two corner points")
        a, b = uv[0], uv[1]
        lo = np.clip(np.ceil(np.minimum(a, b)).astype(int), 0, [nr, nc])
        hi = np.clip(np.floor(np.maximum(a, b)).astype(int) + 1, 0, [nr, nc])
        inside = np.ones((max(0, hi[0] - lo[0]), max(0, hi[1] - lo[1])), bool)
    elif shape == "circle":
        if len(uv) < 2:
            raise InvalidInputError("a circle needs its centre and a point on its rim")
        m = g.ijk_to_world[:3, :3]
        cols = [2 - ra, 2 - ca]  # ijk columns of the in-plane axes

        def mm(du, dv):
            return du[..., None] * m[:, cols[0]] + dv[..., None] * m[:, cols[1]]

        rad2 = float((mm(np.asarray(uv[1, 0] - uv[0, 0]), np.asarray(uv[1, 1] - uv[0, 1])) ** 2).sum())
        half_ijk = ball_half_widths(m, math.sqrt(rad2), 2 - axis)  # the disc's pixel box, exact on any grid
        half = half_ijk[cols]
        lo = np.clip(np.floor(uv[0] - half - 1).astype(int), 0, [nr, nc])
        hi = np.clip(np.ceil(uv[0] + half + 1).astype(int) + 1, 0, [nr, nc])
        R, C = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), indexing="ij")
        inside = (mm(R - uv[0, 0], C - uv[0, 1]) ** 2).sum(-1) <= rad2
    else:
        raise InvalidInputError(f"unknown scissors shape {shape!r}; choose freeform, circle or rectangle")
    return plane, inside, (int(lo[0]), int(lo[1]))


def extrusion_range(geometry: ImageGeometry, axis: int, plane: int, mode: str, depth_mm: float) -> tuple[int, int]:
    """The half-open range of slices along ``axis`` a shape drawn in slice ``plane`` covers:
    ``unlimited``, ``positive`` / ``negative`` (``depth_mm`` towards higher / lower indices; 0:
    to the volume's end), ``symmetric`` (``depth_mm`` in total) or ``slice``."""
    n = geometry.shape[axis]
    sp = geometry.spacing_kji[axis]
    try:
        d = float(depth_mm)
    except (TypeError, ValueError):
        raise InvalidInputError(f"cut depth must be a non-negative number of mm, got {depth_mm!r}") from None
    if not math.isfinite(d) or d < 0:
        raise InvalidInputError(f"cut depth must be a non-negative number of mm, got {depth_mm!r}")
    steps = int(math.floor(d / sp + 1e-9))
    if mode == "unlimited":
        return 0, n
    if mode == "positive":
        return plane, n if d == 0 else min(n, plane + steps + 1)
    if mode == "negative":
        return 0 if d == 0 else max(0, plane - steps), plane + 1
    if mode == "symmetric":
        h = int(math.floor(d / 2 / sp + 1e-9))
        return max(0, plane - h), min(n, plane + h + 1)
    if mode == "slice":
        return plane, plane + 1
    raise InvalidInputError(f"unknown extrusion {mode!r}; choose unlimited, positive, negative or symmetric")


def scissors_region(seg: Segmentation, segment_id: str, ijk: np.ndarray, *, operation: str, shape: str,
                    axis: int, extrusion: str, depth_mm: float, all_visible: bool):
    """What a scissors operation touches: ``(extent, dense bool array, erase targets or None,
    erase)``, or None when it touches nothing. Inside operations cover the extruded shape;
    outside ones the rest of the grid (only where the affected segments have voxels, when
    erasing)."""
    if operation not in SCISSORS_OPERATIONS:
        raise InvalidInputError(f"unknown scissors operation {operation!r}; choose one of "
                                f"{', '.join(SCISSORS_OPERATIONS)}")
    plane, inside2d, (r0, c0) = shape_in_slice(seg.geometry, ijk, shape, axis)
    s0, s1 = extrusion_range(seg.geometry, axis, plane, extrusion, depth_mm)
    ra, ca = [a for a in range(3) if a != axis]
    lo, hi = [0, 0, 0], [0, 0, 0]
    lo[axis], hi[axis] = s0, s1
    lo[ra], hi[ra] = r0, r0 + inside2d.shape[0]
    lo[ca], hi[ca] = c0, c0 + inside2d.shape[1]
    inner = Extent(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
    erase = operation.startswith("erase")
    targets = [s.id for s in seg if s.visible] if (erase and all_visible) else None
    if operation.endswith("inside"):
        if inner.is_empty or not inside2d.any():
            return None
        return inner, np.broadcast_to(np.expand_dims(inside2d, axis), inner.shape).copy(), targets, erase
    if erase:  # only where the affected segments have voxels
        ext = Extent.empty()
        for t in (targets or [segment_id]):
            ext = ext.union(seg[t].mask.box_extent)
    else:
        ext = seg.geometry.extent
    if ext.is_empty:
        return None
    dense = np.ones(ext.shape, bool)
    cut = inner.intersect(ext)
    if not cut.is_empty:
        sl2 = [slice(cut.k0 - inner.k0, cut.k1 - inner.k0), slice(cut.j0 - inner.j0, cut.j1 - inner.j0),
               slice(cut.i0 - inner.i0, cut.i1 - inner.i0)]
        sub = np.broadcast_to(np.expand_dims(inside2d, axis), inner.shape)[tuple(sl2)]
        dense[cut.k0 - ext.k0:cut.k1 - ext.k0, cut.j0 - ext.j0:cut.j1 - ext.j0,
              cut.i0 - ext.i0:cut.i1 - ext.i0] &= ~sub
    return ext, dense, targets, erase
