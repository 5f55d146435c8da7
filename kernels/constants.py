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

#: Grow-from-seeds keys (``grow.cl``): unreached, and masked (never updated).
KEY_INF = 0xFFFFFFFFFFFFFFFE
KEY_BLOCKED = 0xFFFFFFFFFFFFFFFF

#: name -> C literal, in the order the preamble writes them.
DEFINES = {
    **{f"OP_{k.upper()}": str(v) for k, v in OPS.items()},
    **{f"APPLY_{k.upper()}": str(v) for k, v in APPLY_OPS.items()},
    "KEY_INF": f"0x{KEY_INF:x}UL",
    "KEY_BLOCKED": f"0x{KEY_BLOCKED:x}UL",
}
