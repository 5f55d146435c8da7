"""Closed surface -> binary labelmap: the voxels whose centres lie inside a mesh.

This is the conversion Slicer performs with ``vtkPolyDataToImageStencil`` (closed surface
to binary labelmap): a voxel is set when its centre is inside the closed triangle mesh.

Algorithm
---------
The vertices are mapped to continuous voxel indices ``(i, j, k)`` of the target
geometry (so any spacing, origin and direction work). For every voxel row ``(k, j)`` a
ray is cast along ``i`` through the row's centres; the triangles it crosses are found
with an exact 2D point-in-triangle test on the ``(j, k)`` projection, the crossing depth
``t`` (continuous ``i``) is interpolated, the crossings are sorted and voxels are filled
between successive pairs (parity rule: a centre ``i`` is inside when an odd number of
crossings have ``t <= i``).

Watertight tie rule
-------------------
Rays that pass exactly through a projected edge or vertex are decided by *simulation
of simplicity*: the ray is treated as if it were moved by an infinitesimal
``(+e, +e^2)`` in ``(j, k)``. The ``(j, k)`` coordinates are snapped to a fixed-point grid
(``2^-Q`` voxel with ``Q`` up to 20, chosen so that all products fit in 64-bit integers),
so every orientation test is exact and a ray through an edge shared by two triangles is
counted by exactly one of them, and a ray through a vertex by exactly one triangle of
the fan that covers it (or by none, when the ray only grazes). The outcome is the exact
inside test of the point ``(i + e_i, j + e_j, k + e_k)`` with ``e_i >> e_j >> e_k > 0``
infinitesimal: a box with corners on voxel centres ``a`` and ``b`` along an axis fills
exactly the centres ``a, ..., b - 1`` (half-open, like rasterisation). Crossing depths
along ``i`` are computed in floating point, exactly so for faces perpendicular to ``i``.

The mesh must be closed (see :func:`gpuseg.surface.topology.check_closed`); orientation
does not matter (parity rule), nor does the part of the mesh outside the geometry
(rays are infinite, only the voxels inside the grid are written).
"""

from __future__ import annotations

import math
from typing import Literal

import numba
import numpy as np

from ..errors import InvalidInputError
from ..geometry import ImageGeometry
from .topology import check_mesh_arrays

__all__ = ["voxelize", "reference_geometry_for_mesh"]

_MAX_FRACTION_BITS = 20   # finest snapping: 2**-20 voxel
_MIN_FRACTION_BITS = 4    # coarsest snapping we accept (mesh ~2**26 voxels away)


@numba.njit(cache=True, inline="always")
def _orient(aj: np.int64, ak: np.int64, bj: np.int64, bk: np.int64) -> int:
    """Sign of the edge function of a -> b at the ray point (origin), perturbed by (+e, +e^2)."""
    w = aj * bk - ak * bj
    if w > 0:
        return 1
    if w < 0:
        return -1
    d = ak - bk          # d w / d p_j
    if d > 0:
        return 1
    if d < 0:
        return -1
    d = bj - aj          # d w / d p_k
    if d > 0:
        return 1
    if d < 0:
        return -1
    return 0


