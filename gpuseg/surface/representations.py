"""Derived representations besides the closed surface: planar contours and fractional labelmaps.

* Planar contours (SlicerRT's representation, as in DICOM RT structure sets): per slice of a
  segment, the closed boundary curves of the mask, by marching squares at level 0.5
  (``skimage.measure.find_contours``) on the slice padded with background, in world LPS mm.
* Fractional labelmap (Slicer's ``Fractional labelmap``): per voxel, how many of its
  ``n^3`` sub-voxel sample points (default ``n = 6``: 216 levels, Slicer's) lie inside the
  closed surface. Slicer stores ``count - 108`` as signed char; :func:`to_slicer_fractional`
  converts. It is computed by voxelizing the surface on an ``n``-times finer grid, a slab of
  slices at a time so that memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from ..geometry import Extent, ImageGeometry
from ..mask import Mask
from .mesh import Surface, mesh_box, sub_voxel_geometry


def planar_contours(mask: Mask, axis: int = 0) -> dict[int, list[np.ndarray]]:
    """``{slice index: [contour (n, 3) world LPS mm, ...]}`` for every slice across ``axis`` that
    the mask touches. Contours are closed (the last point repeats the first): the slice is
    padded with background, so no curve ends at the volume border."""
    from skimage.measure import find_contours

    if not isinstance(mask, Mask):
        raise InvalidInputError(f"expected a Mask, got {type(mask).__name__}")
    if axis not in (0, 1, 2):
        raise InvalidInputError(f"axis must be 0, 1 or 2, got {axis!r}")
    out: dict[int, list[np.ndarray]] = {}
    if mask.is_empty():
        return out
    ext = mask.extent()
    lo = (ext.k0, ext.j0, ext.i0)
    dense = mask.to_numpy(ext)
    g = mask.geometry
    others = [a for a in range(3) if a != axis]
    for n in range(dense.shape[axis]):
        plane = np.take(dense, n, axis=axis)
        if not plane.any():
            continue
        curves = []
        for c in find_contours(np.pad(plane.astype(np.float32), 1), 0.5):
            kji = np.zeros((c.shape[0], 3))
            kji[:, axis] = lo[axis] + n
            kji[:, others[0]] = c[:, 0] - 1 + lo[others[0]]
            kji[:, others[1]] = c[:, 1] - 1 + lo[others[1]]
            curves.append(g.ijk_to_world_points(kji[:, ::-1]))
        out[lo[axis] + n] = curves
    return out


def fractional_labelmap(surface: Surface, geometry: ImageGeometry, *, subdivisions: int = 6,
                        extent: Extent | None = None, slab_bytes: int = 64 << 20) -> tuple[np.ndarray, Extent]:
    """``(counts, extent)``: for each voxel of ``extent`` (default: the surface's bounding box
    in ``geometry``, clipped to it), how many of its ``subdivisions^3`` sample points are inside
    the closed ``surface`` (uint8 for up to 6 subdivisions, else uint16)."""
    from .voxelize import voxelize

    n = int(subdivisions)
    if n < 1 or n > 16:
        raise InvalidInputError(f"subdivisions must be in 1..16, got {subdivisions!r}")
    dtype = np.uint8 if n ** 3 <= 255 else np.uint16
    if extent is None:
        if surface.is_empty():
            return np.zeros((0, 0, 0), dtype), Extent.empty()
        extent = mesh_box(surface.vertices, geometry).clip(geometry.shape)
    counts = np.zeros(extent.shape, dtype)
    if extent.is_empty or surface.is_empty():
        return counts, extent
    per_slice = extent.shape[1] * extent.shape[2] * n ** 3
    step = max(1, int(slab_bytes // max(1, per_slice)))
    for k0 in range(extent.k0, extent.k1, step):
        k1 = min(extent.k1, k0 + step)
        slab = Extent(k0, k1, extent.j0, extent.j1, extent.i0, extent.i1)
        inside = voxelize(surface.vertices, surface.faces, sub_voxel_geometry(geometry, slab, n))
        nk, nj, ni = slab.shape
        counts[k0 - extent.k0:k1 - extent.k0] = inside.reshape(nk, n, nj, n, ni, n).sum(axis=(1, 3, 5), dtype=dtype)
    return counts, extent


@dataclass
class FractionalLabelmap:
    """A segment's ``Fractional labelmap`` representation: sub-voxel counts over an extent.

    Attributes
    ----------
    counts : numpy.ndarray
        ``(nk, nj, ni)`` of ``extent``: how many of each voxel's ``subdivisions^3`` sample
        points lie inside the closed surface.
    extent : Extent
        Where ``counts`` sits in ``geometry``.
    geometry : ImageGeometry
        The reference grid.
    subdivisions : int
        Sample points per voxel and axis (Slicer: 6).
    """

    counts: np.ndarray
    extent: Extent
    geometry: ImageGeometry
    subdivisions: int = 6

    def fractions(self) -> np.ndarray:
        """The inside fraction of each voxel of ``extent``, float32 in 0..1."""
        return (self.counts.astype(np.float32) / float(self.subdivisions ** 3)).astype(np.float32)

    def to_slicer(self) -> np.ndarray:
        """Slicer's signed-char values (-108 outside ... +108 inside; 6 subdivisions only)."""
        return to_slicer_fractional(self.counts, self.subdivisions)


def to_slicer_fractional(counts: np.ndarray, subdivisions: int = 6) -> np.ndarray:
    """Slicer's signed-char encoding of 6^3 counts: ``count - 108`` (-108 outside ... +108 inside)."""
    if subdivisions != 6:
        raise InvalidInputError("Slicer's fractional labelmap encoding is defined for 6 subdivisions")
    return (counts.astype(np.int16) - 108).astype(np.int8)
