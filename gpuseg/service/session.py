"""Sessions: an Image, a Segmentation and an Editor resident on a backend, a journal that makes
every committed version durable, and the frames each change sends (docs/protocol.md).

All editing of a session runs on its one writer thread, in the order its queue received the
messages, so every client sees the same committed versions in the same order. Committed steps
are appended to ``journal.jsonl`` (one edit step per line, the schema of :mod:`gpuseg.steps`)
and fsynced before any client hears of them; restoring a session replays its journal.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..editor import Editor
from ..errors import DeviceMemoryError, FileFormatError, GpusegError, InvalidInputError, UnknownSegmentError
from ..image import Image
from ..mask import box_for_extent, union_box, words_per_row
from ..geometry import Extent
from ..segmentation import Segmentation
from ..steps import StrokeOutsideWarning, check_work, editor_points, run_step, validate_step
from . import wire
from .config import ServiceConfig
from .protocol import grow_step, stroke_step

META = "session.json"
JOURNAL = "journal.jsonl"


class UnknownSessionError(GpusegError, KeyError):
    """No session has that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def error_code(exc: BaseException) -> str:
    from ..errors import OutOfBoundsError

    if isinstance(exc, UnknownSegmentError):
        return "unknown_segment"
    if isinstance(exc, DeviceMemoryError):
        return "limit"
    if isinstance(exc, OutOfBoundsError):
        return "out_of_bounds"
    if isinstance(exc, FileFormatError):
        return "file_format"
    return "invalid"


def error_frame(seq, exc: BaseException | str, code: str | None = None) -> bytes:
    msg = str(exc)
    return wire.encode({"v": 1, "type": "error", "seq": seq, "code": code or error_code(exc),
                        "error": type(exc).__name__ if not isinstance(exc, str) else "ProtocolError",
                        "message": msg[:2000]})


@dataclass(eq=False)
class Conn:
    """One WebSocket client of a session."""

    id: int
    budget: int
    send: Any  # callable(list[bytes]) -> None, thread-safe (hands frames to the event loop)
    viewport: dict | None = None
    preview: tuple | None = None  # ("stroke", step) or ("grow", step, GrowPreview)
    stale: bool = False


