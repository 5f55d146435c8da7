"""A bounded NRRD reader for untrusted files (attached ``.nrrd``/``.seg.nrrd``, detached ``.nhdr``).

Every size the header declares is checked before anything is read or allocated: the voxel
bytes against the memory limit and against what the file can hold (raw: the bytes left;
gzip: deflate's largest ratio), ``line skip``/``byte skip`` against the file size. A detached
``data file:`` must be a plain relative name of a regular file beside the header (inside
``root``, by default the header's folder), never an absolute path, a device or a link out of
that folder. Keys and values are UTF-8 (as 3D Slicer writes them) with teem's escapes ``\\n``
and ``\\\\`` undone. Everything that goes wrong is a :class:`FileFormatError` naming the file
(or :class:`DeviceMemoryError` for sizes over the limit). See docs/architecture.md (I/O).
"""

from __future__ import annotations

import math
import os
import re
import stat
import zlib
from pathlib import Path

import numpy as np

from ..errors import DeviceMemoryError, FileFormatError

__all__ = ["read_nrrd", "NrrdHeader", "host_read_limit", "escape_value", "unescape_value", "MAX_HEADER_BYTES"]

#: Largest header read (Slicer headers of 1000 segments are about 1 MB).
MAX_HEADER_BYTES = 64 << 20
#: deflate never compresses better than about 1032:1; a gzip payload that claims more is corrupt.
_DEFLATE_MAX_RATIO = 1040
_READ_CHUNK = 1 << 20

_TYPES = {
    "signed char": "i1", "int8": "i1", "int8_t": "i1",
    "uchar": "u1", "unsigned char": "u1", "uint8": "u1", "uint8_t": "u1",
    "short": "i2", "short int": "i2", "signed short": "i2", "signed short int": "i2", "int16": "i2",
    "int16_t": "i2",
    "ushort": "u2", "unsigned short": "u2", "unsigned short int": "u2", "uint16": "u2", "uint16_t": "u2",
    "int": "i4", "signed int": "i4", "int32": "i4", "int32_t": "i4",
    "uint": "u4", "unsigned int": "u4", "uint32": "u4", "uint32_t": "u4",
    "longlong": "i8", "long long": "i8", "long long int": "i8", "signed long long": "i8",
    "signed long long int": "i8", "int64": "i8", "int64_t": "i8",
    "ulonglong": "u8", "unsigned long long": "u8", "unsigned long long int": "u8", "uint64": "u8",
    "uint64_t": "u8",
    "float": "f4", "double": "f8",
}
_MAGIC = re.compile(rb"^NRRD000[1-5]$")
_VECTOR = re.compile(r"\(([^()]*)\)")


def host_read_limit() -> int:
    """Bytes a reader may allocate for one file's voxels on the host.

    ``$GPUSEG_MAX_READ_BYTES`` if set, else half the machine's physical memory.
    """
    env = os.environ.get("GPUSEG_MAX_READ_BYTES")
    if env:
        from ..backends.base import parse_bytes

        return parse_bytes(env)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 << 30


def check_host_bytes(nbytes: int, what: str, path) -> None:
    limit = host_read_limit()
    if nbytes > limit:
        raise DeviceMemoryError(f"{path}: {what} needs {nbytes / 2**30:.3g} GiB, more than the read limit of "
                                f"{limit / 2**30:.3g} GiB (set GPUSEG_MAX_READ_BYTES to change it)")


