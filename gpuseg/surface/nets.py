"""Surface nets on packed masks: many segments in one vertex numbering, shared boundaries.

Every cube of the padded grid (2 x 2 x 2 voxels) that some segment crosses gets one vertex,
at its centre; every crossed voxel edge of a segment gets one quad (two triangles) joining
the four cubes around that edge, oriented out of the segment (``kernels/surface.cl``:
``mc_count`` in its surface-nets mode, then ``sn_*``; numba twins in ``kernels/surface.py``).
Segments are visited one by one over their own boxes, but all of them number their vertices
in one table over the union of their boxes, so two segments that touch share the vertices of
their common boundary, exactly: with joint smoothing the shared boundary moves as one and
stays gap-free.

This is the dual of marching cubes: the same counts (one quad per marching-cubes vertex) and
the same structure as VTK's ``vtkSurfaceNets3D`` with smoothing off. Like VTK's, a segment's
surface is closed (every edge is used an even number of times, with consistent orientation)
but not always manifold: where two voxels of a segment touch only along an edge, four quads
meet at one edge.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import GeometryMismatchError, InvalidInputError
from ..kernels.surface import SN_QUADS, SN_ROW_PREFIX, SN_VERTICES
from ..mask import Mask
from .marching import _INT32_MAX, _offsets, row_counts



def _union_box(masks: Sequence[Mask]):
    boxes = [m.box for m in masks if m.box[3] * m.box[4] * m.box[5] > 0]
    if not boxes:
        return None
    k0 = min(b[0] for b in boxes)
    j0 = min(b[1] for b in boxes)
    w0 = min(b[2] for b in boxes)
    k1 = max(b[0] + b[3] for b in boxes)
    j1 = max(b[1] + b[4] for b in boxes)
    w1 = max(b[2] + b[5] for b in boxes)
    return k0, j0, w0, k1 - k0, j1 - j0, w1 - w0


def surface_nets_index_space(masks: Sequence[Mask]) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(vertices, faces per mask)``: one shared vertex table (float32 (i, j, k) of the grid,
    cube centres) and each mask's triangles (int32, or int64 beyond 2^31 - 1 vertices).

    Vertices no mask uses do not exist: each vertex belongs to a cube crossed by some mask.
    """
    masks = list(masks)
    if not masks:
        raise InvalidInputError("surface nets need at least one mask")
    for m in masks:
        if not isinstance(m, Mask):
            raise InvalidInputError(f"expected Masks, got {type(m).__name__}")
    g, b = masks[0].geometry, masks[0].backend
    for m in masks[1:]:
        if not m.geometry.is_same_grid(g):
            raise GeometryMismatchError("surface nets: all masks must share one grid")
        if m.backend is not b:
            raise InvalidInputError("surface nets: all masks must be on one backend")
    box = _union_box(masks)
    if box is None:
        return np.zeros((0, 3), np.float32), [np.zeros((0, 3), np.int32) for _ in masks]
    K0, J0, W0, GK, GJ, GW = box
    gw1 = GW + 1
    nrows = (GK + 1) * (GJ + 1)
    active = b.zeros((nrows * gw1,), np.uint32, what="surface nets cube table")
    # one pass per segment: its rows' vertex counts (kept for its quads), and its active cubes
    counts = {}
    for n, m in enumerate(masks):
        if m.box[3] * m.box[4] * m.box[5]:
            rel = (m.box[0] - K0, m.box[1] - J0, m.box[2] - W0)
            counts[n] = row_counts(m, active=active, offset=rel, gnj=GJ, gw1=gw1)[:3]
    wprefix = b.empty((nrows * gw1,), np.uint32, what="surface nets prefix table")
    rowcount_d = b.empty((nrows,), np.uint32, what="surface nets row counts")
    b.run(SN_ROW_PREFIX, active, nrows, gw1, wprefix, rowcount_d)
    rowbase, n_verts = _offsets(b.to_host(rowcount_d).astype(np.int64))
    wide = n_verts > _INT32_MAX
    index_t = np.int64 if wide else np.int32
    rowbase_d = b.asarray(rowbase)
    verts_d = b.empty((n_verts, 3), np.float32, what="surface nets vertices")
    b.run(SN_VERTICES, active, nrows, GJ, gw1, rowbase_d, verts_d)
    verts = b.to_host(verts_d)
    verts += np.array([32 * W0, J0, K0], np.float32)
    out = []
    for n, m in enumerate(masks):
        if n not in counts:
            out.append(np.zeros((0, 3), index_t))
            continue
        k0, j0, w0, nk, nj, nw = m.box
        rel = (k0 - K0, j0 - J0, w0 - W0)
        nx, ny, nz = counts[n]
        qbase, n_quads = _offsets(nx.astype(np.int64) + ny + nz)
        faces_d = b.empty((2 * n_quads, 3), index_t, what="surface nets triangles")
        b.run(SN_QUADS, m.words, nk, nj, nw, *rel, GJ, gw1, active, wprefix, rowbase_d, b.asarray(nx),
              b.asarray(ny), b.asarray(qbase), faces_d)
        faces = b.to_host(faces_d)
        out.append(faces)
    return verts, out


def compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep only the vertices ``faces`` use (in their original order) and renumber."""
    if faces.size == 0:
        return np.zeros((0, 3), vertices.dtype), faces.reshape(0, 3)
    used, inverse = np.unique(faces.ravel(), return_inverse=True)
    return vertices[used], inverse.reshape(faces.shape).astype(faces.dtype)
