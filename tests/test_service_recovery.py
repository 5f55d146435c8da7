"""Nothing lost: a server SIGKILLed in the middle of a stroke stream, restarted on the same data
root, lists its session and restores it by replaying the journal, bit-identical to an
independent replay of the steps it had committed, and at least at the last acked version."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("websockets")

import gpuseg  # noqa: E402
from gpuseg.steps import run_step  # noqa: E402

from tests.test_service import SHAPE, Server, assert_same, make_root, pack, serial_numba  # noqa: E402


def _journaled(ed, step) -> bool:
    """Whether the server journals ``step`` (a no-op undo or redo is not), applying it."""
    if step["effect"] == "undo" and not ed.can_undo or step["effect"] == "redo" and not ed.can_redo:
        return False
    run_step(ed, step)
    return True


def _replay(image, steps):
    seg = gpuseg.Segmentation(image.geometry, backend=image.backend)
    ed = gpuseg.Editor(seg, image)
    for s in steps:
        run_step(ed, s)
    return seg, ed


def test_kill_mid_stream_and_recover(tmp_path):
    with serial_numba():
        _kill_rounds(tmp_path)


def _kill_rounds(tmp_path):
    rng = np.random.default_rng(3)
    root, _, g = make_root(tmp_path)
    image = gpuseg.read_image(root / "ct.nii.gz", backend="cpu")
    server = Server(root)
    try:
        sid = server.client.create_session("ct.nii.gz")["id"]
        committed = [{"effect": "add_segment", "name": "a", "id": "a"},
                     {"effect": "add_segment", "name": "b", "id": "b"}]
        conn = server.client.connect(sid)
        for s in committed:
            conn.effect(s)
        for round_ in range(4):
            # one acked stroke first: the fresh process compiles (or loads) its kernels
            warm = {"effect": "paint", "segment": "a", "points": [[float(rng.uniform(0, SHAPE[2])), 10.0, 5.0]],
                    "diameter_mm": 4.0, "space": "ijk"}
            conn.effect(warm)
            committed.append(warm)
            seg, ed = _replay(image, committed)
            t0 = time.monotonic()
            sent = []
            killer = threading.Timer(float(rng.uniform(0.3, 1.2)), server.kill)
            killer.start()
            try:
                for n in range(2000):
                    r = rng.random()
                    if r < 0.1:
                        step = {"effect": "undo"}
                    else:
                        p = np.column_stack([rng.uniform(0, SHAPE[2], 2), rng.uniform(0, SHAPE[1], 2),
                                             rng.uniform(0, SHAPE[0], 2)])
                        step = {"effect": "erase" if r < 0.3 else "paint", "segment": str(rng.choice(["a", "b"])),
                                "points": p.round(2).tolist(), "diameter_mm": float(rng.choice([3.0, 6.0])),
                                "space": "ijk"}
                    conn.effect(step, wait=False)
                    sent.append(step)
                    if n % 8 == 7:
                        time.sleep(0.01)
            except Exception:  # the server died under us: expected
                pass
            killer.join()
            print(f"round {round_}: sent {len(sent)} in {time.monotonic() - t0:.2f} s")
            server.proc.wait(30)
            time.sleep(0.2)
            acked = [h["version"] for h in list(conn.replies.values()) if h.get("type") == "ack"]
            last_acked = max(acked, default=len(committed))
            conn.close()
            # what the server could have journaled, in order: the sent steps that change the version
            expected = list(committed)
            for s in sent:
                if _journaled(ed, s):
                    expected.append(s)
            t1 = time.monotonic()
            server.start()
            print(f"restart {time.monotonic() - t1:.2f} s")
            listed = {s["id"]: s for s in server.client.sessions()}
            assert sid in listed, f"round {round_}: session not listed after the kill"
            v = listed[sid]["version"]
            assert last_acked <= v <= len(expected), (round_, last_acked, v, len(expected))
            want_seg, _ = _replay(image, expected[:v])
            conn = server.client.connect(sid)
            assert conn.version == v
            assert_same(conn.copy(), {s.id: pack(s.mask.to_numpy()) for s in want_seg}, f"round {round_}")
            committed = expected[:v]
        assert len(committed) > 10  # the rounds did commit strokes
        conn.close()
    finally:
        server.stop()
    assert "Traceback" not in server.log_text()
