"""Atomic file writes: write to a temporary file beside the target, then rename.

A failed (or killed) save never leaves a partial file under the target name and never
destroys the previous one. Temporary files are named ``.<target>.<pid>.<random>.tmp<suffix>``;
every save first removes the ones of its target left by processes that no longer run (a
SIGKILLed save), so none outlives the next save. Errors of the file system (full disk,
read-only, permission) become :class:`FileWriteError` naming the target, not the temp file.

:func:`atomic_paths` replaces several files together: all are written first, then renamed
in the given order; readers of a pair (``.nii.gz`` and its ``.labels.json``) make the pair
consistent by a token the two share (see gpuseg.io.nifti).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import FileWriteError, GpusegError

__all__ = ["atomic_path", "atomic_paths", "clean_stale_temps", "write_error"]

#: Seconds after which a temp file of the old (mkstemp) naming counts as abandoned.
LEGACY_TEMP_AGE = 3600
_active: set[str] = set()  # temp files this process is writing now
_lock = threading.Lock()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's live process
        return True
    return True


def clean_stale_temps(target: Path) -> list[Path]:
    """Remove the temp files of ``target`` whose writing process is gone; returns them."""
    folder = target.parent if str(target.parent) else Path(".")
    pattern = re.compile(r"^\." + re.escape(target.name) + r"\.(\d+)\.[0-9a-f]{16}\.tmp")
    # gpuseg before pid-named temps used tempfile.mkstemp (8 random characters): removed after an hour
    legacy = re.compile(r"^\." + re.escape(target.name) + r"\.[a-z0-9_]{8}\.tmp")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = pattern.match(e.name)
        if not m:
            if legacy.match(e.name):
                with contextlib.suppress(OSError):
                    if time.time() - e.stat(follow_symlinks=False).st_mtime > LEGACY_TEMP_AGE:
                        os.unlink(e.path)
                        removed.append(Path(e.path))
            continue
        with _lock:
            if e.path in _active or str(folder / e.name) in _active:
                continue
        if int(m.group(1)) != os.getpid() and _pid_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(e.path)
            removed.append(Path(e.path))
    return removed


def write_error(target: Path, exc: OSError) -> FileWriteError:
    reason = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
              errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
              errno.EDQUOT: "disk quota exceeded", errno.ENOTDIR: "a part of the path is not a folder",
              errno.EISDIR: "the target is a folder", errno.ENOENT: "no file can be created there"}.get(
        exc.errno, exc.strerror or str(exc))
    err = FileWriteError(f"cannot write {target}: {reason}")
    err.errno = exc.errno
    return err


def _new_temp(target: Path, suffix: str | None, report: Path) -> Path:
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileWriteError(f"cannot write {report}: folder {folder} does not exist")
    if target.is_dir():
        raise FileWriteError(f"cannot write {target}: it is a folder")
    if suffix is None:
        suffix = "".join(target.suffixes) or ""
    clean_stale_temps(target)
    tmp = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp{suffix}"
    umask = os.umask(0)
    os.umask(umask)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~umask)
    except OSError as exc:
        raise write_error(report, exc) from None
    os.close(fd)
    with _lock:
        _active.add(str(tmp))
    return tmp


def _forget(tmp: Path) -> None:
    with _lock:
        _active.discard(str(tmp))
    with contextlib.suppress(OSError):
        tmp.unlink()


@contextlib.contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike], suffixes: Sequence[str | None] | None = None
                 ) -> Iterator[list[Path]]:
    """Yield temp paths for ``paths``; on success rename each over its target, in order.

    Errors name the last path (the main file of a pair, renamed last).
    """
    targets = [Path(p) for p in paths]
    report = targets[-1]
    suffixes = list(suffixes) if suffixes is not None else [None] * len(targets)
    temps: list[Path] = []
    try:
        for t, sfx in zip(targets, suffixes):
            temps.append(_new_temp(t, sfx, report))
        yield list(temps)
        for t, tmp in zip(targets, temps):
            try:
                os.replace(tmp, t)
            except OSError as exc:
                raise write_error(t, exc) from None
            with _lock:
                _active.discard(str(tmp))
    except GpusegError:
        for tmp in temps:
            _forget(tmp)
        raise
    except OSError as exc:  # the writer's own I/O on a temp file
        for tmp in temps:
            _forget(tmp)
        raise write_error(report, exc) from None
    except BaseException:
        for tmp in temps:
            _forget(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it over ``path``.

    ``suffix`` is the temporary file's extension (some writers pick the format from it);
    by default it is the target's full suffix (``.nii.gz``, ``.seg.nrrd``).
    """
    with atomic_paths([path], [suffix]) as (tmp,):
        yield tmp