@numba.njit(parallel=True, cache=True)
def _voxelize_kernel(jq, kq, ti, faces, slice_start, slice_tris, jlo, jhi, scale, out):  # pragma: no cover
    nk, nj, ni = out.shape
    for k in numba.prange(nk):
        a = slice_start[k]
        b = slice_start[k + 1]
        if a == b:
            continue
        pk = np.int64(k) * scale
        # upper bound of the crossings in this slice: every (triangle, row) candidate
        n_cand = 0
        for s in range(a, b):
            t = slice_tris[s]
            n_cand += jhi[t] - jlo[t] + 1
        rows = np.empty(n_cand, np.int64)
        depth = np.empty(n_cand, np.float64)
        n = 0
        for s in range(a, b):
            t = slice_tris[s]
            va = faces[t, 0]
            vb = faces[t, 1]
            vc = faces[t, 2]
            ak = kq[va] - pk
            bk = kq[vb] - pk
            ck = kq[vc] - pk
            for j in range(jlo[t], jhi[t] + 1):
                pj = np.int64(j) * scale
                aj = jq[va] - pj
                bj = jq[vb] - pj
                cj = jq[vc] - pj
                s_a = _orient(bj, bk, cj, ck)
                if s_a == 0:
                    continue
                s_b = _orient(cj, ck, aj, ak)
                if s_b != s_a:
                    continue
                s_c = _orient(aj, ak, bj, bk)
                if s_c != s_a:
                    continue
                w_a = np.float64(bj * ck - bk * cj)
                w_b = np.float64(cj * ak - ck * aj)
                w_c = np.float64(aj * bk - ak * bj)
                den = w_a + w_b + w_c
                ta = ti[va]
                if den != 0.0:
                    d = ta + (w_b * (ti[vb] - ta) + w_c * (ti[vc] - ta)) / den
                else:
                    d = ta
                rows[n] = j
                depth[n] = d
                n += 1
        if n == 0:
            continue
        # group the crossings by row (counting sort), then fill each row by parity
        count = np.zeros(nj + 1, np.int64)
        for c in range(n):
            count[rows[c] + 1] += 1
        for j in range(nj):
            count[j + 1] += count[j]
        pos = count[:nj].copy()
        sorted_depth = np.empty(n, np.float64)
        for c in range(n):
            r = rows[c]
            sorted_depth[pos[r]] = depth[c]
            pos[r] += 1
        for j in range(nj):
            lo = count[j]
            hi = count[j + 1]
            if lo == hi:
                continue
            seg = np.sort(sorted_depth[lo:hi])
            m = hi - lo
            c = 0
            while c < m:
                t0 = seg[c]
                t1 = seg[c + 1] if c + 1 < m else np.inf     # open mesh: fill to the end
                # centres i with t0 <= i < t1
                if t0 < -1.0:
                    t0 = -1.0
                if t1 > ni + 1.0:
                    t1 = ni + 1.0
                i0 = int(math.ceil(t0))
                i1 = int(math.ceil(t1))
                if i0 < 0:
                    i0 = 0
                if i1 > ni:
                    i1 = ni
                for i in range(i0, i1):
                    out[k, j, i] = True
                c += 2


