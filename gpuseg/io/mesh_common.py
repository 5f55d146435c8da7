"""What every mesh file format module shares: the mesh types, array checks and helpers.

Meshes are in LPS millimetres; see :mod:`gpuseg.io.meshes` for the formats and coordinates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

import numpy as np

from ..errors import InvalidInputError
from ..surface.topology import check_mesh_arrays

__all__ = ["MeshLike", "NamedMesh", "MeshPart", "RawMesh", "DEFAULT_COLOR", "check_mesh_arrays", "check_color",
           "face_normals", "safe_name", "normalize_meshes", "merged_parts", "one_line", "float_format",
           "unique_names"]

DEFAULT_COLOR = (0.5, 0.5, 0.5)


class MeshLike(Protocol):
    """What :func:`write_meshes` needs of each mesh (a segment's closed surface)."""

    name: str
    color: tuple[float, float, float]
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None


@dataclass
class NamedMesh:
    """A named, coloured triangle mesh in LPS millimetres.

    Satisfies :class:`MeshLike`; :func:`read_meshes` returns these.
    """

    name: str
    color: tuple[float, float, float]
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None = None


# -------------------------------------------------------------------------------------
# validation and small helpers
# -------------------------------------------------------------------------------------

def check_color(color, what: str) -> tuple[float, float, float]:
    try:
        c = np.asarray(color, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what}: colour must be 3 numbers in [0, 1], got {color!r}") from exc
    if c.shape != (3,) or not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c > 1):
        raise InvalidInputError(f"{what}: colour must be 3 numbers in [0, 1], got {color!r}")
    return (float(c[0]), float(c[1]), float(c[2]))


def face_normals(tri: np.ndarray) -> np.ndarray:
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(fn, axis=1)
    ok = norm > 0
    fn[ok] /= norm[ok, None]
    fn[~ok] = 0.0
    return fn


def safe_name(name: str, fallback: str = "segment") -> str:
    """``name`` reduced to ``[A-Za-z0-9._-]`` (runs of anything else become ``_``)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    return s or fallback


@dataclass
class MeshPart:
    name: str
    color: tuple[float, float, float]
    vertices: np.ndarray   # float32 or float64
    faces: np.ndarray      # int64
    normals: np.ndarray    # float32 (computed when the mesh had none)


def normalize_meshes(meshes: Sequence[MeshLike]) -> list[MeshPart]:
    if isinstance(meshes, (str, bytes)) or not isinstance(meshes, Iterable):
        raise InvalidInputError("meshes must be a list of mesh objects")
    out = []
    for idx, m in enumerate(meshes):
        what = f"mesh {idx}"
        for attr in ("name", "color", "vertices", "faces"):
            if not hasattr(m, attr):
                raise InvalidInputError(f"{what} has no attribute {attr!r}")
        name = str(m.name)
        what = f"mesh {idx} ({name!r})"
        v, f = check_mesh_arrays(m.vertices, m.faces, what)
        color = check_color(m.color, what)
        nrm = getattr(m, "normals", None)
        if nrm is None:
            from ..surface.postprocess import vertex_normals

            n = vertex_normals(v, f)
        else:
            n = np.asarray(nrm, dtype=np.float32)
            if n.shape != v.shape:
                raise InvalidInputError(f"{what}: normals must have the shape of vertices {v.shape}, got {n.shape}")
            if not np.all(np.isfinite(n)):
                raise InvalidInputError(f"{what}: normals contain NaN or infinity")
        out.append(MeshPart(name, color, v, f, n))
    return out


def merged_parts(segs: list[MeshPart]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All segments as one mesh: vertices, faces, normals, per-vertex and per-face segment index."""
    dtype = np.float32 if segs and all(s.vertices.dtype == np.float32 for s in segs) else np.float64
    vs, fs, ns, vseg, fseg = [], [], [], [], []
    off = 0
    for idx, s in enumerate(segs):
        vs.append(s.vertices.astype(dtype, copy=False))
        fs.append(s.faces + off)
        ns.append(s.normals)
        vseg.append(np.full(len(s.vertices), idx, np.int32))
        fseg.append(np.full(len(s.faces), idx, np.int32))
        off += len(s.vertices)
    if not segs:
        return (np.zeros((0, 3), dtype), np.zeros((0, 3), np.int64), np.zeros((0, 3), np.float32),
                np.zeros(0, np.int32), np.zeros(0, np.int32))
    return (np.concatenate(vs), np.concatenate(fs), np.concatenate(ns), np.concatenate(vseg),
            np.concatenate(fseg))


def one_line(text: str) -> str:
    return re.sub(r"[\r\n]+", " ", text)


def float_format(dtype) -> str:
    # enough digits for an exact round trip of the stored precision
    return "%.9g" if dtype == np.float32 else "%.17g"


def unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        base, k = n, 1
        while n.lower() in seen:
            k += 1
            n = f"{base}_{k}"
        seen[n.lower()] = 1
        out.append(n)
    return out


@dataclass
class RawMesh:
    """What a reader found: one vertex/face array and the named face groups in it."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None
    segments: list[tuple[str, tuple[float, float, float], np.ndarray]]  # name, colour, face indices


