"""File input and output."""

from .images import read_image, read_image_array, write_labelmap

__all__ = ["read_image", "read_image_array", "write_labelmap"]
