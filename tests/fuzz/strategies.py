"""Mutation strategies shared by every fuzz target (readers, writers and the edit-script runner).

One pool of interesting values feeds all of them: the byte strategies write its numbers and
strings into files, the token strategy puts them into header fields, the JSON strategy into edit
steps and sidecars, and the writer targets into segment names, tags, colors and label values.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import zlib

INTERESTING_NUMBERS = [
    "0", "-1", "1", "2", "3", "255", "256", "65535", "65536", "70000", "2147483647", "2147483648", "-2147483649",
    "4294967296", "9223372036854775808", "100000", "100000000", "1e9", "1e12", "1e-9", "1e308", "1e400", "-1e400",
    "inf", "-inf", "nan", "0.5", "-0.0", "3.4e39", "1" * 400, "0x10", "",
]
INTERESTING_STRINGS = [
    "肝臓", "🦴 bone", "Hüfte", "line\nbreak", " leading space", "trailing space ", "tab\there", "|", ":", ":=",
    "&", "~", "^", "\\", "\\n", "\r", "\x00", "", "x" * 5000, "\udc80", "é" * 70, "\u202e", "a|b:c", "Segment_1",
    "/dev/zero", "../../etc/passwd", "None", "null",
]
HEADER_LINES = [
    "data file: /dev/zero", "data file: /dev/urandom", "data file: /etc/hostname", "data file: ../outside.raw",
    "data file: LIST", "data file: seed.raw", "line skip: 100000000", "byte skip: 100000000", "byte skip: -1",
    "sizes: 100000 100000 100000", "sizes: 1 1", "sizes: 0 1 1", "dimension: 100", "dimension: 4", "encoding: bzip2",
    "encoding: raw", "encoding: gzip", "type: double", "type: int64", "type: float", "endian: big", "endian: middle",
    "space origin: (1,2)", "space origin: (nan,0,0)", "space directions: (0,0,0) (0,0,0) (0,0,0)",
    "space directions: none (1,0,0) (0,1,0) (0,0,1)", "kinds: list domain domain domain", "kinds: RGB-color domain",
    "space: scanner-xyz", "Segment0_Extent:=0 100000 0 100000 0 100000", "Segment0_Extent:=0 inf 0 1 0 1",
    "Segment0_Layer:=5", "Segment0_LabelValue:=70000", "Segment0_LabelValue:=-3", "Segment99999999_ID:=x",
    "Segment0_Color:=nan 0 0", "Segmentation_ReferenceImageExtentOffset:=0 0 1e400",
    "Segmentation_ReferenceImageExtentOffset:=100000 100000 100000",
    "Segmentation_ConversionParameters:=Reference image geometry|1;0;0;0;0;1;0;0;0;0;1;0;0;0;0;1;0;99999;0;99999;0;99999;|d&",
    "Segmentation_ConversionParameters:=Reference image geometry|1;0;0;0;0;1;0;0;0;0;1;0;0;0;0;1;0;inf;0;1;0;1;|d&",
    "Segment0_Name:=\xff\xfe", "Segmentation_Extent:=0 1 0 1 0 1",
]
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.I)


def interesting_value(rng: random.Random):
    """A JSON-able value from the shared pool (numbers, strings, structures)."""
    r = rng.random()
    if r < 0.35:
        text = rng.choice(INTERESTING_NUMBERS)
        try:
            v = float(text) if any(c in text for c in ".eni") else int(text, 0)
        except ValueError:
            return text
        return v
    if r < 0.65:
        return rng.choice(INTERESTING_STRINGS)
    return rng.choice([None, True, False, [], {}, [0], [[0, 0, 0]] * 3, {"a": 1}, [1e308] * 3, [[1e12, 0, 0]],
                       [[0, 0, 0], [1e12, 1e12, 1e12]], ["a", "b"], 10 ** 30, -(10 ** 30), [[[[[]]]]]])


# --- bytes ------------------------------------------------------------------------------------
def mutate_bytes(data: bytes, rng: random.Random, n: int | None = None) -> bytes:
    """``n`` (1..4) byte-level mutations: flips, interesting bytes, truncation, extension, copies."""
    b = bytearray(data)
    for _ in range(n or rng.randint(1, 4)):
        op = rng.randrange(8)
        if not b:
            b.extend(rng.randbytes(rng.randint(1, 64)))
            continue
        pos = rng.randrange(len(b))
        if op == 0:
            b[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[pos] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, 0xFE, 0x0A, 0x3A])
        elif op == 2:
            del b[rng.randrange(len(b)):]
        elif op == 3:
            b.extend(rng.choice([b"\0" * rng.randint(1, 4096), rng.randbytes(rng.randint(1, 4096)), bytes(b[:64])]))
        elif op == 4:
            end = min(len(b), pos + rng.randint(1, 256))
            b[pos:pos] = b[pos:end]
        elif op == 5:
            del b[pos:pos + rng.randint(1, 256)]
        elif op == 6:
            for i in range(rng.randint(2, 16)):
                if pos + i < len(b):
                    b[pos + i] = rng.randrange(256)
        else:
            b[pos:pos] = rng.choice(INTERESTING_NUMBERS).encode()
    return bytes(b)


def mutate_tokens(text: bytes, rng: random.Random) -> bytes:
    """Replace numbers with interesting numbers and lines with interesting header lines."""
    lines = text.split(b"\n")
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(4)
        i = rng.randrange(len(lines))
        if op == 0:
            nums = list(_NUMBER.finditer(lines[i]))
            if nums:
                m = rng.choice(nums)
                lines[i] = lines[i][:m.start()] + rng.choice(INTERESTING_NUMBERS).encode() + lines[i][m.end():]
        elif op == 1:
            lines.insert(max(1, i), rng.choice(HEADER_LINES).encode("utf-8", "surrogateescape"))
        elif op == 2:
            if len(lines) > 2:
                del lines[max(1, i)]
        else:
            if b":=" in lines[i]:
                k, _, _ = lines[i].partition(b":=")
                lines[i] = k + b":=" + rng.choice(INTERESTING_STRINGS).encode("utf-8", "surrogatepass")
    return b"\n".join(lines)


def mutate_file(data: bytes, rng: random.Random, *, text_header: bool = False, gz: bool = False) -> bytes:
    """The strategy mix for a file: tokens in its text header, bytes anywhere, or inside its gzip stream."""
    r = rng.random()
    if text_header and r < 0.45:
        head, sep, payload = data.partition(b"\n\n")
        return mutate_tokens(head, rng) + sep + payload
    if gz and r < 0.7:
        try:
            if data[:2] == b"\x1f\x8b":
                return gzip.compress(mutate_bytes(gzip.decompress(data), rng), 1)
            head, sep, payload = data.partition(b"\n\n")
            if payload[:2] == b"\x1f\x8b":
                return head + sep + gzip.compress(mutate_bytes(gzip.decompress(payload), rng), 1)
        except (OSError, EOFError, zlib.error):
            pass
    return mutate_bytes(data, rng)


# --- JSON ---------------------------------------------------------------------------------
def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def mutate_json(obj, rng: random.Random):
    """Values replaced by interesting ones, keys deleted or added, items duplicated or dropped."""
    obj = json.loads(json.dumps(obj))
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(obj) if p]
        if not paths:
            return interesting_value(rng)
        path = rng.choice(paths)
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        op = rng.randrange(5)
        if op <= 1:
            parent[key] = interesting_value(rng)
        elif op == 2:
            del parent[key]
        elif op == 3:
            if isinstance(parent, dict):
                parent[rng.choice(INTERESTING_STRINGS)] = interesting_value(rng)
            else:
                parent.insert(key, json.loads(json.dumps(parent[key])))
        else:
            if isinstance(parent, dict) and isinstance(parent.get(key), str):
                parent[key] = rng.choice(INTERESTING_STRINGS)
            else:
                parent[key] = interesting_value(rng)
    return obj


def json_bytes(obj, rng: random.Random) -> bytes:
    """A mutated script as bytes: mostly valid JSON, sometimes byte-mutated (invalid UTF-8 and all)."""
    text = json.dumps(mutate_json(obj, rng) if rng.random() < 0.85 else obj, ensure_ascii=rng.random() < 0.5)
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.2:
        data = mutate_bytes(data, rng, 1)
    return data
