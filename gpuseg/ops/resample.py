"""Resampling masks and images onto another grid (docs/geometry.md).

* :func:`resample_nearest`: a mask, nearest neighbour. A target voxel is set when the source
  voxel nearest to its centre is set: the target centre is mapped to the source's continuous
  (i, j, k) and rounded half up, floor(x + 0.5), as ITK's NearestNeighborInterpolateImageFunction
  and vtkImageReslice's nearest mode do. Centres outside the source grid are unset. This is how
  Slicer moves segments between labelmap geometries (vtkOrientedImageDataResample, nearest).
* :func:`resample_image`: an image, linear, for effects that need the intensities on
  the segmentation's grid; the interpolation is documented in ``kernels/resample_image.cl``.

Both run on the device (``kernels/resample.cl``, ``kernels/resample_image.cl``): the host
computes one 3x4 affine map from target (i, j, k) to source (i, j, k), and each kernel evaluates
it in a fixed order without contraction, so every backend gives the same bits. A mask is
resampled over the target box that its own box can reach (the box's corners mapped onto the
target grid, one voxel of slack), not over the whole target grid. Ties (a target centre exactly
half-way between two source centres, as when a grid is coarsened by an even factor) go to the
upper voxel when the affine map is exact there; when it is not, the rounding of the map decides,
the same way on every backend.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError
from ..geometry import Extent, ImageGeometry
from ..image import Image
from ..mask import Mask

__all__ = ["resample_nearest", "resample_image", "index_map", "transform_extent"]


def index_map(source: ImageGeometry, target: ImageGeometry) -> np.ndarray:
    """The 3x4 affine map from target (i, j, k) to source continuous (i, j, k), row-major, as the
    resampling kernels take it (12 float64)."""
    m = source.world_to_ijk @ target.ijk_to_world
    return np.ascontiguousarray(m[:3, :4], dtype=np.float64).ravel()


def transform_extent(extent: Extent, source: ImageGeometry, target: ImageGeometry) -> Extent:
    """``vtkOrientedImageDataResample::TransformExtent``: the target voxels covering the source
    box ``extent`` (its outer corners mapped, moved half a voxel in, rounded to 1e-6, floor /
    ceil). May reach outside the target grid (negative indices)."""
    if extent.is_empty:
        return Extent.empty()
    corners = np.array([[i, j, k] for i in (extent.i0 - 0.5, extent.i1 - 0.5)
                        for j in (extent.j0 - 0.5, extent.j1 - 0.5) for k in (extent.k0 - 0.5, extent.k1 - 0.5)])
    m = target.world_to_ijk @ source.ijk_to_world
    t = corners @ m[:3, :3].T + m[:3, 3]
    lo = t.min(axis=0) + 0.5
    hi = t.max(axis=0) - 0.5
    # Slicer: (long long)(x * 1e6 + 0.5) / 1e6, a C cast (toward zero)
    lo = np.trunc(lo * 1e6 + 0.5) / 1e6
    hi = np.trunc(hi * 1e6 + 0.5) / 1e6
    i0, j0, k0 = np.floor(lo).astype(np.int64)
    i1, j1, k1 = np.ceil(hi).astype(np.int64)  # inclusive
    return Extent(int(k0), int(k1) + 1, int(j0), int(j1) + 1, int(i0), int(i1) + 1)


def _reach(ext: Extent, source: ImageGeometry, target: ImageGeometry) -> Extent:
    """The target voxels whose centres can map into the source box ``ext``: its
    :func:`transform_extent` plus one voxel of slack (rounding ties), clipped to the target grid."""
    return transform_extent(ext, source, target).pad(1).clip(target.shape)


def resample_nearest(mask: Mask, geometry: ImageGeometry) -> Mask:
    """``mask`` resampled (nearest neighbour) onto ``geometry``, on the mask's backend, its box
    shrunk to the effective extent."""
    from ..kernels.resample import RESAMPLE_NEAREST

    if not isinstance(mask, Mask):
        raise InvalidInputError(f"expected a Mask, got {type(mask).__name__}")
    if not isinstance(geometry, ImageGeometry):
        raise InvalidInputError(f"expected an ImageGeometry, got {type(geometry).__name__}")
    if mask.geometry.is_same_grid(geometry, atol=0.0):
        return mask.copy()
    ext = mask.extent()
    b = mask.backend
    if ext.is_empty:
        return Mask.empty(geometry, backend=b)
    reach = _reach(ext, mask.geometry, geometry)
    if reach.is_empty:
        return Mask.empty(geometry, backend=b)
    out = Mask.zeros(geometry, reach, backend=b)
    a = b.asarray(index_map(mask.geometry, geometry), what="resampling map")
    snk, snj, sni = mask.geometry.shape
    with out.writing() as words:
        b.run(RESAMPLE_NEAREST, (words, out.box), mask, a, sni, snj, snk, geometry.shape[2])
    return out.shrink_()


def resample_image(image: Image, geometry: ImageGeometry, *, background: float = 0.0) -> Image:
    """``image`` resampled onto ``geometry`` by linear interpolation (same voxel type), on the
    image's backend, as Slicer resamples a source volume onto a segmentation's geometry
    (vtkImageReslice, linear).

    The interpolation is trilinear in ITK's order (see ``kernels/resample_image.cl``). Voxels
    whose centres fall outside the source grid (more than half a voxel past its edge centres) get
    ``background``, which must fit the voxel type. Integer results are rounded half up.
    """
    from ..kernels.resample_image import RESAMPLE_LINEAR

    if not isinstance(image, Image):
        raise InvalidInputError(f"expected an Image, got {type(image).__name__}")
    if not isinstance(geometry, ImageGeometry):
        raise InvalidInputError(f"expected an ImageGeometry, got {type(geometry).__name__}")
    dt = image.dtype
    try:
        bg = float(background)
    except (TypeError, ValueError):
        raise InvalidInputError(f"background must be a number, got {background!r}") from None
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if not (np.isfinite(bg) and info.min <= np.floor(bg + 0.5) <= info.max):
            raise InvalidInputError(f"background {bg:g} does not fit the image's voxel type {dt} "
                                    f"({info.min}..{info.max})")
    b = image.backend
    src = image.geometry
    out = b.empty(geometry.shape, dt, what=f"resampled image of shape {geometry.shape} {dt}")
    n = geometry.n_voxels
    a = b.asarray(index_map(src, geometry), what="resampling map")
    snk, snj, sni = src.shape
    b.run(RESAMPLE_LINEAR, image.data, out, a, sni, snj, snk, geometry.shape[2], geometry.shape[1], bg,
          int(dt.kind in "iu"), n)
    return Image(out, geometry, b)
