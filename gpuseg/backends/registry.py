"""The kernel registry: every device kernel declared once, with its numba twin.

A :class:`Kernel` names its source file in ``kernels/`` (``kernels/<source>.cl``), its entry
point, the ``-D`` defines it is specialised with, its parameters and its launch size. The
declaration sits in ``kernels/<source>.py`` right above the numba twin, which takes exactly
the same arguments (docs/architecture.md, "Adding a kernel").

Ops call :meth:`gpuseg.backends.Backend.run` with a spec and high-level arguments; the spec's
one argument builder expands them the same way for every backend:

``box`` / ``box?``
    a :class:`~gpuseg.Mask` (or any object with ``words`` and ``box``) or a ``(words, box)``
    pair: the words, then ``k0, j0, w0, nk, nj, nw``. ``box?`` may be ``None``; an absent or
    empty mask becomes a one-word dummy with the null box ``(0, 0, 0, 0, 0, 0)``, which every
    ``fetch_word`` reads as zero (docs/architecture.md, invariant 2).
``array`` / ``array?``
    a device array of the backend (``array?``: ``None`` becomes the dummy).
``i32`` / ``i64`` / ``u64`` / ``f64``
    scalars (``np.int32`` etc. for the C kernels, Python ``int``/``float`` for numba, so
    that one compiled twin serves every call).
``image`` / ``image?``
    a 3D device image (``image?``: ``None`` becomes a 3D dummy).
``value``
    a scalar already of the right numpy type (e.g. a threshold of the image's dtype).

The CPU backend calls the twin with the expanded list; OpenCL and CUDA launch the kernel on
``threads(args)`` threads. The argument layout is parsed once, at declaration.

A :class:`Procedure` is an algorithm whose device form is a loop of kernels driven from the
host and whose CPU form is one numba function (for example grow from seeds: a relaxation on
devices, an exact Dijkstra on the CPU). Both reach the same unique answer; ops call it with
:meth:`Backend.run` like a kernel.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InvalidInputError

#: C type names of the numpy dtypes kernels are specialised for (``-D IMAGE_T=short`` ...).
CTYPES = {np.dtype(np.int16): "short", np.dtype(np.uint16): "ushort", np.dtype(np.int32): "int",
          np.dtype(np.float32): "float", np.dtype(np.uint8): "uchar", np.dtype(np.int64): "i64",
          np.dtype(np.uint32): "uint", np.dtype(np.uint64): "u64"}

_SCALARS = {"i32": np.int32, "i64": np.int64, "u64": np.uint64, "f64": np.float64}
_PYTHON = {"i32": int, "i64": int, "u64": int, "f64": float}
_KINDS = ("box", "box?", "array", "array?", "image", "image?", "value", *_SCALARS)
NULL_BOX = (0, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class Param:
    name: str
    kind: str

    @property
    def optional(self) -> bool:
        return self.kind.endswith("?")


def parse_params(text: str) -> tuple[Param, ...]:
    """``"out:box, a:box?, op:i32"`` -> Params (checked once, at declaration)."""
    out = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        name, _, kind = item.partition(":")
        if kind not in _KINDS:
            raise ValueError(f"kernel parameter {item!r}: kind must be one of {_KINDS}")
        out.append(Param(name.strip(), kind))
    return tuple(out)


def _box_size(v) -> tuple:
    return v.box if hasattr(v, "box") else v[1]


def _threads_rule(rule: str | Callable, params: Sequence[Param]) -> Callable[[tuple], int]:
    """``"words:out"`` (nk*nj*nw of box ``out``), ``"rows:out"`` (nk*nj), ``"slices:out"`` (nk),
    a scalar parameter's name, or a callable of the high-level arguments."""
    if callable(rule):
        return lambda args: int(rule(*args))
    names = [p.name for p in params]
    what, _, pname = rule.partition(":")
    if not pname:
        idx = names.index(what)
        return lambda args: int(args[idx])
    idx = names.index(pname)

    def box_of(args):
        v = args[idx]
        return NULL_BOX if v is None else _box_size(v)

    if what == "words":
        return lambda args: (lambda b: b[3] * b[4] * b[5])(box_of(args))
    if what == "rows":
        return lambda args: (lambda b: b[3] * b[4])(box_of(args))
    if what == "slices":
        return lambda args: box_of(args)[3]
    raise ValueError(f"unknown launch rule {rule!r}")


