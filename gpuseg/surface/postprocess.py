"""Mesh post-processing for closed surfaces: windowed-sinc smoothing, decimation, normals.

These follow what 3D Slicer does after contouring a labelmap (reference §1.3):

* :func:`windowed_sinc` is Taubin, Zhang and Golub's windowed-sinc low-pass filter ("Optimal
  surface smoothing as filter design", IBM RC-20404, 1996) as ``vtkWindowedSincPolyDataFilter``
  applies it with Slicer's settings (non-manifold smoothing on, coordinates normalized to the
  bounding box, no boundary or feature-edge smoothing): a Chebyshev expansion of the windowed
  ideal low-pass filter in the umbrella Laplacian, one term per iteration, with the pass band
  widened by the Newton search for the offset that makes the filter 1 at the pass band.
  Vertices on an open boundary do not move. The window is VTK's default (Nuttall).
* :func:`slicer_smoothing_parameters` is Slicer's mapping from its smoothing factor.
* :func:`decimate` uses quadric decimation (``fast_simplification``) where Slicer uses
  ``vtkDecimatePro``: a different algorithm, so decimated meshes differ from Slicer's.
* :func:`vertex_normals` is ``vtkPolyDataNormals`` with splitting off: each vertex gets the
  normalized sum of the unit normals of its triangles.

All run on the host (the mesh is much smaller than the volume) and are deterministic.
"""

from __future__ import annotations

import math

import contextlib

import numba
import numpy as np
from numba import njit, prange

from ..errors import InvalidInputError

WINDOWS = ("nuttall", "blackman", "hanning", "hamming")


def slicer_smoothing_parameters(factor: float) -> tuple[float, int]:
    """Slicer's pass band ``10^(-4 s)`` and iteration count ``int(20 + 40 s)`` for factor ``s``."""
    try:
        s = float(factor)
    except (TypeError, ValueError):
        raise InvalidInputError(f"smoothing factor must be a number, got {factor!r}") from None
    if not 0.0 <= s <= 1.0:
        raise InvalidInputError(f"smoothing factor must be in [0, 1] here, got {factor!r}")
    return 10.0 ** (-4.0 * s), int(20 + 40 * s)


def _window(name: str, n: int) -> np.ndarray:
    """Half windows w[0..n], 1 at 0, as VTK's filter defines them."""
    x = np.arange(n + 1) * math.pi / (n + 1)
    if name == "hamming":
        return 0.54 + 0.46 * np.cos(x)
    if name == "hanning":
        return 0.5 + 0.5 * np.cos(x)
    if name == "blackman":
        return 0.42 + 0.5 * np.cos(x) + 0.08 * np.cos(2 * x)
    if name == "nuttall":
        return 0.355768 + 0.487396 * np.cos(x) + 0.144232 * np.cos(2 * x) + 0.012604 * np.cos(3 * x)
    raise InvalidInputError(f"unknown window {name!r}; use one of {', '.join(WINDOWS)}")


def filter_coefficients(passband: float, iterations: int, window: str = "nuttall") -> np.ndarray:
    """Chebyshev coefficients c[0..N] of the windowed-sinc filter, with the pass-band offset
    found by Newton's method so that the filter is 1 at the pass band (in VTK's order of
    operations, so that the search ends where VTK's does). Raises :class:`InvalidInputError`
    where the search does not converge (few iterations with a wide pass band; VTK then warns
    and smooths unpredictably). Every Slicer smoothing factor converges."""
    n = int(iterations)
    k_pb = float(passband)
    theta = math.acos(1.0 - 0.5 * k_pb)
    w = _window(window, n)
    sigma = 0.0
    c = np.zeros(n + 1)
    cp = np.zeros(n + 1)
    f = 0.0
    for _ in range(500):
        c[0] = w[0] * (theta + sigma) / math.pi
        for i in range(1, n + 1):
            c[i] = 2.0 * w[i] * math.sin(i * (theta + sigma)) / (i * math.pi)
        cp[:] = 0.0
        if n > 1:
            cp[n - 2] = 2.0 * (n - 1) * c[n - 1]
        for m in range(n - 3, -1, -1):
            cp[m] = cp[m + 2] + 2.0 * (m + 1) * c[m + 1]
        f = c[0]
        fp = cp[0]
        for i in range(1, n + 1):
            t = (1.0 - 0.5 * k_pb) if i == 1 else math.cos(i * math.acos(1.0 - 0.5 * k_pb))
            f += c[i] * t
            fp += cp[i] * t
        if n <= 1 or abs(f - 1.0) < 1e-3:
            break
        sigma -= (f - 1.0) / fp
    if n > 1 and not abs(f - 1.0) < 1e-3:
        raise InvalidInputError(f"windowed-sinc smoothing with {n} iterations and pass band {k_pb:g} has no stable "
                                "filter (the pass-band search does not converge); use more iterations")
    return c