def escape_value(text: str) -> str:
    """teem's escaping of a key/value: backslash and newline (the only characters it escapes)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def unescape_value(text: str) -> str:
    if "\\" not in text:
        return text
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "\\n":
            out.append("\n" if text[i + 1] == "n" else "\\")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class NrrdHeader:
    """The parsed fields (lower-case names) and key/value pairs of a NRRD header."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: dict[str, str] = {}
        self.keyvalues: dict[str, str] = {}
        self.data_offset = 0  # where the data starts in an attached file

    def _err(self, msg: str) -> FileFormatError:
        return FileFormatError(f"{self.path}: {msg}")

    def field(self, name: str, default: str | None = None) -> str | None:
        return self.fields.get(name, default)

    def int_field(self, name: str, default: int, lo: int, hi: int) -> int:
        text = self.fields.get(name)
        if text is None:
            return default
        try:
            v = int(text.strip())
        except ValueError:
            raise self._err(f"'{name}' must be an integer, got {text[:80]!r}") from None
        if not lo <= v <= hi:
            raise self._err(f"'{name}' is {v}, outside {lo}..{hi}")
        return v

    @property
    def dimension(self) -> int:
        if "dimension" not in self.fields:
            raise self._err("the header has no 'dimension' field")
        return self.int_field("dimension", 0, 1, 16)

    @property
    def sizes(self) -> list[int]:
        text = self.fields.get("sizes")
        if text is None:
            raise self._err("the header has no 'sizes' field")
        try:
            sizes = [int(v) for v in text.split()]
        except ValueError:
            raise self._err(f"'sizes' must be integers, got {text[:80]!r}") from None
        if len(sizes) != self.dimension:
            raise self._err(f"'sizes' lists {len(sizes)} numbers for dimension {self.dimension}")
        if any(s < 1 or s > 1 << 40 for s in sizes):
            raise self._err(f"'sizes' must be positive (and below 2^40), got {text[:80]!r}")
        return sizes

    @property
    def dtype(self) -> np.dtype:
        text = (self.fields.get("type") or "").strip().lower()
        code = _TYPES.get(text)
        if code is None:
            raise self._err(f"unsupported NRRD type {text[:40]!r}")
        dt = np.dtype(code)
        if dt.itemsize > 1:
            endian = (self.fields.get("endian") or "").strip().lower()
            if endian not in ("little", "big"):
                raise self._err(f"'endian' must be little or big for type {text!r}, got {endian[:40]!r}")
            dt = dt.newbyteorder("<" if endian == "little" else ">")
        return dt

    def vectors(self, name: str, count: int) -> list[list[float] | None]:
        """A field of ``count`` vectors ``(x,y,z)`` or ``none``."""
        text = self.fields.get(name)
        if text is None:
            return []
        out: list[list[float] | None] = []
        rest = text.strip()
        while rest:
            if len(out) > count:
                break
            if rest.lower().startswith("none"):
                out.append(None)
                rest = rest[4:].lstrip()
                continue
            m = _VECTOR.match(rest)
            if m is None:
                raise self._err(f"'{name}' is not a list of (x,y,z) vectors: {text[:120]!r}")
            try:
                vec = [float(v) for v in m.group(1).split(",")]
            except ValueError:
                raise self._err(f"'{name}' holds a vector that is not numbers: {m.group(0)[:80]!r}") from None
            if not all(math.isfinite(v) for v in vec):
                raise self._err(f"'{name}' holds a vector that is not finite: {m.group(0)[:80]!r}")
            out.append(vec)
            rest = rest[m.end():].lstrip()
        if len(out) != count:
            raise self._err(f"'{name}' must hold {count} entries, got {text[:120]!r}")
        return out

    def floats(self, name: str, count: int) -> list[float] | None:
        text = self.fields.get(name)
        if text is None:
            return None
        try:
            vals = [float(v) for v in text.split()]
        except ValueError:
            raise self._err(f"'{name}' must be numbers, got {text[:80]!r}") from None
        if len(vals) != count:
            raise self._err(f"'{name}' must hold {count} numbers, got {text[:80]!r}")
        return vals

    def words(self, name: str, count: int) -> list[str] | None:
        text = self.fields.get(name)
        if text is None:
            return None
        vals = text.split()
        if len(vals) != count:
            raise self._err(f"'{name}' must hold {count} entries, got {text[:80]!r}")
        return vals


