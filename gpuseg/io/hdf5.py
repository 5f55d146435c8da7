"""gpuseg's native segmentation file (HDF5 through h5py).

The packed words of each segment are stored as they are held on the device, over the
segment's own box, so saving and loading involve no packing, no layers and no label
searches. Layout (version 1)::

    /              attrs: gpuseg_format="segmentation", version=1, shape_kji, ijk_to_lps (4x4),
                          source_representation, contained_representations, conversion_parameters,
                          extra_fields, and segments: a JSON list, in order, of {id, name, color,
                          name_auto_generated, color_auto_generated, tags, visible, label_value,
                          box: [k0, j0, w0, nk, nj, nw], words: dataset name or null}
    /words/<nnnn>  uint32 (nk, nj, nw) per non-empty segment, chunked and compressed

All metadata sits in one attribute (reading 117 segments' attributes one by one costs more than
their words).

One segment can be loaded without reading the others (``segments=``).

Untrusted files: libhdf5 can crash the process (SIGSEGV) or hang on a corrupt file, and no check
in Python before opening can rule that out. So :func:`read_h5` first reads the file in a forked
child process (:func:`probe_h5`: every attribute and every words dataset whose declared size is
within the memory budget); a crash or a hang there (``GPUSEG_H5_PROBE_TIMEOUT``, 30 s) becomes a
``FileFormatError`` and the reading process lives on. Then every size the file declares is
checked against the grid and the memory budget before anything is read. Writing builds the file
in memory (h5py's core driver) and writes the bytes with plain file I/O, because libhdf5 crashed
when the disk filled up.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Iterable

import numpy as np

from ..backends import Backend, get_backend
from ..errors import FileFormatError, GpusegError, InvalidInputError, UnknownSegmentError
from ..geometry import ImageGeometry
from ..mask import Mask
from ..segmentation import Segmentation
from ._atomic import atomic_path

__all__ = ["read_h5", "write_h5", "H5_COMPRESSION"]

#: Compression of the word datasets, chosen by measurement (benchmarks/bench_formats.py): LZF
#: keeps saving and loading fastest at a size close to gzip's on packed masks.
H5_COMPRESSION = "lzf"
VERSION = 1


def write_h5(seg: Segmentation, path: str | os.PathLike, *, compression: str | None = H5_COMPRESSION) -> Path:
    """Write ``seg`` as gpuseg HDF5 (atomically). ``compression``: "lzf", "gzip" or None."""
    import h5py

    if compression not in ("lzf", "gzip", None):
        raise InvalidInputError(f"compression must be 'lzf', 'gzip' or None, got {compression!r}")
    p = Path(path)
    g = seg.geometry
    # The file is built in memory (h5py's core driver, no backing store) and written with plain
    # file I/O: libhdf5 crashed on a full disk, a plain write() reports ENOSPC.
    with h5py.File(f"gpuseg-{id(seg)}.h5", "w", driver="core", backing_store=False) as f:
        f.attrs["gpuseg_format"] = "segmentation"
        f.attrs["version"] = VERSION
        f.attrs["shape_kji"] = np.asarray(g.shape, np.int64)
        f.attrs["ijk_to_lps"] = g.ijk_to_world
        f.attrs["source_representation"] = seg.source_representation
        f.attrs["contained_representations"] = json.dumps(seg.contained_representations)
        f.attrs["conversion_parameters"] = json.dumps(seg.conversion_parameters)
        f.attrs["extra_fields"] = json.dumps(seg.extra_fields)
        grp = f.create_group("words")
        table = []
        for n, s in enumerate(seg):
            name = None
            if s.mask.nbytes:
                name = f"{n:04d}"
                grp.create_dataset(name, data=s.mask.words_numpy(), compression=compression,
                                   chunks=True if compression else None)
            table.append({"id": s.id, "name": s.name, "color": list(s.color),
                          "name_auto_generated": bool(s.name_auto_generated),
                          "color_auto_generated": bool(s.color_auto_generated), "tags": s.tags,
                          "visible": bool(s.visible), "label_value": int(s.label_value),
                          "box": [int(v) for v in s.mask.box], "words": name})
        f.attrs["segments"] = json.dumps(table)
        f.flush()
        image = f.id.get_file_image()
    with atomic_path(p, suffix=".h5") as tmp:
        with open(tmp, "wb") as out:
            out.write(image)
    return p


#: Seconds the crash probe may take before the file counts as one that hangs the HDF5 library.
PROBE_TIMEOUT = float(os.environ.get("GPUSEG_H5_PROBE_TIMEOUT", "30"))


_ATTRS = ("gpuseg_format", "version", "shape_kji", "ijk_to_lps", "source_representation",
          "contained_representations", "conversion_parameters", "extra_fields", "segments")


def _probe_child(path: Path, limit: int) -> int:
    """In the forked child: every access the reader can make, each on its own (an error in one
    must not skip the next, which may be the one that crashes): the reader's attributes, all
    attributes, and the words datasets that match their segment's box inside the grid."""
    import h5py

    def attempt(fn):
        try:
            return fn()
        except Exception:
            return None

    try:
        f = h5py.File(path, "r")
    except Exception:
        return 3
    with f:
        for name in _ATTRS:
            attempt(lambda: f.attrs.get(name))
        for k in attempt(lambda: list(f.attrs)) or []:
            attempt(lambda: f.attrs[k])
        shape = attempt(lambda: [int(v) for v in np.asarray(f.attrs["shape_kji"]).ravel()[:3]])
        table = attempt(lambda: json.loads(_text(f, "segments")))
        words = attempt(lambda: f.get("words"))
        if not (shape and len(shape) == 3 and isinstance(table, list) and words is not None):
            return 0
        nw_grid = (shape[2] + 31) // 32
        for meta in table:
            def one(meta=meta):
                k0, j0, w0, nk, nj, nw = (int(v) for v in meta["box"])
                ds = words.get(str(meta["words"])) if meta.get("words") is not None else None
                if (isinstance(ds, h5py.Dataset) and ds.shape == (nk, nj, nw) and ds.dtype == np.uint32
                        and min(k0, j0, w0, nk, nj, nw) >= 0 and k0 + nk <= shape[0] and j0 + nj <= shape[1]
                        and w0 + nw <= nw_grid and nk * nj * nw * 4 <= limit):
                    ds[()]
            attempt(one)
    return 0