@dataclass(eq=False)
class Kernel:
    """One device kernel: ``kernels/<source>.cl``'s ``name``, and its numba twin.

    Parameters
    ----------
    source : str
        Kernel file stem in ``kernels/`` (also the twin module ``gpuseg.kernels.<source>``).
    name : str
        Entry point in the ``.cl`` file; the twin is the function of that name.
    params : str
        Parameter layout, e.g. ``"out:box, a:box?, op:i32"`` (see the module doc).
    threads : str or callable
        Launch size rule (one thread per word, row, slice, or a scalar argument).
    defines : dict
        ``-D`` name -> the parameter whose dtype gives its C type (``None``: given at the call
        with ``specialise=``).
    specialisations : list of dict
        Every define combination the ops use; the build tests compile each one.
    """

    source: str
    name: str
    params: str
    threads: str | Callable = "words:out"
    defines: dict[str, str | None] = field(default_factory=dict)
    specialisations: list[dict[str, str]] = field(default_factory=lambda: [{}])

    def __post_init__(self) -> None:
        self.layout = parse_params(self.params)
        self.n_threads = _threads_rule(self.threads, self.layout)
        names = [p.name for p in self.layout]
        self._define_idx = {d: (names.index(p) if p is not None else None) for d, p in self.defines.items()}
        self._twin = None
        # the layout precomputed as small codes, so that a call costs one short loop
        self._codes = tuple(0 if p.kind.startswith("box") else 1 if p.kind.rstrip("?") in ("array", "image")
                            else 2 if p.kind == "value" else 3 for p in self.layout)
        self._dummy_kinds = tuple(p.kind.rstrip("?") for p in self.layout)
        self._convs = {True: tuple(_SCALARS.get(p.kind) for p in self.layout),
                       False: tuple(_PYTHON.get(p.kind) for p in self.layout)}
        _REGISTRY.setdefault((self.source, self.name), self)

    def __repr__(self) -> str:
        return f"<Kernel {self.source}.cl:{self.name}>"

    @property
    def twin(self) -> Callable:
        """The numba function ``gpuseg.kernels.<source>.<name>`` (same arguments)."""
        if self._twin is None:
            mod = importlib.import_module(f"gpuseg.kernels.{self.source}")
            self._twin = getattr(mod, self.name)
        return self._twin

    def define_values(self, args: Sequence[Any], specialise: dict | None) -> tuple[tuple[str, str], ...]:
        """The ``-D`` values of this call, sorted (the compiled-program cache key)."""
        if not self._define_idx:
            return ()
        out = []
        for d, idx in self._define_idx.items():
            if specialise and d in specialise:
                out.append((d, _ctype(specialise[d])))
            elif idx is not None and args[idx] is not None:
                out.append((d, _ctype(args[idx].dtype)))
            else:
                out.append((d, self.specialisations[0][d]))
        return tuple(sorted(out))

    def expand(self, args: Sequence[Any], dummy: dict, scalar: bool) -> list:
        """The flat argument list: boxes expanded, absent arrays replaced by the backend's
        dummies (``dummy[kind]`` for kind ``box``, ``image``, ``array``);
        ``scalar``: wrap scalars in their numpy types (C kernels) or pass Python numbers."""
        if len(args) != len(self.layout):
            raise InvalidInputError(f"{self!r} takes {len(self.layout)} arguments "
                                    f"({self.params}), got {len(args)}")
        out: list = []
        append = out.append
        for code, kind, conv, v in zip(self._codes, self._dummy_kinds, self._convs[scalar], args):
            if code == 0:  # box, box?
                if v is None:
                    words = None
                elif hasattr(v, "box"):
                    words, box = v.words, v.box
                else:
                    words, box = v
                if words is None or words.size == 0:
                    words, box = dummy["box"], NULL_BOX
                append(words)
                out.extend([np.int32(b) for b in box] if scalar else box)
            elif code == 1:  # array, array?, image, image?
                append(dummy[kind] if v is None else v)
            elif code == 2:  # value
                append(v)
            else:
                append(conv(v))
        return out


