"""Client→server messages of the WebSocket protocol (docs/protocol.md): their schema and
validation, with the same field types as edit steps (:mod:`gpuseg.steps`).

Every message header has ``"v"`` (the protocol version, 1), ``"type"`` and ``"seq"`` (the
client's sequence number, echoed in the replies). A message that does not validate gets a
typed ``error`` naming the key; the connection stays open.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from ..steps import (Bool, Enum, Int, Names, Num, Points, Str, axis_key, space_key, MAX_DIAMETER_MM, show_value,
                     validate_step)
from .wire import MIN_BUDGET, PROTOCOL_VERSION

MAX_SEQ = 2**53


class ProtocolError(InvalidInputError):
    """A message that does not follow docs/protocol.md."""


_STROKE = {
    "mode": Enum(("preview", "commit"), required=True), "segment": Str(required=True),
    "points": Points(required=True), "diameter_mm": Num(0, MAX_DIAMETER_MM, lo_open=True, default=5.0),
    "shape": Enum(("sphere", "disc", "pixel"), default="sphere"), "axis": axis_key(), "space": space_key(),
    "erase": Bool(default=False), "all_segments": Bool(default=False),
}

#: type -> {key: field}; "step" (for effect) is checked against the edit-step schema
MESSAGES: dict[str, dict] = {
    "subscribe": {"axis": Int(0, 2, required=True), "index": Int(0, 2**31, required=True),
                  "slab": Int(1, 2**31, default=1), "budget": Int(MIN_BUDGET, 2**31)},
    "stroke": _STROKE,
    "accept": {},
    "reject": {},
    "effect": {"step": None},
    "grow": {"mode": Enum(("preview", "update"), required=True), "seed_locality": Num(0, 10, default=0.0),
             "segments": Names()},
    "undo": {},
    "redo": {},
    "resync": {"from_version": Int(0, MAX_SEQ, default=0)},
    "ping": {},
}


def validate_message(header: Any) -> dict:
    """Check a decoded header; returns it. ProtocolError (or the step's InvalidInputError)."""
    if not isinstance(header, dict):
        raise ProtocolError("a message header is a map")
    v = header.get("v")
    if v != PROTOCOL_VERSION or isinstance(v, bool):
        raise ProtocolError(f"v: protocol version must be {PROTOCOL_VERSION}, got {show_value(v)}")
    t = header.get("type")
    if not isinstance(t, str) or t not in MESSAGES:
        raise ProtocolError(f"type: must be one of {', '.join(MESSAGES)}, got {show_value(t)}")
    seq = header.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < MAX_SEQ:
        raise ProtocolError(f"{t}: seq: must be an integer 0..2**53, got {show_value(seq)}")
    fields = MESSAGES[t]
    extra = sorted(str(k) for k in header if k not in ("v", "type", "seq") and k not in fields)
    if extra:
        raise ProtocolError(f"{t}: unknown keys {extra}")
    if t == "effect":
        step = header.get("step")
        if not isinstance(step, dict):
            raise ProtocolError(f"effect: step: an edit step (a map with \"effect\"), got {show_value(step)}")
        try:
            validate_step(step)
        except InvalidInputError as exc:
            raise ProtocolError(f"effect: {exc}") from None
        return header
    for key, f in fields.items():
        if key not in header or header[key] is None:
            if f.required:
                raise ProtocolError(f"{t}: missing required key {key!r}")
            continue
        try:
            f.check(header[key])
        except ValueError as exc:
            raise ProtocolError(f"{t}: {key}: {exc}") from None
    return header


def stroke_step(msg: dict) -> dict:
    """The edit step (paint or erase) a stroke message stands for: what is run and journaled."""
    step = {"effect": "erase" if msg.get("erase") else "paint", "segment": msg["segment"], "points": msg["points"]}
    for k in ("diameter_mm", "shape", "axis", "space"):
        if msg.get(k) is not None:
            step[k] = msg[k]
    if msg.get("erase") and msg.get("all_segments"):
        step["all_segments"] = True
    return step


def grow_step(msg: dict) -> dict:
    step = {"effect": "grow_from_seeds"}
    if msg.get("seed_locality") is not None:
        step["seed_locality"] = msg["seed_locality"]
    if msg.get("segments") is not None:
        step["segments"] = list(msg["segments"])
    return step

