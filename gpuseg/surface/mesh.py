"""Closed surfaces of segments: Slicer's binary labelmap -> closed surface conversion.

The pipeline follows Slicer's ``vtkBinaryLabelmapToClosedSurfaceConversionRule`` (reference
§1.3), with gpuseg's own parts:

1. marching cubes on the packed mask, padded by one voxel (``marching.mesh_index_space``),
   in voxel index space: the same triangles as ``vtkDiscreteFlyingEdges3D``;
2. decimation, if the decimation factor is > 0 (quadric decimation; Slicer uses
   ``vtkDecimatePro``);
3. windowed-sinc smoothing, if the smoothing factor is > 0, with Slicer's pass band
   ``10^(-4 s)`` and ``20 + 40 s`` iterations (a negative factor means smoothing is off);
4. the index-to-world transform (LPS mm), reversing the triangles if it mirrors;
5. vertex normals, if asked.

Steps 1 and 4 are exact and identical on every backend; 2, 3 and 5 run on the host in numpy
on the (much smaller) mesh and are deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..errors import InvalidInputError
from ..geometry import ImageGeometry
from ..mask import Mask
from .marching import mesh_index_space

METHODS = ("flying-edges", "surface-nets")


@dataclass
class Surface:
    """A triangle mesh in world LPS millimetres, outward oriented.

    ``faces`` index ``vertices``; ``normals`` (if computed) are unit vertex normals.
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None = None
    name: str = ""
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    segment_id: str | None = None
    parameters: dict[str, float | bool | str] = field(default_factory=dict)

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    def is_empty(self) -> bool:
        return self.n_faces == 0

    def _corners(self):
        v = self.vertices.astype(np.float64)
        f = self.faces
        return v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]

    def area(self) -> float:
        """Surface area in mm^2."""
        if self.is_empty():
            return 0.0
        a, b, c = self._corners()
        return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())

    def volume(self) -> float:
        """Enclosed volume in mm^3 (divergence theorem; positive for an outward mesh)."""
        if self.is_empty():
            return 0.0
        a, b, c = self._corners()
        return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)

    def edge_use_counts(self) -> np.ndarray:
        """How many triangles use each undirected edge (2 everywhere for a closed manifold)."""
        if self.is_empty():
            return np.zeros(0, np.int64)
        f = self.faces.astype(np.int64)
        e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        _, counts = np.unique(e[:, 0] * (int(f.max()) + 1) + e[:, 1], return_counts=True)
        return counts

    def is_watertight(self) -> bool:
        """Every edge is shared by exactly two triangles, in opposite directions."""
        from .topology import is_closed  # the one home of the closedness rules

        return is_closed(self.faces)

    def euler_characteristic(self) -> int:
        """V - E + F (2 for each sphere-like component, 0 for a torus)."""
        if self.is_empty():
            return 0
        n_edges = self.edge_use_counts().size
        used = np.unique(self.faces).size
        return int(used - n_edges + self.n_faces)

    def to_trimesh(self):
        """A ``trimesh.Trimesh`` (no processing, so vertices and faces stay as they are)."""
        import trimesh

        return trimesh.Trimesh(vertices=self.vertices, faces=self.faces, vertex_normals=self.normals,
                               process=False)

    def save(self, path, **kwargs):
        """Write this surface (format from the suffix: .stl .obj .ply .vtp .glb)."""
        from ..io.meshes import write_meshes

        return write_meshes(path, [self], **kwargs)

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<Surface{label} {self.n_vertices} vertices, {self.n_faces} triangles>"


