"""Where numba's compiled kernels are cached, chosen before numba is imported.

numba keeps each cached function next to its source (``__pycache__``), falls back to
``~/.cache/numba`` when that folder cannot be written, and refuses to define the function at
all (a ``RuntimeError`` at import) when neither can be written. A system-wide or container
install of gpuseg run by a user without a home directory hits the last case, and a read-only
install would compile every kernel again on every run if the fallback were missing.

So, unless the user chose a folder with ``NUMBA_CACHE_DIR``, gpuseg leaves numba's in-tree
cache alone when the package folder is writable, and otherwise sets ``NUMBA_CACHE_DIR`` to
the first writable of ``$XDG_CACHE_HOME/gpuseg/numba`` (``~/.cache/gpuseg/numba``) and
``<tempdir>/gpuseg-numba-<uid>``. The choice applies to the whole process, as numba's setting
does. docs/performance.md (start-up) has the measurements.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

__all__ = ["configure", "cache_directory", "defer_blas_probe"]

PACKAGE = Path(__file__).resolve().parent


def _writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (made if missing), tried for real: ``os.access``
    says yes to root on a read-only file system."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False


def _user_cache_home() -> Path | None:
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg)
    home = os.path.expanduser("~")
    return Path(home) / ".cache" if home and home != "~" else None


def cache_directory() -> str | None:
    """The folder numba caches gpuseg's kernels in, or None for numba's own in-tree cache."""
    return os.environ.get("NUMBA_CACHE_DIR") or None


def defer_blas_probe() -> None:
    """Make numba's BLAS probe cheap (docs/performance.md, start-up).

    When numba loads its first function (from the cache, too), it imports ``numba.np.arraymath``,
    which probes for BLAS with ``ensure_blas()``: ``import scipy.linalg.cython_blas``. That
    imports all of ``scipy.linalg`` (and numpy.f2py through scipy's array-API layer), 0.4 s of a
    warm ``gpuseg info`` that needs no linear algebra. gpuseg's kernels use no BLAS. The probe is
    replaced by one that only checks that scipy is installed, without importing it. numba's
    BLAS calls import ``scipy.linalg.cython_blas`` themselves when a function that needs them
    runs, so a jitted ``np.dot`` still works. With an unknown numba layout nothing is changed.
    """
    import importlib.util

    try:
        import numba.np.linalg as nplinalg
    except ImportError:  # pragma: no cover - numba is a dependency
        return
    if "numba.np.arraymath" in sys.modules or not callable(getattr(nplinalg, "ensure_blas", None)):
        return  # too late (the probe ran), or not the numba this was written for

    def ensure_blas() -> None:
        if importlib.util.find_spec("scipy") is None:
            raise ImportError("scipy 0.16+ is required for linear algebra")

    nplinalg.ensure_blas = ensure_blas


def configure() -> None:
    """Set ``NUMBA_CACHE_DIR`` where the package folder is not writable (see the module docstring)."""
    _configure_cache()
    defer_blas_probe()


def _configure_cache() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    if _writable(PACKAGE / "__pycache__"):
        return
    candidates = []
    home = _user_cache_home()
    if home is not None:
        candidates.append(home / "gpuseg" / "numba")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    candidates.append(Path(tempfile.gettempdir()) / f"gpuseg-numba-{uid}")
    for folder in candidates:
        if _writable(folder):
            os.environ["NUMBA_CACHE_DIR"] = str(folder)
            break
    else:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="gpuseg-numba-")
    if "numba" in sys.modules:  # imported before gpuseg: make it read the setting again
        from numba.core import config

        config.reload_config()
