"""Closed surfaces: marching cubes on packed masks, mesh post-processing, files, voxelization."""

from .marching import mesh_index_space
from .mesh import METHODS, Surface, check_parameters, closed_surface, segment_surfaces, transform_to_world

__all__ = ["Surface", "closed_surface", "segment_surfaces", "mesh_index_space", "check_parameters",
           "transform_to_world", "METHODS"]
