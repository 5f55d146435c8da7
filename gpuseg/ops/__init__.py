"""Stateless operations on images and masks (scikit-image style)."""

from .logic import clear, copy, fill, intersect, invert, subtract, union, xor
from .morphology import hollow, margin
from .smoothing import smooth
from .stats import segment_statistics, statistics
from .threshold import threshold, threshold_bounds

__all__ = ["threshold", "threshold_bounds", "union", "intersect", "subtract", "xor", "invert", "copy",
           "clear", "fill", "segment_statistics", "statistics", "margin", "hollow", "smooth"]