def probe_h5(path: str | os.PathLike, *, limit: int = 1 << 30, timeout: float | None = None) -> None:
    """Open and read ``path`` in a forked child process first; raise if libhdf5 crashes or hangs there.

    h5py (libhdf5) can crash the process (SIGSEGV) or loop forever on a corrupt file; no Python
    check before opening can rule that out, so untrusted files are read once where a crash takes
    only a child down. Without ``os.fork`` (Windows) this does nothing.
    """
    p = Path(path)
    if not hasattr(os, "fork"):  # pragma: no cover
        return
    import time

    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: whatever happens, it must never return into the caller
        code = 3
        try:
            code = int(_probe_child(p, limit) or 0)
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    limit_s = PROBE_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + limit_s
    delay = 0.0005
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise FileFormatError(f"{p}: corrupt HDF5 file (the HDF5 library did not finish reading it in "
                                  f"{limit_s:g} s)")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    if os.WIFSIGNALED(status):
        raise FileFormatError(f"{p}: corrupt HDF5 file (the HDF5 library crashed reading it: "
                              f"{signal.Signals(os.WTERMSIG(status)).name})")


def read_h5(path: str | os.PathLike, *, backend: str | Backend | None = None,
            segments: Iterable[str] | None = None, verify: bool = True) -> Segmentation:
    """Read gpuseg HDF5; ``segments`` (ids or names) reads only those segments' words.

    With ``verify`` (default) the file is first read in a forked child (:func:`probe_h5`), so a
    corrupt file that crashes or hangs libhdf5 gives :class:`FileFormatError`, never a dead
    process. Pass ``verify=False`` only for files this process wrote itself.
    """
    import h5py

    p = Path(path)
    if not p.is_file():
        raise FileFormatError(f"{p}: file not found")
    b = get_backend(backend)
    if verify:
        probe_h5(p, limit=b.memory_budget)
    try:
        f = h5py.File(p, "r")
    except Exception as exc:
        raise FileFormatError(f"{p}: not an HDF5 file or truncated ({type(exc).__name__}: {exc})") from None
    wanted = set(segments) if segments is not None else None
    found: set[str] = set()
    with f:
        try:
            seg = _read_open(f, p, b, wanted, found)
        except GpusegError:
            raise
        except Exception as exc:  # h5py raises OSError, RuntimeError, KeyError, AttributeError, ... on corrupt files
            raise FileFormatError(f"{p}: corrupt gpuseg segmentation file ({type(exc).__name__}: {exc})") from None
    if wanted is not None:
        missing = [w for w in wanted if w not in found]
        if missing:
            raise UnknownSegmentError(f"{p}: no segment {missing[0]!r} in the file")
    return seg


