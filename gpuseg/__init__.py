"""gpuseg: a GPU segmentation engine for 3D medical images.

Images and bit-packed masks stay on a compute device (CUDA through CuPy, OpenCL through
pyopencl, or the CPU through numba) and every backend gives bit-identical results.

>>> import numpy as np, gpuseg
>>> img = gpuseg.Image.from_numpy(np.zeros((3, 4, 5), np.int16), backend="cpu")
>>> gpuseg.threshold(img, -1, 1).count()
60
"""

from . import jitcache

jitcache.configure()  # before numba is imported: where compiled kernels are cached (gpuseg/jitcache.py)

from .backends import available_backends, get_backend  # noqa: E402 (after the cache is chosen)
from .errors import (BackendUnavailableError, DeviceMemoryError, EmptyRangeError, FileFormatError,
                     FileWriteError, GeometryMismatchError, GpusegError, InvalidInputError, OutOfBoundsError,
                     UnknownSegmentError, UnsupportedDtypeError, UnsupportedParameterError)
from .geometry import Extent, ImageGeometry
from .image import Image
from .io import (read_image, read_label_table, read_segmentation, segmentation_from_labelmap, write_labelmap,
                 write_segmentation)
from .mask import Mask
from .segmentation import Segment, Segmentation
from .ops import (GrowCut, add_selected_island, clear, connected_components, copy, fill, hollow, intersect, invert,
                  flood_fill, grow_from_seeds, keep_largest_island, keep_selected_island, label, level_trace, local_threshold, margin, remove_selected_island,
                  remove_small_islands, segment_statistics, smooth, split_islands, statistics, subtract, threshold,
                  union, xor)
from .ops import segment_shape
from .ops import compare_masks, compare_segmentations
from .ops import (copy_segments, resample_image, resample_nearest, resample_segmentation, specify_geometry)

from .version import __version__

# The editor and the surface pipeline load on first use, so that a CLI call that needs neither
# (info, stats, convert) does not pay for importing them (docs/performance.md, start-up).
_LAZY = {"Editor": "editor", "Masking": "editor", "Surface": "surface", "closed_surface": "surface",
         "mesh_to_mask": "surface", "segment_surfaces": "surface"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gpuseg' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "Image", "Mask", "Segment", "Segmentation", "Editor", "Masking", "ImageGeometry", "Extent",
    "get_backend", "available_backends",
    "read_image", "write_labelmap", "read_segmentation", "write_segmentation", "segmentation_from_labelmap",
    "read_label_table",
    "threshold", "margin", "hollow", "smooth", "statistics", "connected_components", "label",
    "keep_largest_island", "remove_small_islands", "split_islands", "keep_selected_island", "remove_selected_island",
    "add_selected_island", "flood_fill", "level_trace", "local_threshold", "GrowCut", "grow_from_seeds", "segment_statistics", "union", "intersect", "subtract", "xor", "invert", "copy", "clear", "fill",
    "segment_shape", "compare_masks", "compare_segmentations",
    "specify_geometry", "resample_segmentation", "resample_nearest", "resample_image", "copy_segments",
    "Surface", "closed_surface", "segment_surfaces", "mesh_to_mask",
    "GpusegError", "InvalidInputError", "UnsupportedDtypeError", "GeometryMismatchError",
    "OutOfBoundsError", "EmptyRangeError", "UnknownSegmentError", "DeviceMemoryError",
    "BackendUnavailableError", "FileFormatError", "FileWriteError", "UnsupportedParameterError",
]
