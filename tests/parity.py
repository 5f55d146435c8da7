"""One parity harness: run a test body on every available backend and assert bit equality.

In the spirit of CuPy's ``numpy_cupy_array_equal``::

    @parity(reference=lambda rng: scipy_answer(...))
    def test_margin(backend, rng):
        return gpuseg.margin(Mask.from_numpy(a, g, backend=backend), 2.0).to_numpy()

The body takes ``backend`` (a :class:`gpuseg.backends.Backend`) plus any pytest fixtures, and
returns its result: numpy arrays, Masks, numbers, or tuples / lists / dicts of them. The
decorated test runs the body on cpu, opencl and cuda (each that is usable; opencl is required
when ``GPUSEG_REQUIRE_OPENCL=1``, so a broken OpenCL fails instead of being skipped, and cuda
when ``GPUSEG_REQUIRE_CUDA=1``), with
identical inputs (random generators among the fixtures are copied, not shared), and asserts
that every backend's result equals cpu's bit for bit (same dtypes, same bytes, NaN included),
and, with ``reference``, that cpu's equals the independent reference's (values compared after
``np.asarray``; a reference may use another dtype, e.g. bool for a mask, and when both return
dicts the reference may name only some of the keys: the rest are checked across backends).
The reference takes the fixtures it names, in fresh copies.

:func:`backend_or_skip` and :func:`available_backends` serve tests that need a backend by
name (the old ``tests.conftest._backend_or_skip`` is an alias of the former).
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
from typing import Any, Callable

import numpy as np
import pytest

from gpuseg.backends import NAMES, get_backend
from gpuseg.errors import BackendUnavailableError

__all__ = ["parity", "backend_or_skip", "available_backends", "assert_identical"]


def _opencl_required() -> bool:
    return os.environ.get("GPUSEG_REQUIRE_OPENCL") == "1"


def _cuda_required() -> bool:
    """``GPUSEG_REQUIRE_CUDA=1`` (benchmarks/device_check.sh sets it): a missing cuda backend fails."""
    return os.environ.get("GPUSEG_REQUIRE_CUDA") == "1"


def backend_or_skip(name: str):
    """The backend ``name``, or skip (fail for opencl or cuda when it is required)."""
    try:
        return get_backend(name)
    except BackendUnavailableError as exc:
        if name == "opencl" and _opencl_required():
            pytest.fail(f"OpenCL is required here (GPUSEG_REQUIRE_OPENCL=1) but unusable: {exc}")
        if name == "cuda" and _cuda_required():
            pytest.fail(f"CUDA is required here (GPUSEG_REQUIRE_CUDA=1) but unusable: {exc}")
        pytest.skip(f"{name} backend unavailable: {exc}")


def available_backends() -> list:
    """Every usable backend, cpu first (fails if opencl is required and unusable)."""
    out = []
    for name in NAMES:
        try:
            out.append(get_backend(name))
        except BackendUnavailableError as exc:
            if name == "opencl" and _opencl_required():
                pytest.fail(f"OpenCL is required here (GPUSEG_REQUIRE_OPENCL=1) but unusable: {exc}")
            if name == "cuda" and _cuda_required():
                pytest.fail(f"CUDA is required here (GPUSEG_REQUIRE_CUDA=1) but unusable: {exc}")
    return out


def _host(value: Any) -> Any:
    """Masks and device arrays become host numpy arrays; containers are mapped."""
    from gpuseg.mask import Mask

    if isinstance(value, Mask):
        return {"box": tuple(value.box), "words": value.words_numpy()}
    if isinstance(value, dict):
        return {k: _host(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_host(v) for v in value)
    if isinstance(value, (np.ndarray, np.generic)) or np.isscalar(value) or value is None:
        return value
    for b in available_backends():
        if b.is_device_array(value):
            return b.to_numpy(value)
    return value


def assert_identical(got: Any, want: Any, where: str = "result", *, strict: bool = True) -> None:
    """``got == want`` recursively; ``strict``: same dtypes and bytes (NaN == NaN, -0 != 0)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: keys {set(got)} != {set(want)}"
        for k in want:
            assert_identical(got[k], want[k], f"{where}[{k!r}]", strict=strict)
        return
    if isinstance(want, (list, tuple)) and not (strict is False and isinstance(got, np.ndarray)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), f"{where}: lengths differ"
        for n, (g, w) in enumerate(zip(got, want)):
            assert_identical(g, w, f"{where}[{n}]", strict=strict)
        return
    if want is None or isinstance(want, (str, bool)):
        assert got == want, f"{where}: {got!r} != {want!r}"
        return
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape, f"{where}: shape {g.shape} != {w.shape}"
    if strict:
        assert g.dtype == w.dtype, f"{where}: dtype {g.dtype} != {w.dtype}"
        same = np.ascontiguousarray(g).tobytes() == np.ascontiguousarray(w).tobytes()
        if not same:
            bad = np.argwhere(g != w)
            raise AssertionError(f"{where}: not bit-identical; {len(bad)} elements differ, first at "
                                 f"{tuple(bad[0]) if len(bad) else '?'}")
    else:
        np.testing.assert_array_equal(g, w, err_msg=where)


def _fresh(kwargs: dict) -> dict:
    """Copies of stateful fixtures (random generators), so that every run sees the same inputs."""
    return {k: copy.deepcopy(v) if isinstance(v, (np.random.Generator, np.random.RandomState)) else v
            for k, v in kwargs.items()}


def parity(fn: Callable | None = None, *, reference: Callable | None = None):
    """Decorate a test body ``fn(backend, **fixtures) -> result``: see the module doc."""
    if fn is None:
        return functools.partial(parity, reference=reference)
    sig = inspect.signature(fn)
    if "backend" not in sig.parameters:
        raise TypeError(f"{fn.__name__}: a parity body takes a 'backend' argument")
    params = [p for n, p in sig.parameters.items() if n != "backend"]

    @functools.wraps(fn)
    def test(**kwargs):
        results = []
        for b in available_backends():
            results.append((b.name, _host(fn(b, **_fresh(kwargs)))))
        (name0, first), rest = results[0], results[1:]
        assert name0 == "cpu"
        for name, res in rest:
            assert_identical(res, first, f"{fn.__name__} on {name} vs cpu")
        if reference is not None:
            ref_params = inspect.signature(reference).parameters
            want = _host(reference(**{k: v for k, v in _fresh(kwargs).items() if k in ref_params}))
            if isinstance(want, dict) and isinstance(first, dict):  # the reference may check some keys
                missing = set(want) - set(first)
                assert not missing, f"{fn.__name__}: the reference names keys the body does not return: {missing}"
                first = {k: first[k] for k in want}
            assert_identical(first, want, f"{fn.__name__} on cpu vs the reference", strict=False)

    del test.__wrapped__  # pytest must see the signature without ``backend``
    test.__signature__ = sig.replace(parameters=params)
    return pytest.mark.parity(test)  # ``-m "cuda or parity"`` picks every test that runs on a GPU
