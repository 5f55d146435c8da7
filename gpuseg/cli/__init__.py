"""The ``gpuseg`` command line.

Each subcommand lives in a module of this package that defines ``register(subparsers)``;
the module names are listed in ``COMMAND_MODULES``. A command handler returns an exit code.
Errors a user can cause (``GpusegError``) print one line and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Sequence

from ..errors import GpusegError

COMMAND_MODULES = [
    "gpuseg.cli.core",
    "gpuseg.cli.io",
    "gpuseg.cli.effects",
    "gpuseg.cli.regions",
    "gpuseg.cli.edit",
    "gpuseg.cli.surface",
    "gpuseg.cli.serve",
    "gpuseg.cli.batch",
    "gpuseg.cli.compare",
    "gpuseg.cli.mask_volume",
    "gpuseg.cli.resample",
    "gpuseg.cli.split_volume",
]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="gpuseg", description="GPU segmentation engine for 3D medical images.")
    parser.add_argument("--version", action="version", version=f"gpuseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def add_backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default=None, choices=["auto", "cpu", "opencl", "cuda"],
                   help="compute backend (default: $GPUSEG_BACKEND or auto)")


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def write_csv_rows(rows: list[dict], target: str) -> None:
    """One CSV row per dict, with the first row's keys as columns, to stdout (``-``) or
    atomically to a file."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["segment"])
    w.writeheader()
    w.writerows(rows)
    if target == "-":
        sys.stdout.write(buf.getvalue())
        return
    from ..io import atomic_path

    with atomic_path(target) as tmp:
        tmp.write_text(buf.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GpusegError as exc:
        print(f"gpuseg {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the command names cannot be opened or written (one line, no traceback)
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"gpuseg {args.command}: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"gpuseg {args.command}: error: out of memory (set GPUSEG_MEMORY_BUDGET lower or use a smaller "
              "input)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``gpuseg`` console script and ``python -m gpuseg``: :func:`main`, then a quick exit.

    Python's own interpreter teardown frees numba's compiled kernels one by one, which costs
    0.25-0.35 s here after every command that ran one (docs/performance.md, start-up): a third
    of a warm ``gpuseg info``. When the command has left no other Python thread running, the
    streams are flushed and the ``atexit`` handlers run (so temporary files and logs are
    handled as in a normal exit), then the process ends with ``os._exit``. Otherwise (a thread
    still finishing work) it exits normally and waits for it.
    """
    rc = main()
    exit_quickly(rc)


def exit_quickly(rc: int) -> None:
    import atexit
    import os
    import threading

    if threading.active_count() != 1:
        sys.exit(rc)
    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # a closed pipe (gpuseg ... | head): report as Python would
        rc = rc or 120
    atexit._run_exitfuncs()  # the documented handlers; _run_exitfuncs is what Python itself calls
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(rc)


def _one_line(exc: BaseException) -> str:
    """The message on one line (a name with a newline in it is shown escaped)."""
    return str(exc).replace("\r", "\\r").replace("\n", "\\n")


if __name__ == "__main__":  # pragma: no cover
    entry()
