"""Shared implementation of the OpenCL and CUDA backends.

Both run the same kernel sources from ``kernels/`` (compiled as OpenCL C or CUDA C). This
class holds everything about *how* the kernels are called: argument lists, launch sizes,
reductions. Subclasses supply only the language-specific primitives: compile, launch,
allocate, copy. That keeps the CuPy adapter thin, so that almost all of it is exercised
through OpenCL on PoCL in CI.
"""

from __future__ import annotations

from abc import abstractmethod
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

import numpy as np

from .base import OPS, Backend, Box, IMAGE_DTYPES

i32 = np.int32
i64 = np.int64


@lru_cache(maxsize=None)
def kernel_source(name: str) -> str:
    """``gpuseg.h`` followed by ``kernels/<name>.cl``, as one translation unit."""
    pkg = resources.files("gpuseg.kernels")
    header = (pkg / "gpuseg.h").read_text(encoding="utf-8")
    body = (pkg / f"{name}.cl").read_text(encoding="utf-8")
    return header + "\n#line 1\n" + body


def kernel_names() -> list[str]:
    """Every kernel source file in ``kernels/`` (without extension)."""
    pkg = resources.files("gpuseg.kernels")
    return sorted(p.name[:-3] for p in pkg.iterdir() if p.name.endswith(".cl"))


#: Specialisations the ops compile, per kernel file: a list of -D define dicts. A file not
#: listed is compiled once with no defines. The tests compile every entry with nvcc (and
#: build it on OpenCL), so add an entry for every kernel file that needs defines.
SPECIALISATIONS: dict[str, list[dict[str, str]]] = {
    "threshold": [{"IMAGE_T": t} for t in IMAGE_DTYPES.values()],
    "masks": [{}],
    "stats": [{"IMAGE_T": t} for t in IMAGE_DTYPES.values()],
    "labels": [{"LABEL_T": "uchar"}, {"LABEL_T": "ushort"}],
    "grow": [{"IMAGE_T": t} for t in IMAGE_DTYPES.values()],
    "surface": [{"INDEX_T": "int"}, {"INDEX_T": "i64"}],
}


def _box(b: Box | None) -> list[np.int32]:
    if b is None:
        return [i32(0)] * 6
    return [i32(v) for v in b]


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

    def empty_raw(self, shape, dtype) -> Any:
        """An uninitialised device array without a budget check (small scratch buffers)."""
        return self._empty(tuple(shape), np.dtype(dtype))

    def dummy(self) -> Any:
        """A one-word device buffer to pass where an optional array is absent."""
        return self._dummy()

    # --- primitives ------------------------------------------------------------------
    def threshold(self, image, lo, hi, out, box, mask, mask_box) -> None:
        ctype = IMAGE_DTYPES[np.dtype(image.dtype)]
        k = self.kernel("threshold", "threshold", IMAGE_T=ctype)
        nk, nj, ni = image.shape
        n = box[3] * box[4] * box[5]
        if n == 0:
            return
        dt = np.dtype(image.dtype).type
        use = mask is not None
        self.launch(k, n, [image, i32(nj), i32(ni), out, *_box(box), dt(lo), dt(hi),
                            mask if use else self._dummy(), *_box(mask_box if use else None), i32(use)])

    def logic(self, op, out, box, a, a_box, b, b_box, ilo, ihi) -> None:
        n = box[3] * box[4] * box[5]
        if n == 0:
            return
        k = self.kernel("masks", "logic")
        self.launch(k, n, [out, *_box(box),
                            a if a is not None else self._dummy(), *_box(a_box if a is not None else None),
                            b if b is not None else self._dummy(), *_box(b_box if b is not None else None),
                            i32(OPS[op]), i32(ilo), i32(ihi)])

    def count(self, words) -> int:
        nk, nj, nw = words.shape
        if nk * nj * nw == 0:
            return 0
        rows = self._empty((nk * nj,), np.dtype(np.uint32))
        self.launch(self.kernel("masks", "count_rows"), nk * nj, [words, i64(nk * nj), i32(nw), rows])
        slices = self._empty((nk,), np.dtype(np.uint64))
        self.launch(self.kernel("masks", "sum_slices"), nk, [rows, i32(nk), i32(nj), slices])
        return int(self.to_numpy(slices).sum(dtype=np.uint64))

    def extent_bits(self, words):
        nk, nj, nw = words.shape
        if nk * nj * nw == 0:
            return None
        lo = self._empty((nk * nj,), np.dtype(np.int32))
        hi = self._empty((nk * nj,), np.dtype(np.int32))
        self.launch(self.kernel("masks", "row_extent"), nk * nj, [words, i64(nk * nj), i32(nw), lo, hi])
        per = self._empty((nk, 4), np.dtype(np.int32))
        self.launch(self.kernel("masks", "slice_extent"), nk, [lo, hi, i32(nk), i32(nj), per])
        return _reduce_slice_extents(self.to_numpy(per))

    def pack(self, dense, out) -> None:
        nk, nj, nw = out.shape
        if nk * nj * nw == 0:
            return
        self.launch(self.kernel("masks", "pack"), nk * nj * nw,
                     [dense, i32(dense.shape[2]), out, i32(nk), i32(nj), i32(nw)])

    def unpack(self, words, out) -> None:
        nk, nj, nw = words.shape
        if nk * nj * nw == 0 or out.shape[2] == 0:
            return
        self.launch(self.kernel("masks", "unpack"), nk * nj * nw,
                     [words, i32(nk), i32(nj), i32(nw), out, i32(out.shape[2])])

    def extract_slice(self, words, box, axis, index, grid_shape) -> np.ndarray:
        gk, gj, gi = grid_shape
        shape = {0: (gj, gi), 1: (gk, gi), 2: (gk, gj)}[axis]
        out = self._empty(shape, np.dtype(np.uint8))
        n = shape[0] * shape[1]
        if n:
            self.launch(self.kernel("masks", "extract_slice"), n,
                         [words if box[3] * box[4] * box[5] else self._dummy(), *_box(box), i32(axis),
                          i32(index), i32(gk), i32(gj), i32(gi), out])
        return self.to_numpy(out)


def _reduce_slice_extents(per: np.ndarray):
    """Combine per-slice (jmin, jmax, imin, imax) rows into one inclusive extent."""
    ks = np.nonzero(per[:, 0] >= 0)[0]
    if ks.size == 0:
        return None
    sel = per[ks]
    return (int(ks[0]), int(ks[-1]), int(sel[:, 0].min()), int(sel[:, 1].max()),
            int(sel[:, 2].min()), int(sel[:, 3].max()))
