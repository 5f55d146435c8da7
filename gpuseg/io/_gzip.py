"""Parallel gzip: one gzip member whose deflate stream is compressed in chunks on all cores.

Each chunk is deflated independently and ends on a byte boundary with a sync flush (the last
with a final block), so the concatenation is one valid deflate stream (the approach of pigz).
CRC-32s of the chunks are combined with zlib's crc32_combine algorithm. Any gzip reader
(zlib, Python's gzip, teem, pynrrd, slicerio) reads the result.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

CHUNK = 4 << 20


def _gf2_times(mat: list[int], vec: int) -> int:
    s, i = 0, 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B) (zlib's crc32_combine)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # apply len2 zero bytes, one bit of len2 at a time
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _deflate(args: tuple[memoryview, int, bool]) -> tuple[bytes, int]:
    chunk, level, last = args
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    out = c.compress(chunk) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return out, zlib.crc32(chunk)


def write_gzip(f: BinaryIO, data, level: int = 1, threads: int | None = None) -> int:
    """Write ``data`` (bytes-like) to ``f`` as one gzip member; returns the bytes written."""
    view = memoryview(data).cast("B")
    n = len(view)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    f.write(header)
    written = len(header)
    pieces = [(view[i:i + CHUNK], level, i + CHUNK >= n) for i in range(0, n, CHUNK)] or [(view[0:0], level, True)]
    crc = 0
    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        for (comp, c), (chunk, _, _) in zip(pool.map(_deflate, pieces), pieces):
            f.write(comp)
            written += len(comp)
            crc = crc32_combine(crc, c, len(chunk))
    f.write(struct.pack("<II", crc & 0xFFFFFFFF, n & 0xFFFFFFFF))
    return written + 8