@dataclass
class Session:
    id: str
    dir: Path
    meta: dict
    image: Image
    segmentation: Segmentation
    editor: Editor
    config: ServiceConfig
    version: int = 0
    clients: dict[int, Conn] = field(default_factory=dict)
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "gpuseg-session"))
    _journal: Any = None
    _dirty: bool = False
    _batch: list | None = None
    _queued: int = 0
    _count_lock: Any = field(default_factory=threading.Lock)

    # --- description ------------------------------------------------------------------------------
    def segments_meta(self) -> list[dict]:
        return [{"id": s.id, "name": s.name, "color": list(s.color), "visible": bool(s.visible)}
                for s in self.segmentation]

    def info(self) -> dict:
        g = self.segmentation.geometry
        return {"id": self.id, "version": self.version, "shape": list(g.shape), "spacing": list(g.spacing),
                "ijk_to_lps": np.asarray(g.ijk_to_world).tolist(), "backend": self.segmentation.backend.name,
                "image": self.meta.get("image"), "segmentation": self.meta.get("segmentation"),
                "created": self.meta.get("created"), "clients": len(self.clients),
                "segments": self.segments_meta()}

    def grid_bytes(self) -> int:
        nk, nj, ni = self.segmentation.geometry.shape
        return nk * nj * words_per_row(ni) * 4

    def check_memory(self, segments: int) -> None:
        need = self.image.nbytes + segments * self.grid_bytes() + self.config.undo_budget
        if need > self.config.max_session_bytes:
            raise DeviceMemoryError(f"{segments} segments on this grid may take {need / 2**20:.0f} MiB; "
                                    f"the session limit is {self.config.max_session_bytes / 2**20:.0f} MiB")

    # --- journal ----------------------------------------------------------------------------------
    def open_journal(self) -> None:
        self._journal = open(self.dir / JOURNAL, "ab", buffering=0)

    def _append(self, step: dict) -> None:
        """Append a committed step; it is fsynced before any frame about it leaves (_flush)."""
        line = json.dumps({"version": self.version + 1, "step": step}, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8") + b"\n"
        self._journal.write(line)
        self._dirty = True
        if self._batch is None:
            self._flush()

    # --- group commit: messages queued together share one fsync ---------------------------------------
    def _out(self, c: Conn, frames: list[bytes]) -> None:
        if self._batch is not None:
            self._batch.append((c, frames))
        else:
            c.send(frames)

    def _flush(self) -> None:
        if self._dirty:
            os.fsync(self._journal.fileno())
            self._dirty = False
        batch, self._batch = self._batch, ([] if self._batch is not None else None)
        for c, frames in batch or ():
            c.send(frames)

    def queued(self) -> None:
        """A message was queued for the writer (event-loop thread)."""
        with self._count_lock:
            self._queued += 1

    def begin(self) -> None:
        if self._batch is None:
            self._batch = []

    def end(self) -> None:
        """After a queued message: when no other is waiting (or the batch is large), fsync the
        journal once and send the batch's frames, in order."""
        with self._count_lock:
            self._queued -= 1
            last = self._queued == 0
        if last or len(self._batch or ()) >= 256:
            self._flush()
            if last:
                self._batch = None

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self.executor.shutdown(wait=False, cancel_futures=True)

    # --- reading words ------------------------------------------------------------------------------
    def _words(self, s, box) -> np.ndarray:
        if s.mask.nbytes == 0 or box[3] * box[4] * box[5] == 0:
            return np.zeros(box[3:], np.uint32)
        return self.segmentation.backend.to_numpy(s.mask.block(box))

    def _whole(self) -> dict[str, tuple[tuple, np.ndarray]]:
        out = {}
        for s in self.segmentation:
            if s.mask.nbytes:
                out[s.id] = (tuple(s.mask.box), s.mask.words_numpy())
            else:
                out[s.id] = ((0, 0, 0, 0, 0, 0), np.zeros((0, 0, 0), np.uint32))
        return out

    def stroke_box(self, step: dict) -> tuple | None:
        """A word box holding every voxel a brush step can change (the ball's exact voxel bound
        from the inverse matrix); None when it misses the grid."""
        g = self.segmentation.geometry
        p, sp = editor_points(g, step["points"], step.get("space", "world"))
        ijk = g.world_to_ijk_points(p) if sp == "world" else p
        r = 0.0 if step.get("shape") == "pixel" else float(step.get("diameter_mm", 5.0)) / 2.0
        inv = np.asarray(g.world_to_ijk)[:3, :3]
        half = r * np.sqrt((inv ** 2).sum(axis=1))
        n = np.array(g.shape[::-1])
        lo = np.maximum(np.floor(ijk.min(0) - half - 1).astype(np.int64), 0)
        hi = np.minimum(np.ceil(ijk.max(0) + half + 1).astype(np.int64) + 1, n)
        if np.any(hi <= lo):
            return None
        return box_for_extent(Extent(int(lo[2]), int(hi[2]), int(lo[1]), int(hi[1]), int(lo[0]), int(hi[0])))

    # --- committing ---------------------------------------------------------------------------------
    def commit(self, step: dict, origin: Conn | None, seq) -> None:
        """Apply a step, journal it, then send the new version to every client (the origin gets
        an ack). Raises GpusegError (nothing changed, nothing journaled)."""
        eff = step["effect"]
        if eff == "add_segment":
            self.check_memory(len(self.segmentation) + 1)
            if not step.get("id"):
                step = dict(step, id=f"2.25.{uuid.uuid4().int}")
        if eff == "undo" and not self.editor.can_undo or eff == "redo" and not self.editor.can_redo:
            if origin is not None:
                self._out(origin, [wire.encode({"v": 1, "type": "ack", "seq": seq, "version": self.version,
                                          "base_version": self.version, "changed": 0, "effect": eff})])
            return
        meta_before = self.segments_meta()
        box = self.stroke_box(step) if eff in ("paint", "erase") else None
        if eff in ("paint", "erase"):
            before = {s.id: self._words(s, box) for s in self.segmentation} if box is not None else {}
        else:
            before = self._whole()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StrokeOutsideWarning)
            changed = run_step(self.editor, step)
        self._append(step)
        self.version += 1
        regions = []
        if eff in ("paint", "erase"):
            if box is not None:
                for s in self.segmentation:
                    after = self._words(s, box)
                    regions += _diff_region(s.id, box, before.get(s.id), box, after)
        else:
            for sid, (bx, words) in self._whole().items():
                b0, w0 = before.get(sid, ((0, 0, 0, 0, 0, 0), None))
                regions += _diff_region(sid, b0, w0, bx, words)
        meta = self.segments_meta()
        self._broadcast(regions, origin, seq, eff, int(changed), meta if meta != meta_before else None)

    def _broadcast(self, regions, origin: Conn | None, seq, eff: str, changed: int, meta) -> None:
        v = self.version
        shared: dict = {}  # the other clients' frames, by (viewport, budget): encoded once
        for c in list(self.clients.values()):
            own = c is origin
            key = (tuple(sorted(c.viewport.items())) if c.viewport else None, c.budget)
            if own or key not in shared:
                base = {"v": 1, "type": "patch", "version": v, "base_version": v - 1, "seq": seq if own else None,
                        "origin": origin.id if origin is not None else None, "layer": "committed"}
                regs = [(dict(base, segment=sid), b, _over(b0, words)) for sid, b, b0, words in regions]
                made = wire.region_frames(regs, budget=c.budget, viewport=c.viewport)
                if not own:
                    shared[key] = made
            frames = list(made if own else shared[key])
            end = {"v": 1, "type": "ack" if own else "version", "seq": seq if own else None, "version": v,
                   "base_version": v - 1, "origin": origin.id if origin is not None else None,
                   "effect": eff, "changed": changed}
            if meta is not None:
                end["segments"] = meta
            frames.append(wire.encode(end))
            self._out(c, frames)

    def snapshot(self, c: Conn, seq) -> None:
        """Send the whole committed state to one client (chunked; the viewport first)."""
        v = self.version
        frames = [wire.encode({"v": 1, "type": "snapshot", "phase": "begin", "seq": seq, "version": v,
                               "shape": list(self.segmentation.geometry.shape), "segments": self.segments_meta()})]
        regs = []
        for sid, (bx, words) in self._whole().items():
            if words.size:
                regs.append(({"v": 1, "type": "snapshot", "phase": "chunk", "seq": seq, "version": v,
                              "segment": sid}, bx, _over(bx, words)))
        frames += wire.region_frames(regs, budget=c.budget, viewport=c.viewport)
        frames.append(wire.encode({"v": 1, "type": "snapshot", "phase": "end", "seq": seq, "version": v}))
        c.stale = False
        self._out(c, frames)

    # --- previews -------------------------------------------------------------------------------------
    def preview_stroke(self, c: Conn, msg: dict, seq) -> None:
        step = stroke_step(msg)
        validate_step(step)
        g = self.segmentation.geometry
        check_work(g, step)
        pts, sp = editor_points(g, step["points"], step.get("space", "world"))
        p = self.editor.preview(step["segment"], pts, float(step.get("diameter_mm", 5.0)),
                                erase=step["effect"] == "erase", erase_all_segments=bool(step.get("all_segments")),
                                shape=step.get("shape", "sphere"), axis=int(step.get("axis", 0)), space=sp)
        c.preview = ("stroke", step)
        frames = [wire.encode({"v": 1, "type": "preview", "phase": "clear", "seq": seq})]
        if p is not None:
            ext = p.extent
            axis, lo, hi = self._view_range(c, ext)
            sid = p.segment_id
            for index in range(lo, hi):
                got = p.slice(axis, index)
                if got is None:
                    continue
                (r0, r1, c0, c1), packed = got
                plane = np.unpackbits(packed, bitorder="little", count=(r1 - r0) * (c1 - c0)).reshape(r1 - r0, c1 - c0)
                box, words = _plane_words(axis, index, r0, c0, plane.astype(bool), g.shape)
                h = {"v": 1, "type": "patch", "layer": "preview", "seq": seq, "segment": sid,
                     "erase": step["effect"] == "erase", "version": self.version}
                frames += wire.region_frames([(h, box, _over(box, words))], budget=c.budget, viewport=None)
        frames.append(wire.encode({"v": 1, "type": "ack", "seq": seq, "version": self.version,
                                   "base_version": self.version, "preview": True}))
        self._out(c, frames)

    def _view_range(self, c: Conn, ext: Extent) -> tuple[int, int, int]:
        lo3, hi3 = (ext.k0, ext.j0, ext.i0), (ext.k1, ext.j1, ext.i1)
        if c.viewport is None:
            return 0, lo3[0], hi3[0]
        a = c.viewport["axis"]
        return a, max(lo3[a], c.viewport["lo"]), min(hi3[a], c.viewport["hi"])

    def preview_grow(self, c: Conn, msg: dict, seq) -> None:
        step = grow_step(msg)
        validate_step(step)
        if msg["mode"] == "update":
            if c.preview is None or c.preview[0] != "grow":
                raise InvalidInputError("grow update: no grow preview to update; send grow preview first")
            kw = {k: v for k, v in c.preview[1].items() if k != "effect"}
        else:
            kw = {k: v for k, v in step.items() if k != "effect"}
            c.preview = ("grow", step)
        gp = self.editor.grow_from_seeds_preview(**kw)
        frames = [wire.encode({"v": 1, "type": "preview", "phase": "clear", "seq": seq})]
        axis, lo, hi = self._view_range(c, gp.extent)
        ext = gp.extent
        offs = [(ext.j0, ext.i0), (ext.k0, ext.i0), (ext.k0, ext.j0)][axis]
        for index in range(lo, min(hi, lo + 64)):
            lab = gp.labels_slice(axis, index)
            if lab is None:
                continue
            h = {"v": 1, "type": "patch", "layer": "preview", "seq": seq, "labels": list(gp.segment_ids),
                 "voxel_box": [axis, index, offs[0], offs[1], int(lab.shape[0]), int(lab.shape[1])],
                 "encoding": wire.LABELS_ZSTD, "version": self.version}
            frames.append(wire.encode(h, wire._cctx.compress(np.ascontiguousarray(lab, np.uint8).tobytes())))
        frames.append(wire.encode({"v": 1, "type": "ack", "seq": seq, "version": self.version,
                                   "base_version": self.version, "preview": True}))
        self._out(c, frames)

    def accept(self, c: Conn, seq) -> None:
        if c.preview is None:
            raise InvalidInputError("accept: there is no preview to accept")
        step = c.preview[1]
        c.preview = None
        self._out(c, [wire.encode({"v": 1, "type": "preview", "phase": "clear", "seq": seq})])
        # the preview's step is run again on the current segmentation: exactly what replay does
        self.commit(step, c, seq)

    def reject(self, c: Conn, seq) -> None:
        c.preview = None
        self._out(c, [wire.encode({"v": 1, "type": "preview", "phase": "clear", "seq": seq}),
                wire.encode({"v": 1, "type": "ack", "seq": seq, "version": self.version,
                             "base_version": self.version})])

    # --- one message from a client (on the writer thread) -------------------------------------------
    def handle(self, c: Conn, msg: dict) -> None:
        t, seq = msg["type"], msg["seq"]
        try:
            if t == "stroke":
                if msg["mode"] == "commit":
                    step = stroke_step(msg)
                    check_work(self.segmentation.geometry, validate_step(step))
                    self.commit(step, c, seq)
                else:
                    self.preview_stroke(c, msg, seq)
            elif t == "effect":
                step = dict(msg["step"])
                if step["effect"] == "masking":
                    c.preview = None
                self.commit(step, c, seq)
            elif t in ("undo", "redo"):
                self.commit({"effect": t}, c, seq)
            elif t == "accept":
                self.accept(c, seq)
            elif t == "reject":
                self.reject(c, seq)
            elif t == "grow":
                self.preview_grow(c, msg, seq)
            elif t == "subscribe":
                n = self.segmentation.geometry.shape[msg["axis"]]
                lo = min(msg["index"], n - 1)
                c.viewport = {"axis": msg["axis"], "lo": lo, "hi": min(n, lo + msg.get("slab", 1) or 1)}
                if msg.get("budget"):
                    c.budget = int(msg["budget"])
                self._out(c, [wire.encode({"v": 1, "type": "ack", "seq": seq, "version": self.version,
                                     "base_version": self.version, "viewport": c.viewport, "budget": c.budget})])
            elif t == "resync":
                self.snapshot(c, seq)
            else:  # ping
                self._out(c, [wire.encode({"v": 1, "type": "ack", "seq": seq, "version": self.version,
                                     "base_version": self.version})])
        except GpusegError as exc:
            self._out(c, [error_frame(seq, exc)])


