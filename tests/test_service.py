"""The brush-preview service against a real uvicorn server on a free loopback port: several
clients on one session keep copies equal to the server's masks, and to an in-process replay of
the same edit steps, bit for bit; HTTP sessions and files; token, Origin, path and limit checks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("websockets")

import gpuseg  # noqa: E402
from gpuseg.client import Client, ServiceError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHAPE = (12, 30, 45)  # odd i: padding bits in the last word


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """``gpuseg serve`` as a subprocess (the real CLI, uvicorn, loopback)."""

    def __init__(self, root: Path, *args: str, token: str | None = None) -> None:
        self.root = Path(root)
        self.args = args
        self.token = token
        self.port = free_port()
        self.log = self.root.parent / f"server-{self.port}.log"
        self.proc = None
        self.start()

    def start(self) -> None:
        # one numba thread: on a loaded 2-core runner, waking a parallel pool for each small
        # stroke costs ~10x the stroke itself (these tests check behaviour, not speed)
        env = dict(os.environ, PYTHONPATH=str(REPO), NUMBA_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "gpuseg", "serve", "--port", str(self.port), "--data-root", str(self.root),
               "--backend", os.environ.get("GPUSEG_TEST_SERVICE_BACKEND", "cpu"), *self.args]
        if self.token:
            cmd += ["--token", self.token]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        self.client = Client(self.url, token=self.token)
        end = time.monotonic() + 120
        while True:
            try:
                self.client.request("GET", "/api/health")
                return
            except (ServiceError, OSError):
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def make_root(tmp: Path, shape=SHAPE, seed: int = 0) -> tuple[Path, np.ndarray, gpuseg.ImageGeometry]:
    root = tmp / "root"
    root.mkdir()
    g = gpuseg.ImageGeometry(shape, spacing=(1.0, 1.5, 2.0), origin=(-10.0, 5.0, 3.0))
    a = np.random.default_rng(seed).integers(-100, 500, shape).astype(np.int16)
    gpuseg.write_labelmap(root / "ct.nii.gz", a, g)
    return root, a, g


def pack(dense: np.ndarray) -> np.ndarray:
    """Bool (k, j, i) -> the mask's words over the whole grid (reference: numpy.packbits)."""
    nk, nj, ni = dense.shape
    nw = (ni + 31) // 32
    full = np.zeros((nk, nj, 32 * nw), bool)
    full[:, :, :ni] = dense
    return np.packbits(full, axis=2, bitorder="little").view("<u4").astype(np.uint32)


def server_masks(server: Server, sid: str, tmp: Path) -> dict[str, np.ndarray]:
    p = tmp / f"export-{time.monotonic_ns()}.seg.nrrd"
    p.write_bytes(server.client.export(sid, "seg.nrrd"))
    seg = gpuseg.read_segmentation(p, backend="cpu")
    return {s.id: pack(s.mask.to_numpy()) for s in seg}


def assert_same(copy: dict, want: dict, what: str) -> None:
    ids = {k for k, v in want.items()} | {k for k, v in copy.items()}
    for sid in ids:
        a = copy.get(sid)
        b = want.get(sid)
        assert a is not None and b is not None, f"{what}: segment {sid} missing on one side"
        assert np.array_equal(a, b), f"{what}: segment {sid} differs in {int((a != b).sum())} words"


