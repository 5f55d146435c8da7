"""Shared implementation of the OpenCL and CUDA backends.

Both run the same kernel sources from ``kernels/`` (compiled as OpenCL C or CUDA C) through
the registry: :meth:`ClikeBackend._launch_spec` expands a spec's arguments, picks the
program compiled for its defines (memoized per specialisation) and launches one thread per
element. Subclasses supply only the language-specific primitives: compile, launch,
allocate, copy. That keeps the CuPy adapter thin, so that almost all of it is exercised
through OpenCL on PoCL in CI.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Sequence

from .base import Backend, _reduce_slice_extents  # noqa: F401  (re-exported for old callers)
from .registry import Kernel, kernel_names, kernel_source  # noqa: F401


class ClikeBackend(Backend):
    """A backend that runs the C kernels of ``kernels/`` through a device runtime."""

    # --- language primitives (subclasses) --------------------------------------------
    @abstractmethod
    def _kernel(self, source: str, name: str, defines: tuple[tuple[str, str], ...]) -> Any:
        """A compiled kernel function named ``name`` from kernel file ``source``."""

    @abstractmethod
    def launch(self, kernel: Any, n_threads: int, args: Sequence[Any]) -> None:
        """Run ``kernel`` on a 1D range of at least ``n_threads`` threads."""

    @abstractmethod
    def _dummy(self) -> Any:
        """A tiny uint32 device buffer to pass where an optional array is absent."""

    def kernel(self, source: str, name: str, **defines: str) -> Any:
        """The compiled kernel ``name`` of ``kernels/<source>.cl`` (memoized per defines)."""
        return self._kernel(source, name, tuple(sorted(defines.items())))

    def dummy(self, kind: str = "array") -> Any:
        return self._dummy()

    # --- the registry ----------------------------------------------------------------
    def _launch_spec(self, spec: Kernel, args: tuple, n: int, specialise) -> None:
        defines = spec.define_values(args, specialise)
        cache = self.__dict__.setdefault("_spec_kernels", {})
        key = (id(spec), defines)
        k = cache.get(key)
        if k is None:
            k = cache[key] = self._kernel(spec.source, spec.name, defines)
        d = self._dummy()
        self.launch(k, n, spec.expand(args, {"box": d, "image": d, "array": d}, scalar=True))
