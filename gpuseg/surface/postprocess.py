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
    found by Newton's method so that the filter is 1 at the pass band."""
    n = int(iterations)
    k_pb = float(passband)
    theta = math.acos(1.0 - 0.5 * k_pb)
    w = _window(window, n)
    i = np.arange(1, n + 1, dtype=np.float64)
    cos_i = np.cos(i * theta)
    sigma = 0.0
    c = np.zeros(n + 1)
    for _ in range(500):
        c[0] = w[0] * (theta + sigma) / math.pi
        c[1:] = 2.0 * w[1:] * np.sin(i * (theta + sigma)) / (i * math.pi)
        # derivative coefficients of the Chebyshev series
        cp = np.zeros(n + 1)
        if n > 1:
            cp[n - 2] = 2.0 * (n - 1) * c[n - 1]
        for m in range(n - 3, -1, -1):
            cp[m] = cp[m + 2] + 2.0 * (m + 1) * c[m + 1]
        f = c[0] + float(np.dot(c[1:], cos_i))
        fp = cp[0] + float(np.dot(cp[1:], cos_i))
        if n <= 1:
            break
        if abs(f - 1.0) < 1e-3:
            break
        sigma -= (f - 1.0) / fp
    return c


def _neighbours(faces: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (offsets, neighbour ids) of the unique mesh edges, and a mask of vertices that may
    move (not on an open boundary, i.e. every edge at the vertex is shared by >= 2 triangles)."""
    f = faces.astype(np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e.sort(axis=1)
    key = e[:, 0] * n + e[:, 1]
    uniq, counts = np.unique(key, return_counts=True)
    a, b = uniq // n, uniq % n
    boundary = np.zeros(n, bool)
    boundary[a[counts == 1]] = True
    boundary[b[counts == 1]] = True
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=offsets[1:])
    return offsets, dst, ~boundary


@njit(cache=True, nogil=True, parallel=True)
def _neg_laplacian(x, offsets, nbr, out):
    """out[v] = mean over neighbours y of (x[v] - x[y]) (0 for a vertex without neighbours)."""
    for v in prange(x.shape[0]):
        lo, hi = offsets[v], offsets[v + 1]
        d0 = 0.0
        d1 = 0.0
        d2 = 0.0
        cnt = hi - lo
        for e in range(lo, hi):
            y = nbr[e]
            d0 += (x[v, 0] - x[y, 0]) / cnt
            d1 += (x[v, 1] - x[y, 1]) / cnt
            d2 += (x[v, 2] - x[y, 2]) / cnt
        out[v, 0] = d0
        out[v, 1] = d1
        out[v, 2] = d2


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
    offsets, nbr, movable = _neighbours(faces, n)
    movable &= offsets[1:] > offsets[:-1]
    if normalize_coordinates:
        lo, hi = v.min(0), v.max(0)
        centre = (lo + hi) / 2.0
        length = float(np.linalg.norm(hi - lo)) or 1.0
        x0 = (v - centre) / length
    else:
        centre, length, x0 = np.zeros(3), 1.0, v.copy()
    c = filter_coefficients(passband, n_it, window)
    lap = np.empty_like(x0)
    _neg_laplacian(x0, offsets, nbr, lap)
    x1 = x0 - 0.5 * lap
    x3 = c[0] * x0 + c[1] * x1
    for it in range(2, n_it + 1):
        _neg_laplacian(x1, offsets, nbr, lap)
        x2 = 2.0 * x1 - x0 - lap
        x3 += c[it] * x2
        x0, x1 = x1, x2
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
    v, f = fast_simplification.simplify(np.ascontiguousarray(vertices, dtype=np.float32),
                                        np.ascontiguousarray(faces, dtype=np.int32), target_reduction=r)
    return v.astype(np.float64), f.astype(faces.dtype if faces.dtype == np.int64 else np.int32)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals (float32): the normalized sum of the unit normals of each vertex's
    triangles (``vtkPolyDataNormals`` with splitting off, on a consistently oriented mesh)."""
    v = np.asarray(vertices, dtype=np.float64)
    out = np.zeros_like(v)
    if faces.size == 0:
        return out.astype(np.float32)
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    fn = np.cross(b - a, c - a)
    norm = np.linalg.norm(fn, axis=1, keepdims=True)
    fn = np.divide(fn, norm, out=np.zeros_like(fn), where=norm > 0)
    for k in range(3):
        np.add.at(out, faces[:, k], fn)
    ln = np.linalg.norm(out, axis=1, keepdims=True)
    out = np.divide(out, ln, out=np.zeros_like(out), where=ln > 0)
    return out.astype(np.float32)
