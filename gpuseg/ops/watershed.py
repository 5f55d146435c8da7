"""Watershed (Slicer's SegmentEditorExtraEffects): a gradient-magnitude image flooded from
marker labels.

The definition is SimpleITK's, as Slicer's Watershed effect uses it:

1. feature image = ``sitk.GradientMagnitudeRecursiveGaussian(source, sigma=ObjectScaleMm)``
   over the region (with the grid's spacing), float32;
2. labels = ``sitk.MorphologicalWatershedFromMarkers(feature, markers, markWatershedLine=False,
   fullyConnected=False)``.

Step 1 calls SimpleITK on the host over the region (the ``itk`` extra). Step 2 is this
module's own priority flood (:func:`watershed_from_markers`, host-side numba: a serial
priority queue, no kernel), written to give ITK's labels exactly: the border voxels of the
markers enter the queue in raster order at their own feature value; the voxel of lowest
priority is taken first, first in first out among equal priorities; each unlabelled
face neighbour (ITK's order: k-1, j-1, i-1, i+1, j+1, k+1) takes its label and enters at
``max(feature, current priority)``. tests/test_watershed.py compares it with SimpleITK's filter
on real CT. Results are host arrays, so they are the same on every backend.
"""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit

from ..errors import BackendUnavailableError, InvalidInputError

__all__ = ["gradient_magnitude", "watershed_from_markers"]


def gradient_magnitude(block: np.ndarray, spacing_kji, sigma_mm: float) -> np.ndarray:
    """SimpleITK's ``GradientMagnitudeRecursiveGaussian`` of a host block (float32 result).

    Raises
    ------
    BackendUnavailableError
        SimpleITK is not installed (``pip install 'gpuseg[itk]'``).
    InvalidInputError
        ``sigma_mm`` is not positive and finite.
    """
    s = float(sigma_mm)
    if not (np.isfinite(s) and s > 0):
        raise InvalidInputError(f"object_scale_mm must be a positive number, got {sigma_mm!r}")
    try:
        import SimpleITK as sitk
    except ImportError:
        raise BackendUnavailableError("the watershed needs SimpleITK: pip install 'gpuseg[itk]'") from None
    img = sitk.GetImageFromArray(np.ascontiguousarray(block))
    img.SetSpacing([float(v) for v in spacing_kji[::-1]])
    out = sitk.GradientMagnitudeRecursiveGaussian(img, s)
    return sitk.GetArrayFromImage(out).astype(np.float32, copy=False)


@njit(cache=True)
def _flood(feature, labels):
    nk, nj, ni = labels.shape
    dk = (-1, 0, 0, 0, 0, 1)
    dj = (0, -1, 0, 0, 1, 0)
    di = (0, 0, -1, 1, 0, 0)
    heap = [(np.float64(0.0), np.int64(0), np.int64(0))]
    heap.pop()
    order = np.int64(0)
    for k in range(nk):
        for j in range(nj):
            for i in range(ni):
                if labels[k, j, i] == 0:
                    continue
                for n in range(6):
                    kk, jj, ii = k + dk[n], j + dj[n], i + di[n]
                    if 0 <= kk < nk and 0 <= jj < nj and 0 <= ii < ni and labels[kk, jj, ii] == 0:
                        heapq.heappush(heap, (np.float64(feature[k, j, i]), order, np.int64((k * nj + j) * ni + i)))
                        order += 1
                        break
    while len(heap) > 0:
        cur, _, idx = heapq.heappop(heap)
        i = idx % ni
        j = (idx // ni) % nj
        k = idx // (ni * nj)
        lab = labels[k, j, i]
        for n in range(6):
            kk, jj, ii = k + dk[n], j + dj[n], i + di[n]
            if 0 <= kk < nk and 0 <= jj < nj and 0 <= ii < ni and labels[kk, jj, ii] == 0:
                labels[kk, jj, ii] = lab
                v = np.float64(feature[kk, jj, ii])
                heapq.heappush(heap, (v if v > cur else cur, order, np.int64((kk * nj + jj) * ni + ii)))
                order += 1


def watershed_from_markers(feature: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """Morphological watershed from markers (no watershed line, face connectivity), as ITK's
    ``MorphologicalWatershedFromMarkersImageFilter`` (see the module docstring).

    Parameters
    ----------
    feature : numpy.ndarray
        (nk, nj, ni) float feature image (float32 from :func:`gradient_magnitude`).
    markers : numpy.ndarray
        (nk, nj, ni) integer labels, 0 = unlabelled.

    Returns
    -------
    numpy.ndarray
        int32 labels: every voxel connected to a marker takes a marker's label.
    """
    f = np.asarray(feature)
    m = np.asarray(markers)
    if f.ndim != 3 or f.shape != m.shape:
        raise InvalidInputError(f"feature and markers must be 3D arrays of one shape, got {f.shape} and {m.shape}")
    if not np.issubdtype(f.dtype, np.floating) or not np.all(np.isfinite(f)):
        raise InvalidInputError("the feature image must be finite floating point")
    labels = np.ascontiguousarray(m, dtype=np.int32).copy()
    if labels.size:
        _flood(np.ascontiguousarray(f), labels)
    return labels
