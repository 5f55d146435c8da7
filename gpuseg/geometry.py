"""Image geometry: the voxel grid of a volume and its place in the world.

Conventions (design invariant 1):

* numpy arrays are indexed ``(k, j, i)``: slice, row, column. ``ImageGeometry.shape`` is
  that numpy shape ``(nk, nj, ni)``.
* ``spacing`` and ``size`` follow ITK/NRRD/Slicer and are ordered ``(i, j, k)``.
* World coordinates are LPS millimetres. ``ijk_to_world`` is a 4x4 matrix that maps the
  column vector ``(i, j, k, 1)`` to ``(x, y, z, 1)`` in LPS; its first three columns are
  the direction of each index axis scaled by its spacing, its last column the origin
  (the centre of voxel (0, 0, 0)).
* :class:`Extent` is a half-open box ``[k0, k1) x [j0, j1) x [i0, i1)`` of grid indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .errors import GeometryMismatchError, InvalidInputError, OutOfBoundsError

__all__ = ["Extent", "ImageGeometry", "LPS_TO_RAS", "parse_geometry"]

#: Multiply an LPS homogeneous matrix or point on the left to get RAS (and back).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Extent:
    """A half-open box of voxel indices, ``[k0, k1) x [j0, j1) x [i0, i1)``.

    An extent with any ``hi <= lo`` is empty. Slicer writes inclusive extents in
    ``i0 i1 j0 j1 k0 k1`` order; use :meth:`to_slicer` / :meth:`from_slicer`.
    """

    k0: int
    k1: int
    j0: int
    j1: int
    i0: int
    i1: int

    def __post_init__(self) -> None:
        for name in ("k0", "k1", "j0", "j1", "i0", "i1"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise InvalidInputError(f"Extent.{name} must be an integer, got {v!r}")
            object.__setattr__(self, name, int(v))

    # construction -----------------------------------------------------------------
    @classmethod
    def empty(cls) -> "Extent":
        return cls(0, 0, 0, 0, 0, 0)

    @classmethod
    def full(cls, shape: Sequence[int]) -> "Extent":
        nk, nj, ni = (int(s) for s in shape)
        return cls(0, nk, 0, nj, 0, ni)

    @classmethod
    def from_slices(cls, slices: Sequence[slice]) -> "Extent":
        (ks, js, is_) = slices
        return cls(ks.start, ks.stop, js.start, js.stop, is_.start, is_.stop)

    @classmethod
    def from_slicer(cls, ext: Sequence[int]) -> "Extent":
        """From Slicer's inclusive ``(i0, i1, j0, j1, k0, k1)``; ``0 -1 ...`` is empty."""
        i0, i1, j0, j1, k0, k1 = (int(v) for v in ext)
        if i1 < i0 or j1 < j0 or k1 < k0:
            return cls.empty()
        return cls(k0, k1 + 1, j0, j1 + 1, i0, i1 + 1)

    def to_slicer(self) -> tuple[int, int, int, int, int, int]:
        """Slicer's inclusive ``(i0, i1, j0, j1, k0, k1)``; empty is ``(0, -1, 0, -1, 0, -1)``."""
        if self.is_empty:
            return (0, -1, 0, -1, 0, -1)
        return (self.i0, self.i1 - 1, self.j0, self.j1 - 1, self.k0, self.k1 - 1)

    # queries ----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return (max(0, self.k1 - self.k0), max(0, self.j1 - self.j0), max(0, self.i1 - self.i0))

    @property
    def is_empty(self) -> bool:
        return self.k1 <= self.k0 or self.j1 <= self.j0 or self.i1 <= self.i0

    @property
    def size(self) -> int:
        nk, nj, ni = self.shape
        return nk * nj * ni

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return (slice(self.k0, self.k1), slice(self.j0, self.j1), slice(self.i0, self.i1))

    def contains(self, other: "Extent") -> bool:
        if other.is_empty:
            return True
        return (self.k0 <= other.k0 and other.k1 <= self.k1 and self.j0 <= other.j0
                and other.j1 <= self.j1 and self.i0 <= other.i0 and other.i1 <= self.i1)

    # algebra ----------------------------------------------------------------------
    def intersect(self, other: "Extent") -> "Extent":
        e = Extent(max(self.k0, other.k0), min(self.k1, other.k1), max(self.j0, other.j0),
                   min(self.j1, other.j1), max(self.i0, other.i0), min(self.i1, other.i1))
        return Extent.empty() if e.is_empty else e

    def union(self, other: "Extent") -> "Extent":
        if self.is_empty:
            return other
        if other.is_empty:
            return self
        return Extent(min(self.k0, other.k0), max(self.k1, other.k1), min(self.j0, other.j0),
                      max(self.j1, other.j1), min(self.i0, other.i0), max(self.i1, other.i1))

    def pad(self, n: int | Sequence[int]) -> "Extent":
        """Grow by ``n`` voxels on each side (``n`` may be per axis, (k, j, i))."""
        nk, nj, ni = (n, n, n) if np.isscalar(n) else tuple(n)  # type: ignore[misc]
        return Extent(self.k0 - nk, self.k1 + nk, self.j0 - nj, self.j1 + nj, self.i0 - ni, self.i1 + ni)

    def clip(self, shape: Sequence[int]) -> "Extent":
        return self.intersect(Extent.full(shape))

    def __str__(self) -> str:
        if self.is_empty:
            return "Extent(empty)"
        return f"Extent(k {self.k0}:{self.k1}, j {self.j0}:{self.j1}, i {self.i0}:{self.i1})"


