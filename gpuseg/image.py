"""Device-resident intensity volumes."""

from __future__ import annotations

import numpy as np

from .backends import Backend, get_backend
from .backends.base import IMAGE_DTYPES, check_image_dtype
from .errors import InvalidInputError
from .geometry import ImageGeometry

__all__ = ["Image", "SUPPORTED_DTYPES"]

SUPPORTED_DTYPES = tuple(IMAGE_DTYPES)


class Image:
    """An intensity volume (int16, uint16, int32 or float32) held on a backend's device.

    Use :meth:`from_numpy` or :func:`gpuseg.read_image` to make one. The data is indexed
    ``(k, j, i)``; ``geometry`` places it in the world (LPS).
    """

    __slots__ = ("_data", "_geometry", "_backend", "_has_nan")

    def __init__(self, data, geometry: ImageGeometry, backend: Backend) -> None:
        self._data = data
        self._geometry = geometry
        self._backend = backend
        self._has_nan: bool | None = None

    @classmethod
    def from_numpy(cls, array: np.ndarray, geometry: ImageGeometry | None = None, *,
                   backend: str | Backend | None = None) -> "Image":
        """Upload a 3D ``(k, j, i)`` array. ``geometry`` defaults to unit spacing at the origin."""
        if not isinstance(array, np.ndarray):
            raise InvalidInputError(f"an image must be a numpy array, got {type(array).__name__}")
        if array.ndim != 3:
            raise InvalidInputError(f"an image must be 3D (k, j, i), got an array of shape {array.shape}")
        check_image_dtype(array.dtype)
        if geometry is None:
            geometry = ImageGeometry(array.shape)
        elif tuple(geometry.shape) != tuple(array.shape):
            raise InvalidInputError(f"array shape {array.shape} does not match geometry shape {geometry.shape}")
        b = get_backend(backend)
        data = b.asarray(array, what=f"image of shape {array.shape} {array.dtype}")
        img = cls(data, geometry, b)
        if array.dtype.kind == "f":
            img._has_nan = bool(np.isnan(array).any())
        else:
            img._has_nan = False
        return img

    @property
    def geometry(self) -> ImageGeometry:
        return self._geometry

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def data(self):
        """The device array (numpy for cpu, pyopencl Array for opencl, cupy for cuda)."""
        return self._data

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._data.dtype)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self._geometry.shape

    @property
    def nbytes(self) -> int:
        return self._geometry.n_voxels * self.dtype.itemsize

    @property
    def has_nan(self) -> bool:
        """True if a float image holds a NaN (known from upload)."""
        return bool(self._has_nan)

    def to_numpy(self) -> np.ndarray:
        return self._backend.to_numpy(self._data)

    def region(self, extent) -> np.ndarray:
        """A host copy of the voxels of ``extent`` (a small box; reads only its slices)."""
        from .geometry import Extent

        ext = extent.clip(self.shape) if isinstance(extent, Extent) else extent
        if ext.is_empty:
            return np.zeros(ext.shape, self.dtype)
        return self._backend.to_numpy_region(self._data, ext.slices)

    def to(self, backend: str | Backend) -> "Image":
        """The same image on another backend (a host round trip)."""
        b = get_backend(backend)
        if b is self._backend:
            return self
        return Image.from_numpy(self.to_numpy(), self._geometry, backend=b)

    def __repr__(self) -> str:
        return f"<Image {self.shape} (k,j,i) {self.dtype} on {self._backend.name}; {self._geometry!r}>"
