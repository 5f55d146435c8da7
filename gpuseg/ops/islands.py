"""Islands: connected components of packed masks (Slicer's Islands effect).

Components are found on runs of set bits along i, not on voxels: each row's runs are
extracted from the packed words in parallel, then joined with the overlapping runs of the
neighbouring rows by union-find (6-connectivity: face neighbours; 26: faces, edges and
corners). Labels are numbered 1..N in the order of each component's first voxel in raster
order (k, j, i), exactly as ``scipy.ndimage.label`` numbers them, on every backend.

On OpenCL/CUDA the run extraction, the unions (lock-free, linking the larger root to the
smaller with an atomic min, so the result does not depend on thread order) and the mask
writing run on the device; the per-run labels and sizes are computed on the host from the
run table (a few bytes per run, far less than the volume).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..errors import InvalidInputError, OutOfBoundsError
from ..geometry import Extent, ImageGeometry
from ..kernels.islands import (COUNT_RUNS, FILL_RUNS, FLATTEN, INIT_PARENT, RUNS_TO_WORDS, UNITE_ROWS,
                               dense_labels, label_runs)
from ..mask import Mask
from .logic import invert, union

__all__ = ["Islands", "connected_components", "label", "keep_largest_island", "remove_small_islands",
           "split_islands", "keep_selected_island", "remove_selected_island", "add_selected_island",
           "bounded_region"]

def _connectivity(c) -> int:
    if c not in (6, 26):
        raise InvalidInputError(f"connectivity must be 6 or 26, got {c!r}")
    return int(c)


class Islands:
    """The connected components of a mask: ``n`` islands, ``sizes[label]`` voxels each."""

    def __init__(self, mask: Mask, connectivity: int, offsets: np.ndarray, starts, ends,
                 host_starts: np.ndarray, host_ends: np.ndarray, labels: np.ndarray, sizes: np.ndarray) -> None:
        self.mask = mask
        self.connectivity = connectivity
        self._offsets = offsets  # host int64 (nrows + 1)
        self._starts, self._ends = starts, ends  # backend arrays
        self._hs, self._he = host_starts, host_ends
        self.run_labels = labels  # host int32 per run
        self.sizes = sizes  # host int64, sizes[0] = 0
        self._dev = None

    @property
    def n(self) -> int:
        return int(self.sizes.shape[0] - 1)

    def largest(self) -> int:
        """The label of the largest island (the first in raster order among equals); 0 if none."""
        return int(np.argmax(self.sizes[1:]) + 1) if self.n else 0

    def by_size(self) -> list[int]:
        """Labels from the largest island to the smallest (ties in raster order)."""
        return [int(v) + 1 for v in np.argsort(-self.sizes[1:], kind="stable")]

    def label_at(self, kji: Sequence[int]) -> int:
        """The label of the island holding voxel ``(k, j, i)`` (0 for background)."""
        g = self.mask.geometry
        k, j, i = (int(v) for v in kji)
        if not g.contains_index((k, j, i)):
            raise OutOfBoundsError(f"voxel (k, j, i) = {(k, j, i)} is outside the volume of shape {g.shape}")
        k0, j0, w0, nk, nj, nw = self.mask.box
        kk, jj, b = k - k0, j - j0, i - 32 * w0
        if not (0 <= kk < nk and 0 <= jj < nj and 0 <= b < 32 * nw):
            return 0
        r = kk * nj + jj
        lo, hi = int(self._offsets[r]), int(self._offsets[r + 1])
        q = lo + int(np.searchsorted(self._he[lo:hi], b))
        if q < hi and self._hs[q] <= b:
            return int(self.run_labels[q])
        return 0

    def mask_of(self, labels: Iterable[int]) -> Mask:
        """The voxels of the given islands, as a mask over the source mask's box."""
        selected = np.zeros(self.n + 1, np.uint8)
        for v in labels:
            if not 0 < int(v) <= self.n:
                raise InvalidInputError(f"island label {v} is out of range 1..{self.n}")
            selected[int(v)] = 1
        m = self.mask
        b = m.backend
        out = Mask(m.geometry, b, b.empty(m.box[3:], np.uint32, what="island mask"), m.box)
        if m.nbytes == 0:
            return out
        if self._dev is None:
            self._dev = (b.asarray(self._offsets), b.asarray(self.run_labels if self.run_labels.size
                                                             else np.zeros(1, np.int32)))
        offs, labs = self._dev
        with out.writing() as words:
            b.run(RUNS_TO_WORDS, offs, m.box[3] * m.box[4], m.box[5], self._starts, self._ends, labs,
                  b.asarray(selected), words)
        return out.shrink_()

    def to_numpy(self) -> np.ndarray:
        """Dense int32 labels of the whole grid (0 = background)."""
        g = self.mask.geometry
        out = np.zeros(g.shape, np.int32)
        k0, j0, w0, nk, nj, nw = self.mask.box
        if self._hs.size:
            dense_labels(self._offsets, self._hs, self._he, self.run_labels, nk, nj, g.shape[2], 32 * w0,
                         out[k0:k0 + nk, j0:j0 + nj])
        return out