def _as_float_array(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be numeric, got {value!r}") from exc
    if arr.shape != shape:
        raise InvalidInputError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} must be finite, got {value!r}")
    return arr


class ImageGeometry:
    """The grid of a 3D volume: shape, spacing, origin and direction (LPS).

    Parameters
    ----------
    shape : (nk, nj, ni)
        numpy shape of the volume.
    spacing : (si, sj, sk), optional
        millimetres per step along i, j, k. Default 1.
    origin : (x, y, z), optional
        LPS position of the centre of voxel (0, 0, 0). Default 0.
    direction : 3x3, optional
        columns are the unit LPS directions of the i, j and k axes. Default identity.
    """

    __slots__ = ("_shape", "_matrix")

    def __init__(self, shape: Sequence[int], spacing: Sequence[float] = (1.0, 1.0, 1.0),
                 origin: Sequence[float] = (0.0, 0.0, 0.0),
                 direction: Sequence[Sequence[float]] | np.ndarray | None = None) -> None:
        shp = tuple(int(s) for s in shape)
        if len(shp) != 3:
            raise InvalidInputError(f"a geometry needs a 3D shape (nk, nj, ni), got {tuple(shape)}")
        if any(s < 0 for s in shp):
            raise InvalidInputError(f"shape must not be negative, got {shp}")
        sp = _as_float_array("spacing", spacing, (3,))
        if np.any(sp <= 0):
            raise InvalidInputError(f"spacing must be positive, got {tuple(sp)}")
        org = _as_float_array("origin", origin, (3,))
        d = np.eye(3) if direction is None else _as_float_array("direction", direction, (3, 3))
        norms = np.linalg.norm(d, axis=0)
        if np.any(norms < 1e-9) or abs(np.linalg.det(d / norms)) < 1e-6:
            raise InvalidInputError("direction matrix must have independent, non-zero columns")
        d = d / norms
        m = np.eye(4)
        m[:3, :3] = d * sp[None, :]
        m[:3, 3] = org
        self._shape = shp
        self._matrix = m
        self._matrix.setflags(write=False)

    # constructors -----------------------------------------------------------------
    @classmethod
    def from_matrix(cls, shape: Sequence[int], ijk_to_world: np.ndarray) -> "ImageGeometry":
        """From a 4x4 IJK→LPS matrix (spacing folded into the columns)."""
        m = _as_float_array("ijk_to_world", ijk_to_world, (4, 4))
        if not np.allclose(m[3], [0, 0, 0, 1]):
            raise InvalidInputError("ijk_to_world must be affine (last row 0 0 0 1)")
        a = m[:3, :3]
        spacing = np.linalg.norm(a, axis=0)
        if np.any(spacing <= 0):
            raise InvalidInputError("ijk_to_world has a zero-length axis")
        return cls(shape, spacing, m[:3, 3], a / spacing)

    @classmethod
    def from_ras_matrix(cls, shape: Sequence[int], ijk_to_ras: np.ndarray) -> "ImageGeometry":
        """From a 4x4 IJK→RAS matrix (NIfTI affine, Slicer's ImageToWorld)."""
        return cls.from_matrix(shape, LPS_TO_RAS @ np.asarray(ijk_to_ras, dtype=np.float64))

    # properties -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """numpy shape ``(nk, nj, ni)``."""
        return self._shape  # type: ignore[return-value]

    @property
    def size(self) -> tuple[int, int, int]:
        """ITK-style size ``(ni, nj, nk)``."""
        nk, nj, ni = self._shape
        return (ni, nj, nk)

    @property
    def n_voxels(self) -> int:
        nk, nj, ni = self._shape
        return nk * nj * ni

    @property
    def ijk_to_world(self) -> np.ndarray:
        """4x4 IJK→LPS matrix (read-only)."""
        return self._matrix

    @property
    def world_to_ijk(self) -> np.ndarray:
        return np.linalg.inv(self._matrix)

    @property
    def ijk_to_ras(self) -> np.ndarray:
        return LPS_TO_RAS @ self._matrix

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Millimetres per step along (i, j, k)."""
        return tuple(float(v) for v in np.linalg.norm(self._matrix[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def spacing_kji(self) -> tuple[float, float, float]:
        si, sj, sk = self.spacing
        return (sk, sj, si)

    @property
    def origin(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self._matrix[:3, 3])  # type: ignore[return-value]

    @property
    def direction(self) -> np.ndarray:
        return self._matrix[:3, :3] / np.asarray(self.spacing)[None, :]

    @property
    def voxel_volume(self) -> float:
        """mm³ per voxel."""
        return float(abs(np.linalg.det(self._matrix[:3, :3])))

    @property
    def extent(self) -> Extent:
        return Extent.full(self._shape)

    # conversions ------------------------------------------------------------------
    def ijk_to_world_points(self, ijk) -> np.ndarray:
        """Map points ``(..., 3)`` in (i, j, k) index space to LPS mm."""
        p = np.asarray(ijk, dtype=np.float64)
        if p.shape[-1:] != (3,):
            raise InvalidInputError(f"points must have shape (..., 3), got {p.shape}")
        return p @ self._matrix[:3, :3].T + self._matrix[:3, 3]

    def world_to_ijk_points(self, xyz) -> np.ndarray:
        """Map LPS points ``(..., 3)`` to continuous (i, j, k) indices."""
        p = np.asarray(xyz, dtype=np.float64)
        if p.shape[-1:] != (3,):
            raise InvalidInputError(f"points must have shape (..., 3), got {p.shape}")
        if not np.all(np.isfinite(p)):
            raise InvalidInputError("points must be finite (got NaN or inf)")
        inv = self.world_to_ijk
        return p @ inv[:3, :3].T + inv[:3, 3]

    def ras_to_lps(self, xyz) -> np.ndarray:
        p = np.array(xyz, dtype=np.float64)
        p[..., :2] *= -1
        return p

    lps_to_ras = ras_to_lps

    def world_to_index(self, xyz, *, check: bool = True) -> tuple[int, int, int]:
        """Nearest voxel ``(k, j, i)`` of one LPS point; raises if outside the grid."""
        i, j, k = np.rint(self.world_to_ijk_points(np.asarray(xyz, dtype=np.float64).reshape(3))).astype(np.int64)
        idx = (int(k), int(j), int(i))
        if check and not self.contains_index(idx):
            raise OutOfBoundsError(f"point {tuple(np.asarray(xyz).ravel())} (voxel k,j,i={idx}) "
                                   f"is outside the volume of shape {self.shape}")
        return idx

    def contains_index(self, kji: Iterable[int]) -> bool:
        k, j, i = kji
        nk, nj, ni = self._shape
        return 0 <= k < nk and 0 <= j < nj and 0 <= i < ni

    # comparison -------------------------------------------------------------------
    def is_same_grid(self, other: "ImageGeometry", *, atol: float = 1e-4) -> bool:
        """Same shape and the same IJK→LPS matrix within ``atol`` (mm)."""
        return self._shape == other._shape and bool(np.allclose(self._matrix, other._matrix, rtol=0, atol=atol))

    def is_same_lattice(self, other: "ImageGeometry", *, atol: float = 1e-4) -> bool:
        """Same spacing and direction and voxel centres on the same lattice (shape may differ)."""
        if not np.allclose(self._matrix[:3, :3], other._matrix[:3, :3], rtol=0, atol=atol):
            return False
        shift = self.world_to_ijk_points(other.origin)
        return bool(np.allclose(shift, np.rint(shift), rtol=0, atol=1e-3))

    def check_same_grid(self, other: "ImageGeometry", what: str = "inputs") -> None:
        """Raise :class:`GeometryMismatchError` unless ``other`` is on this grid."""
        if not self.is_same_grid(other):
            raise GeometryMismatchError(
                f"{what} are on different grids: {self!r} vs {other!r}")

    def sub_geometry(self, extent: Extent) -> "ImageGeometry":
        """The geometry of a box of this grid (same lattice, shifted origin)."""
        origin = self.ijk_to_world_points([extent.i0, extent.j0, extent.k0])
        return ImageGeometry(extent.shape, self.spacing, origin, self.direction)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImageGeometry) and self.is_same_grid(other)

    def __hash__(self) -> int:
        return hash(self._shape)

    def __repr__(self) -> str:
        sp = ", ".join(f"{v:g}" for v in self.spacing)
        org = ", ".join(f"{v:g}" for v in self.origin)
        return f"ImageGeometry(shape={self.shape} (k,j,i), spacing=({sp}) mm (i,j,k), origin=({org}) LPS)"

    def to_dict(self) -> dict:
        return {"shape_kji": list(self.shape), "spacing_ijk": list(self.spacing), "origin_lps": list(self.origin),
                "direction": self.direction.tolist(), "ijk_to_lps": self._matrix.tolist()}


#: The largest extent index a geometry string may name (beyond it, the text is unusable).
_MAX_GEOMETRY_INDEX = 1 << 31


def parse_geometry(text: str) -> tuple[np.ndarray, tuple[int, int, int, int, int, int]] | None:
    """(IJK→RAS 4x4, inclusive extent i0 i1 j0 j1 k0 k1) from the string, or None if unusable."""
    parts = [p for p in str(text).split(";") if p.strip()]
    if len(parts) != 22:
        return None
    try:
        m = np.array([float(p) for p in parts[:16]]).reshape(4, 4)
        ext = tuple(int(float(p)) for p in parts[16:])
    except (ValueError, OverflowError):  # OverflowError: an infinite extent
        return None
    if not np.all(np.isfinite(m)) or any(abs(v) > _MAX_GEOMETRY_INDEX for v in ext):
        return None
    return m, ext  # type: ignore[return-value]
