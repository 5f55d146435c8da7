"""The interface every backend implements.

A backend owns device arrays and runs the kernels of the registry on them
(:meth:`Backend.run`). Ops and models (``Image``, ``Mask``) speak only this interface: the
primitives below are written once, here, as registry calls, so adding a backend means
implementing memory, copies and :meth:`Backend.run`, and nothing above this layer changes
(docs/architecture.md, "Adding a backend").

Boxes are ``(k0, j0, w0, nk, nj, nw)`` tuples of ints: the position and shape, in slices,
rows and 32-bit words, of a mask's words inside its reference grid (docs/architecture.md, invariant 2).
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..errors import DeviceMemoryError, InvalidInputError
from ..kernels import masks as _mk
from ..kernels.constants import OPS
from ..kernels.threshold import THRESHOLD
from .registry import CTYPES, Kernel, Procedure

Box = tuple[int, int, int, int, int, int]

#: Image dtypes the kernels are specialised for, with their C type names.
IMAGE_DTYPES = {np.dtype(t): CTYPES[np.dtype(t)] for t in (np.int16, np.uint16, np.int32, np.float32)}

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40,
          "tib": 1 << 40}


def parse_bytes(text: str | int) -> int:
    """Parse ``"8GB"``, ``"512 MiB"`` or an integer into bytes (powers of 1024)."""
    if isinstance(text, (int, np.integer)):
        value = int(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
        if not m or m.group(2).lower() not in _UNITS:
            raise InvalidInputError(f"cannot parse a memory size from {text!r} (try '8GB' or '512MiB')")
        value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value <= 0:
        raise InvalidInputError(f"a memory budget must be positive, got {text!r}")
    return value


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


class Backend(ABC):
    """A compute device plus the primitive kernels gpuseg needs."""

    #: short name: "cpu", "opencl" or "cuda"
    name: str = ""

    def __init__(self, memory_budget: int | str | None = None) -> None:
        env = os.environ.get("GPUSEG_MEMORY_BUDGET")
        if memory_budget is None and env:
            memory_budget = env
        self._budget = parse_bytes(memory_budget) if memory_budget is not None else self.default_memory_budget()

    # --- description -----------------------------------------------------------------
    @property
    @abstractmethod
    def device_name(self) -> str:
        """Human-readable name of the device."""

    @abstractmethod
    def default_memory_budget(self) -> int:
        """Bytes gpuseg may use on the device when no budget is set."""

    def max_allocation(self) -> int:
        """Largest single buffer the device accepts."""
        return self._budget

    @property
    def memory_budget(self) -> int:
        return self._budget

    @memory_budget.setter
    def memory_budget(self, value: int | str) -> None:
        self._budget = parse_bytes(value)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": self.device_name,
                "memory_budget_bytes": self._budget, "max_allocation_bytes": self.max_allocation()}

    def __repr__(self) -> str:
        return f"<gpuseg {self.name} backend: {self.device_name}>"

    # --- memory ----------------------------------------------------------------------
    def check_allocation(self, nbytes: int, what: str = "array") -> None:
        """Raise :class:`DeviceMemoryError` before allocating ``nbytes`` that cannot fit."""
        if nbytes > self._budget:
            raise DeviceMemoryError(
                f"{what} needs {format_bytes(nbytes)}, more than the {self.name} backend's memory budget of "
                f"{format_bytes(self._budget)} (set GPUSEG_MEMORY_BUDGET or backend memory_budget to change it)")
        limit = self.max_allocation()
        if nbytes > limit:
            raise DeviceMemoryError(
                f"{what} needs {format_bytes(nbytes)} in one buffer, more than the largest buffer the "
                f"{self.name} device accepts ({format_bytes(limit)})")

    @abstractmethod
    def _empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any: ...

    @abstractmethod
    def _upload(self, array: np.ndarray) -> Any: ...

    @abstractmethod
    def to_numpy(self, array: Any) -> np.ndarray:
        """Copy a device array to a new host numpy array."""

    def empty(self, shape: tuple[int, ...], dtype, what: str = "array") -> Any:
        dtype = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        self.check_allocation(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, what)
        return self._empty(shape, dtype)

    def zeros(self, shape: tuple[int, ...], dtype, what: str = "array") -> Any:
        arr = self.empty(shape, dtype, what)
        self.fill_zero(arr)
        return arr

    def asarray(self, array: np.ndarray, what: str = "array") -> Any:
        """Copy a host array (made C-contiguous) to the device."""
        array = np.ascontiguousarray(array)
        self.check_allocation(array.nbytes, what)
        return self._upload(array)

    @abstractmethod
    def fill_zero(self, array: Any) -> None: ...

    def is_device_array(self, array: Any) -> bool:
        """True if ``array`` is an array of this backend."""
        return False

    def to_host(self, array: Any) -> np.ndarray:
        """A host numpy array of ``array`` that the caller then owns: a copy on a device, the
        array itself on the CPU (no copy). For results whose device array is not written again."""
        return self.to_numpy(array)

    def empty_raw(self, shape, dtype) -> Any:
        """An uninitialised device array without a budget check (small scratch buffers)."""
        return self._empty(tuple(shape), np.dtype(dtype))

    def to_numpy_region(self, array: Any, slices: tuple[slice, slice, slice]) -> np.ndarray:
        """A host copy of ``array[slices]`` of a 3D device array, reading only its slices in k."""
        sk, sj, si = slices
        slab = self.to_numpy(array[sk])
        return np.ascontiguousarray(slab[:, sj, si])

    # --- the registry ------------------------------------------------------------------
    @abstractmethod
    def dummy(self, kind: str = "array") -> Any:
        """A tiny device array passed where an optional argument of ``kind`` (``box``,
        ``image`` or ``array``) is absent; kernels never read it."""

    @abstractmethod
    def _launch_spec(self, spec: Kernel, args: tuple, n: int, specialise: dict | None) -> None:
        """Run ``spec`` (``n`` > 0 threads) on ``args`` (high-level, see the registry)."""

    def run(self, spec: Kernel | Procedure, *args: Any, specialise: dict | None = None) -> Any:
        """Run a registry kernel or procedure with its high-level arguments.

        Parameters
        ----------
        spec : Kernel or Procedure
            A declaration of ``gpuseg.kernels`` (e.g. ``gpuseg.kernels.masks.LOGIC``).
        *args
            The spec's parameters, in order (masks for ``box`` parameters, device arrays,
            scalars).
        specialise : dict, optional
            ``-D`` name -> numpy dtype, for defines no argument carries.

        Returns
        -------
        None for kernels (they write their outputs); a procedure's result.
        """
        if isinstance(spec, Procedure):
            return self._run_procedure(spec, args)
        n = spec.n_threads(args)
        if n > 0:
            self._launch_spec(spec, args, n, specialise)
        return None

    def _run_procedure(self, spec: Procedure, args: tuple) -> Any:
        return spec.device(self, *args)

    # --- primitives (written once, as registry calls) --------------------------------
    def threshold(self, image: Any, lo, hi, out: Any, box: Box,
                  mask: Any | None, mask_box: Box | None) -> None:
        """``out[box] = lo <= image <= hi`` (AND ``mask``), lo/hi already of the image dtype."""
        dt = np.dtype(image.dtype).type
        use = mask is not None
        self.run(THRESHOLD, image, image.shape[1], image.shape[2], (out, box), dt(lo), dt(hi),
                 (mask, mask_box) if use else None, use)

    def logic(self, op: str, out: Any, box: Box, a: Any | None, a_box: Box | None,
              b: Any | None, b_box: Box | None, ilo: int, ihi: int) -> None:
        """``out[box] = op(a, b)`` for voxels ``ilo <= i < ihi`` (0 elsewhere), with words outside
        an input's box read as zero."""
        self.run(_mk.LOGIC, (out, box), None if a is None else (a, a_box), None if b is None else (b, b_box),
                 OPS[op], ilo, ihi)

    def count(self, words: Any) -> int:
        """Number of set bits."""
        nk, nj, nw = words.shape
        if nk * nj * nw == 0:
            return 0
        rows = self._empty((nk * nj,), np.dtype(np.uint32))
        self.run(_mk.COUNT_ROWS, words, nk * nj, nw, rows)
        slices = self._empty((nk,), np.dtype(np.uint64))
        self.run(_mk.SUM_SLICES, rows, nk, nj, slices)
        return int(self.to_numpy(slices).sum(dtype=np.uint64))

    def extent_bits(self, words: Any) -> tuple[int, int, int, int, int, int] | None:
        """Inclusive (kmin, kmax, jmin, jmax, bmin, bmax) of set bits relative to the box,
        where b is the bit index from the box's first word; None if no bit is set."""
        nk, nj, nw = words.shape
        if nk * nj * nw == 0:
            return None
        lo = self._empty((nk * nj,), np.dtype(np.int32))
        hi = self._empty((nk * nj,), np.dtype(np.int32))
        self.run(_mk.ROW_EXTENT, words, nk * nj, nw, lo, hi)
        per = self._empty((nk, 4), np.dtype(np.int32))
        self.run(_mk.SLICE_EXTENT, lo, hi, nk, nj, per)
        return _reduce_slice_extents(self.to_numpy(per))

    def pack(self, dense: Any, out: Any) -> None:
        """Pack a device uint8 array (nk, nj, n) into words (nk, nj, ceil(n/32))."""
        nk, nj, nw = out.shape
        self.run(_mk.PACK, dense, dense.shape[2], out, nk, nj, nw)

    def unpack(self, words: Any, out: Any) -> None:
        """Unpack words (nk, nj, nw) into a device uint8 array (nk, nj, n) of 0/1."""
        nk, nj, nw = words.shape
        if out.shape[2] == 0:
            return
        self.run(_mk.UNPACK, words, nk, nj, nw, out, out.shape[2])

    def extract_slice(self, words: Any, box: Box, axis: int, index: int,
                      grid_shape: tuple[int, int, int]) -> np.ndarray:
        """A 2D uint8 host array of the slice ``index`` along ``axis`` over the full grid."""
        gk, gj, gi = grid_shape
        shape = {0: (gj, gi), 1: (gk, gi), 2: (gk, gj)}[axis]
        out = self._empty(shape, np.dtype(np.uint8))
        self.run(_mk.EXTRACT_SLICE, (words, box), axis, index, gk, gj, gi, out)
        return self.to_host(out)

    def synchronize(self) -> None:
        """Wait until queued device work is done (for timing)."""


def _reduce_slice_extents(per: np.ndarray):
    """Combine per-slice (jmin, jmax, imin, imax) rows into one inclusive extent."""
    ks = np.nonzero(per[:, 0] >= 0)[0]
    if ks.size == 0:
        return None
    sel = per[ks]
    return (int(ks[0]), int(ks[-1]), int(sel[:, 0].min()), int(sel[:, 1].max()),
            int(sel[:, 2].min()), int(sel[:, 3].max()))


def check_image_dtype(dtype) -> str:
    from ..errors import UnsupportedDtypeError
    dt = np.dtype(dtype)
    if dt not in IMAGE_DTYPES:
        raise UnsupportedDtypeError(
            f"image dtype {dt} is not supported; use one of "
            f"{', '.join(str(d) for d in IMAGE_DTYPES)} (gpuseg.read_image converts others)")
    return IMAGE_DTYPES[dt]
