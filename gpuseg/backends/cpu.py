"""CPU backend: numpy arrays, and the numba twins of the registry's kernels."""

from __future__ import annotations

import os
import platform

import numpy as np

from .base import Backend

#: Stand-ins for absent optional arguments (never read: their box is the null box, or the
#: kernel's flag says the argument is unused). numba types them, so each has the rank and
#: dtype of what it stands for.
_DUMMIES = {"box": np.zeros((1, 1, 1), np.uint32), "image": np.zeros((1, 1, 1), np.int16),
            "array": np.zeros(1, np.uint32)}


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

    def to_host(self, array) -> np.ndarray:
        return array

    def to_numpy_region(self, array, slices) -> np.ndarray:
        return np.array(array[slices])

    def fill_zero(self, array) -> None:
        array.fill(0)

    def is_device_array(self, array) -> bool:
        return isinstance(array, np.ndarray)

    # --- the registry: a kernel's twin takes the same arguments ------------------------
    def dummy(self, kind: str = "array"):
        return _DUMMIES[kind]

    def _launch_spec(self, spec, args, n, specialise) -> None:
        spec.twin(*spec.expand(args, _DUMMIES, scalar=False))

    def _run_procedure(self, spec, args):
        return spec.twin(*args)
