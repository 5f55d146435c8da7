"""The service's wire format (docs/protocol.md), shared by the server and :mod:`gpuseg.client`.

A frame is one binary WebSocket message: a 4-byte big-endian header length, a msgpack map
(the header), then the payload bytes (possibly none). Patch payloads are the mask's own packed
words (uint32, little-endian, C order over the box ``(k0, j0, w0, nk, nj, nw)`` of word
coordinates: bit ``b`` of word ``w`` is voxel ``i = 32 * (w0 + w) + b``), zstd-compressed.

Only msgpack, zstandard and numpy are needed here, so the client does not pull in the server.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import numpy as np
import zstandard

PROTOCOL_VERSION = 1
WORDS_ZSTD = "words-u32le+zstd"
LABELS_ZSTD = "labels-u8+zstd"
#: bytes a frame's header may take at most (boxes, ids and counters); a budget must exceed it
HEADER_RESERVE = 1024
MIN_BUDGET = 4096

_LEN = struct.Struct(">I")
_cctx = zstandard.ZstdCompressor(level=1)


class FrameError(ValueError):
    """A frame that cannot be decoded."""


def encode(header: dict, payload: bytes = b"") -> bytes:
    h = msgpack.packb(header, use_bin_type=True)
    return _LEN.pack(len(h)) + h + payload


def decode(frame: bytes, *, max_header: int = 65536) -> tuple[dict, bytes]:
    """Split a frame into (header, payload); FrameError when it is malformed."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise FrameError("frames are binary")
    frame = bytes(frame)
    if len(frame) < 4:
        raise FrameError(f"a frame starts with a 4-byte header length; got {len(frame)} bytes")
    (n,) = _LEN.unpack_from(frame)
    if n > max_header or 4 + n > len(frame):
        raise FrameError(f"header length {n} does not fit the frame of {len(frame)} bytes (max {max_header})")
    try:
        header = msgpack.unpackb(frame[4:4 + n], raw=False, strict_map_key=True,
                                 max_str_len=max_header, max_bin_len=max_header, max_array_len=1 << 20,
                                 max_map_len=256)
    except Exception as exc:  # msgpack raises several unrelated types for bad bytes
        raise FrameError(f"header is not valid msgpack ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise FrameError("a frame's header is a msgpack map")
    return header, frame[4 + n:]


def compress_words(words: np.ndarray) -> bytes:
    return _cctx.compress(np.ascontiguousarray(words, dtype="<u4").tobytes())


def decompress_words(payload: bytes, shape: tuple[int, int, int], *, max_bytes: int | None = None) -> np.ndarray:
    n = int(shape[0]) * int(shape[1]) * int(shape[2]) * 4
    if max_bytes is not None and n > max_bytes:
        raise FrameError(f"box of {n} bytes exceeds {max_bytes}")
    raw = zstandard.ZstdDecompressor().decompress(payload, max_output_size=n)
    if len(raw) != n:
        raise FrameError(f"payload holds {len(raw)} bytes, box needs {n}")
    return np.frombuffer(raw, dtype="<u4").reshape(shape)


def split_box(box: tuple[int, ...], max_words: int) -> list[tuple[int, ...]]:
    """Split a word box into boxes of at most ``max_words`` words (along k, then j, then w)."""
    k0, j0, w0, nk, nj, nw = box
    if nk * nj * nw <= max_words:
        return [box]
    if nj * nw <= max_words:
        step = max(1, max_words // (nj * nw))
        return [(k, j0, w0, min(step, k0 + nk - k), nj, nw) for k in range(k0, k0 + nk, step)]
    out = []
    for k in range(k0, k0 + nk):
        if nw <= max_words:
            step = max(1, max_words // nw)
            out += [(k, j, w0, 1, min(step, j0 + nj - j), nw) for j in range(j0, j0 + nj, step)]
        else:
            out += [(k, j, w, 1, 1, min(max_words, w0 + nw - w)) for j in range(j0, j0 + nj)
                    for w in range(w0, w0 + nw, max_words)]
    return out


def visible_first(box: tuple[int, ...], viewport: dict | None) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Split a word box into (the part inside the viewport, the rest).

    ``viewport``: ``{"axis": a, "lo": l, "hi": h}`` - slices ``l <= index < h`` of grid axis
    ``a`` (0 = k, 1 = j, 2 = i; for i the word columns holding those voxels)."""
    if viewport is None:
        return [], [box]
    a = int(viewport["axis"])
    lo, hi = int(viewport["lo"]), int(viewport["hi"])
    if a == 2:
        lo, hi = lo // 32, (hi + 31) // 32
    start, n = box[a], box[a + 3]
    c0, c1 = max(start, min(start + n, lo)), max(start, min(start + n, hi))

    def piece(s: int, e: int) -> list[tuple[int, ...]]:
        if e <= s:
            return []
        b = list(box)
        b[a], b[a + 3] = s, e - s
        return [tuple(b)]

    return piece(c0, c1), piece(start, c0) + piece(c1, start + n)


def region_frames(regions: list[tuple[dict, tuple[int, ...], Any]], *, budget: int,
                  viewport: dict | None) -> list[bytes]:
    """Frames for word regions ``(header, box, words_over)``: every region's part inside the
    viewport first, then the rest; each frame at most ``budget`` bytes. ``words_over(box)``
    returns host words of a sub-box."""
    max_words = max(1, (budget - HEADER_RESERVE) // 4)
    first, later = [], []
    for header, box, words_over in regions:
        vis, rest = visible_first(box, viewport)
        for target, parts in ((first, vis), (later, rest)):
            for part in parts:
                for b in split_box(part, max_words):
                    target.append((header, b, words_over))
    out = []
    for header, b, words_over in first + later:
        h = dict(header, box=list(b), encoding=WORDS_ZSTD)
        out.append(encode(h, compress_words(words_over(b))))
    return out
