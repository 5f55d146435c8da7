"""Backend selection.

``get_backend("auto")`` prefers CUDA, then an OpenCL GPU, then the numba CPU backend.
``GPUSEG_BACKEND=cpu|opencl|cuda|auto`` sets the default. Backends are created once per
process and shared.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..errors import BackendUnavailableError, InvalidInputError
from .base import Backend, format_bytes, parse_bytes

__all__ = ["Backend", "get_backend", "available_backends", "backend_report", "NAMES",
           "format_bytes", "parse_bytes"]

NAMES = ("cpu", "opencl", "cuda")
_instances: dict[str, Backend] = {}
_lock = threading.Lock()


def _create(name: str) -> Backend:
    if name == "cpu":
        from .cpu import CPUBackend
        return CPUBackend()
    if name == "opencl":
        from .opencl import OpenCLBackend
        return OpenCLBackend()
    if name == "opencl-gpu":
        from .opencl import OpenCLBackend
        return OpenCLBackend(prefer_gpu=True)
    if name == "cuda":
        from .cuda import CudaBackend
        return CudaBackend()
    raise InvalidInputError(f"unknown backend {name!r}; choose one of {', '.join(NAMES)} or 'auto'")


def get_backend(name: str | Backend | None = None) -> Backend:
    """The backend called ``name`` (default: ``$GPUSEG_BACKEND`` or ``auto``)."""
    if isinstance(name, Backend):
        return name
    name = (name or os.environ.get("GPUSEG_BACKEND") or "auto").strip().lower()
    if name == "auto":
        for candidate in ("cuda", "opencl-gpu", "cpu"):
            try:
                return get_backend(candidate)
            except BackendUnavailableError:
                continue
        raise BackendUnavailableError("no backend is usable")  # pragma: no cover - cpu always is
    with _lock:
        b = _instances.get(name)
        if b is None:
            b = _instances[name] = _create(name)
        return b


def available_backends() -> dict[str, Backend | BackendUnavailableError]:
    """Each backend name mapped to the backend, or to the error saying why it is unusable."""
    out: dict[str, Any] = {}
    for name in NAMES:
        try:
            out[name] = get_backend(name)
        except BackendUnavailableError as exc:
            out[name] = exc
        except Exception as exc:  # an unexpected driver failure must not hide the others
            out[name] = BackendUnavailableError(f"{type(exc).__name__}: {exc}")
    return out


def backend_report() -> list[dict[str, Any]]:
    """Rows for ``gpuseg backends``: name, usable, device or reason, budget."""
    rows = []
    try:
        auto = get_backend("auto").name
    except BackendUnavailableError:  # pragma: no cover
        auto = None
    for name, b in available_backends().items():
        if isinstance(b, Backend):
            rows.append({"backend": name, "usable": True, "device": b.device_name,
                         "memory_budget": format_bytes(b.memory_budget), "auto": name == auto})
        else:
            rows.append({"backend": name, "usable": False, "reason": str(b), "auto": False})
    return rows
