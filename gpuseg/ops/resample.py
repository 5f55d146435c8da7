"""Nearest-neighbour resampling of a mask onto another grid (for comparing segmentations made on
different grids: the second is resampled onto the first, as Slicer's Segment Comparison and
Segment Statistics resample a labelmap into the reference geometry).

A target voxel is set when the source voxel nearest to its centre is set: the target centre is
mapped to the source's continuous (i, j, k) and rounded half up, floor(x + 0.5), as ITK's
NearestNeighborInterpolateImageFunction does. Centres outside the source grid are unset.

First version on the host: only the target voxels whose centres can fall in the source mask's box
are visited (the box's corners mapped to the target grid), in slabs, and the result is packed
straight onto the target backend.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError
from ..geometry import ImageGeometry
from ..mask import Mask

__all__ = ["resample_nearest"]


def resample_nearest(mask: Mask, geometry: ImageGeometry) -> Mask:
    """``mask`` resampled (nearest neighbour) onto ``geometry``, on the mask's backend."""
    if not isinstance(mask, Mask):
        raise InvalidInputError(f"expected a Mask, got {type(mask).__name__}")
    if not isinstance(geometry, ImageGeometry):
        raise InvalidInputError(f"expected an ImageGeometry, got {type(geometry).__name__}")
    if mask.geometry.is_same_grid(geometry):
        return mask.copy()
    ext = mask.extent()
    if ext.is_empty:
        return Mask.empty(geometry, backend=mask.backend)
    src = mask.to_numpy(ext)
    # the source box's outer corners (half a voxel out), in target indices
    ci = np.array([[i, j, k] for i in (ext.i0 - 0.5, ext.i1 - 0.5) for j in (ext.j0 - 0.5, ext.j1 - 0.5)
                   for k in (ext.k0 - 0.5, ext.k1 - 0.5)])
    t = geometry.world_to_ijk_points(mask.geometry.ijk_to_world_points(ci))
    nk, nj, ni = geometry.shape
    lo = np.maximum(np.floor(t.min(axis=0)).astype(np.int64) - 1, 0)
    hi = np.minimum(np.ceil(t.max(axis=0)).astype(np.int64) + 2, [ni, nj, nk])
    if np.any(hi <= lo):
        return Mask.empty(geometry, backend=mask.backend)
    (i0, j0, k0), (i1, j1, k1) = lo, hi
    to_src = mask.geometry.world_to_ijk @ geometry.ijk_to_world  # target ijk -> source ijk (homogeneous)
    out = np.zeros((k1 - k0, j1 - j0, i1 - i0), bool)
    jj, ii = np.meshgrid(np.arange(j0, j1, dtype=np.float64), np.arange(i0, i1, dtype=np.float64), indexing="ij")
    for k in range(k0, k1):
        p = np.stack([ii, jj, np.full_like(ii, k), np.ones_like(ii)], axis=-1) @ to_src.T
        idx = np.floor(p[..., :3] + 0.5).astype(np.int64) - np.array([ext.i0, ext.j0, ext.k0])
        si, sj, sk = idx[..., 0], idx[..., 1], idx[..., 2]
        inside = (si >= 0) & (si < src.shape[2]) & (sj >= 0) & (sj < src.shape[1]) & (sk >= 0) & (sk < src.shape[0])
        sl = np.zeros(ii.shape, bool)
        sl[inside] = src[sk[inside], sj[inside], si[inside]]
        out[k - k0] = sl
    return Mask.from_numpy(out, geometry, offset=(int(k0), int(j0), int(i0)), backend=mask.backend).shrink_()
