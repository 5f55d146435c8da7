"""What runs on a Dask worker: its one-time setup and one case.

Setup happens once per worker process: the worker plugin (:mod:`gpuseg.batch.plugin`, registered
by the runner)
resolves the backend, sets the numba thread count and warms the kernels; the state lives in this
module (:func:`worker_state`), so a worker that was not given the plugin builds it on its first
case. A case reads its inputs, hashes them with its options, and writes its outputs into a
temporary folder that is renamed into place only when everything succeeded, with ``case.json``
(its rows, hash and timings) inside it. ``--resume`` trusts a ``case.json`` whose hash matches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .tasks import NEEDS, TAKES, TASK_FUNCS, file_options

RECORD = "case.json"
HASH_VERSION = 1

@dataclass
class WorkerState:
    backend_name: str | None
    numba_threads: int
    backend: object = None
    cases_run: int = 0
    setup_s: float = 0.0
    pid: int = field(default_factory=os.getpid)


_STATE: WorkerState | None = None


def default_numba_threads(threads_per_worker: int = 1) -> int:
    """$NUMBA_NUM_THREADS when set (a local cluster sets it to cores // workers), else the cores
    divided by the worker's own threads (one worker per machine or job, as on Slurm/Kubernetes)."""
    env = os.environ.get("NUMBA_NUM_THREADS")
    if env and env.strip().isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 1) // max(1, threads_per_worker))


def worker_state(backend: str | None = None, numba_threads: int | None = None) -> WorkerState:
    """This process's gpuseg state, built on the first call (backend, numba threads, warm kernels)."""
    global _STATE
    if _STATE is not None and _STATE.pid == os.getpid() and _STATE.backend_name == backend:
        return _STATE
    t = time.perf_counter()
    import numpy as np

    import gpuseg

    st = WorkerState(backend, numba_threads or default_numba_threads())
    _set_numba_threads(st.numba_threads)
    st.backend = gpuseg.get_backend(backend)
    # warm the kernels a case uses (numba loads its disk cache, OpenCL/CUDA build their programs)
    img = gpuseg.Image.from_numpy(np.arange(4 * 5 * 40, dtype=np.int16).reshape(4, 5, 40), backend=st.backend)
    m = gpuseg.threshold(img, 50, 600)
    seg = gpuseg.Segmentation(img.geometry, backend=st.backend)
    seg.add_segment(m, name="warm")
    gpuseg.statistics(seg, img)
    gpuseg.closed_surface(m, smoothing=0.0)
    st.setup_s = time.perf_counter() - t
    _STATE = st
    return st


def _set_numba_threads(n: int) -> None:
    """numba's thread count is per calling thread: set it in the thread that runs the case."""
    import numba

    with contextlib.suppress(ValueError):
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


# ----------------------------------------------------------------------------- hashing

def _hash_path(h, path: Path) -> None:
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(path)).encode() + b"\0")
                _hash_file(h, p)
    elif path.is_file():
        _hash_file(h, path)
    else:
        from ..errors import FileFormatError

        raise FileFormatError(f"{path}: not found")


def _hash_file(h, p: Path) -> None:
    with open(p, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    h.update(b"\0")


def case_hash(task: str, case, opts: dict) -> str:
    """A hash of the task, its resolved options and the content of every input file (images,
    segmentations, label tables, edit scripts)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps({"v": HASH_VERSION, "task": task, "options": opts}, sort_keys=True, default=str).encode())
    cols = NEEDS[task] + TAKES.get(task, ())
    for col in cols:
        path = getattr(case, col)
        h.update(f"\0{col}\0".encode())
        if path:
            _hash_path(h, Path(path))
    for k in file_options(task):
        if opts.get(k):
            h.update(f"\0{k}\0".encode())
            _hash_path(h, Path(opts[k]))
    return h.hexdigest()


# ----------------------------------------------------------------------------- one case

def _error_record(exc: BaseException) -> dict:
    from ..errors import GpusegError

    rec = {"error_type": type(exc).__name__, "error": str(exc) or type(exc).__name__}
    if not isinstance(exc, GpusegError):  # an unexpected failure: keep where it happened
        rec["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
    return rec


def read_record(case_dir: Path) -> dict | None:
    try:
        return json.loads((case_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None


def _install(tmp: Path, final: Path) -> None:
    """Put the finished folder in place: the old one (if any) is moved aside first, so the
    case's folder is at every moment either the complete old or the complete new output."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _sweep(cases_dir: Path, cid: str) -> None:
    """Remove what an earlier, killed attempt of this case left behind."""
    for p in cases_dir.glob(f".{cid}.*"):
        shutil.rmtree(p, ignore_errors=True)


def run_case(task: str, case, opts: dict, outdir: str, *, resume: bool = False, backend: str | None = None,
             numba_threads: int | None = None) -> dict:
    """Run one case; never raises for a case's own failure (the record says ``failed``)."""
    t0 = time.perf_counter()
    rec = {"case": case.id, "task": task, "worker_pid": os.getpid()}
    cases_dir = Path(outdir) / "cases"
    final = cases_dir / case.id
    try:
        st = worker_state(backend, numba_threads)
        _set_numba_threads(st.numba_threads)
        digest = case_hash(task, case, opts)
        rec["hash"] = digest
        if resume:
            old = read_record(final)
            if (old is not None and old.get("hash") == digest and old.get("status") == "done"
                    and all((final / name).exists() for name in old.get("outputs", []))):
                old.update(status="skipped", seconds=time.perf_counter() - t0, worker_pid=os.getpid())
                return old
        cases_dir.mkdir(parents=True, exist_ok=True)
        _sweep(cases_dir, case.id)
        tmp = cases_dir / f".{case.id}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            rows, facts = TASK_FUNCS[task](case, opts, tmp, st.backend)
            rec.update(status="done", rows=rows, facts=facts, backend=st.backend.name,
                       outputs=sorted(p.name for p in tmp.iterdir()), seconds=time.perf_counter() - t0)
            (tmp / RECORD).write_text(json.dumps(rec, indent=1, default=str))
            _install(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        st.cases_run += 1
        return rec
    except Exception as exc:  # a case's failure is recorded, the batch goes on
        rec.update(status="failed", rows=[], seconds=time.perf_counter() - t0, **_error_record(exc))
        return rec
