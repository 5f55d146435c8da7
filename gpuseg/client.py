"""A small Python client for ``gpuseg serve`` (docs/protocol.md).

:class:`Client` speaks HTTP (sessions, files); :meth:`Client.connect` opens a
:class:`Connection`, a WebSocket that keeps a local packed copy of the session's masks (the
same uint32 words as the server's, over the whole grid) by applying the patches it receives,
and resyncs by itself when it misses a version.

>>> from gpuseg.client import Client                                  # doctest: +SKIP
>>> c = Client("http://127.0.0.1:8765")                              # doctest: +SKIP
>>> s = c.create_session("ct.nii.gz")                                # doctest: +SKIP
>>> conn = c.connect(s["id"])                                        # doctest: +SKIP
>>> conn.effect({"effect": "add_segment", "name": "lesion"})         # doctest: +SKIP
>>> conn.stroke("lesion", [[0, 0, 0], [5, 0, 0]], diameter_mm=10)    # doctest: +SKIP

Needs ``websockets``, ``msgpack`` and ``zstandard`` (the ``server`` extra).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import numpy as np

from .errors import GpusegError
from .service import wire

__all__ = ["Client", "Connection", "ServiceError"]


#: the service is reached directly: no proxy from the environment (loopback, or a given URL)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceError(GpusegError):
    """The service answered with an error (HTTP status, or a protocol ``error`` message)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 error: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.error = status, code, error


class Client:
    def __init__(self, url: str = "http://127.0.0.1:8765", token: str | None = None, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method: str, path: str, body: Any = None, *, data: bytes | None = None,
                content_type: str | None = None, raw: bool = False):
        headers = self._headers()
        if body is not None:
            data = json.dumps(body).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with _OPENER.open(req, timeout=self.timeout) as r:
                out = r.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            try:
                j = json.loads(text)
                msg, err = j.get("message") or j.get("detail") or text, j.get("error")
            except ValueError:
                msg, err = text, None
            raise ServiceError(f"{method} {path}: HTTP {exc.code}: {msg}", status=exc.code, error=err) from None
        return out if raw else json.loads(out)

    # --- sessions ----------------------------------------------------------------------------------
    def sessions(self) -> list[dict]:
        return self.request("GET", "/api/sessions")["sessions"]

    def session(self, sid: str) -> dict:
        return self.request("GET", f"/api/sessions/{sid}")

    def create_session(self, image: str, segmentation: str | None = None) -> dict:
        """A session from files under the server's data root (paths relative to it)."""
        return self.request("POST", "/api/sessions", {"image": image, "segmentation": segmentation})

    def upload_session(self, image_path, segmentation_path=None) -> dict:
        """A session from local files, uploaded."""
        from pathlib import Path

        boundary = uuid.uuid4().hex
        parts = []
        for field, p in (("image", image_path), ("segmentation", segmentation_path)):
            if p is None:
                continue
            p = Path(p)
            parts.append((f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                          f"filename=\"{p.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
                         + p.read_bytes() + b"\r\n")
        data = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", "/api/sessions/upload", data=data,
                            content_type=f"multipart/form-data; boundary={boundary}")

    def delete_session(self, sid: str) -> dict:
        return self.request("DELETE", f"/api/sessions/{sid}")

    def image(self, sid: str) -> bytes:
        """The session's image as NIfTI (.nii.gz bytes)."""
        return self.request("GET", f"/api/sessions/{sid}/image", raw=True)

    def export(self, sid: str, format: str = "seg.nrrd") -> bytes:
        return self.request("GET", f"/api/sessions/{sid}/export?format={urllib.parse.quote(format)}", raw=True)

    def save(self, sid: str, path: str) -> dict:
        return self.request("POST", f"/api/sessions/{sid}/save", {"path": path})

    def connect(self, sid: str, *, budget: int | None = None, timeout: float = 60.0) -> "Connection":
        ws = self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        q = {}
        if budget:
            q["budget"] = str(budget)
        url = f"{ws}/api/sessions/{sid}/ws" + (f"?{urllib.parse.urlencode(q)}" if q else "")
        return Connection(url, self._headers(), timeout=timeout)


