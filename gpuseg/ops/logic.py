"""Logical operators on masks, Slicer's Logical operators effect as functions.

Inputs may have different boxes on the same grid; the result's box is the smallest that can
hold it (the union for ``union``/``xor``, the intersection for ``intersect``, the first
input's for ``subtract``).
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError
from ..geometry import Extent
from ..mask import Mask, checked_extent, intersect_box, union_box, box_for_extent

__all__ = ["union", "intersect", "subtract", "xor", "invert", "copy", "clear", "fill"]


def _binary(op: str, a: Mask, b: Mask, box) -> Mask:
    if not isinstance(a, Mask):
        raise InvalidInputError(f"expected a Mask, got {type(a).__name__}")
    a.check_compatible(b)
    bk = a.backend
    out = Mask(a.geometry, bk, bk.empty(box[3:], np.uint32, what=f"{op} result"), box)
    with out.writing() as words:
        bk.logic(op, words, box, a.words, a.box, b.words, b.box, 0, a.shape[2])
    return out


def union(a: Mask, b: Mask) -> Mask:
    """Voxels in ``a`` or ``b`` (Slicer: Add)."""
    a.check_compatible(b)
    return _binary("or", a, b, union_box(a.box, b.box))


def intersect(a: Mask, b: Mask) -> Mask:
    """Voxels in both ``a`` and ``b``."""
    a.check_compatible(b)
    return _binary("and", a, b, intersect_box(a.box, b.box))


def subtract(a: Mask, b: Mask) -> Mask:
    """Voxels in ``a`` and not in ``b``."""
    a.check_compatible(b)
    return _binary("andnot", a, b, a.box)


def xor(a: Mask, b: Mask) -> Mask:
    """Voxels in exactly one of ``a`` and ``b``."""
    a.check_compatible(b)
    return _binary("xor", a, b, union_box(a.box, b.box))


def invert(a: Mask, extent: Extent | None = None) -> Mask:
    """Voxels of ``extent`` (default: the whole grid) that are not in ``a``."""
    if not isinstance(a, Mask):
        raise InvalidInputError(f"expected a Mask, got {type(a).__name__}")
    ext = checked_extent(a.geometry, extent)
    box = box_for_extent(ext)
    bk = a.backend
    out = Mask(a.geometry, bk, bk.empty(box[3:], np.uint32, what="invert result"), box)
    with out.writing() as words:
        bk.logic("invert", words, box, a.words, a.box, None, None, ext.i0, ext.i1)
    return out


def copy(a: Mask) -> Mask:
    """An independent copy of ``a``."""
    return a.copy()


def clear(a: Mask, extent: Extent | None = None) -> Mask:
    """``a`` with the voxels of ``extent`` (default: all) removed."""
    if extent is None:
        return Mask.empty(a.geometry, backend=a.backend)
    return subtract(a, Mask.full(a.geometry, extent, backend=a.backend))


def fill(a: Mask, extent: Extent | None = None) -> Mask:
    """``a`` with every voxel of ``extent`` (default: the whole grid) set."""
    return union(a, Mask.full(a.geometry, extent, backend=a.backend))