def connected_components(mask: Mask, connectivity: int = 6) -> Islands:
    """The islands of ``mask`` with 6- (faces) or 26-connectivity (faces, edges, corners)."""
    if not isinstance(mask, Mask):
        raise InvalidInputError(f"expected a Mask, got {type(mask).__name__}")
    full = _connectivity(connectivity) == 26

    b = mask.backend
    k0, j0, w0, nk, nj, nw = mask.box
    nrows = nk * nj
    if mask.nbytes == 0:
        empty = np.zeros(0, np.int32)
        return Islands(mask, connectivity, np.zeros(1, np.int64), None, None, empty, empty, empty,
                       np.zeros(1, np.int64))
    counts_d = b.empty((nrows,), np.int32, what="island run counts")
    b.run(COUNT_RUNS, mask.words, nrows, nw, counts_d)
    offsets = np.zeros(nrows + 1, np.int64)
    np.cumsum(b.to_host(counts_d), out=offsets[1:])
    n = int(offsets[-1])
    if n == 0:
        empty = np.zeros(0, np.int32)
        return Islands(mask, connectivity, offsets, None, None, empty, empty, empty, np.zeros(1, np.int64))
    offs_d = b.asarray(offsets, what="island row offsets")
    rs_d = b.empty((n,), np.int32, what="island runs")
    re_d = b.empty((n,), np.int32, what="island runs")
    b.run(FILL_RUNS, mask.words, nrows, nw, offs_d, rs_d, re_d)
    parent = b.empty((n,), np.int64, what="island union-find")
    b.run(INIT_PARENT, parent, n)
    b.run(UNITE_ROWS, offs_d, nk, nj, rs_d, re_d, parent, full)
    b.run(FLATTEN, parent, n)
    rs, re, roots = b.to_host(rs_d), b.to_host(re_d), b.to_host(parent)
    labels, sizes = label_runs(roots, rs, re)
    isl = Islands(mask, connectivity, offsets, rs_d, re_d, rs, re, labels, sizes)
    isl._dev = (offs_d, b.asarray(labels))
    return isl


def label(mask: Mask, connectivity: int = 6) -> tuple[np.ndarray, int]:
    """``(labels, n)`` like ``scipy.ndimage.label``: a dense int32 array of the grid."""
    isl = connected_components(mask, connectivity)
    return isl.to_numpy(), isl.n


def keep_largest_island(mask: Mask, connectivity: int = 6, min_size: int = 0) -> Mask:
    """The largest island (the first in raster order among equals). As Slicer's KEEP_LARGEST_ISLAND
    (islands smaller than ``min_size`` voxels are dropped first), the result is empty when the
    largest island has fewer than ``min_size`` voxels."""
    if int(min_size) < 0:
        raise InvalidInputError(f"minimum island size must not be negative, got {min_size}")
    isl = connected_components(mask, connectivity)
    if not isl.n:
        return mask.copy()
    v = isl.largest()
    if isl.sizes[v] < int(min_size):
        return Mask.empty(mask.geometry, backend=mask.backend)
    return isl.mask_of([v])


def remove_small_islands(mask: Mask, min_size: int, connectivity: int = 6) -> Mask:
    """Keep the islands of at least ``min_size`` voxels."""
    if int(min_size) < 0:
        raise InvalidInputError(f"minimum island size must not be negative, got {min_size}")
    isl = connected_components(mask, connectivity)
    return isl.mask_of([v for v in range(1, isl.n + 1) if isl.sizes[v] >= int(min_size)])


