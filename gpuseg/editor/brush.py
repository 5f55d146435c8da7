"""Brush rasterization: a stroke of stamps to a dense bool block (docs/editor.md).

A voxel is inside the brush when its centre is within ``diameter / 2`` millimetres of a stamp
centre, measured in world space through the grid's full ``ijk_to_world`` matrix (float64), so
anisotropic, oblique, mirrored and sheared grids are exact. A ``disc`` measures only within the
slice of one grid axis through the stamp. Stamps are interpolated along the stroke at most a
quarter diameter apart.

Which voxels are tested is bounded by the voxel bounding box of the world ball (or disc),
computed from the inverse of the matrix (:func:`ball_half_widths`): a box of ``r / spacing``
per axis misses voxels on sheared grids. The work of a stroke is bounded before any is done
(:class:`StrokeLimits`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..errors import InvalidInputError
from ..geometry import Extent, ImageGeometry

__all__ = ["StrokeLimits", "MAX_DIAMETER_MM", "BRUSH_SHAPES", "ball_half_widths", "stamp_centres",
           "rasterize_stroke"]

MAX_DIAMETER_MM = 1000.0
BRUSH_SHAPES = ("sphere", "disc", "pixel")


@dataclass
class StrokeLimits:
    """Bounds on the work of one brush stroke, checked before any work is done.

    The defaults are far above what an interactive stroke needs (a 300 mm stroke of a 1 mm
    brush has 1200 stamps) and far below what takes minutes.

    Attributes
    ----------
    max_points : int
        Points given for one stroke.
    max_stamps : int
        Stamps interpolated along the stroke (at most a quarter diameter apart).
    max_box_voxels : int
        Voxels in the stroke's bounding box (clipped to the grid): the dense block's size.
    max_tests : int
        Voxel-centre distance tests over all stamps (each stamp tests its own clipped box).
    """

    max_points: int = 100_000
    max_stamps: int = 200_000
    max_box_voxels: int = 1 << 28
    max_tests: int = 4_000_000_000

    def check(self, what: str, value: float, limit: int, hint: str) -> None:
        """Raise :class:`InvalidInputError` naming the bound ``what`` when ``value`` is over it."""
        if not (value <= limit):  # also catches NaN and inf
            shown = f"{value:.3g}" if math.isfinite(value) else "an unbounded number of"
            raise InvalidInputError(f"the brush stroke needs {shown} {what}, more than the limit of {limit} "
                                    f"(Editor.stroke_limits.max_{what.replace(' ', '_')}); {hint}")


def ball_half_widths(matrix: np.ndarray, radius: float, skip: int = -1) -> np.ndarray:
    """Half widths ``(i, j, k)``, in voxels, of the box holding every index offset whose world
    length is at most ``radius``.

    The offsets ``d`` with ``|M d| <= r`` (``M`` the 3x3 part of ``ijk_to_world``) form an
    ellipsoid; its half width along index axis ``a`` is ``r * sqrt(((M^T M)^-1)_aa)``, i.e. ``r``
    times the length of row ``a`` of ``M^-1``. With ``skip`` (a disc in the plane of index axis
    ``skip``, ijk order) only the other two columns of ``M`` count and the half width along
    ``skip`` is 0.

    Parameters
    ----------
    matrix : numpy.ndarray
        The 3x3 (or 4x4) ijk-to-world matrix.
    radius : float
        World radius in mm.
    skip : int
        -1 for a ball, else the ijk axis (0 i, 1 j, 2 k) normal to the disc.

    Returns
    -------
    numpy.ndarray
        float64 half widths along i, j, k.
    """
    m = np.asarray(matrix, dtype=np.float64)[:3, :3]
    cols = [a for a in range(3) if a != skip]
    a = m[:, cols]
    inv = np.linalg.inv(a.T @ a)
    half = np.zeros(3)
    half[cols] = float(radius) * np.sqrt(np.diag(inv))
    return half


def stamp_centres(world: np.ndarray, r: float, limits: StrokeLimits | None) -> np.ndarray:
    """World centres of the stamps of a stroke through ``world`` points: consecutive centres at
    most ``r / 2`` mm apart. The count is checked against ``limits`` before they are made."""
    # one norm per segment, as np.linalg.norm of the difference (the stamps are bit for bit those
    # of earlier versions)
    with np.errstate(over="ignore", invalid="ignore"):  # far points: an inf count, refused below
        q = [float(np.ceil(np.linalg.norm(b - a) / (r / 2.0))) for a, b in zip(world[:-1], world[1:])]
    total = float(sum(q)) + 1.0
    if limits is not None:
        limits.check("stamps", total, limits.max_stamps, "use a larger diameter or a shorter stroke")
    elif not math.isfinite(total):
        raise InvalidInputError("the brush stroke's points are too far apart to interpolate")
    n = [int(v) for v in q]
    parts = [world[:1]]
    for a, b, cnt in zip(world[:-1], world[1:], n):
        if cnt:
            t = np.arange(1, cnt + 1, dtype=np.float64) / cnt
            parts.append(a + (b - a) * t[:, None])
    return np.concatenate(parts)


@njit(cache=True, nogil=True)
def _stamp_balls(dense, k0, j0, i0, cijk, m, r2, skip, lo, hi, half):
    """Set every voxel of ``dense`` (origin k0, j0, i0) whose centre is within sqrt(r2) mm of a
    stamp centre (continuous ijk). The difference of a voxel centre and a stamp centre is
    ((0 + di*m[:, 0]) + dj*m[:, 1]) + dk*m[:, 2] in float64, without the slice normal's axis
    ``skip`` for discs (then only the voxels of the stamp's slice count)."""
    for s in range(cijk.shape[0]):
        c = cijk[s]
        b0 = np.empty(3, np.int64)
        b1 = np.empty(3, np.int64)
        for a in range(3):
            b0[a] = max(np.int64(np.floor(c[a] - half[a] - 1)), lo[a])
            b1[a] = min(np.int64(np.ceil(c[a] + half[a] + 1)) + 1, hi[a])
        if skip >= 0:
            plane = np.int64(np.rint(c[skip]))
            if plane < b0[skip] or plane >= b1[skip]:
                continue
            b0[skip] = plane
            b1[skip] = plane + 1
        for k in range(b0[2], b1[2]):
            for j in range(b0[1], b1[1]):
                for i in range(b0[0], b1[0]):
                    d2 = 0.0
                    for x in range(3):
                        v = 0.0
                        if skip != 0:
                            v = v + (i - c[0]) * m[x, 0]
                        if skip != 1:
                            v = v + (j - c[1]) * m[x, 1]
                        if skip != 2:
                            v = v + (k - c[2]) * m[x, 2]
                        d2 = d2 + v * v
                    if d2 <= r2:
                        dense[k - k0, j - j0, i - i0] = True


def _stamp_tests(cijk: np.ndarray, half: np.ndarray, lo: np.ndarray, hi: np.ndarray, skip: int) -> float:
    """The number of voxel tests :func:`_stamp_balls` makes (each stamp's clipped box)."""
    b0 = np.maximum(np.floor(cijk - half - 1), lo)
    b1 = np.minimum(np.ceil(cijk + half + 1) + 1, hi)
    size = np.clip(b1 - b0, 0, None)
    if skip >= 0:
        size[:, skip] = np.minimum(size[:, skip], 1)
    return float(np.prod(size, axis=1).sum())


def rasterize_stroke(geometry: ImageGeometry, ijk: np.ndarray, diameter_mm: float, shape: str = "sphere",
                     axis: int = 0, limits: StrokeLimits | None = None) -> tuple[Extent, np.ndarray] | None:
    """The voxels a brush stroke covers, as ``(extent, dense bool array over it)``.

    Parameters
    ----------
    geometry : ImageGeometry
        The grid.
    ijk : numpy.ndarray
        ``(N, 3)`` stroke points in continuous (i, j, k) indices, finite.
    diameter_mm : float
        Brush diameter in world mm (ignored for ``pixel``).
    shape : str
        ``sphere``, ``disc`` (in the slice of grid axis ``axis``, 0 k, 1 j, 2 i, through each
        stamp) or ``pixel`` (the nearest voxel of each point).
    axis : int
        The disc's slice axis.
    limits : StrokeLimits or None
        Work bounds (None: unbounded, for replaying a stroke that passed them).

    Returns
    -------
    tuple or None
        None when the stroke covers no voxel of the grid.

    Raises
    ------
    InvalidInputError
        Bad shape, diameter or axis, or a stroke over one of ``limits`` (checked before work).
    """
    if shape not in BRUSH_SHAPES:
        raise InvalidInputError(f"unknown brush shape {shape!r}; choose sphere, disc or pixel")
    if shape != "pixel":
        try:
            d = float(diameter_mm)
        except (TypeError, ValueError):
            raise InvalidInputError(f"brush diameter must be a positive number of mm, got {diameter_mm!r}") from None
        if not math.isfinite(d) or d <= 0:
            raise InvalidInputError(f"brush diameter must be a positive number of mm, got {diameter_mm!r}")
        if d > MAX_DIAMETER_MM:
            raise InvalidInputError(f"brush diameter {d:g} mm is larger than {MAX_DIAMETER_MM:g} mm")
    if axis not in (0, 1, 2):
        raise InvalidInputError(f"disc axis must be 0 (axial, k), 1 (j) or 2 (i), got {axis!r}")
    if limits is not None:
        limits.check("points", float(ijk.shape[0]), limits.max_points, "split the stroke")
    g = geometry
    nk, nj, ni = g.shape
    if shape == "pixel":
        idx = np.rint(ijk).astype(np.int64)
        keep = (idx >= 0).all(1) & (idx[:, 0] < ni) & (idx[:, 1] < nj) & (idx[:, 2] < nk)
        idx = idx[keep]
        if idx.size == 0:
            return None
        lo = idx.min(0)
        hi = idx.max(0) + 1
        ext = Extent(int(lo[2]), int(hi[2]), int(lo[1]), int(hi[1]), int(lo[0]), int(hi[0]))
        if limits is not None:
            limits.check("box voxels", float(np.prod(ext.shape, dtype=np.float64)), limits.max_box_voxels,
                         "split the stroke")
        dense = np.zeros(ext.shape, bool)
        dense[idx[:, 2] - ext.k0, idx[:, 1] - ext.j0, idx[:, 0] - ext.i0] = True
        return ext, dense
    r = d / 2.0
    with np.errstate(over="ignore", invalid="ignore"):
        world = g.ijk_to_world_points(ijk)
    centres = stamp_centres(world, r, limits)
    cijk = g.world_to_ijk_points(centres)
    skip = 2 - axis if shape == "disc" else -1
    m = np.ascontiguousarray(g.ijk_to_world[:3, :3])
    half = ball_half_widths(m, r, skip)  # voxels per axis (i, j, k): a box that holds the ball
    lo = np.floor(cijk.min(0) - half - 1).astype(np.int64)
    hi = np.ceil(cijk.max(0) + half + 1).astype(np.int64) + 1
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [ni, nj, nk])
    if np.any(hi <= lo):
        return None
    if limits is not None:
        limits.check("box voxels", float(np.prod((hi - lo).astype(np.float64))), limits.max_box_voxels,
                     "split the stroke or use a smaller diameter")
        limits.check("tests", _stamp_tests(cijk, half, lo, hi, skip), limits.max_tests,
                     "use a smaller diameter or a shorter stroke")
    ext = Extent(int(lo[2]), int(hi[2]), int(lo[1]), int(hi[1]), int(lo[0]), int(hi[0]))
    dense = np.zeros(ext.shape, bool)
    _stamp_balls(dense, ext.k0, ext.j0, ext.i0, cijk, m, r * r, skip, lo, hi, half)
    if not dense.any():
        return None
    return ext, dense