def _read_header(f, path: Path, size: int) -> NrrdHeader:
    h = NrrdHeader(path)
    first = f.readline(64).rstrip(b"\r\n")
    if not _MAGIC.match(first):
        raise FileFormatError(f"{path}: not a NRRD file (no NRRD000x magic line)")
    read = len(first)
    while True:
        raw = f.readline(MAX_HEADER_BYTES)
        if not raw:  # end of a detached header
            break
        read += len(raw)
        if read > MAX_HEADER_BYTES:
            raise FileFormatError(f"{path}: the header is longer than {MAX_HEADER_BYTES >> 20} MiB")
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:  # blank line: the data follows
            break
        if line.startswith(b"#"):
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileFormatError(f"{path}: header line {line[:60]!r} is not UTF-8 ({exc.reason})") from None
        if ":=" in text and (": " not in text or text.index(":=") < text.index(": ")):
            key, _, value = text.partition(":=")
            h.keyvalues[unescape_value(key)] = unescape_value(value)
            continue
        name, sep, value = text.partition(": ")
        if not sep:
            raise FileFormatError(f"{path}: header line {text[:60]!r} is neither 'field: value' nor 'key:=value'")
        h.fields[name.strip().lower()] = value.strip()
    h.data_offset = f.tell()
    return h


def _detached_path(h: NrrdHeader, root: Path | None) -> Path:
    name = h.fields["data file"].strip()
    if not name or name.upper().startswith("LIST") or len(name.split()) > 1:
        raise h._err(f"'data file: {name[:80]}': only one data file is supported (no LIST or name patterns)")
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise h._err(f"'data file: {name[:80]}' must name a file beside the header (no absolute path, no '..')")
    folder = h.path.resolve().parent
    target = (folder / rel).resolve()
    allowed = (root or folder).resolve()
    if not target.is_relative_to(allowed) or not target.is_relative_to(folder):
        raise h._err(f"'data file: {name[:80]}' leads outside {allowed}")
    try:
        st = os.stat(target)
    except OSError:
        raise h._err(f"data file {name[:80]!r} not found beside the header") from None
    if not stat.S_ISREG(st.st_mode):
        raise h._err(f"data file {name[:80]!r} is not a regular file")
    return target


def _bounded_gunzip(f, path: Path, out: memoryview, available: int) -> None:
    """Inflate gzip members from ``f`` into ``out`` (exactly its length), reading at most ``available``."""
    need = len(out)
    got = 0
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    left = available
    pending = b""
    try:
        while got < need:
            if not pending:
                if left <= 0:
                    break
                pending = f.read(min(_READ_CHUNK, left))
                left -= len(pending)
                if not pending:
                    break
            chunk = d.decompress(pending, need - got)
            pending = d.unconsumed_tail
            out[got:got + len(chunk)] = chunk
            got += len(chunk)
            if d.eof and got < need:
                rest = d.unused_data + pending
                pending = rest
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # a next member, if any
                if not rest and left <= 0:
                    break
        # read the member to its end, so that its CRC-32 and length are checked (bounded by the input)
        while got == need and not d.eof:
            if not pending:
                if left <= 0:
                    break
                pending = f.read(min(_READ_CHUNK, left))
                left -= len(pending)
                if not pending:
                    break
            extra = d.decompress(pending, 1)
            pending = d.unconsumed_tail
            if extra:
                raise FileFormatError(f"{path}: the gzip data holds more than the {need} bytes the header declares")
        if got == need and not d.eof:
            raise FileFormatError(f"{path}: the gzip stream is truncated (no end of stream)")
    except zlib.error as exc:
        raise FileFormatError(f"{path}: corrupt gzip data ({exc})") from None
    if got < need:
        raise FileFormatError(f"{path}: the gzip data holds {got} bytes, the header declares {need}")


