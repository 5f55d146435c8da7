"""Mesh topology: is a triangle mesh a closed, consistently oriented surface, and repair.

The one home of these checks: :meth:`gpuseg.surface.Surface.is_watertight`,
:func:`gpuseg.surface.mesh_to_mask` and the mesh readers use them.
"""

from __future__ import annotations

import numpy as np

from ..errors import BackendUnavailableError, InvalidInputError

__all__ = ["check_mesh_arrays", "closed_surface_problems", "is_closed", "check_closed", "repair_mesh"]


def check_mesh_arrays(vertices, faces, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(n, 3)`` (float32 kept, else float64) and faces ``(m, 3)`` int64, checked.

    Raises
    ------
    InvalidInputError
        Wrong shapes or dtypes, non-finite vertices or face indices out of range.
    """
    v = np.asarray(vertices)
    f = np.asarray(faces)
    if v.size == 0:
        v = v.reshape(0, 3)
    if f.size == 0:
        f = f.reshape(0, 3)
    if v.ndim != 2 or v.shape[1] != 3:
        raise InvalidInputError(f"{what}: vertices must have shape (n, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3:
        raise InvalidInputError(f"{what}: faces must have shape (m, 3), got {f.shape}")
    if not np.issubdtype(v.dtype, np.number) or np.issubdtype(v.dtype, np.complexfloating):
        raise InvalidInputError(f"{what}: vertices must be real numbers, got dtype {v.dtype}")
    if f.size and not np.issubdtype(f.dtype, np.integer):
        raise InvalidInputError(f"{what}: faces must be integers, got dtype {f.dtype}")
    if v.dtype != np.float32:
        v = v.astype(np.float64, copy=False)
    if not np.all(np.isfinite(v)):
        raise InvalidInputError(f"{what}: vertices contain NaN or infinity")
    f = f.astype(np.int64, copy=False)
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise InvalidInputError(f"{what}: face indices must lie in [0, {len(v)}), "
                                f"got [{f.min()}, {f.max()}]")
    return v, f


def repair_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge duplicate vertices and fix winding/orientation with trimesh.

    See :func:`gpuseg.io.meshes.read_mesh` (``repair=True``) for what this does and does not do.
    """
    try:
        import trimesh
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendUnavailableError("mesh repair needs trimesh (pip install 'gpuseg[mesh]')") from exc
    v, f = check_mesh_arrays(vertices, faces, "mesh")
    if len(f) == 0:
        return v.astype(np.float64), f
    mesh = trimesh.Trimesh(vertices=v.astype(np.float64), faces=f, process=True)
    mesh.update_faces(mesh.unique_faces() & mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    trimesh.repair.fix_normals(mesh, multibody=True)
    return np.asarray(mesh.vertices, dtype=np.float64).copy(), np.asarray(mesh.faces, dtype=np.int64).copy()



def closed_surface_problems(faces: np.ndarray) -> list[str]:
    """What keeps a triangle mesh from being closed and consistently oriented (empty: nothing).

    A mesh is closed when every edge is shared by exactly two faces, and consistently
    oriented when those two faces traverse it in opposite directions; a face that repeats a
    vertex index is not a triangle of a closed surface. Whether the consistent orientation
    points outward is not checked. Each problem is a sentence that counts the offending
    edges (or faces) and names one.

    Parameters
    ----------
    faces : (m, 3) int array
        Valid vertex indices (see :func:`check_mesh_arrays`).

    Returns
    -------
    list of str
    """
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(f) == 0:
        return []
    degenerate = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    if degenerate.any():
        return [f"{int(degenerate.sum())} faces repeat a vertex index (e.g. face {int(np.argmax(degenerate))}: "
                f"{f[degenerate][0].tolist()})"]
    n = int(f.max()) + 1
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    lo, hi = np.minimum(directed[:, 0], directed[:, 1]), np.maximum(directed[:, 0], directed[:, 1])
    und_keys, und_counts = np.unique(lo * n + hi, return_counts=True)  # one int64 key per edge (fast)
    problems = []
    open_edges = und_keys[und_counts == 1]
    many = und_keys[und_counts > 2]
    if len(open_edges):
        problems.append(f"{len(open_edges)} edges belong to only one face (a hole; e.g. vertices "
                        f"{[int(open_edges[0] // n), int(open_edges[0] % n)]})")
    if len(many):
        problems.append(f"{len(many)} edges are shared by more than two faces (non-manifold; e.g. vertices "
                        f"{[int(many[0] // n), int(many[0] % n)]})")
    dir_keys, dir_counts = np.unique(directed[:, 0] * n + directed[:, 1], return_counts=True)
    flipped = dir_keys[dir_counts > 1]
    if len(flipped) and not len(many):
        problems.append(f"{len(flipped)} edges are traversed in the same direction by both of their faces "
                        f"(inconsistent orientation; e.g. vertices {[int(flipped[0] // n), int(flipped[0] % n)]})")
    return problems


def is_closed(faces: np.ndarray) -> bool:
    """Whether the mesh is closed and consistently oriented (:func:`closed_surface_problems`)."""
    return not closed_surface_problems(faces)


def check_closed(vertices: np.ndarray, faces: np.ndarray, what: str = "mesh") -> None:
    """Raise unless the mesh is closed (watertight) and consistently oriented.

    See :func:`closed_surface_problems` for the rules.

    Parameters
    ----------
    vertices : (n, 3) array
    faces : (m, 3) int array
    what : str
        Name of the mesh for the message.

    Raises
    ------
    InvalidInputError
        Bad arrays, or the mesh is open, non-manifold or inconsistently oriented (the
        message counts the offending edges and names one).
    """
    v, f = check_mesh_arrays(vertices, faces, what)
    problems = closed_surface_problems(f)
    if problems and problems[0].endswith(")") and "repeat a vertex index" in problems[0]:
        raise InvalidInputError(f"{what} is not a closed surface: {problems[0]}")
    if problems:
        raise InvalidInputError(f"{what} is not a closed, consistently oriented surface: " + "; ".join(problems)
                                + ". Try read_mesh(..., repair=True) or fix the mesh.")
