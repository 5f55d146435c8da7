"""CUDA backend (CuPy): NVIDIA GPUs.

A thin adapter: the kernel calls are shared with OpenCL in :mod:`.clike` (tested on PoCL in
CI); this module only compiles the same kernel sources as CUDA C with NVRTC, launches them,
and moves arrays.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import BackendUnavailableError
from .clike import ClikeBackend
from .registry import kernel_source

#: NVRTC options: no fused multiply-add, so float results match OpenCL and numba bit for bit.
NVRTC_OPTIONS = ("--fmad=false", "--std=c++14")

_BLOCK = 256


class CudaBackend(ClikeBackend):
    name = "cuda"

    def __init__(self, memory_budget=None) -> None:
        try:
            import cupy
        except ImportError as exc:
            raise BackendUnavailableError("CuPy is not installed (pip install 'gpuseg[cuda]')") from exc
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDARuntimeError without driver / GPU
            raise BackendUnavailableError(f"CuPy cannot reach a CUDA device: {exc}") from exc
        if n < 1:
            raise BackendUnavailableError("no CUDA device")
        self._cp = cupy
        self._modules: dict[tuple, Any] = {}
        self._dummy_buf = None
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        self._props = props
        super().__init__(memory_budget)

    @property
    def device_name(self) -> str:
        name = self._props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)

    def default_memory_budget(self) -> int:
        free, total = self._cp.cuda.runtime.memGetInfo()
        return int(total * 0.8)

    def _kernel(self, source: str, name: str, defines: tuple[tuple[str, str], ...]):
        key = (source, defines)
        mod = self._modules.get(key)
        if mod is None:
            opts = NVRTC_OPTIONS + tuple(f"-D{n}={v}" for n, v in defines)
            mod = self._modules[key] = self._cp.RawModule(code=kernel_source(source), options=opts)
        return mod.get_function(name)

    def launch(self, kernel, n_threads: int, args: Sequence[Any]) -> None:
        grid = (int(n_threads) + _BLOCK - 1) // _BLOCK
        kernel((grid,), (_BLOCK,), tuple(args))

    def _dummy(self):
        if self._dummy_buf is None:
            self._dummy_buf = self._cp.zeros((1,), np.uint32)
        return self._dummy_buf

    def _empty(self, shape, dtype):
        return self._cp.empty(shape, dtype)

    def _upload(self, array: np.ndarray):
        return self._cp.asarray(array)

    def to_numpy(self, array) -> np.ndarray:
        return self._cp.asnumpy(array)

    def fill_zero(self, array) -> None:
        array.fill(0)

    def is_device_array(self, array) -> bool:
        return isinstance(array, self._cp.ndarray)

    def synchronize(self) -> None:
        self._cp.cuda.Stream.null.synchronize()
