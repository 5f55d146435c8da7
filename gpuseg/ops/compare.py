"""Segment comparison: overlap (Dice, Jaccard, volumes) and boundary distances (Hausdorff, ASSD, NSD).

SlicerRT's Segment Comparison and the Medical Segmentation Decathlon metrics, on two masks of the
same grid. Definitions (docs/measurements.md):

* overlap counts on the masks' backend (``&`` and ``count``, integer, identical on every backend);
  ``dice = 2|A∩B| / (|A| + |B|)``, ``jaccard = |A∩B| / |A∪B|``; both None when A and B are empty;
* boundary voxels: voxels of the mask with one of their 6 face neighbours outside it (outside the
  grid counts as outside);
* ``d(a, ∂B)``: Euclidean distance in mm between voxel centres, from a boundary voxel of A to the
  nearest boundary voxel of B (exact Euclidean distance transform);
* ``hausdorff_max_mm``: max of the two directed maxima; ``hausdorff_mean_mm``: the mean of the two
  directed means (ITK's AverageHausdorffDistance, SlicerRT's average Hausdorff);
  ``hausdorff_95_mm``: max of the two directed 95th percentiles (linear interpolation);
  ``assd_mm``: all distances of both directions averaged together; ``nsd_<t>mm``: the fraction of
  boundary voxels of both masks within ``t`` mm of the other's boundary.

Distances are computed on the host (scipy) over the union of the two masks' boxes only, a first
version: the packed words of that box are unpacked through the Mask interface. ``compare_masks``
needs both masks on one grid (GeometryMismatchError otherwise); ``compare_segmentations`` resamples
the second segmentation's masks onto the first's grid, nearest neighbour
(:func:`gpuseg.ops.resample.resample_nearest`), when the grids differ.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import InvalidInputError, UnknownSegmentError
from ..mask import Mask
from .resample import resample_nearest

__all__ = ["compare_masks", "compare_segmentations", "DEFAULT_TOLERANCES_MM", "nsd_key"]

DEFAULT_TOLERANCES_MM = (1.0,)


def nsd_key(t: float) -> str:
    """``nsd_<tolerance>mm``, e.g. ``nsd_1mm``, ``nsd_2.5mm``."""
    return f"nsd_{float(t):g}mm"


def _boundary6(padded: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    six = ndimage.generate_binary_structure(3, 1)
    return padded & ~ndimage.binary_erosion(padded, structure=six, border_value=0)


def boundary_distances(a: Mask, b: Mask) -> tuple[np.ndarray, np.ndarray]:
    """Directed boundary distances (mm): for each boundary voxel of ``a`` its distance to the
    boundary of ``b``, and the other way round (both masks non-empty, same grid)."""
    from scipy import ndimage

    ext = a.extent().union(b.extent())  # tight: the distance transforms cost more than the scans
    da = np.pad(a.to_numpy(ext), 1)
    db = np.pad(b.to_numpy(ext), 1)
    ba, bb = _boundary6(da), _boundary6(db)
    sampling = a.geometry.spacing_kji
    dist_to_b = ndimage.distance_transform_edt(~bb, sampling=sampling)
    dist_to_a = ndimage.distance_transform_edt(~ba, sampling=sampling)
    return dist_to_b[ba], dist_to_a[bb]


def compare_masks(a: Mask, b: Mask, *, tolerances: Sequence[float] = DEFAULT_TOLERANCES_MM,
                  distances: bool = True) -> dict:
    """Overlap and distance measures of mask ``a`` (e.g. a model's) against ``b`` (a reference).

    Keys: ``voxels``, ``voxels_reference``, ``voxels_both``, ``volume_mm3``,
    ``volume_reference_mm3``, ``volume_difference_mm3``, ``volume_difference_percent`` (of the
    reference), ``dice``, ``jaccard`` and, with
    ``distances``, ``hausdorff_max_mm``, ``hausdorff_mean_mm``, ``hausdorff_95_mm``, ``assd_mm``
    and ``nsd_<t>mm`` for each tolerance (None where a mask is empty).
    """
    for m, what in ((a, "first mask"), (b, "second mask")):
        if not isinstance(m, Mask):
            raise InvalidInputError(f"{what}: expected a Mask, got {type(m).__name__}")
    a.check_compatible(b, "compared masks")
    tols = [float(t) for t in tolerances]
    for t in tols:
        if not t >= 0.0:
            raise InvalidInputError(f"NSD tolerance must be >= 0 mm, got {t}")
    na, nb = a.count(), b.count()
    both = (a & b).count() if na and nb else 0
    union = na + nb - both
    vv = a.geometry.voxel_volume
    out = {"voxels": na, "voxels_reference": nb, "voxels_both": both, "volume_mm3": na * vv,
           "volume_reference_mm3": nb * vv, "volume_difference_mm3": (na - nb) * vv,
           "volume_difference_percent": 100.0 * (na - nb) / nb if nb else None,
           "dice": 2.0 * both / (na + nb) if na + nb else None,
           "jaccard": both / union if union else None}
    if not distances:
        return out
    keys = ["hausdorff_max_mm", "hausdorff_mean_mm", "hausdorff_95_mm", "assd_mm"] + [nsd_key(t) for t in tols]
    out.update({k: None for k in keys})
    if not (na and nb):
        return out
    dab, dba = boundary_distances(a, b)
    alld = np.concatenate([dab, dba])
    out.update({"hausdorff_max_mm": float(max(dab.max(), dba.max())),
                "hausdorff_mean_mm": float((dab.mean() + dba.mean()) / 2.0),
                "hausdorff_95_mm": float(max(np.percentile(dab, 95), np.percentile(dba, 95))),
                "assd_mm": float(alld.mean())})
    for t in tols:
        out[nsd_key(t)] = float((np.count_nonzero(dab <= t) + np.count_nonzero(dba <= t)) / alld.size)
    return out


def match_segments(a, b, names: Iterable[str] | None = None) -> list[tuple[object, object]]:
    """Pairs ``(segment of a or None, segment of b or None)``: same name first, then, among the
    rest, the same label value; unmatched segments pair with None. ``names`` keeps only the pairs
    where either side has that name (or id); an unknown name raises UnknownSegmentError."""
    sa, sb = list(a), list(b)
    pairs: list[tuple[object, object]] = []
    used_b: set[int] = set()
    by_name = {}
    for j, s in enumerate(sb):
        by_name.setdefault(s.name, j)
    rest_a = []
    for s in sa:
        j = by_name.get(s.name)
        if j is not None and j not in used_b:
            used_b.add(j)
            pairs.append((s, sb[j]))
        else:
            rest_a.append(s)
    for s in rest_a:
        j = next((j for j, t in enumerate(sb) if j not in used_b and t.label_value == s.label_value), None)
        if j is not None:
            used_b.add(j)
            pairs.append((s, sb[j]))
        else:
            pairs.append((s, None))
    pairs.extend((None, t) for j, t in enumerate(sb) if j not in used_b)
    if names is not None:
        wanted = list(names)
        known = {x for s in (*sa, *sb) for x in (s.name, s.id)}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise UnknownSegmentError(f"no segment named {', '.join(map(repr, unknown))} in either segmentation")
        pairs = [p for p in pairs if any(s is not None and (s.name in wanted or s.id in wanted) for s in p)]
    return pairs


def compare_segmentations(a, b=None, *, segments: Iterable[str] | None = None,
                          pairs: Iterable[tuple[str, str]] | None = None,
                          tolerances: Sequence[float] = DEFAULT_TOLERANCES_MM, distances: bool = True,
                          resample: bool = True, on_pair: Callable[[int, int], None] | None = None) -> list[dict]:
    """One row per segment pair: segments of ``a`` against those of ``b`` matched by name, then
    label value (:func:`match_segments`); or, with ``pairs`` of (segment of a, segment of b),
    those pairs (``b`` defaults to ``a``: segments of one segmentation). When ``b`` is on another
    grid its masks are resampled onto ``a``'s (nearest neighbour), unless ``resample=False``: then
    GeometryMismatchError. ``on_pair(done, total)`` is called after each pair (for progress bars)."""
    b = a if b is None else b
    same = a.geometry.is_same_grid(b.geometry)
    if not same and not resample:
        a.geometry.check_same_grid(b.geometry, "the compared segmentations")
    if pairs is not None:
        chosen = [(a.segment(x), b.segment(y)) for x, y in pairs]
    else:
        if b is a:
            raise InvalidInputError("comparing a segmentation with itself needs pairs=[(segment, segment), ...]")
        chosen = match_segments(a, b, segments)
    rows = []
    empty_a = empty_b = None
    for sa, sb in chosen:
        if sa is None:
            empty_a = empty_a or Mask.empty(a.geometry, backend=a.backend)
        if sb is None:
            empty_b = empty_b or Mask.empty(a.geometry, backend=a.backend)
        row = {"segment": (sa or sb).name, "segment_reference": (sb or sa).name,
               "segment_id": sa.id if sa else None, "segment_id_reference": sb.id if sb else None,
               "in_segmentation": sa is not None, "in_reference": sb is not None}
        mb = empty_b
        if sb is not None:
            mb = sb.mask if same else resample_nearest(sb.mask.to(a.backend), a.geometry)
        row.update(compare_masks(sa.mask if sa else empty_a, mb, tolerances=tolerances, distances=distances))
        rows.append(row)
        if on_pair is not None:
            on_pair(len(rows), len(chosen))
    return rows
