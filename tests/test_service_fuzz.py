"""Bad input never breaks the service: a protocol fuzzer (random bytes, random msgpack, mutated
valid messages) gets a typed error or an ack for every message and the connection stays; a
bounded schemathesis run against the published OpenAPI spec gets no 5xx; the server logs no
traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("websockets")

from gpuseg.client import ServiceError  # noqa: E402
from gpuseg.service import wire  # noqa: E402

from tests.test_service import Server, make_root  # noqa: E402

VALID = [
    {"type": "stroke", "mode": "commit", "segment": "a", "points": [[3, 4, 2], [10, 12, 5]], "diameter_mm": 4,
     "space": "ijk"},
    {"type": "stroke", "mode": "preview", "segment": "a", "points": [[3, 4, 2]], "erase": True, "shape": "disc"},
    {"type": "effect", "step": {"effect": "margin", "segment": "a", "margin_mm": 2}},
    {"type": "effect", "step": {"effect": "scissors", "segment": "a", "points": [[0, 0, 3], [9, 9, 3]],
                                "shape": "rectangle", "space": "ijk"}},
    {"type": "effect", "step": {"effect": "masking", "editable_area": "inside", "mask_segment": "a"}},
    {"type": "effect", "step": {"effect": "masking"}},
    {"type": "subscribe", "axis": 1, "index": 3, "slab": 2, "budget": 8192},
    {"type": "grow", "mode": "preview"}, {"type": "grow", "mode": "update"},
    {"type": "accept"}, {"type": "reject"}, {"type": "undo"}, {"type": "redo"}, {"type": "resync", "from_version": 0},
    {"type": "ping"},
]
ODD = [None, True, -1, 0, 2**63, -2**63, 1e308, float("nan"), float("inf"), "", "x" * 300, "\x00", [], {}, [[]],
       [1, 2], [[1, 2, 3]] * 3, {"a": 1}, b"\xff\xfe", 3.5, "a"]


def _mutate(rng, msg: dict) -> dict:
    m = dict(msg)
    if "step" in m:
        m["step"] = dict(m["step"])
    target = m["step"] if "step" in m and rng.random() < 0.5 else m
    keys = list(target)
    r = rng.random()
    if r < 0.4 and keys:
        target[str(rng.choice(keys))] = ODD[int(rng.integers(0, len(ODD)))]
    elif r < 0.6 and keys:
        target.pop(str(rng.choice(keys)))
    elif r < 0.8:
        target[str(rng.choice(["junk", "effect", "v", "seq", "points", "type"]))] = ODD[int(rng.integers(0, len(ODD)))]
    else:
        target["points"] = rng.uniform(-1e6, 1e6, (int(rng.integers(1, 50)), 3)).tolist()
    return m


def test_protocol_fuzz(tmp_path):
    rng = np.random.default_rng(11)
    root, _, _ = make_root(tmp_path)
    server = Server(root, "--max-message", "65536")
    try:
        sid = server.client.create_session("ct.nii.gz")["id"]
        conn = server.client.connect(sid)
        conn.effect({"effect": "add_segment", "name": "a"})
        conn.effect({"effect": "add_segment", "name": "b"})
        expect = []  # seqs that must be answered
        for n in range(400):
            seq = 10**6 + n
            kind = rng.random()
            if kind < 0.15:
                frame = rng.bytes(int(rng.integers(0, 64)))
            elif kind < 0.3:
                junk = {str(rng.integers(0, 5)): ODD[int(rng.integers(0, len(ODD)))] for _ in range(3)}
                frame = wire.encode(junk)
            elif kind < 0.4:  # a valid header with a damaged length prefix or trailing bytes
                frame = bytearray(wire.encode({"v": 1, "type": "ping", "seq": seq}))
                frame[int(rng.integers(0, 4))] ^= 0xFF
                frame = bytes(frame)
            else:
                msg = dict(VALID[int(rng.integers(0, len(VALID)))], v=1, seq=seq)
                if rng.random() < 0.8:
                    msg = _mutate(rng, msg)
                try:
                    frame = wire.encode(msg) + (rng.bytes(8) if rng.random() < 0.1 else b"")
                except (TypeError, ValueError, OverflowError):
                    continue
                if msg.get("seq") == seq and msg.get("v") == 1:
                    expect.append(seq)
            conn.send_frame(frame)
            if n % 25 == 0:  # text frames are refused too
                conn._ws.send("not binary")
        for seq in expect:
            try:
                conn.wait(seq, timeout=20)
            except ServiceError as exc:
                assert exc.code not in ("internal", "timeout", "closed"), (seq, exc)
        codes = {e.get("code") for e in conn.errors}
        assert "internal" not in codes and "closed" not in codes, codes
        assert conn.call("ping")  # still connected
        v = conn.call("ping")["version"]
        with server.client.connect(sid) as other:  # and the state is still consistent
            assert other.version == v
            conn.wait_version(v)
            for k, words in other.copy().items():
                assert np.array_equal(words, conn.copy()[k])
        conn.close()
    finally:
        server.stop()
    assert "Traceback" not in server.log_text(), server.log_text()[-3000:]


def test_schemathesis_openapi(tmp_path):
    st = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(st).exists():
        pytest.skip("schemathesis is not installed")
    root, _, _ = make_root(tmp_path)
    server = Server(root, token="tok")
    try:
        server.client.create_session("ct.nii.gz")
        env = dict(os.environ, NO_COLOR="1", SCHEMATHESIS_TELEMETRY="false")
        r = subprocess.run([st, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
                            "--max-examples", "25", "--max-time", "45", "--seed", os.environ.get("GPUSEG_SCHEMATHESIS_SEED", "1"), "--request-timeout", "30",
                            "-H", "Authorization: Bearer tok"],
                           capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-4000:]
        assert "not_a_server_error" in out or "passed" in out.lower(), out[-2000:]
    finally:
        server.stop()
    assert "Traceback" not in server.log_text(), server.log_text()[-3000:]
