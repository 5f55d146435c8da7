"""Stateless operations on images and masks (scikit-image style)."""

from .logic import clear, copy, fill, intersect, invert, subtract, union, xor
from .threshold import threshold, threshold_bounds

__all__ = ["threshold", "threshold_bounds", "union", "intersect", "subtract", "xor", "invert", "copy",
           "clear", "fill"]
