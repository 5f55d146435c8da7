"""OpenCL backend (pyopencl): any OpenCL device, including CPUs through PoCL.

Only the language primitives live here; the kernel calls are in :mod:`.clike`.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..errors import BackendUnavailableError
from .clike import ClikeBackend
from .registry import kernel_source

_BUILD_OPTIONS = ["-cl-std=CL1.2"]


def _pick_device(prefer_gpu: bool):
    import pyopencl as cl

    try:
        platforms = cl.get_platforms()
    except cl.Error as exc:  # no ICD loader or no platform
        raise BackendUnavailableError(f"no OpenCL platform found ({exc}); install an OpenCL driver, "
                                      "e.g. Debian's pocl-opencl-icd") from exc
    devices = [d for p in platforms for d in p.get_devices()]
    if not devices:
        raise BackendUnavailableError("OpenCL platforms exist but expose no device")
    want = os.environ.get("GPUSEG_OPENCL_DEVICE")
    if want:
        matches = [d for d in devices if want.lower() in d.name.lower() or want.lower() in d.platform.name.lower()]
        if not matches:
            raise BackendUnavailableError(f"GPUSEG_OPENCL_DEVICE={want!r} matches none of "
                                          f"{[d.name for d in devices]}")
        return matches[0]
    gpus = [d for d in devices if d.type & cl.device_type.GPU]
    if prefer_gpu:
        if not gpus:
            raise BackendUnavailableError("no OpenCL GPU device (only " + ", ".join(d.name for d in devices) + ")")
        return gpus[0]
    return gpus[0] if gpus else devices[0]


class OpenCLBackend(ClikeBackend):
    name = "opencl"

    def __init__(self, memory_budget=None, *, prefer_gpu: bool = False) -> None:
        try:
            import pyopencl as cl
            import pyopencl.array  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailableError("pyopencl is not installed (pip install 'gpuseg[opencl]')") from exc
        self._cl = cl
        self._device = _pick_device(prefer_gpu)
        self._ctx = cl.Context([self._device])
        self._queue = cl.CommandQueue(self._ctx)
        self._programs: dict[tuple[str, tuple], Any] = {}
        self._kernels: dict[tuple[str, str, tuple], Any] = {}
        self._dummy_buf = None
        super().__init__(memory_budget)

    @property
    def device_name(self) -> str:
        d = self._device
        return f"{d.name.strip()} ({d.platform.name.strip()}, {d.version.strip()})"

    @property
    def is_gpu(self) -> bool:
        return bool(self._device.type & self._cl.device_type.GPU)

    def default_memory_budget(self) -> int:
        return int(self._device.global_mem_size * 0.8)

    def max_allocation(self) -> int:
        return int(self._device.max_mem_alloc_size)

    # --- language primitives ----------------------------------------------------------
    def _kernel(self, source: str, name: str, defines: tuple[tuple[str, str], ...]):
        key = (source, name, defines)
        k = self._kernels.get(key)
        if k is None:
            pkey = (source, defines)
            prg = self._programs.get(pkey)
            if prg is None:
                opts = _BUILD_OPTIONS + [f"-D{n}={v}" for n, v in defines]
                prg = self._cl.Program(self._ctx, kernel_source(source)).build(options=opts)
                self._programs[pkey] = prg
            k = self._kernels[key] = getattr(prg, name)
        return k

    def launch(self, kernel, n_threads: int, args: Sequence[Any]) -> None:
        gsize = ((int(n_threads) + 255) // 256) * 256
        cl_args = [a.data if hasattr(a, "data") and hasattr(a, "queue") else a for a in args]
        kernel(self._queue, (gsize,), None, *cl_args)

    def _dummy(self):
        if self._dummy_buf is None:
            self._dummy_buf = self._cl.array.zeros(self._queue, (1,), np.uint32)
        return self._dummy_buf

    def _empty(self, shape, dtype):
        return self._cl.array.empty(self._queue, shape, dtype)

    def _upload(self, array: np.ndarray):
        return self._cl.array.to_device(self._queue, array)

    def to_numpy(self, array) -> np.ndarray:
        if array.size == 0:
            return np.zeros(array.shape, array.dtype)
        return array.get(queue=self._queue)

    def fill_zero(self, array) -> None:
        if array.size:
            array.fill(0, queue=self._queue)

    def is_device_array(self, array) -> bool:
        return isinstance(array, self._cl.array.Array) and array.context == self._ctx

    def synchronize(self) -> None:
        self._queue.finish()