@dataclass(eq=False)
class Procedure:
    """An algorithm run as a host-driven loop of kernels on devices and one numba function
    on the CPU, with the same arguments (``device(backend, *args)`` vs ``twin(*args)``).

    Parameters
    ----------
    source : str
        Module ``gpuseg.kernels.<source>`` that holds the twin ``name``.
    name : str
        Name of the CPU twin.
    device : callable
        ``device(backend, *args)``: the device form, built only from :meth:`Backend.run` of
        :class:`Kernel` specs and the backend's public primitives.
    kernels : tuple of Kernel
        The kernels ``device`` launches (listed for the registry tests).
    """

    source: str
    name: str
    device: Callable
    kernels: tuple = ()

    def __post_init__(self) -> None:
        self._twin = None
        _REGISTRY.setdefault((self.source, self.name), self)

    def __repr__(self) -> str:
        return f"<Procedure {self.source}:{self.name}>"

    @property
    def twin(self) -> Callable:
        if self._twin is None:
            self._twin = getattr(importlib.import_module(f"gpuseg.kernels.{self.source}"), self.name)
        return self._twin


def _ctype(dtype) -> str:
    dt = np.dtype(dtype)
    if dt not in CTYPES:
        raise InvalidInputError(f"no kernel specialisation for dtype {dt}")
    return CTYPES[dt]


_REGISTRY: dict[tuple[str, str], Kernel | Procedure] = {}


def all_specs() -> list[Kernel | Procedure]:
    """Every declared kernel and procedure (imports every ``gpuseg.kernels`` module)."""
    import gpuseg.kernels as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"gpuseg.kernels.{info.name}")
    return list(_REGISTRY.values())


def kernels() -> list[Kernel]:
    return [s for s in all_specs() if isinstance(s, Kernel)]


# --- sources -------------------------------------------------------------------------------
def preamble() -> str:
    """``#define`` lines of the constants shared by Python, numba and the kernels."""
    from ..kernels.constants import DEFINES

    return "".join(f"#define {k} {v}\n" for k, v in DEFINES.items())


@lru_cache(maxsize=None)
def kernel_source(name: str) -> str:
    """The generated constants, ``gpuseg.h`` and ``kernels/<name>.cl``, as one translation unit."""
    pkg = resources.files("gpuseg.kernels")
    header = (pkg / "gpuseg.h").read_text(encoding="utf-8")
    body = (pkg / f"{name}.cl").read_text(encoding="utf-8")
    return "/* generated from gpuseg/kernels/constants.py */\n" + preamble() + header + "\n#line 1\n" + body


def kernel_names() -> list[str]:
    """Every kernel source file in ``kernels/`` (without extension)."""
    pkg = resources.files("gpuseg.kernels")
    return sorted(p.name[:-3] for p in pkg.iterdir() if p.name.endswith(".cl"))


def specialisations() -> dict[str, list[tuple[tuple[str, str], ...]]]:
    """Per kernel file, every define combination some spec compiles it with."""
    out: dict[str, set] = {}
    for k in kernels():
        for d in k.specialisations:
            out.setdefault(k.source, set()).add(tuple(sorted(d.items())))
    return {s: sorted(v) for s, v in out.items()}
