"""Atomic file writes: write to a temporary file beside the target, then rename.

A failed save never leaves a partial file and never destroys the previous one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import FileFormatError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it over ``path``.

    ``suffix`` is the temporary file's extension (some writers pick the format from it);
    by default it is the target's full suffix (``.nii.gz``, ``.seg.nrrd``).
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileFormatError(f"cannot write {target}: folder {folder} does not exist")
    if suffix is None:
        suffix = "".join(target.suffixes) or ""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