def _regular_file_size(p: Path) -> int:
    """The size of the regular file ``p``; typed errors when it is missing or not a file."""
    try:
        st = os.stat(p)
    except OSError:
        raise FileFormatError(f"{p}: file not found") from None
    if not stat.S_ISREG(st.st_mode):
        raise FileFormatError(f"{p}: not a regular file")
    return st.st_size


def read_nrrd_header(path: str | os.PathLike) -> NrrdHeader:
    """The header of a NRRD file alone (its voxels are not read)."""
    p = Path(path)
    size = _regular_file_size(p)
    try:
        with open(p, "rb") as f:
            return _read_header(f, p, size)
    except OSError as exc:
        raise FileFormatError(f"{p}: cannot read ({exc.strerror or exc})") from None


def read_nrrd(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
              limit: int | None = None) -> tuple[np.ndarray, NrrdHeader]:
    """Read a NRRD into a C-ordered array (slowest axis first) and its header.

    ``limit``: the most bytes the voxels may take (default :func:`host_read_limit`).
    ``root``: a detached data file must lie inside it (default: the header's folder).
    """
    p = Path(path)
    size = _regular_file_size(p)
    try:
        with open(p, "rb") as f:
            h = _read_header(f, p, size)
            sizes = h.sizes
            dtype = h.dtype
            count = math.prod(sizes)
            nbytes = count * dtype.itemsize
            if limit is None:
                check_host_bytes(nbytes, f"the voxels ({' x '.join(map(str, sizes))} {dtype.name})", p)
            elif nbytes > limit:
                raise DeviceMemoryError(f"{p}: the voxels need {nbytes} bytes, more than the limit of {limit}")
            encoding = (h.field("encoding") or "").strip().lower()
            if encoding not in ("raw", "gzip", "gz"):
                raise h._err(f"unsupported NRRD encoding {encoding[:40]!r} (raw and gzip are read)")
            detached = "data file" in h.fields or "datafile" in h.fields
            if "datafile" in h.fields:
                h.fields["data file"] = h.fields.pop("datafile")
            if detached:
                data_path = _detached_path(h, Path(root) if root is not None else None)
                df = open(data_path, "rb")
                start, total = 0, os.fstat(df.fileno()).st_size
            else:
                data_path, df, start, total = p, f, h.data_offset, size
            try:
                df.seek(start)
                line_skip = h.int_field("line skip", 0, 0, total)
                for _ in range(line_skip):  # bounded: at most the file's size
                    if not df.readline():
                        raise h._err(f"'line skip: {line_skip}' passes the end of {data_path.name}")
                byte_skip = h.int_field("byte skip", 0, -1, total)
                pos = df.tell()
                if byte_skip == -1:
                    if encoding != "raw":
                        raise h._err("'byte skip: -1' is only allowed with raw encoding")
                    pos = total - nbytes
                    if pos < 0:
                        raise h._err(f"{data_path.name} holds {total} bytes, the voxels need {nbytes}")
                else:
                    pos += byte_skip
                if pos > total:
                    raise h._err(f"'byte skip: {byte_skip}' passes the end of {data_path.name}")
                df.seek(pos)
                available = total - pos
                buf = np.empty(count, dtype)
                view = memoryview(buf).cast("B")
                if encoding == "raw":
                    if available < nbytes:
                        raise h._err(f"truncated: {available} bytes of voxel data, the header declares {nbytes}")
                    if df.readinto(view) != nbytes:
                        raise h._err("truncated voxel data")
                else:
                    if nbytes > available * _DEFLATE_MAX_RATIO + 1024:
                        raise h._err(f"{available} bytes of gzip data cannot hold the {nbytes} bytes the header declares")
                    _bounded_gunzip(df, p, view, available)
            finally:
                if df is not f:
                    df.close()
    except OSError as exc:
        if isinstance(exc, FileFormatError):
            raise
        raise FileFormatError(f"{p}: cannot read ({exc.strerror or exc})") from None
    data = buf.reshape(sizes[::-1])
    if not dtype.isnative:
        data = data.astype(dtype.newbyteorder("="))
    return data, h