def random_step(rng, names: list[str], g) -> dict:
    """A random edit step (ijk, ras or world points), mostly strokes."""
    nk, nj, ni = g.shape
    r = rng.random()
    seg = str(rng.choice(names))

    def pts(n):
        p = np.column_stack([rng.uniform(-3, ni + 3, n), rng.uniform(-3, nj + 3, n), rng.uniform(-1, nk, n)])
        return p

    if r < 0.45:
        space = str(rng.choice(["ijk", "world", "ras"]))
        p = pts(int(rng.integers(1, 4)))
        if space != "ijk":
            p = g.ijk_to_world_points(p)
            if space == "ras":
                p = p * [-1, -1, 1]
        return {"effect": str(rng.choice(["paint", "paint", "erase"])), "segment": seg, "points": p.round(3).tolist(),
                "diameter_mm": float(rng.choice([2.0, 4.5, 7.0])), "shape": str(rng.choice(["sphere", "disc", "pixel"])),
                "axis": int(rng.integers(0, 3)), "space": space}
    if r < 0.55:
        return {"effect": "undo"}
    if r < 0.6:
        return {"effect": "redo"}
    if r < 0.66:
        return {"effect": "margin", "segment": seg, "margin_mm": float(rng.choice([-2.0, 2.0, 3.0]))}
    if r < 0.72:
        return {"effect": "threshold", "segment": seg, "min": 300, "max": 500}
    if r < 0.78:
        return {"effect": "masking", "editable_area": str(rng.choice(["everywhere", "outside_all"])),
                "overwrite": str(rng.choice(["overwrite_all", "allow_overlap"]))}
    if r < 0.84:
        return {"effect": "logical", "segment": seg, "operation": str(rng.choice(["invert", "clear", "union"])),
                "modifier": str(rng.choice(names))}
    if r < 0.9:
        return {"effect": "islands", "segment": seg, "operation": "remove_small", "min_size": 20}
    k = int(rng.integers(0, nk))
    return {"effect": "scissors", "segment": seg, "operation": "erase_inside", "shape": "rectangle", "space": "ijk",
            "points": [[rng.uniform(0, ni), rng.uniform(0, nj), k], [rng.uniform(0, ni), rng.uniform(0, nj), k]],
            "extrusion": "symmetric", "depth_mm": 2.0}


@contextlib.contextmanager
def serial_numba():
    """Small strokes run faster on one numba thread when the machine is loaded."""
    import numba

    n = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(n)


def replay(image_path: Path, steps: list[dict]) -> dict[str, np.ndarray]:
    """An independent in-process run of the same steps (gpuseg.steps, no service)."""
    import warnings

    from gpuseg.steps import run_step

    img = gpuseg.read_image(image_path, backend="cpu")
    seg = gpuseg.Segmentation(img.geometry, backend=img.backend)
    ed = gpuseg.Editor(seg, img)
    with warnings.catch_warnings(), serial_numba():
        warnings.simplefilter("ignore")
        for n, st in enumerate(steps, 1):
            run_step(ed, st, n)
    return {s.id: pack(s.mask.to_numpy()) for s in seg}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("service")
    root, _, _ = make_root(tmp)
    s = Server(root)
    yield s
    s.stop()
    assert "Traceback" not in s.log_text(), s.log_text()[-3000:]


def test_clients_match_server_and_replay(server, tmp_path):
    rng = np.random.default_rng(7)
    c = server.client
    sid = c.create_session("ct.nii.gz")["id"]
    a = c.connect(sid)
    b = c.connect(sid, budget=4096)  # small frames: patches and snapshots arrive in chunks
    b.subscribe(axis=0, index=5, slab=2)
    g = gpuseg.ImageGeometry(SHAPE, spacing=(1.0, 1.5, 2.0), origin=(-10.0, 5.0, 3.0))
    journal = []  # the steps the server committed, in its order
    for name, color in (("liver", [0.8, 0.3, 0.2]), ("lesion", None)):
        step = {"effect": "add_segment", "name": name}
        if color:
            step["color"] = color
        a.effect(step)
    names = ["liver", "lesion"]
    conns = [a, b]
    for n in range(70):
        conn = conns[int(rng.integers(0, 2))]
        step = random_step(rng, names, g)
        if step["effect"] in ("paint", "erase") and rng.random() < 0.3:
            # a preview, then accept (commits the same stroke) or reject
            msg = {k: v for k, v in step.items() if k != "effect"}
            try:
                conn.stroke(mode="preview", erase=step["effect"] == "erase", **msg)
            except ServiceError as exc:
                assert exc.code in ("invalid", "out_of_bounds"), exc
                continue
            if rng.random() < 0.6:
                r = conn.accept()
            else:
                conn.reject()
                continue
        else:
            try:
                r = conn.effect(step)
            except ServiceError as exc:
                assert exc.code in ("invalid", "out_of_bounds"), exc
                continue
        if r["changed"] or r["base_version"] != r["version"]:
            journal.append(step)
    v = a.call("ping")["version"]
    for conn in conns:
        conn.wait_version(v)
    want = server_masks(server, sid, tmp_path)
    assert_same(a.copy(), want, "client a")
    assert_same(b.copy(), want, "client b (4 KiB budget)")
    # a third client joining late gets the same state from its snapshot
    with c.connect(sid, budget=4096) as late:
        assert late.version == v
        assert_same(late.copy(), want, "late client")
    # the server's state is what an independent replay of the committed steps gives (ids aside)
    from gpuseg.steps import validate_step

    info = c.session(sid)
    ids = [s["id"] for s in info["segments"]]
    assert len(journal_from_disk(server.root, sid)) == len(journal) + 2 == v
    mine = replay(server.root / "ct.nii.gz", [validate_step(s) for s in journal_from_disk(server.root, sid)])
    assert list(mine) == ids
    assert_same(mine, want, "replay of the journal")
    assert a.misordered == 0 and b.misordered == 0
    assert 0 < b.max_frame <= 4096
    a.close()
    b.close()