def _check_factor(name: str, value, lo: float, hi: float, hi_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(v) or v > hi or (hi_open and v >= hi) or v < lo:
        bound = f"[{lo}, {hi})" if hi_open else f"[{lo}, {hi}]"
        raise InvalidInputError(f"{name} must be in {bound}, got {value!r}")
    return v


def check_parameters(smoothing: float = 0.0, decimation: float = 0.0, method: str = "flying-edges"):
    """Validate conversion parameters; returns ``(smoothing, decimation, method)``.

    ``smoothing`` may be negative (Slicer's "smoothing off, value remembered"): it is then
    treated as 0. Values above 1, NaN, decimation outside [0, 1) and unknown methods raise
    :class:`InvalidInputError`.
    """
    s = _check_factor("smoothing factor", smoothing, -1.0, 1.0)
    d = _check_factor("decimation factor", decimation, 0.0, 1.0, hi_open=True)
    if method not in METHODS:
        raise InvalidInputError(f"unknown surface method {method!r}; use one of {', '.join(METHODS)}")
    return max(s, 0.0), d, method


def transform_to_world(vertices_ijk: np.ndarray, faces: np.ndarray, geometry: ImageGeometry):
    """Vertices (i, j, k) to world LPS mm (float32), and faces reversed if the grid mirrors."""
    m = geometry.ijk_to_world
    v = vertices_ijk.astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    if np.linalg.det(m[:3, :3]) < 0:
        faces = faces[:, ::-1].copy()
    return v.astype(np.float32), faces


def _finish(verts: np.ndarray, faces: np.ndarray, geometry: ImageGeometry, *, smoothing: float, decimation: float,
            normals: bool, method: str, name: str, color, joint: bool = False) -> Surface:
    """Steps 2-5 of the conversion (decimate, smooth, to world, normals) on an index-space mesh."""
    if faces.shape[0] and decimation > 0:
        from .postprocess import decimate

        verts, faces = decimate(verts, faces, decimation)
    if faces.shape[0] and smoothing > 0 and not joint:
        from .postprocess import slicer_smoothing_parameters, windowed_sinc

        passband, iterations = slicer_smoothing_parameters(smoothing)
        verts = windowed_sinc(verts, faces, passband=passband, iterations=iterations)
    world, faces = transform_to_world(verts, faces, geometry)
    vn = None
    if normals and faces.shape[0]:
        from .postprocess import vertex_normals

        vn = vertex_normals(world, faces)
    elif normals:
        vn = np.zeros((0, 3), np.float32)
    params: dict[str, float | bool | str] = {"smoothing": smoothing, "decimation": decimation,
                                             "normals": bool(normals), "method": method}
    if method == "surface-nets":
        params["joint_smoothing"] = bool(joint)
    return Surface(world, faces, vn, name=name, color=tuple(float(c) for c in color), parameters=params)


def closed_surface(mask: Mask, *, smoothing: float = 0.0, decimation: float = 0.0, normals: bool = True,
                   method: str = "flying-edges", name: str = "",
                   color: Sequence[float] = (0.5, 0.5, 0.5)) -> Surface:
    """The closed surface of a mask, in world LPS mm (Slicer's conversion, steps in the module doc).

    ``method`` is ``"flying-edges"`` (marching cubes; the same triangles as VTK's
    vtkDiscreteFlyingEdges3D) or ``"surface-nets"`` (vertices at the centres of crossed cubes,
    one quad per crossed voxel edge; see :mod:`gpuseg.surface.nets`).

    >>> import numpy as np, gpuseg
    >>> from gpuseg.surface import closed_surface
    >>> cube = np.zeros((4, 4, 4), bool); cube[1:3, 1:3, 1:3] = True
    >>> s = closed_surface(gpuseg.Mask.from_numpy(cube, backend="cpu"))
    >>> s.n_faces, s.is_watertight(), s.euler_characteristic()
    (44, True, 2)
    """
    s, d, method = check_parameters(smoothing, decimation, method)
    if method == "surface-nets":
        from .nets import compact, surface_nets_index_space

        if not isinstance(mask, Mask):
            raise InvalidInputError(f"expected a Mask, got {type(mask).__name__}")
        all_verts, (faces,) = surface_nets_index_space([mask])
        verts, faces = compact(all_verts, faces)
    else:
        verts, faces = mesh_index_space(mask)
    return _finish(verts, faces, mask.geometry, smoothing=s, decimation=d, normals=normals, method=method,
                   name=name, color=color)


def sub_voxel_geometry(geometry: ImageGeometry, ext, n: int) -> ImageGeometry:
    """The grid of sub-voxel sample points of ``ext``: ``n`` per voxel and axis, centred in the
    voxel (``n = 1`` is the voxel centres of ``ext`` themselves)."""
    m = geometry.ijk_to_world
    shift = np.array([ext.i0, ext.j0, ext.k0], float) - 0.5 + 0.5 / n
    sub = np.eye(4)
    sub[:3, :3] /= n
    sub[:3, 3] = shift
    shape = (ext.shape[0] * n, ext.shape[1] * n, ext.shape[2] * n)
    return ImageGeometry.from_matrix(shape, m @ sub)


def mesh_box(vertices: np.ndarray, geometry: ImageGeometry, pad: int = 0):
    """The voxel extent (not clipped to the grid) whose voxel centres a mesh's bounding box
    may hold, padded by ``pad`` voxels."""
    from ..geometry import Extent

    ijk = geometry.world_to_ijk_points(np.asarray(vertices, np.float64))
    lo = np.floor(ijk.min(0)).astype(int) - pad
    hi = np.ceil(ijk.max(0)).astype(int) + 1 + pad
    return Extent(lo[2], hi[2], lo[1], hi[1], lo[0], hi[0])


def mesh_to_mask(vertices: np.ndarray, faces: np.ndarray, geometry: ImageGeometry, *, backend=None,
                 what: str = "mesh", check: bool = True) -> Mask:
    """Closed surface -> binary labelmap: the voxels of ``geometry`` whose centres lie inside the
    closed mesh (world LPS mm), as a packed mask cropped to its extent.

    This is the core of the graph's ``Closed surface -> Binary labelmap`` rule
    (:mod:`gpuseg.representations`), which adds Slicer's conversion parameters. An open or
    inconsistently oriented mesh raises :class:`InvalidInputError` unless ``check`` is False.

    Parameters
    ----------
    vertices, faces : numpy.ndarray
        The closed mesh, ``(n, 3)`` world LPS mm and ``(m, 3)`` vertex indices.
    geometry : ImageGeometry
        The grid of the result; voxels outside it are not represented (the mesh is cropped).
    backend : str or Backend, optional
        Where the mask is made.
    what : str
        The mesh's name in error messages.
    check : bool
        Check that the mesh is closed first.

    Returns
    -------
    Mask
    """
    from .topology import check_closed
    from .voxelize import voxelize

    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if check and faces.size:
        check_closed(vertices, faces, what)
    if faces.size == 0:
        return Mask.empty(geometry, backend=backend)
    # only the mesh's bounding box is voxelized (never a dense array of the whole grid)
    ext = mesh_box(vertices[np.unique(faces)], geometry, pad=1).clip(geometry.shape)
    if ext.is_empty:
        return Mask.empty(geometry, backend=backend)
    dense = voxelize(vertices, faces, sub_voxel_geometry(geometry, ext, 1))
    return Mask.from_numpy(dense, geometry, offset=(ext.k0, ext.j0, ext.i0), backend=backend).cropped()


def surfaces_of_masks(masks: Sequence[Mask], *, smoothing: float = 0.0, decimation: float = 0.0,
                      normals: bool = True, method: str = "flying-edges", joint_smoothing: bool = False,
                      progress: bool = False) -> list[Surface]:
    """Closed surfaces of several masks on one grid, each meshed over its own box.

    The conversion of the graph's ``Binary labelmap -> Closed surface`` rule. With surface
    nets all the masks share one vertex numbering; with ``joint_smoothing`` (surface nets only)
    they are smoothed as one mesh, so touching masks keep exactly the same boundary (Slicer's
    joint smoothing).

    Parameters
    ----------
    masks : sequence of Mask
        On one grid and backend.
    smoothing, decimation, normals, method
        As in :func:`closed_surface`.
    joint_smoothing : bool
        Smooth all the masks as one mesh (needs ``method="surface-nets"``).
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of Surface
        One per mask, in order (names and colors left at their defaults).
    """
    from tqdm.auto import tqdm

    s, d, method = check_parameters(smoothing, decimation, method)
    masks = list(masks)
    if joint_smoothing and method != "surface-nets" and s > 0:
        raise InvalidInputError("joint smoothing is implemented for surface nets only")
    joint = bool(joint_smoothing) and s > 0
    if not masks:
        return []
    if method != "surface-nets":
        return [closed_surface(m, smoothing=s, decimation=d, normals=normals, method=method)
                for m in tqdm(masks, desc="surfaces", unit="segment", disable=not progress)]
    from .nets import compact, surface_nets_index_space

    all_verts, all_faces = surface_nets_index_space(masks)
    if joint:
        from .postprocess import slicer_smoothing_parameters, windowed_sinc

        union = np.concatenate([f for f in all_faces if f.size] or [np.zeros((0, 3), np.int64)])
        if union.size:
            used, inverse = np.unique(union.ravel(), return_inverse=True)
            passband, iterations = slicer_smoothing_parameters(s)
            smoothed = windowed_sinc(all_verts[used], inverse.reshape(union.shape), passband=passband,
                                     iterations=iterations)
            all_verts = all_verts.astype(np.float64)
            all_verts[used] = smoothed
    out = []
    for faces in tqdm(all_faces, desc="surfaces", unit="segment", disable=not progress):
        verts, faces = compact(all_verts, faces)
        out.append(_finish(verts, faces, masks[0].geometry, smoothing=s, decimation=d, normals=normals,
                           method=method, name="", color=(0.5, 0.5, 0.5), joint=joint))
    return out


def segment_surfaces(segmentation, segments: Iterable[str] | None = None, *, smoothing: float | None = None,
                     decimation: float | None = None, normals: bool | None = None,
                     method: str | None = None, joint_smoothing: bool | None = None,
                     progress: bool = False) -> list[Surface]:
    """Closed surfaces of many segments: the segmentation's ``Closed surface`` representation.

    A thin wrapper over ``segmentation.representations("Closed surface", ...)``: parameters
    left ``None`` come from the segmentation's conversion parameters (Slicer's ``Smoothing
    factor``, ``Decimation factor``, ``Compute surface normals``, ``Conversion method`` (0
    flying edges, 1 surface nets) and ``Joint smoothing``); the others override them for this
    call only. Results are cached per segment under the mask's version and the parameter
    values, so an edit (through any path) makes them recompute (docs/representations.md).
    With joint smoothing, the listed segments are smoothed as one group.

    Parameters
    ----------
    segmentation : Segmentation
    segments : iterable of str, optional
        Ids or names (default: all, in order).
    smoothing, decimation, normals, method, joint_smoothing : optional
        Overrides of the conversion parameters.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of Surface
        Named and colored like their segments.
    """
    overrides: dict[str, object] = {}
    if smoothing is not None:
        overrides["Smoothing factor"] = smoothing
    if decimation is not None:
        overrides["Decimation factor"] = decimation
    if normals is not None:
        overrides["Compute surface normals"] = bool(normals)
    if method is not None:
        if method not in METHODS:
            raise InvalidInputError(f"unknown surface method {method!r}; use one of {', '.join(METHODS)}")
        overrides["Conversion method"] = METHODS.index(method)
    if joint_smoothing is not None:
        overrides["Joint smoothing"] = bool(joint_smoothing)
    return segmentation.representations("Closed surface", segments, parameters=overrides, progress=progress)
