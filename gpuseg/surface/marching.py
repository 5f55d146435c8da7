"""Binary labelmap to closed surface: marching cubes on packed masks.

The mesh is built straight from a mask's words in two passes over rows of cubes
(``kernels/surface.cl``; numba twins beside it in ``kernels/surface.py``):

1. ``mc_count``: per row, how many vertices it owns (one per crossed voxel edge towards
   +i, +j, +k) and how many triangles its cubes make;
2. exclusive prefix sums give every row its first vertex and triangle;
3. ``mc_emit``: per row, its vertices and triangles, at those offsets.

So the vertex and triangle arrays come out in one deterministic order, identical on every
backend, with every vertex shared by all its triangles (indexed, not a triangle soup). The
mask is padded with one voxel of background on every side (as Slicer pads), so the surface is
closed and every edge is shared by exactly two triangles, whatever the mask. Vertices sit at
the midpoints of crossed voxel edges, as in VTK's discrete flying edges, so they are exact
in float32 index space; the case table is the one of ``_tables.py``.

Only the mask's own box (plus the padding) is visited, so meshing a small segment of a large
volume costs in proportion to the segment's box.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError
from ..kernels.surface import MC_COUNT, MC_EMIT
from ..mask import Mask
from ._tables import triangle_table

_INT32_MAX = np.iinfo(np.int32).max


def _tables_on(backend):
    """The case tables as device arrays of ``backend`` (uploaded once per backend)."""
    cache = backend.__dict__.setdefault("_mc_tables", {})
    if "t" not in cache:
        counts, table = triangle_table()
        cache["t"] = (backend.asarray(counts, what="marching cubes table"),
                      backend.asarray(table.reshape(256, 36), what="marching cubes table"))
    return cache["t"]


def _offsets(counts: np.ndarray) -> tuple[np.ndarray, int]:
    out = np.zeros(counts.size, np.int64)
    if counts.size > 1:
        np.cumsum(counts[:-1], dtype=np.int64, out=out[1:])
    total = int(out[-1] + counts[-1]) if counts.size else 0
    return out, total


def row_counts(mask: Mask, *, active=None, offset: tuple[int, int, int] = (0, 0, 0), gnj: int = 0,
               gw1: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``mc_count`` over the mask's rows of cubes: host ``(nx, ny, nz, nt)``, the vertices each
    row owns along i, j, k and its triangles. With ``active`` (surface nets) the rows' active
    cubes are ORed into that grid table instead of counting triangles (``nt`` is then 0);
    ``offset`` places the mask's box in the table's grid of ``gnj`` rows and ``gw1`` words."""
    b = mask.backend
    k0, j0, w0, nk, nj, nw = mask.box
    nrows = (nk + 1) * (nj + 1)
    ntri, _ = triangle_table()
    nets = active is not None
    ntri_d, _ = _tables_on(b)
    out = [b.empty((nrows,), np.uint32, what="marching cubes row counts") for _ in range(4)]
    b.run(MC_COUNT, mask.words, nk, nj, nw, ntri_d, *out, nets, active, *offset, gnj, gw1)
    return tuple(b.to_host(a) for a in out)  # type: ignore[return-value]


def mesh_index_space(mask: Mask) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices, faces)`` of the closed surface of ``mask`` in voxel index space.

    ``vertices`` is float32 (n, 3) holding (i, j, k) of the reference grid (half-integers:
    edge midpoints); ``faces`` is (m, 3) int32, or int64 when there are more than 2^31 - 1
    vertices, oriented with normals pointing out of the mask in index space. An empty mask
    gives empty arrays.
    """
    if not isinstance(mask, Mask):
        raise InvalidInputError(f"expected a Mask, got {type(mask).__name__}")
    b = mask.backend
    k0, j0, w0, nk, nj, nw = mask.box
    empty = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32))
    if nk * nj * nw == 0:
        return empty
    nrows = (nk + 1) * (nj + 1)
    ntri, tris = triangle_table()
    nx, ny, nz, nt = row_counts(mask)
    vbase, n_verts = _offsets(nx.astype(np.int64) + ny + nz)
    tbase, n_faces = _offsets(nt.astype(np.int64))
    if n_faces == 0:
        return empty
    wide = n_verts > _INT32_MAX
    index_t = np.int64 if wide else np.int32
    i0 = 32 * w0
    ntri_d, tris_d = _tables_on(b)
    b.check_allocation(n_verts * 12 + n_faces * 3 * np.dtype(index_t).itemsize, "surface mesh")
    verts_d = b.empty((n_verts, 3), np.float32, what="surface vertices")
    faces_d = b.empty((n_faces, 3), index_t, what="surface triangles")
    b.run(MC_EMIT, mask.words, nk, nj, nw, k0, j0, i0, ntri_d, tris_d, b.asarray(nx), b.asarray(ny),
          b.asarray(vbase), b.asarray(tbase), verts_d, faces_d)
    return b.to_host(verts_d), b.to_host(faces_d)