def journal_from_disk(root: Path, sid: str) -> list[dict]:
    lines = (root / ".gpuseg-sessions" / sid / "journal.jsonl").read_text().splitlines()
    return [json.loads(x)["step"] for x in lines]


def test_preview_layer_is_the_stroke(server):
    c = server.client
    sid = c.create_session("ct.nii.gz")["id"]
    with c.connect(sid) as conn:
        conn.effect({"effect": "add_segment", "name": "a", "id": "a"})
        conn.subscribe(axis=0, index=4)
        conn.stroke("a", [[20, 15, 4]], mode="preview", diameter_mm=6, space="ijk")
        prev = conn.preview["a"]
        # the same stroke rasterized in-process, slice 4 only
        img = gpuseg.read_image(server.root / "ct.nii.gz", backend="cpu")
        seg = gpuseg.Segmentation(img.geometry, backend=img.backend)
        seg.add_segment(name="a", segment_id="a")
        ed = gpuseg.Editor(seg, img)
        ed.paint("a", [[20, 15, 4]], 6, space="ijk")
        want = pack(seg["a"].mask.to_numpy())
        want[np.arange(SHAPE[0]) != 4] = 0
        assert prev.any() and np.array_equal(prev, want)
        assert not conn.copy()["a"].any()  # nothing committed yet
        conn.reject()
        assert not conn.preview
        assert conn.call("ping")["version"] == 1


def test_http_sessions_and_files(server, tmp_path):
    c = server.client
    info = c.upload_session(server.root / "ct.nii.gz")
    sid = info["id"]
    assert info["shape"] == list(SHAPE)
    assert sid in [s["id"] for s in c.sessions()]
    with c.connect(sid) as conn:
        conn.effect({"effect": "add_segment", "name": "bright"})
        conn.effect({"effect": "threshold", "segment": "bright", "min": 300, "max": 500})
    img = tmp_path / "img.nii.gz"
    img.write_bytes(c.image(sid))
    a = gpuseg.read_image(img, backend="cpu").to_numpy()
    ref = gpuseg.read_image(server.root / "ct.nii.gz", backend="cpu").to_numpy()
    assert np.array_equal(a, ref)
    out = tmp_path / "s.nii.gz"
    out.write_bytes(c.export(sid, "nii.gz"))
    lab = gpuseg.read_segmentation(out, backend="cpu")
    assert np.array_equal(lab[0].mask.to_numpy(), (ref >= 300) & (ref <= 500))
    (server.root / "saved").mkdir()
    r = c.save(sid, "saved/seg.seg.nrrd")
    assert r["path"] == "saved/seg.seg.nrrd" and r["version"] == 2
    back = gpuseg.read_segmentation(server.root / "saved" / "seg.seg.nrrd", backend="cpu")
    assert back["bright"].mask.count() == int(((ref >= 300) & (ref <= 500)).sum())
    with pytest.raises(ServiceError) as e:
        c.export(sid, "dcm")
    assert e.value.status == 400
    live = c.connect(sid)
    c.delete_session(sid)
    with pytest.raises(ServiceError) as e:
        c.session(sid)
    assert e.value.status == 404
    with pytest.raises(ServiceError) as e:  # a client of a deleted session is told so
        live.call("ping")
    assert e.value.code in ("unknown_session", "closed")
    live.close()
    spec = c.request("GET", "/openapi.json")
    assert "/api/sessions" in spec["paths"]