def split_islands(mask: Mask, min_size: int = 0, connectivity: int = 6) -> list[Mask]:
    """One mask per island of at least ``min_size`` voxels, largest first (ties in raster order
    of the islands' first voxels)."""
    if int(min_size) < 0:
        raise InvalidInputError(f"minimum island size must not be negative, got {min_size}")
    isl = connected_components(mask, connectivity)
    return [isl.mask_of([v]) for v in isl.by_size() if isl.sizes[v] >= int(min_size)]


def keep_selected_island(mask: Mask, kji: Sequence[int], connectivity: int = 6) -> Mask:
    isl = connected_components(mask, connectivity)
    v = isl.label_at(kji)
    if v == 0:
        raise InvalidInputError(f"voxel {tuple(kji)} is not in the mask: click inside an island")
    return isl.mask_of([v])


def remove_selected_island(mask: Mask, kji: Sequence[int], connectivity: int = 6) -> Mask:
    isl = connected_components(mask, connectivity)
    v = isl.label_at(kji)
    if v == 0:
        raise InvalidInputError(f"voxel {tuple(kji)} is not in the mask: click inside an island")
    return isl.mask_of([u for u in range(1, isl.n + 1) if u != v])


def add_selected_island(mask: Mask, kji: Sequence[int], connectivity: int = 6) -> Mask:
    """Add the background region holding ``(k, j, i)`` (fill a hole), Slicer's ADD_SELECTED_ISLAND."""
    background = invert(mask)
    isl = connected_components(background, connectivity)
    v = isl.label_at(kji)
    if v == 0:
        raise InvalidInputError(f"voxel {tuple(kji)} is already in the mask: click in the background")
    return union(mask, isl.mask_of([v])).shrink_()


def bounded_region(masks: Sequence[Mask], kji: Sequence[int], connectivity: int = 6) -> Mask | None:
    """The region Slicer's ADD_SELECTED_ISLAND fills at voxel ``(k, j, i)``: the connected region
    of equal value, around the click, in the merged labelmap of ``masks`` (later masks overwrite
    earlier ones, as in Slicer's merged labelmap: value n+1 for ``masks[n]``, 0 for none), within
    the union of the masks' effective extents padded by one voxel (Slicer's
    EXTENT_UNION_OF_SEGMENTS_PADDED). The padding may lie outside the grid, as in Slicer, so the
    background can connect around a segment that touches the border; the result is cropped to
    the grid. None when the click lies outside that extent (Slicer then changes nothing).

    The region's blocks (bounded by the masks' extents) are assembled on the host and labelled
    on the masks' backend in a local grid of the padded extent.
    """
    if not masks:
        raise InvalidInputError("the region needs at least one (visible) segment mask")
    g, b = masks[0].geometry, masks[0].backend
    for m in masks:
        if not isinstance(m, Mask):
            raise InvalidInputError(f"expected Masks, got {type(m).__name__}")
        g.check_same_grid(m.geometry, "segment masks")
    k, j, i = (int(v) for v in kji)
    if not g.contains_index((k, j, i)):
        raise OutOfBoundsError(f"voxel (k, j, i) = {(k, j, i)} is outside the volume of shape {g.shape}")
    ext = Extent.empty()
    for m in masks:
        ext = ext.union(m.extent())
    if ext.is_empty:
        return None
    pad = ext.pad(1)
    if not (pad.k0 <= k < pad.k1 and pad.j0 <= j < pad.j1 and pad.i0 <= i < pad.i1):
        return None
    inner = pad.clip(g.shape)
    dense = np.zeros(inner.shape, np.int32)
    for n, m in enumerate(masks):
        dense[m.to_numpy(inner)] = n + 1
    off = (inner.k0 - pad.k0, inner.j0 - pad.j0, inner.i0 - pad.i0)
    sl = tuple(slice(o, o + s) for o, s in zip(off, inner.shape))
    merged = np.zeros(pad.shape, np.int32)  # the padding outside the grid is background
    merged[sl] = dense
    value = merged[k - pad.k0, j - pad.j0, i - pad.i0]
    local = ImageGeometry(pad.shape)
    isl = connected_components(Mask.from_numpy(merged == value, local, backend=b), connectivity)
    v = isl.label_at((k - pad.k0, j - pad.j0, i - pad.i0))
    region = isl.mask_of([v]).to_numpy()[sl]
    return Mask.from_numpy(region, g, offset=(inner.k0, inner.j0, inner.i0), backend=b, crop=True)
