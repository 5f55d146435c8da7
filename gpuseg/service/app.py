"""The ASGI app of ``gpuseg serve``: HTTP for sessions and files, a WebSocket per client for
editing (docs/protocol.md). Token and Origin checks wrap the whole app."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import tempfile
from collections import deque
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, File, Query, Request, UploadFile, WebSocket
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from ..errors import DeviceMemoryError, GpusegError, InvalidInputError
from . import wire
from .config import ServiceConfig, is_loopback, resolve_under
from .protocol import ProtocolError, validate_message
from .session import Conn, SessionStore, UnknownSessionError, error_frame
from .web import create_demo_session, mount_web

log = logging.getLogger("gpuseg.service")

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd")
SEG_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".h5")
EXPORTS = {"seg.nrrd": ".seg.nrrd", "nii.gz": ".nii.gz", "dcm": ".dcm"}
MAX_IN_FLIGHT = 64


class CreateSession(BaseModel):
    image: str = Field(..., description="image file or DICOM folder, relative to --data-root", max_length=4096)
    segmentation: Optional[str] = Field(None, description="segmentation to start from (relative to --data-root); "
                                                          "none: a new empty one", max_length=4096)


class SavePath(BaseModel):
    path: str = Field(..., description="target under --data-root: .seg.nrrd, .nii.gz, .nii, .h5 or .dcm",
                      max_length=4096)


class ErrorBody(BaseModel):
    error: str
    message: str


class Guard:
    """Pure ASGI wrapper: the token on every HTTP request and WebSocket, the WebSocket Origin."""

    def __init__(self, app, config: ServiceConfig) -> None:
        self.app = app
        self.config = config

    def _token_ok(self, scope) -> bool:
        want = self.config.token
        if not want:
            return True
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        got = auth[7:] if auth.lower().startswith("bearer ") else None
        if got is None and scope["type"] == "websocket":
            q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            got = (q.get("token") or [None])[0]
        return got is not None and hmac.compare_digest(got.encode(), want.encode())

    def _origin_ok(self, scope) -> bool:
        origin = dict(scope.get("headers") or []).get(b"origin")
        if origin is None:
            return True  # not a browser
        o = origin.decode("latin-1").rstrip("/")
        if o in self.config.allow_origins:
            return True
        try:
            host = urlsplit(o).hostname or ""
        except ValueError:
            return False
        return is_loopback(host) and is_loopback(self.config.host)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            ok = self._token_ok(scope)
            if ok and scope["type"] == "websocket" and not self._origin_ok(scope):
                await send({"type": "websocket.close", "code": 4403, "reason": "origin not allowed"})
                return
            if not ok:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4401, "reason": "token required"})
                else:
                    await JSONResponse({"error": "Unauthorized", "message": "a valid bearer token is required"},
                                       status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _status(exc: GpusegError) -> int:
    if isinstance(exc, UnknownSessionError):
        return 404
    if isinstance(exc, DeviceMemoryError):
        return 413
    return 400


async def _read_upload(f: UploadFile, limit: int, suffixes: tuple[str, ...], what: str) -> tuple[str, bytes]:
    name = (f.filename or "").lower()
    suffix = next((s for s in suffixes if name.endswith(s)), None)
    if suffix is None:
        raise InvalidInputError(f"{what}: file name {f.filename!r} must end with {', '.join(suffixes)}")
    chunks, total = [], 0
    while True:
        c = await f.read(1 << 20)
        if not c:
            break
        total += len(c)
        if total > limit:
            raise DeviceMemoryError(f"{what}: upload larger than the limit of {limit} bytes")
        chunks.append(c)
    return suffix, b"".join(chunks)


def create_app(config: ServiceConfig) -> Guard:
    store = SessionStore(config)
    conn_ids = itertools.count(1)

    @asynccontextmanager
    async def lifespan(app):
        await asyncio.to_thread(store.restore_all)
        if config.demo_shape is not None:
            demo = await asyncio.to_thread(create_demo_session, store, config.demo_shape)
            print(f"gpuseg serve: demo session {demo.id}: open http://{config.host}:{config.port}/?session={demo.id}",
                  flush=True)
        yield
        store.close()

    app = FastAPI(title="gpuseg service", version="1", lifespan=lifespan,
                  description="Brush-preview and editing service of gpuseg; the WebSocket protocol is "
                              "docs/protocol.md. Paths are relative to the server's data root.",
                  responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 404: {"model": ErrorBody}})

    @app.exception_handler(GpusegError)
    async def _typed(request: Request, exc: GpusegError):
        return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=_status(exc))

    async def on_writer(s, fn, *a):
        return await asyncio.wrap_future(s.executor.submit(fn, *a))

    @app.get("/api/health")
    async def health() -> dict:
        from .. import __version__

        return {"status": "ok", "gpuseg": __version__, "protocol": wire.PROTOCOL_VERSION}

    @app.get("/api/sessions")
    async def list_sessions() -> dict:
        return {"sessions": [s.info() for s in store.sessions.values()], "damaged": dict(store.damaged)}

    @app.post("/api/sessions", status_code=201)
    async def create(body: CreateSession) -> dict:
        image = resolve_under(config.data_root, body.image, what="image")
        meta = {"image": str(image.relative_to(config.data_root))}
        if body.segmentation is not None:
            seg = resolve_under(config.data_root, body.segmentation, what="segmentation")
            meta["segmentation"] = str(seg.relative_to(config.data_root))
        s = await asyncio.to_thread(store.create, meta)
        return s.info()

    @app.post("/api/sessions/upload", status_code=201)
    async def upload(image: UploadFile = File(..., description="NIfTI or NRRD image"),
                     segmentation: Optional[UploadFile] = File(None, description="segmentation to start from")) -> dict:
        files = {"image": await _read_upload(image, config.max_upload_bytes, IMAGE_SUFFIXES, "image")}
        if segmentation is not None:
            files["segmentation"] = await _read_upload(segmentation, config.max_upload_bytes, SEG_SUFFIXES,
                                                       "segmentation")
        s = await asyncio.to_thread(store.create, {"image": None, "uploaded": True}, files)
        return s.info()

    @app.get("/api/sessions/{sid}")
    async def get(sid: str) -> dict:
        return store.get(sid).info()

    @app.delete("/api/sessions/{sid}")
    async def delete(sid: str) -> dict:
        s = store.get(sid)
        await on_writer(s, lambda: None)
        store.delete(sid)
        return {"deleted": sid}

    @app.get("/api/sessions/{sid}/image", response_class=Response,
             responses={200: {"content": {"application/gzip": {}}}})
    async def image(sid: str):
        from ..io import write_labelmap

        s = store.get(sid)

        def make() -> bytes:
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / "image.nii.gz"
                write_labelmap(p, s.image.to_numpy(), s.image.geometry)
                return p.read_bytes()

        data = await on_writer(s, make)
        return Response(data, media_type="application/gzip",
                        headers={"Content-Disposition": f'attachment; filename="{sid}.nii.gz"'})

    def _reference(s):
        src = s.meta.get("image")
        if src and (config.data_root / src).is_dir():
            return config.data_root / src
        raise InvalidInputError("DICOM SEG export needs a session made from a DICOM series folder")

    @app.get("/api/sessions/{sid}/export", response_class=Response,
             responses={200: {"content": {"application/octet-stream": {}}}})
    async def export(sid: str, format: str = Query("seg.nrrd", description="seg.nrrd, nii.gz or dcm",
                                                  pattern="^(seg\\.nrrd|nii\\.gz|dcm)$")):
        from ..io import write_segmentation

        s = store.get(sid)
        suffix = EXPORTS[format]
        opts = {"reference": _reference(s)} if format == "dcm" else {}

        def make() -> bytes:
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / f"segmentation{suffix}"
                write_segmentation(s.segmentation, p, **opts)
                return p.read_bytes()

        data = await on_writer(s, make)
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{sid}{suffix}"'})

    @app.post("/api/sessions/{sid}/save")
    async def save(sid: str, body: SavePath) -> dict:
        from ..io import write_segmentation

        s = store.get(sid)
        target = resolve_under(config.data_root, body.path, what="path", must_exist=False)
        name = target.name.lower()
        if not name.endswith((".seg.nrrd", ".nii.gz", ".nii", ".h5", ".dcm")):
            raise InvalidInputError(f"path: {body.path!r} must end with .seg.nrrd, .nii.gz, .nii, .h5 or .dcm")
        if target.is_dir():
            raise InvalidInputError(f"path: {body.path!r} is a folder")
        opts = {"reference": _reference(s)} if name.endswith(".dcm") else {}
        version = await on_writer(s, lambda: (write_segmentation(s.segmentation, target, **opts), s.version)[1])
        return {"path": str(target.relative_to(config.data_root)), "version": version}

    @app.websocket("/api/sessions/{sid}/ws")
    async def ws(websocket: WebSocket, sid: str):
        s = store.sessions.get(sid)
        if s is None:
            await websocket.close(code=4404, reason="no such session")
            return
        await websocket.accept()
        loop = asyncio.get_running_loop()
        out: asyncio.Queue = asyncio.Queue()
        budget = config.default_budget
        q = websocket.query_params.get("budget")
        if q is not None and q.isdigit():
            budget = max(wire.MIN_BUDGET, min(int(q), 1 << 31))
        conn = Conn(next(conn_ids), budget, send=None)

        def deliver(frames: list[bytes]) -> None:
            if out.qsize() + len(frames) > config.max_queued_frames:
                while not out.empty():
                    out.get_nowait()
                conn.stale = True
                out.put_nowait(error_frame(None, f"client fell {config.max_queued_frames} frames behind; resync",
                                           "resync_required"))
                return
            for f in frames:
                out.put_nowait(f)

        conn.send = lambda frames: loop.call_soon_threadsafe(deliver, frames)

        async def sender() -> None:
            while True:
                f = await out.get()
                if f is None:
                    return
                await websocket.send_bytes(f)

        task = asyncio.create_task(sender())

        def join() -> None:
            s.clients[conn.id] = conn
            conn.send([wire.encode({"v": 1, "type": "hello", "session": s.id, "client": conn.id,
                                    "version": s.version, "shape": list(s.segmentation.geometry.shape),
                                    "budget": conn.budget, "max_message_bytes": config.max_message_bytes,
                                    "max_points": config.max_points})])
            s.snapshot(conn, None)

        def handle(msg: dict) -> None:
            s.begin()
            try:
                s.handle(conn, msg)
            except Exception as exc:  # a bug: the client gets a typed error, the log the details
                log.exception("internal error on %s", msg.get("type"))
                s._out(conn, [error_frame(msg.get("seq"), f"internal error: {type(exc).__name__}", "internal")])
            finally:
                s.end()

        inflight: deque = deque()
        await on_writer(s, join)
        try:
            while True:
                m = await websocket.receive()
                if m["type"] == "websocket.disconnect":
                    break
                data = m.get("bytes")
                seq = None
                try:
                    if data is None:
                        raise ProtocolError("frames are binary (a msgpack header); text frames are not accepted")
                    try:
                        header, _ = wire.decode(data)
                    except wire.FrameError as exc:
                        raise ProtocolError(str(exc)) from None
                    seq = header.get("seq") if isinstance(header.get("seq"), int) else None
                    if len(data) > config.max_message_bytes:
                        raise ProtocolError(f"message of {len(data)} bytes exceeds the limit of "
                                            f"{config.max_message_bytes}")
                    msg = validate_message(header)
                    if msg["type"] == "stroke" and len(msg["points"]) > config.max_points:
                        raise ProtocolError(f"stroke: {len(msg['points'])} points; at most {config.max_points}")
                except InvalidInputError as exc:
                    conn.send([error_frame(seq, exc, "invalid")])
                    continue
                if store.sessions.get(sid) is not s:
                    conn.send([error_frame(seq, "the session was deleted", "unknown_session")])
                    await asyncio.sleep(0)
                    break
                s.queued()
                inflight.append(asyncio.wrap_future(s.executor.submit(handle, msg)))
                while inflight and (len(inflight) > MAX_IN_FLIGHT or inflight[0].done()):
                    await inflight.popleft()
        finally:
            try:
                await on_writer(s, lambda: s.clients.pop(conn.id, None))
            except RuntimeError:  # the session was deleted and its writer shut down
                s.clients.pop(conn.id, None)
            loop.call_soon(out.put_nowait, None)
            try:
                await task
            except Exception:
                pass

    mount_web(app, config)  # last: the page's static files must not shadow an API route
    app.state.store = store
    app.state.config = config
    return Guard(app, config)
