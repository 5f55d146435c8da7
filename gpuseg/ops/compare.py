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

With ``surface=True`` the same four measures and NSD, prefixed ``surface_``, between the two masks'
closed surfaces ("Closed surface" representations, with the segmentation's conversion parameters):
for every vertex of one surface the exact distance to the nearest point of the other's triangles
(SlicerRT's ``vtkPolyDataDistanceHistogramFilter`` sampling and ``vtkImplicitPolyDataDistance``,
unsigned, both directions; :func:`gpuseg.ops.surface_distance.surface_distances`); statistics as
above over the vertices (``surface_nsd_<t>mm``: the fraction of the vertices of both surfaces within
``t`` mm of the other surface). Surfaces are in world mm, so a resampled second segmentation's
surface is made from its own grid.

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

__all__ = ["compare_masks", "compare_segmentations", "DEFAULT_TOLERANCES_MM", "nsd_key", "SURFACE_KEYS"]

DEFAULT_TOLERANCES_MM = (1.0,)


def nsd_key(t: float) -> str:
    """``nsd_<tolerance>mm``, e.g. ``nsd_1mm``, ``nsd_2.5mm``."""
    return f"nsd_{float(t):g}mm"


#: the surface distance keys besides ``surface_nsd_<t>mm`` (``surface=True``)
SURFACE_KEYS = ("surface_hausdorff_max_mm", "surface_hausdorff_mean_mm", "surface_hausdorff_95_mm", "surface_assd_mm")


def _distance_measures(dab: np.ndarray, dba: np.ndarray, tols: Sequence[float], prefix: str = "") -> dict:
    """Max, mean of the directed means, max of the directed 95th percentiles, ASSD and NSD of two
    directed distance arrays (both non-empty)."""
    alld = np.concatenate([dab, dba])
    out = {f"{prefix}hausdorff_max_mm": float(max(dab.max(), dba.max())),
           f"{prefix}hausdorff_mean_mm": float((dab.mean() + dba.mean()) / 2.0),
           f"{prefix}hausdorff_95_mm": float(max(np.percentile(dab, 95), np.percentile(dba, 95))),
           f"{prefix}assd_mm": float(alld.mean())}
    for t in tols:
        out[prefix + nsd_key(t)] = float((np.count_nonzero(dab <= t) + np.count_nonzero(dba <= t)) / alld.size)
    return out


def _default_surface(mask: Mask):
    """A mask's "Closed surface" with the default conversion parameters (a one-segment
    segmentation's representation, so the same path and parameters as Slicer's defaults)."""
    from ..segmentation import Segmentation

    seg = Segmentation(mask.geometry, backend=mask.backend)
    seg.add_segment(mask.copy(), name="compared")
    return seg.representation(0, "Closed surface")


def surface_measures(surf_a, surf_b, tols: Sequence[float]) -> dict:
    """The ``surface_*`` keys between two closed surfaces (None when either has no triangles)."""
    from .surface_distance import surface_distances

    keys = list(SURFACE_KEYS) + ["surface_" + nsd_key(t) for t in tols]
    if any(s is None or len(s.faces) == 0 for s in (surf_a, surf_b)):
        return {k: None for k in keys}
    return _distance_measures(*surface_distances(surf_a, surf_b), tols, prefix="surface_")


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
                  distances: bool = True, surface: bool = False, surfaces: tuple | None = None) -> dict:
    """Overlap and distance measures of mask ``a`` (e.g. a model's) against ``b`` (a reference).

    Keys: ``voxels``, ``voxels_reference``, ``voxels_both``, ``volume_mm3``,
    ``volume_reference_mm3``, ``volume_difference_mm3``, ``volume_difference_percent`` (of the
    reference), ``dice``, ``jaccard`` and, with
    ``distances``, ``hausdorff_max_mm``, ``hausdorff_mean_mm``, ``hausdorff_95_mm``, ``assd_mm``
    and ``nsd_<t>mm`` for each tolerance (None where a mask is empty).

    ``surface=True`` adds the closed-surface distances ``surface_hausdorff_max_mm``,
    ``surface_hausdorff_mean_mm``, ``surface_hausdorff_95_mm``, ``surface_assd_mm`` and
    ``surface_nsd_<t>mm`` (None where a surface is empty) between ``surfaces`` (a pair of
    :class:`~gpuseg.surface.Surface`, e.g. the segments' "Closed surface" representations) or,
    without them, the masks' closed surfaces with the default conversion parameters.
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
    if surfaces is not None and len(surfaces) != 2:
        raise InvalidInputError(f"surfaces: expected a pair (surface of a, surface of b), got {len(surfaces)}")
    if distances:
        keys = ["hausdorff_max_mm", "hausdorff_mean_mm", "hausdorff_95_mm", "assd_mm"] + [nsd_key(t) for t in tols]
        out.update({k: None for k in keys})
        if na and nb:
            out.update(_distance_measures(*boundary_distances(a, b), tols))
    if surface or surfaces is not None:
        if surfaces is None:
            surfaces = tuple(_default_surface(m) if n else None for m, n in ((a, na), (b, nb)))
        out.update(surface_measures(surfaces[0], surfaces[1], tols))
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
                          resample: bool = True, surface: bool = False,
                          on_pair: Callable[[int, int], None] | None = None) -> list[dict]:
    """One row per segment pair: segments of ``a`` against those of ``b`` matched by name, then
    label value (:func:`match_segments`); or, with ``pairs`` of (segment of a, segment of b),
    those pairs (``b`` defaults to ``a``: segments of one segmentation). When ``b`` is on another
    grid its masks are resampled onto ``a``'s (nearest neighbour), unless ``resample=False``: then
    GeometryMismatchError. ``surface=True`` adds the closed-surface distances of
    :func:`compare_masks` between each segmentation's own "Closed surface" representations (its
    conversion parameters, cached; ``b``'s surfaces from ``b``'s grid, never resampled).
    ``on_pair(done, total)`` is called after each pair (for progress bars)."""
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
    surf_a = surf_b = {}
    if surface:
        surf_a = _surfaces_of(a, [sa for sa, _ in chosen])
        surf_b = _surfaces_of(b, [sb for _, sb in chosen])
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
        pair = (surf_a.get(sa.id) if sa else None, surf_b.get(sb.id) if sb else None) if surface else None
        row.update(compare_masks(sa.mask if sa else empty_a, mb, tolerances=tolerances, distances=distances,
                                 surfaces=pair))
        rows.append(row)
        if on_pair is not None:
            on_pair(len(rows), len(chosen))
    return rows


def _surfaces_of(seg, segments) -> dict:
    """``{segment id: closed surface}`` of the given segments (None entries skipped), converted
    together with the segmentation's conversion parameters."""
    ids = list(dict.fromkeys(s.id for s in segments if s is not None))
    return dict(zip(ids, seg.representations("Closed surface", ids))) if ids else {}
