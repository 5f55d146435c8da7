"""Typed exceptions raised by gpuseg.

Every error a user can cause with bad input derives from :class:`GpusegError`, so a
caller (and the CLI) can catch one type. Each also derives from the built-in
exception a Python user would expect (``ValueError``, ``OSError``, ``MemoryError``),
so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "GpusegError",
    "InvalidInputError",
    "UnsupportedDtypeError",
    "GeometryMismatchError",
    "OutOfBoundsError",
    "EmptyRangeError",
    "UnsupportedParameterError",
    "UnknownSegmentError",
    "DeviceMemoryError",
    "BackendUnavailableError",
    "FileFormatError",
    "FileWriteError",
]


class GpusegError(Exception):
    """Base class of every error gpuseg raises on purpose."""


class InvalidInputError(GpusegError, ValueError):
    """An argument has a wrong value, shape or type."""


class UnsupportedDtypeError(InvalidInputError, TypeError):
    """An array has a dtype that the operation does not accept."""


class GeometryMismatchError(InvalidInputError):
    """Two volumes or masks that must share a grid do not."""


class OutOfBoundsError(InvalidInputError):
    """A point, index or extent lies outside the volume."""


class EmptyRangeError(InvalidInputError):
    """A range is empty or invalid (lo > hi, NaN bounds)."""


class UnsupportedParameterError(InvalidInputError):
    """A conversion parameter has a value Slicer defines but gpuseg does not implement
    (docs/representations.md, "Parameters")."""


class UnknownSegmentError(GpusegError, KeyError):
    """A segment id or name does not exist in the segmentation."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not want that
        return str(self.args[0]) if self.args else ""


class DeviceMemoryError(GpusegError, MemoryError):
    """An allocation would exceed the backend's memory budget or buffer limit."""


class BackendUnavailableError(GpusegError, RuntimeError):
    """The requested backend cannot run on this machine."""


class FileFormatError(GpusegError, OSError):
    """A file is missing, truncated, corrupt, or not of the expected kind."""


class FileWriteError(FileFormatError):
    """A file cannot be written (full disk, read-only file system, no permission, missing folder).

    A :class:`FileFormatError` too, so callers that caught file errors before keep catching these.
    """
