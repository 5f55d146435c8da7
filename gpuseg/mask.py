"""Device-resident bit-packed binary masks (docs/architecture.md, invariant 2).

A :class:`Mask` belongs to a reference grid (an :class:`ImageGeometry`) but stores bits only
over its own *box*: a block of ``(nk, nj, nw)`` 32-bit words whose first word sits at
``(k0, j0, w0)`` of the grid. Bit ``b`` of word ``w`` is voxel ``i = 32 * (w0 + w) + b``,
least significant bit first; bits past the grid's ``ni`` are always 0. Memory therefore
follows the segment's size, not the volume's. The box grows when the mask is edited past it
(:meth:`Mask.grow_`) and shrinks to the effective extent when asked (:meth:`Mask.shrink_`).
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from .backends import Backend, get_backend
from .backends.base import Box
from .errors import GeometryMismatchError, InvalidInputError, OutOfBoundsError
from .geometry import Extent, ImageGeometry
from .kernels.constants import APPLY_OPS
from .kernels.masks import APPLY_BLOCK

__all__ = ["Mask", "words_per_row", "box_for_extent", "extent_of_box", "union_box", "intersect_box",
           "checked_extent", "pack_bits", "unpack_bits", "pack_block"]

EMPTY_BOX: Box = (0, 0, 0, 0, 0, 0)

#: One counter for every mask: a version number names one state of one mask, never two
#: (docs/representations.md, "Versions").
_VERSIONS = itertools.count(1)


def words_per_row(ni: int) -> int:
    return (int(ni) + 31) // 32


def box_for_extent(extent: Extent) -> Box:
    """The smallest word-aligned box that holds ``extent``."""
    if extent.is_empty:
        return EMPTY_BOX
    w0 = extent.i0 // 32
    w1 = (extent.i1 + 31) // 32
    return (extent.k0, extent.j0, w0, extent.k1 - extent.k0, extent.j1 - extent.j0, w1 - w0)


def extent_of_box(box: Box, ni: int) -> Extent:
    k0, j0, w0, nk, nj, nw = box
    if nk * nj * nw == 0:
        return Extent.empty()
    return Extent(k0, k0 + nk, j0, j0 + nj, 32 * w0, min(32 * (w0 + nw), ni))


def union_box(a: Box, b: Box) -> Box:
    """The smallest box that holds both ``a`` and ``b`` (an empty box holds nothing)."""
    if a[3] * a[4] * a[5] == 0:
        return b
    if b[3] * b[4] * b[5] == 0:
        return a
    lo = [min(a[i], b[i]) for i in range(3)]
    hi = [max(a[i] + a[i + 3], b[i] + b[i + 3]) for i in range(3)]
    return (lo[0], lo[1], lo[2], hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])


def intersect_box(a: Box, b: Box) -> Box:
    """The words ``a`` and ``b`` share (the empty box if none)."""
    lo = [max(a[i], b[i]) for i in range(3)]
    hi = [min(a[i] + a[i + 3], b[i] + b[i + 3]) for i in range(3)]
    if any(h <= l for l, h in zip(lo, hi)):
        return EMPTY_BOX
    return (lo[0], lo[1], lo[2], hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])


class Mask:
    """A binary mask on a reference grid, bit-packed and resident on a backend's device."""

    __slots__ = ("_geometry", "_backend", "_words", "_box", "_version", "_writing", "__weakref__")

    def __init__(self, geometry: ImageGeometry, backend: Backend, words: Any, box: Box) -> None:
        """Wrap device ``words`` (shape ``box[3:]``) as a mask; the mask takes them over.

        Write them afterwards only through :meth:`writing` (host numpy words are made
        read-only here, so a write that bypasses the version fails).
        """
        self._geometry = geometry
        self._backend = backend
        self._box = tuple(int(v) for v in box)  # type: ignore[assignment]
        self._words = _owned_read_only(words)
        self._version = next(_VERSIONS)
        self._writing = 0

    # --- construction ------------------------------------------------------------------
    @classmethod
    def empty(cls, geometry: ImageGeometry, *, backend: str | Backend | None = None) -> "Mask":
        """A mask with no voxels and no storage."""
        b = get_backend(backend)
        return cls(geometry, b, b.empty((0, 0, 0), np.uint32), EMPTY_BOX)

    @classmethod
    def zeros(cls, geometry: ImageGeometry, extent: Extent | None = None, *,
              backend: str | Backend | None = None) -> "Mask":
        """An all-zero mask whose box holds ``extent`` (default: the whole grid)."""
        b = get_backend(backend)
        ext = checked_extent(geometry, extent)
        box = box_for_extent(ext)
        return cls(geometry, b, b.zeros(box[3:], np.uint32, what=_what(geometry, box)), box)

    @classmethod
    def full(cls, geometry: ImageGeometry, extent: Extent | None = None, *,
             backend: str | Backend | None = None) -> "Mask":
        """A mask with every voxel of ``extent`` (default: the whole grid) set."""
        m = cls.zeros(geometry, extent, backend=backend)
        ext = checked_extent(geometry, extent)
        with m.writing() as words:
            m._backend.logic("fill", words, m._box, None, None, None, None, ext.i0, ext.i1)
        return m

    @classmethod
    def from_numpy(cls, array: np.ndarray, geometry: ImageGeometry | None = None, *,
                   offset: tuple[int, int, int] = (0, 0, 0), backend: str | Backend | None = None,
                   crop: bool = False) -> "Mask":
        """Pack a boolean (or 0/non-0 integer) array into a mask.

        ``array`` covers the whole grid, or, with ``offset=(k0, j0, i0)``, a box of it.
        With ``crop=True`` the result is shrunk to its effective extent.
        """
        if not isinstance(array, np.ndarray):
            raise InvalidInputError(f"a mask must be a numpy array, got {type(array).__name__}")
        if array.ndim != 3:
            raise InvalidInputError(f"a mask must be 3D (k, j, i), got an array of shape {array.shape}")
        if array.dtype.kind not in "biu":
            raise InvalidInputError(f"a mask array must be bool or integer, got {array.dtype}")
        if geometry is None:
            if offset != (0, 0, 0):
                raise InvalidInputError("a geometry is needed when the array has an offset")
            geometry = ImageGeometry(array.shape)
        k0, j0, i0 = (int(v) for v in offset)
        ext = Extent(k0, k0 + array.shape[0], j0, j0 + array.shape[1], i0, i0 + array.shape[2])
        if not geometry.extent.contains(ext):
            raise OutOfBoundsError(f"array of shape {array.shape} at offset {offset} does not fit the grid "
                                   f"of shape {geometry.shape}")
        b = get_backend(backend)
        if array.size == 0:
            return cls.empty(geometry, backend=b)
        box = box_for_extent(ext)
        # place the array at its bit position inside the word-aligned box
        lead = i0 - 32 * box[2]
        if array.dtype == np.bool_:
            dense = array.view(np.uint8)
        elif array.dtype == np.uint8:
            dense = array
        else:
            dense = (array != 0).view(np.uint8)
        if lead or dense.shape[2] != 32 * box[5]:
            padded = np.zeros(dense.shape[:2] + (lead + dense.shape[2],), np.uint8)
            padded[:, :, lead:] = dense
            dense = padded
        dev = b.asarray(dense, what=f"mask upload of shape {array.shape}")
        words = b.empty(box[3:], np.uint32, what=_what(geometry, box))
        b.pack(dev, words)
        m = cls(geometry, b, words, box)
        return m.shrink_() if crop else m

    # --- properties ---------------------------------------------------------------------
    @property
    def geometry(self) -> ImageGeometry:
        return self._geometry

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of the reference grid ``(nk, nj, ni)``."""
        return self._geometry.shape

    @property
    def words(self):
        """The device array of words, shape ``(nk, nj, nw)`` of the box, for reading.

        Host (numpy) words are read-only; write through :meth:`writing`, which bumps
        :attr:`version`. Device words cannot be flagged read-only: ops write them only inside
        :meth:`writing` too, and run the same code on the CPU backend in the tests, where a
        write outside it fails (docs/representations.md, "Versions").
        """
        return self._words

    @property
    def version(self) -> int:
        """A number that changes with every change of the mask's words or box.

        Versions come from one counter shared by all masks, so a version names one state
        of one mask: derived representations are cached under it.
        """
        return self._version

    def _bump(self) -> None:
        self._version = next(_VERSIONS)

    @contextmanager
    def writing(self) -> Iterator[Any]:
        """Context for writing the words in place: yields the writable words array.

        The version is bumped on entry and on exit, so nothing derived before or during
        the write stays valid. Host words are writable only inside the context.

        Yields
        ------
        words
            The mask's device words (shape ``box[3:]``).

        Examples
        --------
        >>> import numpy as np, gpuseg
        >>> m = gpuseg.Mask.zeros(gpuseg.ImageGeometry((1, 1, 8)), backend="cpu")
        >>> v = m.version
        >>> with m.writing() as w:
        ...     w[0, 0, 0] = 0b101
        >>> m.count(), m.version > v
        (2, True)
        """
        self._bump()
        host = isinstance(self._words, np.ndarray)
        if host and self._writing == 0:
            self._words.flags.writeable = True
        self._writing += 1
        try:
            yield self._words
        finally:
            self._writing -= 1
            if host and self._writing == 0:
                self._words.flags.writeable = False
            self._bump()

    @property
    def box(self) -> Box:
        """``(k0, j0, w0, nk, nj, nw)``: where the words sit in the grid."""
        return self._box  # type: ignore[return-value]

    @property
    def box_extent(self) -> Extent:
        """The voxel extent the stored words cover (i0 is a multiple of 32)."""
        return extent_of_box(self._box, self._geometry.shape[2])

    @property
    def nbytes(self) -> int:
        """Bytes of device memory the words use."""
        return 4 * self._box[3] * self._box[4] * self._box[5]

    # --- queries ------------------------------------------------------------------------
    def count(self) -> int:
        """Number of voxels set."""
        return self._backend.count(self._words)

    def extent(self) -> Extent:
        """The effective extent: the bounding box of the set voxels (empty if none)."""
        r = self._backend.extent_bits(self._words)
        if r is None:
            return Extent.empty()
        kmin, kmax, jmin, jmax, bmin, bmax = r
        k0, j0, w0 = self._box[:3]
        return Extent(k0 + kmin, k0 + kmax + 1, j0 + jmin, j0 + jmax + 1, 32 * w0 + bmin, 32 * w0 + bmax + 1)

    def is_empty(self) -> bool:
        return self.count() == 0

    def to_numpy(self, extent: Extent | None = None) -> np.ndarray:
        """A bool array of the whole grid (or of ``extent``)."""
        ext = checked_extent(self._geometry, extent)
        out = np.zeros(ext.shape, dtype=bool)
        inner = ext.intersect(self.box_extent)
        if inner.is_empty:
            return out
        sub = self._sub_words(inner)  # words covering inner's rows, starting at inner.i0 // 32
        b = self._backend
        nk, nj, nw = sub.shape
        dense = b.empty((nk, nj, 32 * nw), np.uint8, what="mask download")
        b.unpack(sub, dense)
        host = b.to_numpy(dense)
        lead = inner.i0 - 32 * (inner.i0 // 32)
        out[inner.k0 - ext.k0:inner.k1 - ext.k0, inner.j0 - ext.j0:inner.j1 - ext.j0,
            inner.i0 - ext.i0:inner.i1 - ext.i0] = host[:, :, lead:lead + inner.shape[2]].view(bool)
        return out

    def slice(self, axis: int, index: int) -> np.ndarray:
        """The display slice ``index`` along ``axis`` (0: axial k, 1: coronal j, 2: sagittal i)
        over the whole grid, as a 2D bool array."""
        if axis not in (0, 1, 2):
            raise InvalidInputError(f"axis must be 0 (k), 1 (j) or 2 (i), got {axis!r}")
        n = self._geometry.shape[axis]
        if not 0 <= int(index) < n:
            raise OutOfBoundsError(f"slice index {index} is outside 0..{n - 1} along axis {axis}")
        out = self._backend.extract_slice(self._words, self._box, axis, int(index), self._geometry.shape)
        return out.view(bool)

    # --- box management -------------------------------------------------------------------
    def _sub_words(self, extent: Extent):
        """Device words covering ``extent`` (word-aligned), copied."""
        box = box_for_extent(extent)
        out = self._backend.empty(box[3:], np.uint32, what=_what(self._geometry, box))
        self._backend.logic("copy", out, box, self._words, self._box, None, None, 0, self._geometry.shape[2])
        return out

    def _rebox(self, box: Box) -> None:
        if self._writing:  # the words handed out by writing() would no longer be the mask's
            raise InvalidInputError("a mask's box cannot change while its words are being written")
        words = self._backend.empty(box[3:], np.uint32, what=_what(self._geometry, box))
        self._backend.logic("copy", words, box, self._words, self._box, None, None, 0, self._geometry.shape[2])
        self._words, self._box = _owned_read_only(words), box
        self._bump()

    def grow_(self, extent: Extent) -> "Mask":
        """Enlarge the box in place so that it holds ``extent`` (clipped to the grid)."""
        ext = extent.clip(self._geometry.shape)
        box = union_box(self._box, box_for_extent(ext))  # type: ignore[arg-type]
        if box != self._box:
            self._rebox(box)
        self._bump()  # every in-place method bumps, changed or not
        return self

    def apply_block_(self, block, box: Box, op: str) -> "Mask":
        """In place: the words of ``box`` become ``op`` (``or``, ``andnot``, ``xor`` or ``set``) of
        themselves and ``block`` (device words of shape ``box[3:]``). The mask's box grows to
        hold ``box`` first. Only the block's words are touched."""
        if op not in APPLY_OPS:
            raise InvalidInputError(f"unknown block operation {op!r}")
        if box[3] * box[4] * box[5] == 0:
            return self
        self.grow_(extent_of_box(box, self._geometry.shape[2]))
        with self.writing() as words:
            self._backend.run(APPLY_BLOCK, (words, self._box), (block, box), APPLY_OPS[op])
        return self

    def block(self, box: Box):
        """A device copy of the words of ``box`` (zeros where the mask stores nothing)."""
        out = self._backend.empty(box[3:], np.uint32, what="mask block")
        self._backend.logic("copy", out, box, self._words, self._box, None, None, 0, self._geometry.shape[2])
        return out

    def shrink_(self) -> "Mask":
        """Shrink the box in place to the effective extent (word-aligned in i)."""
        box = box_for_extent(self.extent())
        if box != self._box:
            self._rebox(box)
        self._bump()  # every in-place method bumps, changed or not
        return self

    def cropped(self) -> "Mask":
        """A copy whose box is the effective extent."""
        return self.copy().shrink_()

    def copy(self) -> "Mask":
        b = self._backend
        words = b.empty(self._box[3:], np.uint32, what=_what(self._geometry, self._box))
        b.logic("copy", words, self._box, self._words, self._box, None, None, 0, self._geometry.shape[2])
        return Mask(self._geometry, b, words, self._box)

    def __copy__(self) -> "Mask":
        # copy.copy / copy.deepcopy give a real copy with its own version and read-only words
        return self.copy()

    def __deepcopy__(self, memo) -> "Mask":
        return self.copy()

    def to(self, backend: str | Backend) -> "Mask":
        """The same mask on another backend (a host round trip of the words only)."""
        b = get_backend(backend)
        if b is self._backend:
            return self
        return Mask(self._geometry, b, b.asarray(self._backend.to_numpy(self._words)), self._box)

    def words_numpy(self) -> np.ndarray:
        """A host copy of the words (for tests and file formats)."""
        return self._backend.to_numpy(self._words)

    # --- comparison and operators ------------------------------------------------------------
    def check_compatible(self, other: "Mask | Any", what: str = "masks") -> None:
        if not isinstance(other, Mask):
            raise InvalidInputError(f"expected a Mask, got {type(other).__name__}")
        if other._backend is not self._backend:
            raise InvalidInputError(f"{what} live on different backends ({self._backend.name} and "
                                    f"{other._backend.name}); move one with .to()")
        if not self._geometry.is_same_grid(other._geometry):
            raise GeometryMismatchError(f"{what} are on different grids: {self._geometry!r} vs {other._geometry!r}")

    def equals(self, other: "Mask") -> bool:
        """Same grid and the same set voxels (boxes may differ)."""
        return (self ^ other).count() == 0

    # The operators run the backend's logic primitive here rather than through
    # gpuseg.ops.logic, which builds on this module: no import circle.
    def _combine(self, op: str, other: "Mask", box: Box) -> "Mask":
        self.check_compatible(other)
        b = self._backend
        words = b.empty(box[3:], np.uint32, what=f"{op} result")
        b.logic(op, words, box, self._words, self._box, other._words, other._box, 0, self.shape[2])
        return Mask(self._geometry, b, words, box)

    def __or__(self, other: "Mask") -> "Mask":
        self.check_compatible(other)
        return self._combine("or", other, union_box(self._box, other._box))

    def __and__(self, other: "Mask") -> "Mask":
        self.check_compatible(other)
        return self._combine("and", other, intersect_box(self._box, other._box))

    def __sub__(self, other: "Mask") -> "Mask":
        return self._combine("andnot", other, self._box)

    def __xor__(self, other: "Mask") -> "Mask":
        self.check_compatible(other)
        return self._combine("xor", other, union_box(self._box, other._box))

    def __invert__(self) -> "Mask":
        ext = self._geometry.extent
        box = box_for_extent(ext)
        b = self._backend
        words = b.empty(box[3:], np.uint32, what="invert result")
        b.logic("invert", words, box, self._words, self._box, None, None, ext.i0, ext.i1)
        return Mask(self._geometry, b, words, box)

    def __repr__(self) -> str:
        return (f"<Mask on grid {self.shape} (k,j,i), box {self.box_extent}, {self.nbytes} bytes, "
                f"{self._backend.name}>")


