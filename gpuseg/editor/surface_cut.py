"""Surface cut (Slicer's SegmentEditorExtraEffects): a closed surface through points, voxelized.

The surface is the convex hull of the points (SciPy's ``ConvexHull``, Qhull; Slicer's
MarkupsToModel builds the same hull with ``vtkDelaunay3D`` + ``vtkDataSetSurfaceFilter``),
outward oriented. With ``smooth`` (Slicer's ``SmoothModel``, default on) it is refined as
MarkupsToModel does, by :data:`SMOOTH_LEVELS` levels of modified butterfly subdivision
(:func:`butterfly_subdivide`; tests/test_extra_effects.py compares it with VTK's
``vtkButterflySubdivisionFilter``). The butterfly surface interpolates the points and may bulge
out of the hull. MarkupsToModel's ``forceConvex`` (a hull of the smoothed surface) is not applied,
and its special cases for nearly planar or linear points (extruded by a small depth) are not
made: such points raise InvalidInputError here.

The surface is voxelized with :func:`gpuseg.surface.mesh_to_mask` (voxel centres inside the
closed mesh), over the mesh's box only.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError

__all__ = ["SMOOTH_LEVELS", "OPERATIONS", "hull_surface", "butterfly_subdivide"]

#: butterfly subdivision levels of the smoothed surface (MarkupsToModel's)
SMOOTH_LEVELS = 3
#: Slicer's Operation choices (SET is the default)
OPERATIONS = ("set", "erase_inside", "erase_outside", "fill_inside", "fill_outside")


def hull_surface(world: np.ndarray, smooth: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The closed surface through ``world`` points ``(n, 3)``: ``(vertices, faces)``, outward
    triangles. Raises InvalidInputError for fewer than 4 points or points in one plane."""
    from scipy.spatial import ConvexHull, QhullError

    p = np.asarray(world, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) < 4:
        raise InvalidInputError(f"surface cut needs at least 4 points (N, 3), got shape {p.shape}")
    try:
        hull = ConvexHull(p)
    except QhullError:
        raise InvalidInputError("surface cut points are all in one plane (or line): they enclose no volume") from None
    used = np.unique(hull.simplices)
    remap = np.full(len(p), -1, np.int64)
    remap[used] = np.arange(len(used))
    v = p[used]
    f = remap[hull.simplices].astype(np.int64)
    # orient every triangle outward: its normal points away from the centroid
    c = v.mean(0)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    flip = np.einsum("ij,ij->i", n, v[f[:, 0]] - c) < 0
    f[flip] = f[flip][:, ::-1]
    if smooth:
        for _ in range(SMOOTH_LEVELS):
            v, f = butterfly_subdivide(v, f)
    return v, f


def _zorin(k: int) -> np.ndarray:
    """Zorin's weights of the modified butterfly for the ring of an extraordinary vertex of
    valence ``k``, starting at the edge's other end (the vertex itself weighs 3/4)."""
    if k == 3:
        return np.array([5.0, -1.0, -1.0]) / 12.0
    if k == 4:
        return np.array([3.0, 0.0, -1.0, 0.0]) / 8.0
    j = np.arange(k, dtype=np.float64)
    return (0.25 + np.cos(2.0 * np.pi * j / k) + 0.5 * np.cos(4.0 * np.pi * j / k)) / k


def butterfly_subdivide(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One level of modified butterfly subdivision of a closed, consistently oriented triangle
    mesh (Dyn, Levin and Gregory's 8-point stencil between two valence-6 vertices, Zorin's
    weights around an extraordinary vertex, the mean of both stencils between two
    extraordinary ones), as ``vtkButterflySubdivisionFilter``: the old vertices stay, every
    triangle becomes four. Host-side numpy over the mesh (a few thousand triangles)."""
    v = np.asarray(v, np.float64)
    f = np.asarray(f, np.int64)
    nv = len(v)
    # directed edge (a, b) -> the vertex opposite it in its triangle
    opp: dict[tuple[int, int], int] = {}
    nxt: list[dict[int, int]] = [dict() for _ in range(nv)]  # around vertex a: b -> the next ring vertex
    for a, b, c in f.tolist():
        opp[(a, b)], opp[(b, c)], opp[(c, a)] = c, a, b
        nxt[a][b], nxt[b][c], nxt[c][a] = c, a, b

    def ring(a: int, start: int) -> list[int]:
        out = [start]
        x = nxt[a][start]
        while x != start:
            out.append(x)
            x = nxt[a][x]
        return out

    def around(a: int, b: int) -> np.ndarray:  # Zorin's stencil of extraordinary vertex a
        r = ring(a, b)
        return 0.75 * v[a] + _zorin(len(r)) @ v[r]

    val = [len(n) for n in nxt]
    edges = sorted({(min(a, b), max(a, b)) for a, b in opp})
    index = {e: nv + n for n, e in enumerate(edges)}
    pts = np.empty((len(edges), 3))
    for n, (a, b) in enumerate(edges):
        if val[a] == 6 and val[b] == 6:
            c, d = opp[(a, b)], opp[(b, a)]
            wings = (opp[(a, c)], opp[(c, b)], opp[(d, a)], opp[(b, d)])  # across the four outer edges
            pts[n] = 0.5 * (v[a] + v[b]) + 0.125 * (v[c] + v[d]) - 0.0625 * v[list(wings)].sum(0)
        elif val[b] == 6:
            pts[n] = around(a, b)
        elif val[a] == 6:
            pts[n] = around(b, a)
        else:
            pts[n] = 0.5 * (around(a, b) + around(b, a))
    e = np.array([[index[(min(x, y), max(x, y))] for x, y in ((a, b), (b, c), (c, a))] for a, b, c in f.tolist()],
                 np.int64).reshape(-1, 3)
    e01, e12, e20 = e[:, 0], e[:, 1], e[:, 2]
    nf = np.concatenate([np.stack([f[:, 0], e01, e20], 1), np.stack([f[:, 1], e12, e01], 1),
                         np.stack([f[:, 2], e20, e12], 1), np.stack([e01, e12, e20], 1)])
    return np.concatenate([v, pts]), nf