def _text(f, key: str) -> str:
    v = f.attrs[key]
    if isinstance(v, bytes):
        v = v.decode("utf-8")
    if not isinstance(v, str):
        raise TypeError(f"attribute {key!r} is not a string")
    return v


def _read_open(f, p: Path, b: Backend, wanted, found) -> Segmentation:
    import h5py

    if f.attrs.get("gpuseg_format") != "segmentation":
        raise FileFormatError(f"{p}: not a gpuseg segmentation file (no gpuseg_format attribute)")
    version = int(f.attrs["version"])
    if version > VERSION:
        raise FileFormatError(f"{p}: file version {version} is newer than this gpuseg reads ({VERSION})")
    shape_a = np.asarray(f.attrs["shape_kji"])
    if shape_a.shape != (3,) or shape_a.dtype.kind not in "iu" or np.any(shape_a < 1) or np.any(shape_a > 1 << 31):
        raise FileFormatError(f"{p}: shape_kji must be three positive integers, got {shape_a.tolist()!r}")
    shape = tuple(int(v) for v in shape_a)
    b.check_allocation(-(-(shape[0] * shape[1] * shape[2]) // 8), f"{p}: one mask on the grid {shape}")
    geom = ImageGeometry.from_matrix(shape, np.asarray(f.attrs["ijk_to_lps"], dtype=np.float64))
    seg = Segmentation(geom, backend=b)
    seg.source_representation = _text(f, "source_representation")
    seg.contained_representations = [str(v) for v in json.loads(_text(f, "contained_representations"))]
    seg.conversion_parameters = {str(k): (str(v[0]), str(v[1])) for k, v in
                                 json.loads(_text(f, "conversion_parameters")).items()}
    seg.extra_fields = {str(k): str(v) for k, v in json.loads(_text(f, "extra_fields")).items()}
    table = json.loads(_text(f, "segments"))
    if not isinstance(table, list):
        raise FileFormatError(f"{p}: the segment table is not a list")
    nw_grid = (shape[2] + 31) // 32
    words_group = f.get("words")
    for meta in table:
        if not isinstance(meta, dict):
            raise FileFormatError(f"{p}: a segment entry is not an object")
        sid, name = str(meta["id"]), str(meta["name"])
        if wanted is not None and sid not in wanted and name not in wanted:
            continue
        found |= {sid, name}
        box = tuple(int(v) for v in meta["box"])
        if len(box) != 6:
            raise FileFormatError(f"{p}: segment {name!r} box must hold 6 integers")
        k0, j0, w0, nk, nj, nw = box
        if meta["words"] is not None:
            if (min(box) < 0 or k0 + nk > shape[0] or j0 + nj > shape[1] or w0 + nw > nw_grid):
                raise FileFormatError(f"{p}: segment {name!r} box {box} lies outside the grid {shape}")
            ds = words_group.get(str(meta["words"])) if isinstance(words_group, h5py.Group) else None
            if not isinstance(ds, h5py.Dataset):
                raise FileFormatError(f"{p}: segment {name!r}: no words dataset {meta['words']!r}")
            if ds.shape != (nk, nj, nw) or ds.dtype != np.uint32:
                raise FileFormatError(f"{p}: segment {name!r} words have shape {ds.shape} "
                                      f"{ds.dtype}, expected {(nk, nj, nw)} uint32")
            b.check_allocation(nk * nj * nw * 4, f"{p}: segment {name!r}")
            words = np.asarray(ds[()])
            if w0 + nw == nw_grid and shape[2] % 32 and words.size and np.any(words[..., -1] >> np.uint32(shape[2] % 32)):
                raise FileFormatError(f"{p}: segment {name!r} has bits set past the grid's last column")
            mask = Mask(geom, b, b.asarray(words, what=f"segment {name!r}"), box)
        else:
            mask = Mask.empty(geom, backend=b)
        color = tuple(float(c) for c in meta["color"])
        s = seg.add_segment(mask, name=name, segment_id=sid, color=color,
                            visible=bool(meta["visible"]), label_value=int(meta["label_value"]))
        if s.id != sid:
            raise FileFormatError(f"{p}: segment id {sid!r} occurs twice")
        tags = meta["tags"]
        if not isinstance(tags, dict):
            raise FileFormatError(f"{p}: segment {name!r} tags are not an object")
        s.tags = {str(k): str(v) for k, v in tags.items()}
        s.name_auto_generated = bool(meta["name_auto_generated"])
        s.color_auto_generated = bool(meta["color_auto_generated"])
    return seg
