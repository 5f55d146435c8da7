"""Level tracing (Slicer's Level tracing effect): the closed iso-intensity region through a click.

In the slice through the clicked voxel, the foreground is every pixel whose intensity is at
least the clicked voxel's (8-connected; the background is 4-connected). The boundary that
the clicked pixel lies on is traced with Moore-neighbour tracing, the algorithm of Slicer's
``itkLevelTracingImageFilter`` (same neighbour order and start rule), but with Jacob's stop
rule (stop when the start pixel is left in the same direction a second time) instead of
"back at the start pixel", which stops early when the start pixel is visited twice (a
one-pixel-wide neck): there Slicer's filter returns only part of the region.

* the trace starts at the click if a 4-neighbour is background; else, if only a diagonal
  neighbour is background, at the 4-neighbour of the click that touches it; else the click is
  inside a uniform area and nothing is traced (empty result);
* pixels outside the slice count as background.

The result is the traced closed curve and every pixel it encloses (Slicer fills the traced
contour as a polygon): the pixels not reachable from outside the slice through 4-connected
steps that avoid the curve. For a click on the outer boundary of a region this is the
region with its holes filled. The trace is sequential and short (the perimeter of one
region in one slice), so it runs on the host in numba on one slice of the image.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import InvalidInputError
from ..geometry import Extent
from ..image import Image
from ..mask import Mask
from .regions import _seed

__all__ = ["level_trace", "trace_level_curve"]

# (dx, dy) = (column, row) offsets in the order of Slicer's filter; odd entries are 4-neighbours
_NEIGHBOURS = np.array([(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)], np.int64)


@njit(cache=True, nogil=True)
def _background_neighbour(img, threshold, sy, sx, nbr, first):
    """The first of the neighbours first, first + 2, ... (odd: 4-neighbours, even: diagonals)
    that is background (below the threshold, or outside the slice); -1 if none."""
    h, w = img.shape
    for z in range(first, 8, 2):
        y, x = sy + nbr[z, 1], sx + nbr[z, 0]
        if y < 0 or x < 0 or y >= h or x >= w or img[y, x] < threshold:
            return z
    return -1


@njit(cache=True, nogil=True)
def _trace(img, threshold, sy, sx, nbr):
    h, w = img.shape
    chain = np.empty((1024, 2), np.int64)
    found = _background_neighbour(img, threshold, sy, sx, nbr, 1)
    if found < 0:
        found = _background_neighbour(img, threshold, sy, sx, nbr, 0)
        if found < 0:
            return chain[:0]
        moved = (found + 1) % 8
        sy, sx = sy + nbr[moved, 1], sx + nbr[moved, 0]
        found = (moved + 6) % 8
    zero = found
    py, px = sy, sx
    n = 0
    chain[n, 0], chain[n, 1] = py, px
    n += 1
    first = -1
    limit = 8 * h * w + 2  # a safety bound: Jacob's rule ends far sooner
    while n < limit:
        step = -1
        for s in range(8):
            d = (s + zero + 1) % 8
            y, x = py + nbr[d, 1], px + nbr[d, 0]
            if 0 <= y < h and 0 <= x < w and img[y, x] >= threshold:
                step = d
                break
        if step < 0:  # an isolated pixel
            break
        if py == sy and px == sx:
            if first < 0:
                first = step
            elif step == first:  # Jacob's stop: the start pixel left the same way again
                break
        py, px = py + nbr[step, 1], px + nbr[step, 0]
        if n == chain.shape[0]:
            chain = np.concatenate((chain, np.empty_like(chain)))
        chain[n, 0], chain[n, 1] = py, px
        n += 1
        zero = (step + 4) % 8
    return chain[:n]


def trace_level_curve(plane: np.ndarray, row: int, col: int) -> np.ndarray:
    """The traced boundary through (row, col) of a 2D array: an (n, 2) array of (row, col), closed
    (the last pixel is the first); empty if the pixel is inside a uniform area."""
    plane = np.asarray(plane)
    if plane.ndim != 2:
        raise InvalidInputError(f"level tracing works on a 2D slice, got shape {plane.shape}")
    if not (0 <= row < plane.shape[0] and 0 <= col < plane.shape[1]):
        raise InvalidInputError(f"({row}, {col}) is outside the slice of shape {plane.shape}")
    if np.isnan(plane[row, col]):
        raise InvalidInputError("the clicked pixel is NaN")
    work = plane.astype(np.float64)
    work[np.isnan(work)] = -np.inf  # NaN is never inside
    return _trace(work, float(work[row, col]), int(row), int(col), _NEIGHBOURS)


def _enclosed(shape: tuple[int, int], chain: np.ndarray) -> np.ndarray:
    """The chain pixels and every pixel they enclose (4-connected fill from outside)."""
    from skimage.measure import label

    if chain.shape[0] == 0:
        return np.zeros(shape, bool)
    walls = np.zeros((shape[0] + 2, shape[1] + 2), bool)
    walls[chain[:, 0] + 1, chain[:, 1] + 1] = True
    lab = label(~walls, connectivity=1)
    outside = lab == lab[0, 0]
    return ~outside[1:-1, 1:-1]


def level_trace(image: Image, seed, axis: int = 0) -> Mask:
    """The closed iso-intensity region through voxel ``seed`` (k, j, i) in its slice across ``axis``
    (0: the k slice, rows j and columns i; 1: rows k, columns i; 2: rows k, columns j).

    Returns a mask of that one slice (empty if the click is inside a uniform area).
    """
    if axis not in (0, 1, 2):
        raise InvalidInputError(f"axis must be 0, 1 or 2, got {axis!r}")
    k, j, i = _seed(image, seed)
    nk, nj, ni = image.shape
    lo, hi = [0, 0, 0], [nk, nj, ni]
    idx = (k, j, i)
    lo[axis], hi[axis] = idx[axis], idx[axis] + 1
    slab = image.region(Extent(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]))
    plane = np.take(slab, 0, axis=axis)
    rc = [v for a, v in enumerate(idx) if a != axis]
    chain = trace_level_curve(plane, rc[0], rc[1])
    inside = np.expand_dims(_enclosed(plane.shape, chain), axis)
    return Mask.from_numpy(inside, image.geometry, offset=tuple(lo), backend=image.backend).cropped()