class Connection:
    """A WebSocket client of one session with a local packed copy of its masks."""

    def __init__(self, url: str, headers: dict | None = None, *, timeout: float = 60.0) -> None:
        from websockets.sync.client import connect

        self.timeout = timeout
        self._cm = connect(url, additional_headers=headers or {}, max_size=None, compression=None,
                           open_timeout=timeout, proxy=None)
        self._ws = self._cm.__enter__() if hasattr(self._cm, "__enter__") else self._cm
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._seq = 0
        self.version = -1
        self.shape: tuple[int, int, int] | None = None
        self.client_id = None
        self.masks: dict[str, np.ndarray] = {}
        self.segments: list[dict] = []
        self.preview: dict[str, np.ndarray] = {}
        self.preview_labels: list = []
        self.replies: dict[int, dict] = {}
        self.first_patch: dict[int, float] = {}  # seq -> arrival of its first patch
        self.first_frame: dict[int, float] = {}  # seq -> arrival of its first reply of any kind
        self.bytes_for: dict[int, int] = {}
        self.errors: list[dict] = []
        self.resyncs = 0
        self.misordered = 0
        self.versions_seen: list[int] = []
        self.bytes_received = 0
        self.max_frame = 0
        self._syncing = True  # until the first snapshot ends
        self._snapshot_version = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="gpuseg-client")
        self._thread.start()
        self.wait_synced()

    # --- receiving ------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            for frame in self._ws:
                self._on(frame)
        except Exception as exc:  # the connection closed: wake every waiter
            self.errors.append({"code": "closed", "message": f"{type(exc).__name__}: {exc}"})
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _apply(self, target: dict, sid: str, h: dict, payload: bytes) -> None:
        k0, j0, w0, nk, nj, nw = (int(v) for v in h["box"])
        words = wire.decompress_words(payload, (nk, nj, nw))
        arr = target.get(sid)
        if arr is None:
            arr = target[sid] = self._zeros()
        arr[k0:k0 + nk, j0:j0 + nj, w0:w0 + nw] = words

    def _zeros(self) -> np.ndarray:
        nk, nj, ni = self.shape
        return np.zeros((nk, nj, (ni + 31) // 32), np.uint32)

    def _on(self, frame: bytes) -> None:
        now = time.perf_counter()
        h, payload = wire.decode(frame)
        t = h.get("type")
        seq = h.get("seq")
        with self._cond:
            self.bytes_received += len(frame)
            self.max_frame = max(self.max_frame, len(frame))
            if seq is not None:
                self.bytes_for[seq] = self.bytes_for.get(seq, 0) + len(frame)
                self.first_frame.setdefault(seq, now)
            if t == "hello":
                self.shape = tuple(h["shape"])
                self.client_id = h["client"]
            elif t == "snapshot":
                if h["phase"] == "begin":
                    self._snapshot_version = h["version"]
                    self.masks = {s["id"]: self._zeros() for s in h["segments"]}
                    self.segments = h["segments"]
                elif h["phase"] == "chunk" and self._snapshot_version is not None:
                    self._apply(self.masks, h["segment"], h, payload)
                elif h["phase"] == "end" and self._snapshot_version is not None:
                    self.version = h["version"]
                    self._snapshot_version = None
                    self._syncing = False
                    if seq is not None:
                        self.replies[seq] = h
            elif t == "patch":
                if seq is not None:
                    self.first_patch.setdefault(seq, now)
                if h.get("layer") == "preview":
                    if "box" in h:
                        self._apply(self.preview, h["segment"], h, payload)
                    else:
                        self.preview_labels.append((h, payload))
                elif not self._syncing:
                    if h["base_version"] != self.version:
                        self.misordered += 1
                        self._resync_locked()
                    else:
                        self._apply(self.masks, h["segment"], h, payload)
            elif t == "preview":
                self.preview = {}
                self.preview_labels = []
            elif t in ("version", "ack"):
                if not self._syncing and h["version"] != self.version:
                    if h["base_version"] == self.version:
                        self.version = h["version"]
                        self.versions_seen.append(self.version)
                        if "segments" in h:
                            self.segments = h["segments"]
                            ids = {s["id"] for s in h["segments"]}
                            self.masks = {k: v for k, v in self.masks.items() if k in ids}
                            for s in ids - set(self.masks):
                                self.masks[s] = self._zeros()
                    else:
                        self.misordered += 1
                        self._resync_locked()
                if t == "ack":
                    self.replies[seq] = h
            elif t == "error":
                self.errors.append(h)
                if h.get("code") == "resync_required":
                    self._resync_locked()
                if seq is not None:
                    self.replies[seq] = h
            self._cond.notify_all()

    def _resync_locked(self) -> None:
        if self._syncing:
            return
        self._syncing = True
        self.resyncs += 1
        self._seq += 1
        self._send_raw({"v": 1, "type": "resync", "seq": self._seq, "from_version": max(self.version, 0)})

    # --- sending --------------------------------------------------------------------------------------
    def _send_raw(self, header: dict) -> None:
        with self._lock:
            self._ws.send(wire.encode(header))

    def send(self, type: str, **fields) -> int:
        """Send a message; returns its seq (replies carry it)."""
        with self._cond:
            self._seq += 1
            seq = self._seq
        h = {"v": 1, "type": type, "seq": seq}
        h.update({k: v for k, v in fields.items() if v is not None})
        self.sent_at = getattr(self, "sent_at", {})
        self.sent_at[seq] = time.perf_counter()
        self._send_raw(h)
        return seq

    def send_frame(self, frame: bytes) -> None:
        """Send raw bytes (for protocol tests and fuzzing)."""
        with self._lock:
            self._ws.send(frame)

    def wait(self, seq: int, timeout: float | None = None) -> dict:
        """The ack or error for ``seq`` (ServiceError for an error)."""
        end = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while seq not in self.replies:
                if self._closed:
                    raise ServiceError(f"connection closed while waiting for seq {seq}", code="closed")
                left = end - time.monotonic()
                if left <= 0:
                    raise ServiceError(f"no reply to seq {seq} in {timeout or self.timeout} s", code="timeout")
                self._cond.wait(left)
            r = self.replies.pop(seq)
        if r["type"] == "error":
            raise ServiceError(f"{r.get('code')}: {r.get('message')}", code=r.get("code"), error=r.get("error"))
        return r

    def wait_synced(self, timeout: float | None = None) -> None:
        end = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while self._syncing:
                if self._closed:
                    raise ServiceError("connection closed before the snapshot", code="closed")
                left = end - time.monotonic()
                if left <= 0:
                    raise ServiceError("no snapshot in time", code="timeout")
                self._cond.wait(left)

    def wait_version(self, version: int, timeout: float | None = None) -> None:
        """Wait until the local copy is at ``version`` or later."""
        end = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while self.version < version or self._syncing:
                if self._closed:
                    raise ServiceError("connection closed", code="closed")
                left = end - time.monotonic()
                if left <= 0:
                    raise ServiceError(f"not at version {version} in time (at {self.version})", code="timeout")
                self._cond.wait(left)

    def call(self, type: str, **fields) -> dict:
        return self.wait(self.send(type, **fields))

    # --- the protocol's messages -------------------------------------------------------------------------
    def stroke(self, segment: str, points, *, mode: str = "commit", wait: bool = True, **kw):
        seq = self.send("stroke", mode=mode, segment=segment, points=np.asarray(points, float).tolist(), **kw)
        return self.wait(seq) if wait else seq

    def effect(self, step: dict, *, wait: bool = True):
        seq = self.send("effect", step=step)
        return self.wait(seq) if wait else seq

    def undo(self) -> dict:
        return self.call("undo")

    def redo(self) -> dict:
        return self.call("redo")

    def accept(self) -> dict:
        return self.call("accept")

    def reject(self) -> dict:
        return self.call("reject")

    def grow(self, mode: str = "preview", **kw) -> dict:
        return self.call("grow", mode=mode, **kw)

    def subscribe(self, axis: int, index: int, slab: int = 1, budget: int | None = None) -> dict:
        return self.call("subscribe", axis=axis, index=index, slab=slab, budget=budget)

    def resync(self) -> None:
        with self._cond:
            self._syncing = False
            self._resync_locked()
        self.wait_synced()

    def copy(self) -> dict[str, np.ndarray]:
        """The local copy: segment id -> packed words over the whole grid."""
        with self._cond:
            return {k: v.copy() for k, v in self.masks.items()}

    def close(self) -> None:
        try:
            self._ws.close()
        finally:
            self._thread.join(5)

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
