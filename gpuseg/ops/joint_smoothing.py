"""Slicer's joint (Taubin) smoothing of several segments (Smoothing effect, JOINT_TAUBIN).

The definition is Slicer's ``SegmentEditorSmoothingEffect.smoothMultipleSegments``:

1. the merged labelmap of the segments: segment n (in the given order) has label n + 1 and
   later segments overwrite earlier ones where they overlap (Slicer's merged labelmap);
2. vtkDiscreteMarchingCubes of every label value: per label the binary marching cubes of
   ``label == value`` (vertices at the midpoints of crossed voxel edges, the grid padded by one
   voxel of background), and a vertex on an edge between two labels is *one* vertex of both
   surfaces, so the interface between touching segments is smoothed once, jointly;
3. vtkWindowedSincPolyDataFilter over that one mesh: 100 iterations, passBand =
   10^(-4 f), feature angle 90, boundary and feature-edge smoothing off, non-manifold
   smoothing on, normalized coordinates (:func:`gpuseg.surface.postprocess.windowed_sinc`);
4. per label, its own triangles (vtkThreshold on the cell label) stenciled back onto the grid
   (vtkPolyDataToImageStencil semantics, :func:`gpuseg.surface.mesh.mesh_to_mask`).

The masks reach the device only through :class:`gpuseg.mask.Mask` and the backend's marching
cubes kernels; the smoothing and stenciling are the host paths the closed-surface conversion
uses, so the result is bit-identical on every backend. The merged labelmap is built on the
host over the union box of the segments (not the whole grid).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InvalidInputError
from ..geometry import Extent
from ..mask import Mask

ITERATIONS = 100


def check_factor(smoothing_factor) -> float:
    try:
        f = float(smoothing_factor)
    except (TypeError, ValueError):
        raise InvalidInputError(f"joint smoothing factor must be a number in [0, 1], got {smoothing_factor!r}") from None
    if isinstance(smoothing_factor, bool) or not 0.0 <= f <= 1.0:
        raise InvalidInputError(f"joint smoothing factor must be in [0, 1], got {smoothing_factor!r}")
    return f


def merged_labels(masks: Sequence[Mask]) -> tuple[np.ndarray, Extent]:
    """``(labels, extent)``: the merged labelmap (uint16, 0 background, mask n -> n + 1, later
    ones overwrite) over the union of the masks' extents."""
    ext = Extent.empty()
    for m in masks:
        ext = ext.union(m.extent())
    labels = np.zeros(ext.shape if not ext.is_empty else (0, 0, 0), np.uint16)
    if ext.is_empty:
        return labels, ext
    for n, m in enumerate(masks):
        labels[m.to_numpy(ext)] = n + 1
    return labels, ext


def discrete_marching_cubes(masks: Sequence[Mask]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Mask]]:
    """vtkDiscreteMarchingCubes of the merged labelmap of ``masks`` in index space.

    Returns ``(vertices, faces, cell_labels, label_masks)``: float32 (i, j, k) vertices shared
    by all labels (one per crossed voxel edge), the faces of every label in label order,
    each face's label (1-based mask number) and the masks of the merged labelmap's labels.
    """
    from ..surface.marching import mesh_index_space

    masks = list(masks)
    if not masks:
        raise InvalidInputError("joint smoothing needs at least one segment")
    g, b = masks[0].geometry, masks[0].backend
    for m in masks[1:]:
        masks[0].check_compatible(m, "joint smoothing masks")
    labels, ext = merged_labels(masks)
    vs, fs, ls, lms = [], [], [], []
    base = 0
    for n in range(len(masks)):
        sel = labels == n + 1
        lm = Mask.from_numpy(sel, g, offset=(ext.k0, ext.j0, ext.i0), backend=b, crop=True) if sel.any() \
            else Mask.empty(g, backend=b)
        lms.append(lm)
        v, f = mesh_index_space(lm)
        vs.append(v)
        fs.append(f.astype(np.int64) + base)
        ls.append(np.full(f.shape[0], n + 1, np.int32))
        base += v.shape[0]
    verts = np.concatenate(vs) if vs else np.zeros((0, 3), np.float32)
    faces = np.concatenate(fs) if fs else np.zeros((0, 3), np.int64)
    cell = np.concatenate(ls) if ls else np.zeros(0, np.int32)
    if verts.shape[0]:
        # vertices are exact half-integers: merge equal positions (VTK's point locator)
        uniq, inverse = np.unique(verts, axis=0, return_inverse=True)
        verts, faces = uniq, inverse.reshape(-1)[faces]
    return verts, faces, cell, lms


def joint_smooth_masks(masks: Sequence[Mask], smoothing_factor: float = 0.5) -> list[Mask]:
    """The jointly smoothed masks (one per input, in order); see the module doc."""
    from ..surface.mesh import mesh_to_mask, transform_to_world
    from ..surface.postprocess import windowed_sinc

    f = check_factor(smoothing_factor)
    masks = list(masks)
    verts, faces, cell, lms = discrete_marching_cubes(masks)
    g, b = masks[0].geometry, masks[0].backend
    if faces.shape[0] == 0:
        return [Mask.empty(g, backend=b) for _ in masks]
    smoothed = windowed_sinc(verts, faces, passband=10.0 ** (-4.0 * f), iterations=ITERATIONS)
    out = []
    for n in range(len(masks)):
        fl = faces[cell == n + 1]
        if fl.shape[0] == 0:
            out.append(Mask.empty(g, backend=b))
            continue
        used, inv = np.unique(fl.ravel(), return_inverse=True)
        world, fw = transform_to_world(smoothed[used], inv.reshape(fl.shape), g)
        out.append(mesh_to_mask(world, fw, g, backend=b, what=f"joint smoothing surface {n + 1}", check=False))
    return out


def joint_smooth(segmentation, segment_ids: Sequence[str], smoothing_factor: float = 0.5) -> dict[str, Mask]:
    """Slicer's JOINT_TAUBIN smoothing of ``segment_ids`` of ``segmentation``: ``{id: mask}``
    (the segmentation itself is not changed; masking does not apply, as in Slicer)."""
    ids = [segmentation.segment(s).id for s in segment_ids]
    if not ids:
        raise InvalidInputError("joint smoothing needs at least one segment")
    check_factor(smoothing_factor)
    res = joint_smooth_masks([segmentation[s].mask for s in ids], smoothing_factor)
    return dict(zip(ids, res))
