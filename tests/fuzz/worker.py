"""The persistent fuzz worker: runs many cases in one process and reports each outcome.

Protocol: one JSON case per line on stdin; one JSON result per line on the file descriptor
given as argv[1] (stdout and stderr are sent to /dev/null, so what the code under test prints
cannot corrupt the protocol). The parent kills and restarts the worker after a hang, and
restarts it after a crash or a memory kill.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback

RAW_MODULES = {"h5py", "pydicom", "nibabel", "zlib", "struct", "_struct", "nrrd", "highdicom", "json", "numpy",
               "gzip", "zipfile", "lzma", "bz2", "pickle", "_pickle"}


def classify(exc: BaseException) -> str:
    from gpuseg.errors import GpusegError

    from .targets import Changed, CliFailure

    if isinstance(exc, GpusegError):
        return "typed"
    if isinstance(exc, Changed):
        return "changed"
    if isinstance(exc, CliFailure):
        return "untyped"
    if isinstance(exc, MemoryError):
        return "memory"
    mod = type(exc).__module__.split(".")[0]
    if mod in RAW_MODULES or type(exc) in (OSError, UnicodeDecodeError, UnicodeEncodeError, EOFError):
        return "raw"
    return "untyped"


def main() -> None:
    out = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    import warnings

    warnings.simplefilter("ignore")
    from . import targets

    import gpuseg  # noqa: F401 - imported once, before the first case
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            targets.run(msg)
            result = {"outcome": "ok"}
        except BaseException as exc:  # noqa: BLE001 - classifying every outcome is the point
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = traceback.extract_tb(exc.__traceback__)
            where = f"{tb[-1].filename.split('/')[-1]}:{tb[-1].lineno}" if tb else "?"
            result = {"outcome": classify(exc), "error": f"{type(exc).__module__}.{type(exc).__name__}",
                      "message": str(exc)[:600], "where": where}
        out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
