"""Fast marching (Slicer's SegmentEditorExtraEffects): grow a segment along the arrival times
of a front started at its voxels.

Arrival times ``T`` solve the eikonal equation ``|grad T| = 1 / F`` on the grid (spacing in
mm, axis-aligned differences) with the first-order upwind scheme of ITK's
``FastMarchingImageFilter`` (Sethian's method): the seed voxels are at ``T = 0``; the trial
voxel of smallest ``T`` becomes alive (ties: first pushed first); each face neighbour that
is not alive is updated from the smallest alive neighbour per axis, the axes in increasing
order of that value, each added while the quadratic's root stays above it.
tests/test_fast_marching.py compares the times with SimpleITK's ``FastMarching``.

The speed ``F`` (:func:`intensity_speed`) is gpuseg's own definition, a documented deviation
from Slicer's ``vtkPichonFastMarching`` (whose speed comes from an intensity model of its own):
``F = max(exp(-(I - mu)^2 / (2 sigma^2)), SPEED_FLOOR)`` with ``mu`` and ``sigma`` the mean and
standard deviation of the source intensities over the seed voxels (``sigma`` at least 1), so
the front moves fast through intensities like the seed's and slowly elsewhere (the floor keeps
the quadratic well conditioned: arrival times stay below about 1e4 mm per mm).

Host-side numba over the whole grid (a serial priority queue, no kernel): the march stops
after ``max_voxels`` voxels are alive, so its work follows the target volume.
"""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit

from ..errors import InvalidInputError

__all__ = ["SPEED_FLOOR", "intensity_speed", "fast_march"]

#: the smallest speed of :func:`intensity_speed`
SPEED_FLOOR = 1e-4

_INF = np.inf


def intensity_speed(image: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The speed image (float64) of the module docstring; ``seeds`` must hold a voxel."""
    a = np.asarray(image, np.float64)
    v = a[seeds]
    if v.size == 0:
        raise InvalidInputError("fast marching needs a non-empty seed segment")
    mu = float(v.mean())
    sigma = max(float(v.std()), 1.0)
    return np.maximum(np.exp(-((a - mu) ** 2) / (2.0 * sigma * sigma)), SPEED_FLOOR)


@njit(cache=True)
def _solve(times, alive, speed, k, j, i, h2inv):
    nk, nj, ni = times.shape
    vals = np.empty(3)
    ws = np.empty(3)
    n = 0
    for axis in range(3):
        best = _INF
        for step in (-1, 1):
            kk, jj, ii = k, j, i
            if axis == 0:
                kk += step
            elif axis == 1:
                jj += step
            else:
                ii += step
            if 0 <= kk < nk and 0 <= jj < nj and 0 <= ii < ni and alive[kk, jj, ii] == 1:
                if times[kk, jj, ii] < best:
                    best = times[kk, jj, ii]
        if best < _INF:
            # insertion sort by value (stable: axis order among equal values)
            p = n
            while p > 0 and vals[p - 1] > best:
                vals[p] = vals[p - 1]
                ws[p] = ws[p - 1]
                p -= 1
            vals[p] = best
            ws[p] = h2inv[axis]
            n += 1
    f = speed[k, j, i]
    rhs = 1.0 / (f * f)
    aa = 0.0
    bb = 0.0
    cc = -rhs
    sol = _INF
    for t in range(n):
        if sol <= vals[t]:
            break
        aa += ws[t]
        bb += ws[t] * vals[t]
        cc += ws[t] * vals[t] * vals[t]
        disc = bb * bb - aa * cc
        if disc < 0.0:
            break
        sol = (bb + np.sqrt(disc)) / aa
    return sol


@njit(cache=True)
def _march(speed, seeds, frozen, h2inv, max_voxels, times, order):
    nk, nj, ni = times.shape
    alive = np.zeros(times.shape, np.uint8)  # 0 far, 1 alive, 2 frozen
    heap = [(0.0, np.int64(0), np.int64(0))]
    heap.pop()
    count = np.int64(0)
    for k in range(nk):
        for j in range(nj):
            for i in range(ni):
                if frozen[k, j, i]:
                    alive[k, j, i] = 2
                elif seeds[k, j, i]:
                    times[k, j, i] = 0.0
                    heapq.heappush(heap, (0.0, count, np.int64((k * nj + j) * ni + i)))
                    count += 1
    dk = (-1, 1, 0, 0, 0, 0)
    dj = (0, 0, -1, 1, 0, 0)
    di = (0, 0, 0, 0, -1, 1)
    n_alive = 0
    while len(heap) > 0 and n_alive < max_voxels:
        t, _, idx = heapq.heappop(heap)
        i = idx % ni
        j = (idx // ni) % nj
        k = idx // (ni * nj)
        if alive[k, j, i] != 0 or t > times[k, j, i]:
            continue  # already alive, or a stale entry
        alive[k, j, i] = 1
        order[n_alive] = idx
        n_alive += 1
        for n in range(6):
            kk, jj, ii = k + dk[n], j + dj[n], i + di[n]
            if 0 <= kk < nk and 0 <= jj < nj and 0 <= ii < ni and alive[kk, jj, ii] == 0:
                if speed[kk, jj, ii] > 0.0:
                    s = _solve(times, alive, speed, kk, jj, ii, h2inv)
                    if s < times[kk, jj, ii]:
                        times[kk, jj, ii] = s
                        heapq.heappush(heap, (s, count, np.int64((kk * nj + jj) * ni + ii)))
                        count += 1
    return n_alive


def fast_march(speed: np.ndarray, seeds: np.ndarray, spacing_kji, max_voxels: int,
               frozen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Arrival times from ``seeds`` (see the module docstring) until ``max_voxels`` voxels are
    alive (seeds included).

    Parameters
    ----------
    speed : numpy.ndarray
        (nk, nj, ni) speed, >= 0 (0: never reached).
    seeds : numpy.ndarray
        bool, the voxels at time 0.
    spacing_kji : sequence of float
    max_voxels : int
    frozen : numpy.ndarray, optional
        bool, voxels the front may not enter (masking).

    Returns
    -------
    tuple
        ``(times, order)``: float64 times (inf where not reached) and the flat indices of the
        alive voxels in arrival order.
    """
    f = np.ascontiguousarray(speed, np.float64)
    s = np.ascontiguousarray(seeds, bool)
    if f.ndim != 3 or f.shape != s.shape or (frozen is not None and np.shape(frozen) != f.shape):
        raise InvalidInputError("speed, seeds and frozen must be 3D arrays of one shape")
    if not np.all(np.isfinite(f)) or (f < 0).any():
        raise InvalidInputError("the speed must be finite and >= 0")
    h = np.asarray(spacing_kji, np.float64)
    fz = np.zeros(f.shape, bool) if frozen is None else np.ascontiguousarray(frozen, bool)
    times = np.full(f.shape, np.inf)
    order = np.empty(max(int(max_voxels), 0), np.int64)
    n = _march(f, s, fz, 1.0 / (h * h), int(max_voxels), times, order)
    return times, order[:n]
