"""File input and output."""

from ._atomic import atomic_path
from .images import read_image, read_image_array, read_image_geometry, write_labelmap
from .labels import LabelTable, read_label_table, segmentation_from_labelmap
from .segmentation_io import read_segmentation, write_segmentation

__all__ = ["read_image", "read_image_array", "read_image_geometry", "write_labelmap", "read_segmentation", "write_segmentation",
           "segmentation_from_labelmap", "read_label_table", "LabelTable", "atomic_path"]
