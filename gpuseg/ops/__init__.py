"""Stateless operations on images and masks (scikit-image style)."""

from .compare import compare_masks, compare_segmentations
from .grow import GrowCut, grow_from_seeds
from .islands import (Islands, add_selected_island, connected_components, keep_largest_island, keep_selected_island,
                      label, remove_selected_island, remove_small_islands, split_islands)
from .logic import clear, copy, fill, intersect, invert, subtract, union, xor
from .morphology import hollow, margin
from .level_tracing import level_trace
from .regions import flood_fill, local_threshold
from .resample import resample_image, resample_nearest
from .segmentation_geometry import (box_geometry, copy_segments, isotropic_geometry, oversampled_geometry,
                                    resample_segmentation, specify_geometry)
from .shape import segment_shape
from .smoothing import smooth
from .stats import segment_statistics, statistics
from .threshold import threshold, threshold_bounds

__all__ = ["threshold", "threshold_bounds", "union", "intersect", "subtract", "xor", "invert", "copy",
           "clear", "fill", "segment_statistics", "statistics", "segment_shape", "compare_masks", "compare_segmentations", "resample_nearest", "resample_image",
           "specify_geometry", "oversampled_geometry", "isotropic_geometry", "box_geometry", "resample_segmentation",
           "copy_segments", "margin", "hollow", "smooth", "Islands",
           "connected_components", "label", "keep_largest_island", "remove_small_islands", "split_islands",
           "keep_selected_island", "remove_selected_island", "add_selected_island", "flood_fill", "level_trace",
           "local_threshold", "GrowCut", "grow_from_seeds"]