@njit(cache=True, nogil=True)
def _edge_lists(faces, n):
    """Every triangle edge entered in the lists of both its vertices (counting sort by vertex)."""
    deg = np.zeros(n + 1, np.int64)
    for t in range(faces.shape[0]):
        for m in range(3):
            deg[faces[t, m] + 1] += 2
    start = np.cumsum(deg)
    fill = start[:-1].copy()
    lst = np.empty(start[-1], np.int64)
    for t in range(faces.shape[0]):
        for m in range(3):
            a = faces[t, m]
            b = faces[t, (m + 1) % 3]
            lst[fill[a]] = b
            fill[a] += 1
            lst[fill[b]] = a
            fill[b] += 1
    return start, lst


@njit(cache=True, nogil=True, parallel=True)
def _sort_rows(start, lst, uniq, movable):
    """Sort each vertex's list in place (insertion sort: about 12 entries), count its distinct
    neighbours; a neighbour listed once shares an edge of only one triangle with the vertex:
    an open boundary, and the vertex may not move."""
    for v in prange(start.shape[0] - 1):
        lo, hi = start[v], start[v + 1]
        for x in range(lo + 1, hi):
            y = lst[x]
            z = x - 1
            while z >= lo and lst[z] > y:
                lst[z + 1] = lst[z]
                z -= 1
            lst[z + 1] = y
        k = lo
        u = 0
        while k < hi:
            e = k
            while e < hi and lst[e] == lst[k]:
                e += 1
            if e - k == 1:
                movable[v] = False
            u += 1
            k = e
        uniq[v] = u


@njit(cache=True, nogil=True, parallel=True)
def _unique_rows(start, lst, offsets, out, wts):
    """Each vertex's distinct neighbours, weighted by how many triangles hold the edge to each,
    normalized so that each vertex's weights sum to 1."""
    for v in prange(start.shape[0] - 1):
        w = offsets[v]
        k = start[v]
        total = start[v + 1] - start[v]
        while k < start[v + 1]:
            e = k
            while e < start[v + 1] and lst[e] == lst[k]:
                e += 1
            out[w] = lst[k]
            wts[w] = (e - k) / total
            w += 1
            k = e


# Below SERIAL_BELOW_VERTICES the parallel kernels run on one thread: waking numba's thread pool
# for each of the ~20 smoothing passes costs more than the work (reported: 0.33 s in parallel
# against 0.01 s serially for 396 vertices on 2 threads). Measured on the 2-core Xeon (20 passes,
# icospheres): serial is never slower up to 10k vertices (10242: 0.0059 s serial, 0.0097 s
# parallel under load), and the two are equal at 41k; results are bit-identical
# (tests/test_first_use.py). The same compiled kernels are used with fewer threads: a second
# njit of the same functions would share their numba cache entry, and a big mesh then ran the
# serial code (bone with Slicer's default smoothing took 1.5 s instead of 0.95 s).
SERIAL_BELOW_VERTICES = 20_000


@contextlib.contextmanager
def _threads_for(n_vertices: int):
    """One numba thread for small meshes, all of them otherwise."""
    if n_vertices >= SERIAL_BELOW_VERTICES or numba.get_num_threads() == 1:
        yield
        return
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def _neighbours(faces: np.ndarray, n: int):
    """CSR (offsets, distinct neighbour ids, weights) and a mask of the vertices that may move
    (not on an open boundary). A neighbour's weight is the number of triangles that hold the
    edge (as VTK's filter counts with non-manifold smoothing on; on a closed manifold every
    neighbour weighs the same), normalized so that each vertex's weights sum to 1."""
    start, lst = _edge_lists(np.ascontiguousarray(faces, dtype=np.int64), n)
    uniq = np.empty(n, np.int64)
    movable = np.ones(n, np.bool_)
    with _threads_for(n):
        _sort_rows(start, lst, uniq, movable)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(uniq, out=offsets[1:])
    out = np.empty(offsets[-1], np.int64)
    weights = np.empty(offsets[-1], np.float64)
    with _threads_for(n):
        _unique_rows(start, lst, offsets, out, weights)
    return offsets, out, weights, movable


@njit(cache=True, nogil=True, parallel=True)
def _first_step(x0, offsets, nbr, wts, c0, c1, x1, x3):
    """x1 = x0 - L(x0) / 2 and x3 = c0 x0 + c1 x1, with L(x)[v] = mean over neighbours of x[v] - x[y]."""
    for v in prange(x0.shape[0]):
        lo, hi = offsets[v], offsets[v + 1]
        for a in range(3):
            d = 0.0
            for e in range(lo, hi):
                d += wts[e] * (x0[v, a] - x0[nbr[e], a])
            x1[v, a] = x0[v, a] - 0.5 * d
            x3[v, a] = c0 * x0[v, a] + c1 * x1[v, a]