def _ceil_div(a: np.ndarray, b: int) -> np.ndarray:
    return -((-a) // b)


def voxelize(vertices: np.ndarray, faces: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """The voxels of ``geometry`` whose centres lie inside a closed triangle mesh.

    Parameters
    ----------
    vertices : (n, 3) array
        Mesh vertices in world LPS millimetres.
    faces : (m, 3) int array
        Triangles (any consistent or inconsistent winding; the parity rule ignores it).
        The mesh should be closed; for an open mesh a row with an odd number of
        crossings is filled from its last crossing to the end of the row.
    geometry : ImageGeometry
        Target grid (any spacing, origin and direction).

    Returns
    -------
    numpy.ndarray
        ``bool`` array of ``geometry.shape`` (indexed ``(k, j, i)``). Parts of the mesh
        outside the grid are clipped; an empty mesh gives all ``False``.

    Raises
    ------
    InvalidInputError
        Bad arrays (shape, dtype, NaN, face index out of range), or a mesh so far from
        the grid (about 2**26 voxels) that exact fixed-point tests are impossible.

    Notes
    -----
    See the module docstring for the tie rule: the result equals the exact inside test
    of each voxel centre moved by an infinitesimal ``(+e_i, +e_j, +e_k)``,
    ``e_i >> e_j >> e_k``, after snapping the vertices' ``(j, k)`` to ``2^-Q`` voxel.
    """
    if not isinstance(geometry, ImageGeometry):
        raise InvalidInputError(f"geometry must be an ImageGeometry, got {type(geometry).__name__}")
    v, f = check_mesh_arrays(vertices, faces, "mesh")
    nk, nj, ni = geometry.shape
    out = np.zeros((nk, nj, ni), dtype=bool)
    if len(f) == 0 or out.size == 0:
        return out
    used = np.unique(f)
    ijk = np.zeros((len(v), 3))
    ijk[used] = geometry.world_to_ijk_points(v[used].astype(np.float64))
    reach = float(np.abs(ijk[used, 1:]).max()) + max(nj, nk) + 2.0
    bits = min(_MAX_FRACTION_BITS, int(math.floor(math.log2(2.0 ** 30 / reach))))
    if bits < _MIN_FRACTION_BITS:
        raise InvalidInputError(f"mesh lies too far from the geometry (|index| up to {reach:.3g} voxels) "
                                "for exact voxelization; crop the mesh or pick a nearer geometry")
    scale = 1 << bits
    jq = np.rint(ijk[:, 1] * scale).astype(np.int64)
    kq = np.rint(ijk[:, 2] * scale).astype(np.int64)
    ti = np.ascontiguousarray(ijk[:, 0])

    fj = jq[f]
    fk = kq[f]
    jlo = np.maximum(_ceil_div(fj.min(axis=1), scale), 0)
    jhi = np.minimum(fj.max(axis=1) // scale, nj - 1)
    klo = np.maximum(_ceil_div(fk.min(axis=1), scale), 0)
    khi = np.minimum(fk.max(axis=1) // scale, nk - 1)
    span = np.where((jhi >= jlo) & (khi >= klo), khi - klo + 1, 0)
    tris = np.flatnonzero(span)
    if len(tris) == 0:
        return out
    span_t = span[tris]
    total = int(span_t.sum())
    first = np.cumsum(span_t) - span_t
    entry_k = np.repeat(klo[tris], span_t) + (np.arange(total) - np.repeat(first, span_t))
    order = np.argsort(entry_k, kind="stable")
    slice_tris = np.repeat(tris, span_t)[order].astype(np.int64)
    slice_start = np.searchsorted(entry_k[order], np.arange(nk + 1)).astype(np.int64)
    _voxelize_kernel(jq, kq, ti, np.ascontiguousarray(f), slice_start, slice_tris,
                     jlo.astype(np.int64), jhi.astype(np.int64), np.int64(scale), out)
    return out


def reference_geometry_for_mesh(vertices: np.ndarray, *, target_voxels: int = 250 ** 3, margin: int = 0,
                                frame: Literal["ras", "lps"] = "ras") -> ImageGeometry:
    """Slicer's default labelmap geometry for a closed surface without a reference volume.

    Mirrors ``vtkClosedSurfaceToBinaryLabelmapConversionRule`` (default geometry, then
    the extent grown to hold the whole surface): axis-aligned directions, isotropic
    spacing ``s = (bounding-box volume / target_voxels) ** (1/3)``, voxel ``(0, 0, 0)``
    centred on the bounding box's minimum corner and ``ceil(size / s) + 1`` voxels per
    axis, so the voxel centres span the whole box.

    Parameters
    ----------
    vertices : (n, 3) array
        Mesh vertices in LPS millimetres (at least one).
    target_voxels : int
        About how many voxels the bounding box should hold (Slicer: 250**3).
    margin : int
        Extra voxels added on every side (same lattice). Slicer adds none.
    frame : {"ras", "lps"}
        Which world frame the directions are the identity in. Slicer works in RAS, so
        ``"ras"`` (default) gives its lattice: LPS direction ``diag(-1, -1, 1)``, origin
        at the RAS minimum corner. ``"lps"`` gives the identity LPS direction, origin at
        the LPS minimum corner.

    Returns
    -------
    ImageGeometry

    Notes
    -----
    A flat bounding box (zero volume, where Slicer would fail) uses the product of its
    non-zero sides instead (``s = (area / target_voxels ** (2/3)) ** (1/2)`` for a plane);
    a single point gets spacing 1 mm.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise InvalidInputError(f"vertices must have shape (n, 3) with n >= 1, got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise InvalidInputError("vertices contain NaN or infinity")
    if not (isinstance(target_voxels, (int, np.integer)) and target_voxels > 0):
        raise InvalidInputError(f"target_voxels must be a positive integer, got {target_voxels!r}")
    if not (isinstance(margin, (int, np.integer)) and margin >= 0):
        raise InvalidInputError(f"margin must be a non-negative integer, got {margin!r}")
    if frame not in ("ras", "lps"):
        raise InvalidInputError(f"frame must be 'ras' or 'lps', got {frame!r}")
    flip = np.array([-1.0, -1.0, 1.0]) if frame == "ras" else np.ones(3)
    p = v * flip
    lo = p.min(axis=0)
    size = p.max(axis=0) - lo
    sides = size[size > 0]
    if len(sides) == 0:
        spacing = 1.0
    else:
        d = len(sides)
        spacing = float((np.prod(sides) / float(target_voxels) ** (d / 3.0)) ** (1.0 / d))
    counts = np.ceil(size / spacing).astype(np.int64) + 1 + 2 * int(margin)
    origin = (lo - margin * spacing) * flip
    return ImageGeometry((int(counts[2]), int(counts[1]), int(counts[0])), (spacing,) * 3, origin,
                         np.diag(flip))
