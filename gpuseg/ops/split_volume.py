"""Split volume (SegmentEditorExtraEffects' Split volume effect): one cropped image per segment,
filled outside the segment.

What Slicer's effect does (``SegmentEditorSplitVolumeLib/SegmentEditorEffect.py``), and what
this module does the same way:

* each segment is masked with Mask volume's hard-edge ``FILL_OUTSIDE`` (voxels outside the
  segment become ``FillValue``, default 0), on the image's grid;
* the box is the segment's *effective extent* on that grid (``CalculateEffectiveExtent``: the
  bounding box of its voxels) grown by ``PaddingVoxels`` (default 5) on every side of every
  axis;
* the box is **not** clipped to the image: ``vtkImageConstantPad`` fills the part of the box
  that lies past the image with ``FillValue`` too, so a segment touching a border still gets
  its full padding. (``clip_to_image=True`` is a gpuseg option, not Slicer's: the box is then
  cut to the image.)
* the output keeps the input's voxel type, spacing and directions; its origin moves to the
  world position of the box's first voxel, so every voxel keeps its world position (the IJK to
  world matrix is applied to the box corner, oblique directions included).

Deviations, on purpose:

* An empty segment has no effective extent; Slicer then pads an invalid extent and writes a
  meaningless box of fill values. Here empty segments are left out of the result (the caller
  can report them: :func:`split_volume` returns only the non-empty keys).
* Slicer resamples a segment on another grid to the volume first; here the masks must be on the
  image's grid (:class:`~gpuseg.errors.GeometryMismatchError` otherwise).
* Slicer's fill value is an integer spin box (-32768..65535) cast by VTK; here any value the
  image type holds exactly is accepted (the Mask volume rule), others are an error.

All per-voxel work runs in the ``crop_fill`` kernel (``kernels/mask_volume.cl``), which reads the
segment's packed bits directly.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from ..errors import InvalidInputError
from ..geometry import Extent
from ..image import Image
from ..kernels.mask_volume import CROP_FILL
from ..mask import Mask
from .mask_volume import _fill

__all__ = ["split_volume", "split_box", "check_padding_voxels", "MAX_PADDING_VOXELS"]

#: Slicer's spin box allows 0..1000 padding voxels; larger boxes are refused the same way.
MAX_PADDING_VOXELS = 1000


def check_padding_voxels(value) -> int:
    """``value`` as Slicer's ``PaddingVoxels``: an integer in 0..1000, or InvalidInputError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise InvalidInputError(f"padding voxels must be an integer >= 0, got {value!r}")
    if not math.isfinite(float(value)) or float(value) != int(value):
        raise InvalidInputError(f"padding voxels must be an integer >= 0, got {value!r}")
    n = int(value)
    if not 0 <= n <= MAX_PADDING_VOXELS:
        raise InvalidInputError(f"padding voxels must be in 0..{MAX_PADDING_VOXELS} (Slicer's range), got {value!r}")
    return n


def split_box(mask: Mask, padding_voxels: int = 5, *, clip_to_image: bool = False) -> Extent:
    """The box Split volume crops for ``mask``: its effective extent grown by ``padding_voxels``
    on each side (clipped to the grid only with ``clip_to_image``). Empty for an empty mask.
    The box may start at negative indices (Slicer's padded extent past the image)."""
    ext = mask.extent()
    if ext.is_empty:
        return Extent.empty()
    box = ext.pad(check_padding_voxels(padding_voxels))
    return box.clip(mask.geometry.shape) if clip_to_image else box


def split_volume(image: Image, masks: Mapping[str, Mask], *, fill_value: float = 0, padding_voxels: int = 5,
                 clip_to_image: bool = False) -> dict[str, Image]:
    """Slicer's Split volume: for each mask, the image cropped to the mask's padded extent and
    filled with ``fill_value`` outside the mask.

    Parameters
    ----------
    image : Image
        The input volume.
    masks : mapping of str to Mask
        The segments (e.g. segment id -> mask), on the image's grid and backend.
    fill_value : float
        Slicer's ``FillValue`` (default 0): the value outside the segment (and past the image).
    padding_voxels : int
        Slicer's ``PaddingVoxels`` (default 5): voxels added on each side of each axis.
    clip_to_image : bool
        Cut the box to the image (not Slicer's behaviour, which pads past the image with
        ``fill_value``; default False).

    Returns
    -------
    dict of str to Image
        One image per non-empty mask, in the order of ``masks`` (empty masks are left out):
        the input's voxel type, spacing and directions, with the origin moved so that each
        voxel keeps its world position.

    Raises
    ------
    InvalidInputError
        A fill value the image type cannot hold, a negative or non-integer padding, a non-Mask,
        masks on another backend.
    GeometryMismatchError
        A mask on another grid.
    """
    if not isinstance(image, Image):
        raise InvalidInputError(f"split volume needs an Image, got {type(image).__name__}")
    if not isinstance(masks, Mapping):
        raise InvalidInputError(f"split volume needs a mapping of names to Masks, got {type(masks).__name__}")
    pad = check_padding_voxels(padding_voxels)
    g, b = image.geometry, image.backend
    dt = np.dtype(image.dtype)
    a = _fill(fill_value, dt, "fill value")
    for key, m in masks.items():
        if not isinstance(m, Mask):
            raise InvalidInputError(f"split volume: {key!r} is not a Mask ({type(m).__name__})")
        g.check_same_grid(m.geometry, f"image and segment {key!r}")
        if m.backend is not b:
            raise InvalidInputError(f"split volume: image and segment {key!r} must be on the same backend")
    nk, nj, ni = g.shape
    out: dict[str, Image] = {}
    for key, m in masks.items():
        box = split_box(m, pad, clip_to_image=clip_to_image)
        if box.is_empty:
            continue
        onk, onj, oni = box.shape
        n = onk * onj * oni
        data = b.empty(box.shape, dt, what=f"split volume of {key!r}, shape {box.shape} {dt}")
        b.run(CROP_FILL, image.data, data, m, nk, nj, ni, box.k0, box.j0, box.i0, onj, oni, a, n)
        # sub_geometry applies the IJK -> world matrix to the box corner (negative indices too):
        # the origin moves, spacing and directions stay, world positions are unchanged
        res = Image(data, g.sub_geometry(box), b)
        res._has_nan = bool(np.isnan(b.to_numpy(data)).any()) if image.has_nan else False
        out[key] = res
    return out
