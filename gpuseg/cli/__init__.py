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


def _one_line(exc: BaseException) -> str:
    """The message on one line (a name with a newline in it is shown escaped)."""
    return str(exc).replace("\r", "\\r").replace("\n", "\\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