@njit(cache=True, nogil=True, parallel=True)
def _next_step(x0, x1, offsets, nbr, wts, cj, x2, x3):
    """x2 = 2 x1 - x0 - L(x1) (Taubin's recurrence) and x3 += cj x2."""
    for v in prange(x0.shape[0]):
        lo, hi = offsets[v], offsets[v + 1]
        d0 = 0.0
        d1 = 0.0
        d2 = 0.0
        for e in range(lo, hi):
            y = nbr[e]
            q = wts[e]
            d0 += q * (x1[v, 0] - x1[y, 0])
            d1 += q * (x1[v, 1] - x1[y, 1])
            d2 += q * (x1[v, 2] - x1[y, 2])
        x2[v, 0] = x1[v, 0] - x0[v, 0] + x1[v, 0] - d0
        x2[v, 1] = x1[v, 1] - x0[v, 1] + x1[v, 1] - d1
        x2[v, 2] = x1[v, 2] - x0[v, 2] + x1[v, 2] - d2
        x3[v, 0] += cj * x2[v, 0]
        x3[v, 1] += cj * x2[v, 1]
        x3[v, 2] += cj * x2[v, 2]


def windowed_sinc(vertices: np.ndarray, faces: np.ndarray, *, passband: float, iterations: int,
                  normalize_coordinates: bool = True, window: str = "nuttall") -> np.ndarray:
    """Smoothed vertex positions (float64), see the module doc. The faces do not change."""
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise InvalidInputError(f"vertices must be (n, 3), got {v.shape}")
    if not 0.0 <= float(passband) <= 2.0:
        raise InvalidInputError(f"pass band must be in [0, 2], got {passband!r}")
    n_it = int(iterations)
    if faces.size == 0 or v.shape[0] == 0 or n_it <= 0:
        return v.copy()
    n = v.shape[0]
    offsets, nbr, wts, movable = _neighbours(faces, n)
    movable &= offsets[1:] > offsets[:-1]
    if normalize_coordinates:
        lo, hi = v.min(0), v.max(0)
        centre = (lo + hi) / 2.0
        length = float(np.linalg.norm(hi - lo)) or 1.0
        x0 = (v - centre) / length
    else:
        centre, length, x0 = np.zeros(3), 1.0, v.copy()
    c = filter_coefficients(passband, n_it, window)
    x1 = np.empty_like(x0)
    x2 = np.empty_like(x0)
    x3 = np.empty_like(x0)
    with _threads_for(n):
        _first_step(x0, offsets, nbr, wts, c[0], c[1], x1, x3)
        for it in range(2, n_it + 1):
            _next_step(x0, x1, offsets, nbr, wts, c[it], x2, x3)
            x0, x1, x2 = x1, x2, x0
    fixed = ~movable
    out = x3 * length + centre if normalize_coordinates else x3
    out[fixed] = v[fixed]
    return out


def decimate(vertices: np.ndarray, faces: np.ndarray, reduction: float) -> tuple[np.ndarray, np.ndarray]:
    """Remove about ``reduction`` (0 <= r < 1) of the triangles by quadric decimation."""
    try:
        r = float(reduction)
    except (TypeError, ValueError):
        raise InvalidInputError(f"decimation factor must be a number, got {reduction!r}") from None
    if not 0.0 <= r < 1.0:
        raise InvalidInputError(f"decimation factor must be in [0, 1), got {reduction!r}")
    if r == 0.0 or faces.shape[0] < 4:
        return np.asarray(vertices), np.asarray(faces)
    try:
        import fast_simplification
    except ImportError as exc:  # pragma: no cover - in the [mesh] extra
        raise InvalidInputError("decimation needs the fast-simplification package "
                                "(pip install fast-simplification)") from exc
    # fresh writable copies: fast-simplification refuses read-only arrays (cached surfaces are)
    v, f = fast_simplification.simplify(np.array(vertices, dtype=np.float32, order="C"),
                                        np.array(faces, dtype=np.int32, order="C"), target_reduction=r)
    return v.astype(np.float64), f.astype(faces.dtype if faces.dtype == np.int64 else np.int32)


@njit(cache=True, nogil=True)
def _accumulate_normals(v, faces, out):
    for t in range(faces.shape[0]):
        a, b, c = faces[t, 0], faces[t, 1], faces[t, 2]
        ux, uy, uz = v[b, 0] - v[a, 0], v[b, 1] - v[a, 1], v[b, 2] - v[a, 2]
        wx, wy, wz = v[c, 0] - v[a, 0], v[c, 1] - v[a, 1], v[c, 2] - v[a, 2]
        nx, ny, nz = uy * wz - uz * wy, uz * wx - ux * wz, ux * wy - uy * wx
        ln = math.sqrt(nx * nx + ny * ny + nz * nz)
        if ln > 0.0:
            nx, ny, nz = nx / ln, ny / ln, nz / ln
            for p in (a, b, c):
                out[p, 0] += nx
                out[p, 1] += ny
                out[p, 2] += nz
    for p in range(out.shape[0]):
        ln = math.sqrt(out[p, 0] ** 2 + out[p, 1] ** 2 + out[p, 2] ** 2)
        if ln > 0.0:
            out[p, 0] /= ln
            out[p, 1] /= ln
            out[p, 2] /= ln


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals (float32): the normalized sum of the unit normals of each vertex's
    triangles (``vtkPolyDataNormals`` with splitting off, on a consistently oriented mesh)."""
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    out = np.zeros_like(v)
    if faces.size:
        _accumulate_normals(v, np.ascontiguousarray(faces, dtype=np.int64), out)
    return out.astype(np.float32)
