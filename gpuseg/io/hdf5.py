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
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from ..backends import Backend, get_backend
from ..errors import FileFormatError, InvalidInputError, UnknownSegmentError
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
    with atomic_path(p, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
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
    return p


def read_h5(path: str | os.PathLike, *, backend: str | Backend | None = None,
            segments: Iterable[str] | None = None) -> Segmentation:
    """Read gpuseg HDF5; ``segments`` (ids or names) reads only those segments' words."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise FileFormatError(f"{p}: file not found")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise FileFormatError(f"{p}: not an HDF5 file or truncated ({exc})") from exc
    b = get_backend(backend)
    with f:
        try:
            if f.attrs.get("gpuseg_format") != "segmentation":
                raise FileFormatError(f"{p}: not a gpuseg segmentation file (no gpuseg_format attribute)")
            version = int(f.attrs["version"])
            if version > VERSION:
                raise FileFormatError(f"{p}: file version {version} is newer than this gpuseg reads ({VERSION})")
            shape = tuple(int(v) for v in f.attrs["shape_kji"])
            geom = ImageGeometry.from_matrix(shape, np.asarray(f.attrs["ijk_to_lps"]))
            seg = Segmentation(geom, backend=b)
            seg.source_representation = str(f.attrs["source_representation"])
            seg.contained_representations = list(json.loads(f.attrs["contained_representations"]))
            seg.conversion_parameters = {k: tuple(v) for k, v in json.loads(f.attrs["conversion_parameters"]).items()}
            seg.extra_fields = dict(json.loads(f.attrs["extra_fields"]))
            wanted = set(segments) if segments is not None else None
            found = set()
            nw_grid = (shape[2] + 31) // 32
            for meta in json.loads(f.attrs["segments"]):
                sid, name = str(meta["id"]), str(meta["name"])
                if wanted is not None and sid not in wanted and name not in wanted:
                    continue
                found |= {sid, name}
                box = tuple(int(v) for v in meta["box"])
                k0, j0, w0, nk, nj, nw = box
                if meta["words"] is not None:
                    if (k0 < 0 or j0 < 0 or w0 < 0 or k0 + nk > shape[0] or j0 + nj > shape[1]
                            or w0 + nw > nw_grid):
                        raise FileFormatError(f"{p}: segment {name!r} box {box} lies outside the grid {shape}")
                    words = np.asarray(f["words"][meta["words"]])
                    if words.shape != (nk, nj, nw) or words.dtype != np.uint32:
                        raise FileFormatError(f"{p}: segment {name!r} words have shape {words.shape} "
                                              f"{words.dtype}, expected {(nk, nj, nw)} uint32")
                    if w0 + nw == nw_grid and shape[2] % 32 and np.any(words[..., -1] >> np.uint32(shape[2] % 32)):
                        raise FileFormatError(f"{p}: segment {name!r} has bits set past the grid's last column")
                    mask = Mask(geom, b, b.asarray(words, what=f"segment {name!r}"), box)
                else:
                    mask = Mask.empty(geom, backend=b)
                s = seg.add_segment(mask, name=name, segment_id=sid, color=tuple(meta["color"]),
                                    visible=bool(meta["visible"]), label_value=int(meta["label_value"]))
                if s.id != sid:
                    raise FileFormatError(f"{p}: segment id {sid!r} occurs twice")
                s.tags = dict(meta["tags"])
                s.name_auto_generated = bool(meta["name_auto_generated"])
                s.color_auto_generated = bool(meta["color_auto_generated"])
        except (KeyError, ValueError, TypeError) as exc:
            raise FileFormatError(f"{p}: corrupt gpuseg segmentation file ({type(exc).__name__}: {exc})") from exc
    if wanted is not None:
        missing = [w for w in wanted if w not in found]
        if missing:
            raise UnknownSegmentError(f"{p}: no segment {missing[0]!r} in the file")
    return seg
