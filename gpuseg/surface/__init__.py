"""Closed surfaces and the other derived representations of segments.

* ``closed_surface(mask)`` / ``segment_surfaces(segmentation)``: Slicer's binary labelmap to
  closed surface conversion (marching cubes or surface nets on the packed masks, then
  decimation, windowed-sinc smoothing, world coordinates and normals);
* ``mesh_to_mask``: closed surface to binary labelmap (voxelization);
* ``planar_contours``, ``fractional_labelmap``: the other derived representations;
* ``write_meshes`` / ``read_mesh``: STL, OBJ, PLY, VTP, glTF/GLB files (:mod:`gpuseg.io.meshes`);
* ``check_closed`` / ``is_closed``: mesh topology (:mod:`.topology`).
"""

from .marching import mesh_index_space
from .mesh import (METHODS, Surface, check_parameters, closed_surface, mesh_to_mask, segment_surfaces,
                   transform_to_world)
from .topology import check_closed, is_closed
from .nets import surface_nets_index_space
from .representations import fractional_labelmap, planar_contours, to_slicer_fractional

__all__ = ["Surface", "closed_surface", "segment_surfaces", "mesh_to_mask", "mesh_index_space",
           "surface_nets_index_space", "check_parameters", "transform_to_world", "METHODS", "write_meshes",
           "read_mesh", "read_meshes", "check_closed", "planar_contours", "fractional_labelmap",
           "to_slicer_fractional", "is_closed"]


def __getattr__(name: str):
    """``read_mesh``, ``read_meshes`` and ``write_meshes`` live in :mod:`gpuseg.io.meshes`, which
    itself uses :mod:`.topology`; they are re-exported here on first use, so that importing
    either package first works (no import circle)."""
    if name in ("read_mesh", "read_meshes", "write_meshes"):
        from ..io import meshes

        return getattr(meshes, name)
    raise AttributeError(f"module 'gpuseg.surface' has no attribute {name!r}")