def test_paths_stay_under_the_data_root(server, tmp_path):
    c = server.client
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "ct.nii.gz").write_bytes((server.root / "ct.nii.gz").read_bytes())
    link = server.root / "escape"
    if not link.exists():
        link.symlink_to(outside, target_is_directory=True)
    loop = server.root / "loop"
    if not loop.is_symlink():
        loop.symlink_to(loop)  # a symlink loop
    for bad in ["../outside/ct.nii.gz", str(outside / "ct.nii.gz"), "escape/ct.nii.gz", "a/../../ct.nii.gz",
                ".gpuseg-sessions", "nope.nii.gz", "ct.nii.gz\x00x", "0" * 4000, "loop/ct.nii.gz"]:
        with pytest.raises(ServiceError) as e:
            c.create_session(bad)
        assert e.value.status == 400, bad
    sid = c.create_session("ct.nii.gz")["id"]
    for bad in ["../x.seg.nrrd", "escape/x.seg.nrrd", "/tmp/x.seg.nrrd", "x.txt", "nofolder/x.seg.nrrd"]:
        with pytest.raises(ServiceError) as e:
            c.save(sid, bad)
        assert e.value.status == 400, bad
    assert not (outside / "x.seg.nrrd").exists()
    c.delete_session(sid)


def test_limits_give_typed_errors_and_keep_the_connection(tmp_path):
    root, _, _ = make_root(tmp_path)
    s = Server(root, "--max-points", "20", "--max-message", "20000", "--max-sessions", "2")
    try:
        c = s.client
        sid = c.create_session("ct.nii.gz")["id"]
        c.create_session("ct.nii.gz")
        with pytest.raises(ServiceError) as e:
            c.create_session("ct.nii.gz")
        assert e.value.status == 413
        with c.connect(sid) as conn:
            conn.effect({"effect": "add_segment", "name": "a"})
            with pytest.raises(ServiceError) as e:
                conn.stroke("a", [[1, 1, 1]] * 21, space="ijk")
            assert e.value.code == "invalid" and "at most 20" in str(e.value)
            with pytest.raises(ServiceError) as e:
                conn.stroke("a", [[1.5, 1.5, 1.5]] * 19 + [[1e6, 1, 1]], diameter_mm=0.01, space="ijk")
            assert "stamps" in str(e.value)
            with pytest.raises(ServiceError) as e:
                conn.call("stroke", mode="commit", segment="a", points=[[1, 1, 1]], diameter_mm="big")
            assert "diameter_mm" in str(e.value)
            seq = conn.send("ping", junk="x" * 30000)
            with pytest.raises(ServiceError) as e:
                conn.wait(seq)
            assert "exceeds the limit" in str(e.value)
            assert conn.call("ping")["version"] == 1
        assert "Traceback" not in s.log_text()
    finally:
        s.stop()
    s2 = Server(root, "--session-memory", "1KB")
    try:
        with pytest.raises(ServiceError) as e:
            s2.client.create_session("ct.nii.gz")
        assert e.value.status == 413
    finally:
        s2.stop()


def test_token_and_origin(tmp_path):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    root, _, _ = make_root(tmp_path)
    s = Server(root, token="s3cret")
    try:
        bare = Client(s.url)
        with pytest.raises(ServiceError) as e:
            bare.sessions()
        assert e.value.status == 401
        with pytest.raises(ServiceError) as e:
            Client(s.url, token="wrong").request("GET", "/openapi.json")
        assert e.value.status == 401
        sid = s.client.create_session("ct.nii.gz")["id"]
        ws = f"ws://127.0.0.1:{s.port}/api/sessions/{sid}/ws"
        for url, headers in [(ws, {}), (ws + "?token=wrong", {}),
                             (ws + "?token=s3cret", {"Origin": "https://evil.example"})]:
            with pytest.raises(InvalidStatus):
                with connect(url, additional_headers=headers, proxy=None, open_timeout=10):
                    pass
        with connect(ws + "?token=s3cret", additional_headers={"Origin": f"http://localhost:{s.port}"},
                     proxy=None, open_timeout=10) as ok:
            from gpuseg.service import wire

            ok.send(b"\x00")  # a malformed frame: answered with a typed error (after hello and snapshot)
            types = [wire.decode(ok.recv(timeout=10))[0]["type"] for _ in range(4)]
            assert types[0] == "hello" and "error" in types
        with s.client.connect(sid) as conn:  # the client sends the token as a bearer header
            assert conn.call("ping")["version"] == 0
    finally:
        s.stop()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "gpuseg", "serve", "--host", "0.0.0.0", "--data-root", str(root)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--token" in r.stderr and "Traceback" not in r.stderr
