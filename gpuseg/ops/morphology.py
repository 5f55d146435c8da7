"""Margin and hollow (Slicer's Margin and Hollow effects) on packed masks.

Growing by ``r`` mm sets every voxel whose centre lies within ``r`` mm (Euclidean, in
physical units, so anisotropic spacing is respected) of a voxel centre of the mask. That is
a dilation by the ellipsoid of voxel offsets ``(di, dj, dk)`` with
``(di*si)**2 + (dj*sj)**2 + (dk*sk)**2 <= r**2`` (evaluated in float64 exactly as written),
and equals thresholding a Euclidean distance map at ``r``.

Shrinking by ``r`` mm keeps the voxels of the mask whose whole ``r``-ball (inside the grid) is
in the mask: Slicer's "invert, grow, invert" with the outside of the grid counting as part of
the segment, so a segment touching the volume border is not eaten from the border.

Work is limited to the mask's effective extent padded by the radius.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ..errors import InvalidInputError
from ..geometry import Extent
from ..kernels.morphology import OR_OFFSETS, ROW_DILATE
from ..mask import Mask
from .logic import invert, subtract

__all__ = ["margin", "hollow", "ball_row_runs", "ball_structure", "ellipsoid_row_runs", "dilate_erode_3d"]

MAX_RADIUS_VOXELS = 512


def _in_ball(di: int, dj: int, dk: int, s, r: float) -> bool:
    si, sj, sk = s
    return (di * si) ** 2 + (dj * sj) ** 2 + (dk * sk) ** 2 <= r * r


def ball_row_runs(spacing_ijk, radius_mm: float) -> dict[int, list[tuple[int, int]]]:
    """The ball of ``radius_mm`` as rows: ``{h: [(dk, dj), ...]}`` where row (dk, dj) holds
    the offsets ``|di| <= h``."""
    si, sj, sk = (float(v) for v in spacing_ijk)
    r = float(radius_mm)
    rk, rj = int(math.floor(r / sk)) + 1, int(math.floor(r / sj)) + 1
    runs: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for dk in range(-rk, rk + 1):
        for dj in range(-rj, rj + 1):
            if not _in_ball(0, dj, dk, (si, sj, sk), r):
                continue
            h = 0
            while _in_ball(h + 1, dj, dk, (si, sj, sk), r):
                h += 1
            runs[h].append((dk, dj))
    return dict(sorted(runs.items()))


def ball_structure(spacing_ijk, radius_mm: float) -> np.ndarray:
    """The same ball as a dense boolean (k, j, i) structuring element (for references)."""
    runs = ball_row_runs(spacing_ijk, radius_mm)
    rk = max(abs(dk) for v in runs.values() for dk, _ in v)
    rj = max(abs(dj) for v in runs.values() for _, dj in v)
    ri = max(runs)
    se = np.zeros((2 * rk + 1, 2 * rj + 1, 2 * ri + 1), bool)
    for h, rows in runs.items():
        for dk, dj in rows:
            se[rk + dk, rj + dj, ri - h:ri + h + 1] = True
    return se


def _row_dilate(b, dst: Mask, src: Mask, h: int) -> None:
    with dst.writing() as words:
        b.run(ROW_DILATE, (words, dst.box), src, h, dst.shape[2])


def _or_offsets(b, out: Mask, src: Mask, offsets: list[tuple[int, int]]) -> None:
    if out.nbytes == 0:
        return
    offs = b.asarray(np.asarray(offsets, dtype=np.int32).ravel(), what="ball offsets")
    with out.writing() as words:
        b.run(OR_OFFSETS, (words, out.box), src, offs, len(offsets))


def _dilate(src: Mask, runs: dict[int, list[tuple[int, int]]], out_extent: Extent) -> Mask:
    """``src`` dilated by the ball given as row runs, computed over ``out_extent`` only."""
    b, g = src.backend, src.geometry
    out = Mask.zeros(g, out_extent, backend=b)
    if out_extent.is_empty or src.nbytes == 0:
        return out
    # the dilated rows: the source rows, the output's words
    row_box = (src.box[0], src.box[1], out.box[2], src.box[3], src.box[4], out.box[5])
    rows = Mask(g, b, b.empty(row_box[3:], np.uint32, what="margin scratch"), row_box)
    tmp = Mask(g, b, b.empty(row_box[3:], np.uint32, what="margin scratch"), row_box) if max(runs) > 31 else None
    for h, offsets in runs.items():
        steps = [31] * (h // 31) + ([h % 31] if h % 31 or h == 0 else [])
        cur = src
        for n, step in enumerate(steps):
            dst = rows if (len(steps) - n) % 2 == 1 else tmp
            _row_dilate(b, dst, cur, step)  # type: ignore[arg-type]
            cur = dst  # type: ignore[assignment]
        _or_offsets(b, out, rows, offsets)
    return out


def _check(mask: Mask, mm, name: str) -> float:
    if not isinstance(mask, Mask):
        raise InvalidInputError(f"{name} needs a Mask, got {type(mask).__name__}")
    try:
        r = float(mm)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} size must be a number of mm, got {mm!r}") from exc
    if not math.isfinite(r):
        raise InvalidInputError(f"{name} size must be finite, got {mm!r}")
    vox = abs(r) / min(mask.geometry.spacing)
    if vox > MAX_RADIUS_VOXELS:
        raise InvalidInputError(f"{name} of {r:g} mm is {vox:.0f} voxels, more than the limit of "
                                f"{MAX_RADIUS_VOXELS} voxels")
    return r


def margin(mask: Mask, margin_mm: float) -> Mask:
    """Grow (``margin_mm > 0``) or shrink (``< 0``) a mask by a distance in mm (Slicer's Margin).

    Examples
    --------
    >>> import numpy as np, gpuseg
    >>> g = gpuseg.ImageGeometry((9, 9, 9), spacing=(1, 1, 2))
    >>> a = np.zeros(g.shape, bool); a[4, 4, 4] = True
    >>> gpuseg.margin(gpuseg.Mask.from_numpy(a, g, backend="cpu"), 2.0).count()
    15
    """
    r = _check(mask, margin_mm, "margin")
    g = mask.geometry
    ext = mask.extent()
    if ext.is_empty or r == 0:
        return mask.copy() if r == 0 else Mask.empty(g, backend=mask.backend)
    runs = ball_row_runs(g.spacing, abs(r))
    rk = max(abs(dk) for v in runs.values() for dk, _ in v)
    rj = max(abs(dj) for v in runs.values() for _, dj in v)
    pad = (rk, rj, max(runs))
    if r > 0:
        return _dilate(mask, runs, ext.pad(pad).clip(g.shape))
    # shrink: remove every voxel within r of the background near the mask (outside the grid
    # is not background)
    region = ext.pad(pad).clip(g.shape)
    background = invert(mask, region)
    eroded_away = _dilate(background, runs, ext)
    return subtract(mask, eroded_away).shrink_()


HOLLOW_MODES = ("inside", "medial", "outside")


def hollow(mask: Mask, thickness_mm: float, mode: str = "inside") -> Mask:
    """A shell of ``thickness_mm`` (Slicer's Hollow). ``mode`` says where the current boundary
    ends up: ``inside`` (it is the outer surface of the shell), ``medial`` (the middle) or
    ``outside`` (the inner surface)."""
    t = _check(mask, thickness_mm, "hollow")
    if t <= 0:
        raise InvalidInputError(f"shell thickness must be positive, got {thickness_mm!r}")
    if mode not in HOLLOW_MODES:
        raise InvalidInputError(f"unknown hollow mode {mode!r}; choose one of {', '.join(HOLLOW_MODES)}")
    if mode == "inside":
        return subtract(mask, margin(mask, -t))
    if mode == "outside":
        return subtract(margin(mask, t), mask)
    return subtract(margin(mask, t / 2), margin(mask, -t / 2))


def ellipsoid_row_runs(kernel_size_ijk) -> dict[int, list[tuple[int, int]]]:
    """The kernel of VTK's vtkImageDilateErode3D of ``KernelSize = (ki, kj, kk)`` voxels as rows
    (as :func:`ball_row_runs`): the offsets ``|d| <= k // 2`` per axis with
    ``(di/(ki/2))^2 + (dj/(kj/2))^2 + (dk/(kk/2))^2 <= 1`` (vtkImageEllipsoidSource's test, in its
    order of operations)."""
    ks = [int(v) for v in kernel_size_ijk]
    if any(k < 1 for k in ks):
        raise InvalidInputError(f"kernel sizes must be at least 1 voxel, got {tuple(kernel_size_ijk)}")
    ri, rj, rk = (k * 0.5 for k in ks)
    runs: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for dk in range(-(ks[2] // 2), ks[2] // 2 + 1):
        sk = (dk / rk) ** 2
        for dj in range(-(ks[1] // 2), ks[1] // 2 + 1):
            sj = (dj / rj) ** 2
            h = -1
            for di in range(0, ks[0] // 2 + 1):
                si = (di / ri) ** 2
                if si + sj + sk <= 1.0:
                    h = di
            if h >= 0:
                runs[h].append((dk, dj))
    return dict(sorted(runs.items()))


def dilate_erode_3d(mask: Mask, kernel_size_ijk, operation: str, bounds: Extent | None = None) -> Mask:
    """VTK's vtkImageDilateErode3D on a binary mask: ``dilate`` (the mask's value dilates) or
    ``erode`` (it erodes), with the ellipsoid of :func:`ellipsoid_row_runs`. As in VTK, only
    voxels inside the image (or ``bounds``, a clipped image) are neighbours: the outside neither
    erodes nor is filled."""
    if not isinstance(mask, Mask):
        raise InvalidInputError(f"dilate/erode needs a Mask, got {type(mask).__name__}")
    if operation not in ("dilate", "erode"):
        raise InvalidInputError(f"operation must be 'dilate' or 'erode', got {operation!r}")
    runs = ellipsoid_row_runs(kernel_size_ijk)
    g = mask.geometry
    lim = g.extent if bounds is None else bounds.clip(g.shape)
    ext = mask.extent().intersect(lim)
    if ext.is_empty:
        return Mask.empty(g, backend=mask.backend)
    if max(runs) == 0 and all(dk == 0 and dj == 0 for rows in runs.values() for dk, dj in rows):
        return mask.copy()
    ki, kj, kk = (int(v) for v in kernel_size_ijk)
    region = ext.pad((kk // 2, kj // 2, ki // 2)).intersect(lim)
    if operation == "dilate":
        return _dilate(mask, runs, region)
    background = invert(mask, region)
    return subtract(mask, _dilate(background, runs, ext)).shrink_()