def _over(box0, words: np.ndarray):
    """words_over(sub_box) for host ``words`` stored over ``box0``."""
    def get(b):
        return words[b[0] - box0[0]:b[0] - box0[0] + b[3], b[1] - box0[1]:b[1] - box0[1] + b[4],
                     b[2] - box0[2]:b[2] - box0[2] + b[5]]
    return get


def _place(box, words, union) -> np.ndarray:
    out = np.zeros(union[3:], np.uint32)
    if words is not None and words.size:
        out[box[0] - union[0]:box[0] - union[0] + box[3], box[1] - union[1]:box[1] - union[1] + box[4],
            box[2] - union[2]:box[2] - union[2] + box[5]] = words
    return out


def _diff_region(sid: str, b0, w0, b1, w1) -> list:
    """The tight word box where a segment's words changed, with its new words: [] if none."""
    u = union_box(tuple(b0), tuple(b1))
    if u[3] * u[4] * u[5] == 0:
        return []
    old = _place(b0, w0, u)
    new = _place(b1, w1, u)
    d = old != new
    if not d.any():
        return []
    idx = [np.nonzero(d.any(axis=tuple(x for x in range(3) if x != a)))[0] for a in range(3)]
    lo = [int(i[0]) for i in idx]
    hi = [int(i[-1]) + 1 for i in idx]
    box = (u[0] + lo[0], u[1] + lo[1], u[2] + lo[2], hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])
    return [(sid, box, box, new[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])]


