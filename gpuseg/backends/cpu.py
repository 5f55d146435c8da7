"""CPU backend: numpy arrays and the numba twins of the device kernels."""

from __future__ import annotations

import os
import platform

import numpy as np

from .base import OPS, Backend

_DUMMY = np.zeros((1, 1, 1), dtype=np.uint32)
_FAR = (1 << 30, 1 << 30, 1 << 30, 0, 0, 0)  # a box that holds no grid position


def _or_dummy(words, box):
    """numba needs a real array: absent or empty masks become a dummy word outside every box."""
    if words is None or words.size == 0:
        return _DUMMY, _FAR
    return words, box


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class CPUBackend(Backend):
    name = "cpu"

    def __init__(self, memory_budget=None) -> None:
        from . import _cpu_kernels  # compiling happens lazily, per function

        self._k = _cpu_kernels
        super().__init__(memory_budget)

    @property
    def device_name(self) -> str:
        import numba

        return f"{_cpu_model()}, {numba.config.NUMBA_NUM_THREADS} numba threads"

    def default_memory_budget(self) -> int:
        return int(_physical_memory() * 0.8)

    def _empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def _upload(self, array):
        return array.copy()

    def to_numpy(self, array) -> np.ndarray:
        return np.array(array, copy=True)

    def fill_zero(self, array) -> None:
        array.fill(0)

    def is_device_array(self, array) -> bool:
        return isinstance(array, np.ndarray)

    # --- primitives ------------------------------------------------------------------
    def threshold(self, image, lo, hi, out, box, mask, mask_box) -> None:
        if out.size == 0:
            return
        m, mb = _or_dummy(mask, mask_box)
        self._k.threshold(image, lo, hi, out, box[0], box[1], box[2], m, mb[0], mb[1], mb[2], mask is not None)

    def logic(self, op, out, box, a, a_box, b, b_box, ilo, ihi) -> None:
        if out.size == 0:
            return
        a_, ab = _or_dummy(a, a_box)
        b_, bb = _or_dummy(b, b_box)
        self._k.logic(OPS[op], out, box[0], box[1], box[2], a_, ab[0], ab[1], ab[2],
                      b_, bb[0], bb[1], bb[2], ilo, ihi)

    def count(self, words) -> int:
        if words.size == 0:
            return 0
        return int(self._k.count(words))

    def extent_bits(self, words):
        if words.size == 0:
            return None
        from .clike import _reduce_slice_extents

        return _reduce_slice_extents(self._k.slice_extents(words))

    def pack(self, dense, out) -> None:
        if out.size:
            self._k.pack(dense, out)

    def unpack(self, words, out) -> None:
        if words.size and out.size:
            self._k.unpack(words, out)

    def extract_slice(self, words, box, axis, index, grid_shape) -> np.ndarray:
        w, b = _or_dummy(words, box)
        return self._k.extract_slice(w, b[0], b[1], b[2], axis, index, *grid_shape)
