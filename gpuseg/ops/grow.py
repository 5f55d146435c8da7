"""Grow from seeds (Slicer's Grow from seeds = FastGrowCut, reference §6), defined exactly.

Every free voxel of the region takes the label of the seed with the smallest geodesic
distance; a step p→q to one of the 26 neighbours costs ``|I(p) - I(q)| + λ·‖Δ‖mm`` (λ is the
seed locality). To be identical on every backend the costs are integers:

* λ = 0 and an integer image: the cost is ``|I(p) - I(q)|`` exactly;
* otherwise costs are fixed-point with 4 fractional bits:
  ``rint(|I(p) - I(q)| * 16) + rint(λ * ‖Δ‖mm * 16)``.

Ties in distance go to the lower seed index (the earlier segment): the result is the
lexicographic minimum of (distance, seed index). Where seeds overlap, the later segment's
seed wins (Slicer's merged seed labelmap paints in segment order). Masked voxels (outside
``mask``, the editable area) are never labelled and never propagate. Voxels no seed can reach
stay unlabelled.

The CPU runs an exact multi-source Dijkstra with a bucket queue; OpenCL/CUDA run a worklist
relaxation: each pass, the voxels whose distance dropped in the previous pass (a packed bit
wavefront) offer their neighbours a lower key with an atomic min, until a pass lowers nothing.
Both reach the same unique minimum.

:class:`GrowCut` keeps its distance map: after seeds are added, :meth:`GrowCut.update`
propagates only from the new seed voxels (as Slicer's adaptive update does), and gives the
same labels as a run from scratch. Removing or relabelling seeds needs a new GrowCut.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import InvalidInputError, OutOfBoundsError
from ..geometry import Extent
from ..image import Image
from ..kernels.constants import D32_LIMIT
from ..kernels.grow import GROW_INIT, GROW_LABEL_WORDS, GROW_PROPAGATE, GROW_SET_SEEDS, OVERFLOW, key_limits
from ..mask import Mask, box_for_extent

__all__ = ["GrowCut", "grow_from_seeds", "grow_region"]

FIXED_POINT = 16

#: Step costs up to this many times below D32_LIMIT start with 32-bit keys (4 B per voxel);
#: wider ones, and any grow whose distances outgrow 32 bits, use 64-bit keys (docs/grow.md).
KEY32_MIN_STEPS = 64


#: Slicer's auto-complete effects grow the seeds' extent by this fraction (``extentGrowthRatio``).
EXTENT_GROWTH_RATIO = 0.1


def grow_region(seeds: Sequence[Mask], shape, ratio: float = EXTENT_GROWTH_RATIO) -> Extent:
    """Slicer's region: the seeds' effective extent plus a margin on each side, clipped to ``shape``.

    Per axis the margin is ``int(max(3, ratio * (last - first)))`` voxels, where ``first`` and
    ``last`` are the inclusive bounds of the union of the seeds' effective extents (Slicer's
    auto-complete rule; its log lines are checked in tests/test_grow.py). ``int`` truncates.
    """
    r = float(ratio)
    if not math.isfinite(r) or r < 0:
        raise InvalidInputError(f"extent growth ratio must be a non-negative number, got {ratio!r}")
    ext = Extent.empty()
    for s in seeds:
        ext = ext.union(s.extent())
    if ext.is_empty:
        return ext
    pad = [int(max(3.0, r * (n - 1))) for n in ext.shape]  # n - 1 = last - first (inclusive bounds)
    return ext.pad(pad).clip(shape)


def _value_range(image: Image, region: Extent, slab_voxels: int = 1 << 22) -> tuple[float, float]:
    """(min, max) of the image over ``region``, read in slabs of a few slices, so that no copy
    of the whole region is made (it would add 2-4 B per voxel to the grow's peak memory)."""
    lo, hi = math.inf, -math.inf
    step = max(1, slab_voxels // max(1, region.shape[1] * region.shape[2]))
    for k in range(region.k0, region.k1, step):
        vals = image.region(Extent(k, min(k + step, region.k1), region.j0, region.j1, region.i0, region.i1))
        lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
    return lo, hi


class GrowCut:
    """A grow-from-seeds computation that can be updated with more seeds."""

    def __init__(self, image: Image, seeds: Sequence[Mask], *, seed_locality: float = 0.0,
                 mask: Mask | None = None, region: Extent | None = None,
                 extent_growth_ratio: float = EXTENT_GROWTH_RATIO) -> None:
        if not isinstance(image, Image):
            raise InvalidInputError(f"grow from seeds needs an Image, got {type(image).__name__}")
        seeds = list(seeds)
        if not 1 <= len(seeds) <= 255:
            raise InvalidInputError(f"grow from seeds needs 1 to 255 seed segments, got {len(seeds)}")
        for s in seeds:
            if not isinstance(s, Mask):
                raise InvalidInputError(f"seeds must be Masks, got {type(s).__name__}")
            if s.backend is not image.backend:
                raise InvalidInputError("seeds and image must be on the same backend")
            image.geometry.check_same_grid(s.geometry, "image and seeds")
        if len(seeds) < 2 and mask is None:
            raise InvalidInputError("grow from seeds needs at least two seed segments, or one with an editable mask")
        if mask is not None:
            image.geometry.check_same_grid(mask.geometry, "image and mask")
        if image.has_nan:
            raise InvalidInputError("the image holds NaN values: grow from seeds needs finite intensities")
        lam = float(seed_locality)
        if not math.isfinite(lam) or lam < 0:
            raise InvalidInputError(f"seed locality must be a non-negative number, got {seed_locality!r}")
        self._user_region = region is not None  # a user ROI stays; Slicer's region follows the seeds
        self.extent_growth_ratio = extent_growth_ratio
        if region is None:
            region = grow_region(seeds, image.shape, extent_growth_ratio)
        else:
            if not image.geometry.extent.contains(region):
                raise OutOfBoundsError(f"grow region {region} is outside the image of shape {image.shape}")
        if region.is_empty or all(s.count() == 0 for s in seeds):
            raise InvalidInputError("the seed segments are empty: paint seeds first")
        self.image, self.mask, self.region = image, mask, region
        self.seed_locality = lam
        self.nlabels = len(seeds)
        exact = lam == 0 and image.dtype.kind in "iu"
        self.scale = 1 if exact else FIXED_POINT
        si, sj, sk = image.geometry.spacing
        self.lam = np.zeros(27, np.int64)
        o = 0
        for dk in (-1, 0, 1):
            for dj in (-1, 0, 1):
                for di in (-1, 0, 1):
                    if lam > 0:
                        self.lam[o] = int(np.rint(lam * math.sqrt((di * si) ** 2 + (dj * sj) ** 2 + (dk * sk) ** 2)
                                                  * FIXED_POINT))
                    o += 1
        lo, hi = _value_range(image, region)  # the region's intensities bound the largest step cost
        rng = hi - lo
        self.max_cost = int(np.rint(rng * self.scale)) + int(self.lam.max()) + 1
        if self.max_cost > (1 << 26):
            raise InvalidInputError(f"intensity range {rng:g} is too wide for grow from seeds (step costs up to "
                                    f"{self.max_cost}); rescale the image")
        #: the keys' type: uint32 unless step costs are too wide, or the distances outgrew it
        self.key_dtype = np.dtype(np.uint32 if self.max_cost * KEY32_MIN_STEPS <= D32_LIMIT else np.uint64)
        labels = np.zeros(region.shape, np.uint8)
        self._paint_seeds(labels, seeds)
        # the seed labels live on the backend only (1 B per voxel); the host copy goes now
        self._labels = self.image.backend.asarray(labels.ravel(), what="seed labels")
        start = np.flatnonzero(labels.ravel())
        del labels
        self.keys = None
        self._lam = None
        self._run(start, full=True)

    # --- seeds ------------------------------------------------------------------------------
    def _paint_seeds(self, labels: np.ndarray, seeds: Sequence[Mask]) -> np.ndarray:
        """Paint seeds into the region's label map ``labels`` (later segments win); returns the
        map as it was before."""
        before = labels.copy()
        for n, s in enumerate(seeds, start=1):
            if s.nbytes:
                labels[s.to_numpy(self.region)] = n
        return before

    def seed_labels(self) -> np.ndarray:
        """A host copy of the region's seed label map (0 = no seed, n = seed segment n)."""
        return self.image.backend.to_numpy(self._labels).reshape(self.region.shape)

    # --- computation ------------------------------------------------------------------------
    def _run(self, start: np.ndarray, full: bool) -> None:
        """Propagate from the region voxels ``start``: all the seeds (``full``: new keys), or
        the new seed voxels of an update. If 32-bit keys overflow, run again with 64-bit keys."""
        b = self.image.backend
        r = self.region
        rnk, rnj, rni = r.shape
        n = rnk * rnj * rni
        start = np.asarray(start, np.int64)
        if full:
            self.keys = None  # freed before the new keys are allocated
            self.keys = b.empty((n,), self.key_dtype, what=f"grow-from-seeds keys of region {r.shape}")
            m = self.mask
            b.run(GROW_INIT, self.keys, self._labels, n, m, m is not None, r.k0, r.j0, r.i0, rnj, rni,
                  specialise={"IMAGE_T": self.image.dtype})
        else:
            # the new seed voxels become seeds on the device (masked ones stay blocked)
            b.run(GROW_SET_SEEDS, self.keys, self._labels, b.asarray(start, what="new seed voxels"), start.size,
                  specialise={"IMAGE_T": self.image.dtype})
        if self._lam is None:
            self._lam = b.asarray(self.lam)
        self.passes = b.run(GROW_PROPAGATE, self.keys, self._labels, self.image.data,
                            (r.k0, r.j0, r.i0, rnk, rnj, rni), self._lam, self.scale, start, self.nlabels,
                            self.max_cost + 1, self.image.dtype)
        if self.passes == OVERFLOW:
            if self.key_dtype == np.uint64:  # cannot happen: step costs < 2**27, distances < 2**56
                raise InvalidInputError("grow from seeds: a distance does not fit 64-bit keys")
            self.key_dtype = np.dtype(np.uint64)
            self._run(np.flatnonzero(self.seed_labels().ravel()), full=True)

    def update(self, seeds: Sequence[Mask]) -> list[Mask]:
        """Add seed voxels (the full, grown seed masks, in the same order) and update.

        Only the new seed voxels propagate. If a seed voxel changed label, a new seed voxel had
        been reached at distance 0 by a lower segment index (see :meth:`_ties_lost`), or the
        seeds leave Slicer's region (when no region was given), the computation starts again
        from scratch.
        With a given region, seeds outside it are ignored as they were at the start.
        """
        seeds = list(seeds)
        if len(seeds) != self.nlabels:
            raise InvalidInputError(f"update needs the same {self.nlabels} seed segments, got {len(seeds)}")
        region = grow_region(seeds, self.image.shape, self.extent_growth_ratio)
        if not self._user_region and not self.region.contains(region):
            self.__init__(self.image, seeds, seed_locality=self.seed_locality, mask=self.mask,  # type: ignore[misc]
                          extent_growth_ratio=self.extent_growth_ratio)
            return self.result()
        labels = self.seed_labels()
        old = self._paint_seeds(labels, seeds)
        idx = np.flatnonzero(old.ravel() != labels.ravel())
        if idx.size == 0:
            return self.result()
        relabelled = bool(np.any(old.ravel()[idx] > 0))
        new = labels.ravel()[idx]
        del old
        if not relabelled and not self._ties_lost(idx, new):
            self._labels = None
            self._labels = self.image.backend.asarray(labels.ravel(), what="seed labels")
            del labels
            self._run(idx, full=False)
        else:
            labels[:] = 0
            self._paint_seeds(labels, seeds)
            self._labels = None
            self._labels = self.image.backend.asarray(labels.ravel(), what="seed labels")
            start = np.flatnonzero(labels.ravel())
            del labels
            self._run(start, full=True)
        return self.result()

    def _ties_lost(self, idx: np.ndarray, new: np.ndarray) -> bool:
        """Whether a new seed voxel (region indices ``idx``, labels ``new``) was reached at
        distance 0 by a lower segment index.

        Propagating from the new seeds replaces every key whose path ran through a new seed
        voxel of another label when that voxel's old distance was above 0 (the new seed offers
        the same path shorter). At distance 0 the old label keeps the tie wherever it is lower,
        although its paths through the voxel are gone: only a run from scratch is exact then."""
        lo = int(idx[0])
        keys = self.image.backend.to_numpy(self.keys[lo:int(idx[-1]) + 1])[idx - lo].astype(np.uint64)
        inf = np.uint64(key_limits(self.keys)[0])
        return bool(np.any((keys < inf) & ((keys >> np.uint64(8)) == 0) & ((keys & np.uint64(255)) < new)))

    # --- results ----------------------------------------------------------------------------
    def result(self) -> list[Mask]:
        """One mask per seed segment (in seed order), over the region."""
        b = self.image.backend
        r = self.region
        box = box_for_extent(r)
        lead = r.i0 - 32 * box[2]
        rnk, rnj, rni = r.shape
        out = []
        for label in range(1, self.nlabels + 1):
            words = b.empty(box[3:], np.uint32, what="grow result")
            b.run(GROW_LABEL_WORDS, self.keys, rnk, rnj, rni, lead, label, words, box[5],
                  specialise={"IMAGE_T": self.image.dtype})
            out.append(Mask(self.image.geometry, b, words, box).shrink_())
        return out

    def distances(self) -> np.ndarray:
        """The geodesic distance of every region voxel (float64; inf where unreached or masked)."""
        keys = self.image.backend.to_numpy(self.keys)
        d = (keys >> keys.dtype.type(8)).astype(np.float64) / self.scale
        d[keys >= key_limits(keys)[0]] = np.inf
        return d.reshape(self.region.shape)


def grow_from_seeds(image: Image, seeds: Sequence[Mask], *, seed_locality: float = 0.0, mask: Mask | None = None,
                    region: Extent | None = None, extent_growth_ratio: float = EXTENT_GROWTH_RATIO) -> list[Mask]:
    """Grow the seed masks over the region; one result mask per seed (see the module doc).
    Without ``region``, Slicer's region (:func:`grow_region` with ``extent_growth_ratio``)."""
    return GrowCut(image, seeds, seed_locality=seed_locality, mask=mask, region=region,
                   extent_growth_ratio=extent_growth_ratio).result()