def _plane_words(axis: int, index: int, r0: int, c0: int, plane: np.ndarray, shape) -> tuple[tuple, np.ndarray]:
    """Pack a slice's bool box (rows, cols of the other two axes in (k, j, i) order) into the
    word layout over the word box that holds it."""
    lo = [0, 0, 0]
    n = [0, 0, 0]
    ra, ca = [a for a in range(3) if a != axis]
    lo[axis], n[axis] = index, 1
    lo[ra], n[ra] = r0, plane.shape[0]
    lo[ca], n[ca] = c0, plane.shape[1]
    dense = np.expand_dims(plane, axis)
    w0 = lo[2] // 32
    w1 = (lo[2] + n[2] + 31) // 32
    full = np.zeros((n[0], n[1], 32 * (w1 - w0)), bool)
    full[:, :, lo[2] - 32 * w0:lo[2] - 32 * w0 + n[2]] = dense
    words = np.packbits(full, axis=2, bitorder="little").view("<u4").astype(np.uint32)
    return (lo[0], lo[1], w0, n[0], n[1], w1 - w0), words


# --- the store of sessions on the data root ------------------------------------------------------------
class SessionStore:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.sessions: dict[str, Session] = {}
        self.damaged: dict[str, str] = {}
        config.state_dir.mkdir(exist_ok=True)

    def _load(self, sid: str, d: Path, meta: dict) -> Session:
        from ..io import read_image, read_segmentation

        backend = meta.get("backend") or self.config.backend
        img = read_image(d / meta["image_file"] if meta.get("image_file") else
                         self.config.data_root / meta["image"], backend=backend)
        seg_src = meta.get("segmentation_file") or meta.get("segmentation")
        if seg_src:
            base = d if meta.get("segmentation_file") else self.config.data_root
            seg = read_segmentation(base / seg_src, backend=img.backend)
            img.geometry.check_same_grid(seg.geometry, "image and segmentation")
        else:
            seg = Segmentation(img.geometry, backend=img.backend)
        s = Session(sid, d, meta, img, seg, Editor(seg, img, undo_budget=self.config.undo_budget), self.config)
        s.check_memory(len(seg))
        return s

    def create(self, meta: dict, files: dict[str, tuple[str, bytes]] | None = None) -> Session:
        """A new session from ``meta`` (paths relative to the data root) or uploaded ``files``
        (kind -> (file name suffix, bytes))."""
        if len(self.sessions) >= self.config.max_sessions:
            raise DeviceMemoryError(f"the service holds {len(self.sessions)} sessions, its limit")
        sid = secrets.token_hex(8)
        d = self.config.state_dir / sid
        d.mkdir()
        try:
            for kind, (suffix, data) in (files or {}).items():
                (d / f"{kind}{suffix}").write_bytes(data)
                meta[f"{kind}_file"] = f"{kind}{suffix}"
            meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            meta["backend"] = meta.get("backend") or self.config.backend
            s = self._load(sid, d, meta)
            tmp = d / (META + ".tmp")
            tmp.write_text(json.dumps(meta))
            os.replace(tmp, d / META)
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise
        s.open_journal()
        self.sessions[sid] = s
        return s

    def restore_all(self) -> None:
        """Reload every session of the data root: its files, then its journal replayed."""
        for d in sorted(self.config.state_dir.iterdir()):
            if not (d / META).is_file():
                if d.is_dir():
                    shutil.rmtree(d, ignore_errors=True)  # a create that never finished
                continue
            try:
                self.sessions[d.name] = self._restore(d)
            except (GpusegError, OSError, ValueError, KeyError) as exc:
                self.damaged[d.name] = f"{type(exc).__name__}: {exc}"

    def _restore(self, d: Path) -> Session:
        meta = json.loads((d / META).read_text())
        s = self._load(d.name, d, meta)
        path = d / JOURNAL
        if path.exists():
            data = path.read_bytes()
            good = 0  # bytes of whole, valid lines
            lines = data.split(b"\n")
            for n, line in enumerate(lines):
                last = n == len(lines) - 1
                if last and not line:
                    break
                try:
                    rec = json.loads(line)
                    step = rec["step"]
                    if rec["version"] != s.version + 1:
                        raise ValueError(f"version {rec['version']} after {s.version}")
                except (ValueError, KeyError, TypeError) as exc:
                    if last:  # a torn last line: never fsynced whole, never acked
                        break
                    raise FileFormatError(f"{path}: line {n + 1} is damaged ({exc})") from exc
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", StrokeOutsideWarning)
                    run_step(s.editor, step, n + 1)
                s.version += 1
                good += len(line) + 1
            if good < len(data):
                with open(path, "r+b") as f:
                    f.truncate(good)
            elif good > len(data):  # a whole last record without its newline
                with open(path, "ab") as f:
                    f.write(b"\n")
        s.open_journal()
        return s

    def delete(self, sid: str) -> None:
        s = self.get(sid)
        del self.sessions[sid]
        s.close()
        shutil.rmtree(s.dir, ignore_errors=True)

    def get(self, sid: str) -> Session:
        s = self.sessions.get(sid) if isinstance(sid, str) else None
        if s is None:
            raise UnknownSessionError(f"no session {sid!r}")
        return s

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()
