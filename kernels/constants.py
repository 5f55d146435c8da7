"""Constants shared by Python, the numba twins and the C kernels, defined once here.

The kernels see them as ``#define`` lines that :func:`gpuseg.backends.registry.preamble`
generates from :data:`DEFINES`; the twins import them (numba freezes module globals into
the compiled code).
"""

from __future__ import annotations

#: Logical operator codes of ``masks.cl:logic`` (``Backend.logic``).
OPS = {"copy": 0, "or": 1, "and": 2, "andnot": 3, "invert": 4, "clear": 5, "fill": 6, "xor": 7}
OP_COPY, OP_OR, OP_AND, OP_ANDNOT, OP_INVERT, OP_CLEAR, OP_FILL, OP_XOR = (OPS[k] for k in OPS)

#: In-place block operations of ``masks.cl:apply_block`` (``Mask.apply_block_``).
APPLY_OPS = {"or": 0, "andnot": 1, "xor": 2, "set": 3}
APPLY_OR, APPLY_ANDNOT, APPLY_XOR, APPLY_SET = (APPLY_OPS[k] for k in APPLY_OPS)

#: Grow-from-seeds keys (``grow.cl``), (distance << 8) | label, as uint32 or uint64: the two
#: largest values of the key type mean unreached and masked (never updated). A 32-bit key holds
#: distances below D32_LIMIT; a larger one sends the grow to 64-bit keys (docs/grow.md).
KEY_INF = 0xFFFFFFFFFFFFFFFE
KEY_BLOCKED = 0xFFFFFFFFFFFFFFFF
KEY32_INF = 0xFFFFFFFE
KEY32_BLOCKED = 0xFFFFFFFF
D32_LIMIT = (1 << 24) - 1

#: name -> C literal, in the order the preamble writes them.
DEFINES = {
    **{f"OP_{k.upper()}": str(v) for k, v in OPS.items()},
    **{f"APPLY_{k.upper()}": str(v) for k, v in APPLY_OPS.items()},
    "KEY_INF": f"0x{KEY_INF:x}UL",
    "KEY_BLOCKED": f"0x{KEY_BLOCKED:x}UL",
    "D32_LIMIT": f"{D32_LIMIT}L",
}
