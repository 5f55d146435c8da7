"""Draw tube (Slicer's SegmentEditorExtraEffects): a tube of a given radius along a curve
through points, rasterized exactly.

The curve (docs/editor.md, "Geometry: exact on any affine grid"):

* ``linear``: the polyline through the points, in order;
* ``cardinal_spline``: VTK's ``vtkParametricSpline`` with ``vtkCardinalSpline`` per coordinate,
  as Slicer's MarkupsToModel builds it: parameterized by cumulative chord length, first
  derivative 0 at both ends (VTK's default constraints, which is SciPy's ``CubicSpline`` with
  ``bc_type="clamped"``; tests/test_extra_effects.py compares it with VTK), sampled at
  ``NumberOfLineSegmentsBetweenControlPoints`` (15) * (points - 1) segments uniform in the
  parameter, and joined by straight segments between the samples (as Slicer's tube filter
  follows the sampled polyline).

A voxel is in the tube when its centre is within ``radius`` mm (world distance through the
grid's full ``ijk_to_world`` matrix) of the sampled polyline. Slicer instead rasterizes a
``vtkTubeFilter`` polygon mesh with a finite number of sides, so its voxels differ from these
by up to the facet error of that mesh (documented deviation: this is the exact tube of the
sampled centreline). One point gives a ball.

Host-side numpy: each segment's capsule tests only the voxels of its own box (the box of the
ball at either end), so the work is bounded by the tube's size, not the volume's; the bound
``Editor.stroke_limits.max_tests`` is checked before any work.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError
from ..geometry import Extent
from .brush import StrokeLimits, ball_half_widths

__all__ = ["INTERPOLATIONS", "SEGMENTS_BETWEEN_POINTS", "tube_centerline", "tube_region"]

#: Slicer's Interpolation choices implemented here (KOCHANEK_SPLINE and the polynomial fits are not)
INTERPOLATIONS = ("linear", "cardinal_spline")
#: Slicer's NumberOfLineSegmentsBetweenControlPoints default
SEGMENTS_BETWEEN_POINTS = 15


def tube_centerline(world: np.ndarray, interpolation: str = "cardinal_spline",
                    segments_between_points: int = SEGMENTS_BETWEEN_POINTS) -> np.ndarray:
    """The tube's centreline as a polyline ``(m, 3)`` in world mm (see the module docstring).

    Consecutive duplicate points are dropped first (they have no chord length)."""
    if interpolation not in INTERPOLATIONS:
        raise InvalidInputError(f"unknown tube interpolation {interpolation!r}; choose "
                                + " or ".join(INTERPOLATIONS))
    p = np.asarray(world, dtype=np.float64)
    if len(p) > 1:
        keep = np.r_[True, np.any(np.diff(p, axis=0) != 0, axis=1)]
        p = p[keep]
    if len(p) < 3 or interpolation == "linear":  # two points: VTK's spline is the straight line too
        return p
    from scipy.interpolate import CubicSpline

    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))]
    n = int(segments_between_points) * (len(p) - 1)
    u = np.arange(n + 1, dtype=np.float64) / n
    return CubicSpline(s, p, bc_type="clamped")(u * s[-1])


def tube_region(geometry, world: np.ndarray, radius_mm: float, interpolation: str = "cardinal_spline",
                limits: StrokeLimits | None = None) -> tuple[Extent, np.ndarray] | None:
    """The voxels whose centres are within ``radius_mm`` of the tube's centreline, as
    ``(extent, dense bool array over it)`` clipped to the grid; None when none is.

    Raises
    ------
    InvalidInputError
        A radius that is not positive and finite, an unknown interpolation, or work over
        ``limits.max_tests`` / ``limits.max_box_voxels``.
    """
    r = float(radius_mm)
    if not (np.isfinite(r) and r > 0):
        raise InvalidInputError(f"tube radius_mm must be a positive number, got {radius_mm!r}")
    limits = limits or StrokeLimits()
    line = tube_centerline(world, interpolation)
    m = np.asarray(geometry.ijk_to_world, dtype=np.float64)
    ijk = geometry.world_to_ijk_points(line)  # (m, 3) in i, j, k
    half = ball_half_widths(m, r)  # i, j, k
    shape_ijk = np.array(geometry.shape[::-1])
    # per segment (a single point: one degenerate segment) the voxel box of its capsule
    a_idx = np.arange(max(len(line) - 1, 1))
    b_idx = np.minimum(a_idx + 1, len(line) - 1)
    lo = np.floor(np.minimum(ijk[a_idx], ijk[b_idx]) - half).astype(np.int64) - 1
    hi = np.ceil(np.maximum(ijk[a_idx], ijk[b_idx]) + half).astype(np.int64) + 2
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, shape_ijk)
    ok = np.all(hi > lo, axis=1)
    if not ok.any():
        return None
    tests = float(np.prod((hi - lo)[ok].astype(np.float64), axis=1).sum())
    limits.check("tests", tests, limits.max_tests, "use fewer points or a smaller radius")
    glo, ghi = lo[ok].min(0), hi[ok].max(0)
    limits.check("box voxels", float(np.prod((ghi - glo).astype(np.float64))), limits.max_box_voxels,
                 "draw a shorter tube")
    ext = Extent(int(glo[2]), int(ghi[2]), int(glo[1]), int(ghi[1]), int(glo[0]), int(ghi[0]))
    dense = np.zeros(ext.shape, bool)
    r2 = r * r
    for s in np.flatnonzero(ok):
        (i0, j0, k0), (i1, j1, k1) = lo[s], hi[s]
        kk, jj, ii = np.meshgrid(np.arange(k0, k1, dtype=np.float64), np.arange(j0, j1, dtype=np.float64),
                                 np.arange(i0, i1, dtype=np.float64), indexing="ij")
        x = (m[0, 0] * ii + m[0, 1] * jj + m[0, 2] * kk + m[0, 3],
             m[1, 0] * ii + m[1, 1] * jj + m[1, 2] * kk + m[1, 3],
             m[2, 0] * ii + m[2, 1] * jj + m[2, 2] * kk + m[2, 3])
        a, b = line[a_idx[s]], line[b_idx[s]]
        d = b - a
        dd = float(d @ d)
        rel = [x[c] - a[c] for c in range(3)]
        if dd > 0:
            t = np.clip((rel[0] * d[0] + rel[1] * d[1] + rel[2] * d[2]) / dd, 0.0, 1.0)
            rel = [rel[c] - t * d[c] for c in range(3)]
        inside = rel[0] * rel[0] + rel[1] * rel[1] + rel[2] * rel[2] <= r2
        dense[k0 - ext.k0:k1 - ext.k0, j0 - ext.j0:j1 - ext.j0, i0 - ext.i0:i1 - ext.i0] |= inside
    if not dense.any():
        return None
    return ext, dense