def _owned_read_only(words: Any) -> Any:
    """Host words become read-only (a view or a foreign buffer is copied first, so that no
    writable alias of them stays outside the mask); device arrays pass through."""
    if isinstance(words, np.ndarray):
        if not words.flags.owndata or not words.flags.writeable:
            words = words.copy()
        words.flags.writeable = False
    return words


def _what(geometry: ImageGeometry, box: Box) -> str:
    return f"mask words of shape {box[3:]} on grid {geometry.shape}"


def checked_extent(geometry: ImageGeometry, extent: Extent | None) -> Extent:
    """``extent`` checked against the grid (None: the whole grid).

    Raises
    ------
    InvalidInputError
        If ``extent`` is not an :class:`Extent`.
    OutOfBoundsError
        If it leaves the grid.
    """
    if extent is None:
        return geometry.extent
    if not isinstance(extent, Extent):
        raise InvalidInputError(f"extent must be an Extent, got {type(extent).__name__}")
    if not extent.is_empty and not geometry.extent.contains(extent):
        raise OutOfBoundsError(f"{extent} is outside the grid of shape {geometry.shape}")
    return extent if not extent.is_empty else Extent.empty()


def pack_bits(dense: np.ndarray) -> np.ndarray:
    """Pack a host bool array ``(nk, nj, n)`` into words ``(nk, nj, ceil(n / 32))``, the mask
    bit layout (voxel ``i`` is bit ``i % 32`` of word ``i // 32``; the padding bits are 0).

    Parameters
    ----------
    dense : numpy.ndarray
        3D bool array.

    Returns
    -------
    numpy.ndarray
        uint32 words.
    """
    nk, nj, ni = dense.shape
    nw = (ni + 31) // 32
    pad = np.zeros((nk, nj, nw * 32), bool)
    pad[:, :, :ni] = dense
    return np.packbits(pad, axis=-1, bitorder="little").view("<u4").astype(np.uint32)


def unpack_bits(words: np.ndarray, width: int) -> np.ndarray:
    """The inverse of :func:`pack_bits`: host words ``(nk, nj, nw)`` to a bool array
    ``(nk, nj, width)`` (``width <= 32 * nw``; the bits past it are dropped)."""
    bits = np.unpackbits(np.ascontiguousarray(words).view(np.uint8), bitorder="little")
    return bits.reshape(words.shape[0], words.shape[1], -1)[:, :, :width].astype(bool)


def pack_block(extent: Extent, dense: np.ndarray) -> tuple[Box, np.ndarray]:
    """Host words of the word-aligned box holding ``extent``, from a bool array over ``extent``.

    Returns
    -------
    tuple
        ``(box, words)``: :func:`box_for_extent` of ``extent`` and uint32 words of shape
        ``box[3:]`` (bits outside ``extent`` are 0).
    """
    box = box_for_extent(extent)
    lead = extent.i0 - 32 * box[2]
    full = np.zeros((box[3], box[4], 32 * box[5]), bool)
    full[:, :, lead:lead + dense.shape[2]] = dense
    return box, pack_bits(full)
