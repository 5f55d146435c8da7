"""``gpuseg.batch.run``: submit the cases to Dask, retry cases whose worker died, keep the books.

A case's own failure (a corrupt file, mismatched geometry) comes back as a ``failed`` record from
the worker (:func:`gpuseg.batch.worker.run_case`); a worker that dies while running a case (killed,
out of memory) makes the scheduler report ``KilledWorker``, and the case is submitted again, up to
``retries`` more times. The results are one tidy table (one row per case and segment; a failed
case has one row with its error), written as CSV (and Parquet when pyarrow is present), and a JSON
summary with one record per case.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InvalidInputError
from .manifest import Case, check_unique, make_case, read_manifest
from .tasks import check_inputs, check_task, resolve_options
from .worker import run_case

# errors that mean "the worker (or the connection to it) went away", not "the case failed"
_LOST = ("KilledWorker", "CommClosedError", "FutureCancelledError", "CancelledError", "StreamClosedError")


@dataclass
class BatchResult:
    """What a batch did: ``rows`` (the tidy table), ``cases`` (one record per case), ``summary``."""

    rows: list[dict]
    cases: list[dict]
    summary: dict
    files: dict = field(default_factory=dict)

    @property
    def counts(self) -> dict:
        return self.summary["counts"]

    @property
    def exit_code(self) -> int:
        """0 when no case failed, else 1."""
        return 1 if self.counts["failed"] else 0


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return v


def table_rows(records: Iterable[dict]) -> list[dict]:
    """One row per case and segment: ``case``, ``status``, ``attempts`` first, then the task's
    columns; a failed case gives one row with ``error_type`` and ``error``."""
    rows = []
    for r in records:
        head = {"case": r["case"], "status": r["status"], "attempts": r.get("attempts", 1)}
        if r["status"] == "failed":
            rows.append({**head, "error_type": r.get("error_type"), "error": r.get("error")})
        else:
            rows.extend({**head, **row} for row in r.get("rows", []))
    return rows


def write_table(rows: list[dict], outdir: Path) -> dict:
    """``results.csv`` (and ``results.parquet`` when pyarrow is installed), atomically."""
    cols = list(dict.fromkeys(k for r in rows for k in r)) or ["case", "status"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    w.writerows({k: _cell(r.get(k)) for k in cols} for r in rows)
    files = {"csv": outdir / "results.csv"}
    _atomic_write(files["csv"], buf.getvalue().encode())
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return files
    columns = {}
    for k in cols:
        vals = [r.get(k) for r in rows]
        if any(isinstance(v, (list, tuple, dict)) for v in vals):
            vals = [None if v is None else json.dumps(v) for v in vals]
        kinds = {type(v) for v in vals if v is not None}
        if kinds == {int, float}:
            vals = [None if v is None else float(v) for v in vals]
        elif len(kinds) > 1:
            vals = [None if v is None else str(v) for v in vals]
        columns[k] = vals
    tbl = pa.table(columns)
    files["parquet"] = outdir / "results.parquet"
    tmp = outdir / f".results.parquet.tmp-{uuid.uuid4().hex[:8]}"
    try:
        pq.write_table(tbl, tmp)
        os.replace(tmp, files["parquet"])
    finally:
        if tmp.exists():
            tmp.unlink()
    return files


def _as_cases(cases) -> list[Case]:
    if isinstance(cases, (str, os.PathLike)):
        return read_manifest(cases)
    out = [c if isinstance(c, Case) else make_case(c, None, "cases") for c in cases]
    return check_unique(out, "cases")


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="case", file=sys.stderr, disable=not enabled, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} cases [{elapsed}<{remaining}{postfix}]")


def run(cases: Sequence[Case | dict] | str | os.PathLike, task: str, client=None, *, outdir,
        options: dict | None = None, scheduler: str | None = None, workers: int | None = None,
        backend: str | None = None, retries: int = 2, resume: bool = False, progress: bool = True,
        log=None) -> BatchResult:
    """Run ``task`` over ``cases`` on Dask and return the results table.

    Parameters
    ----------
    cases : list of Case or dicts, or a manifest path / glob pattern (see :mod:`gpuseg.batch.manifest`)
    task : ``convert``, ``stats``, ``surface``, ``edit``, ``threshold``, ``grow`` or ``compare``
    client : a ``distributed.Client`` to use; None: connect to ``scheduler``, or start a local cluster
        of ``workers`` processes (default: one per core; ``dask_cuda.LocalCUDACluster`` where it is
        installed and GPUs exist) and close it afterwards
    outdir : output folder: ``cases/<id>/`` per case, ``results.csv`` (+ ``.parquet``), ``summary.json``
    options : task options for every case (per-case manifest columns override them)
    retries : how many times a case is submitted again after its worker died
    resume : skip cases whose ``cases/<id>/case.json`` holds the same input+option hash
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    check_task(task)
    if retries < 0:
        raise InvalidInputError(f"retries must be >= 0, got {retries}")
    case_list = _as_cases(cases)
    resolve_options(task, options, require=False)  # bad batch options fail before anything starts
    prepared = []
    for c in case_list:
        check_inputs(task, c)
        prepared.append((c, resolve_options(task, options, c.options, where=f"case {c.id}")))
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    if client is None:
        from .cluster import open_client

        with open_client(scheduler, workers, backend, log=log) as (cl, kind, threads):
            if kind == "cuda" and (backend or "auto") == "auto":
                backend = "cuda"
            return _run(cl, task, prepared, out, backend, threads, retries, resume, progress, log, kind)
    return _run(client, task, prepared, out, backend, None, retries, resume, progress, log, "client")


def _register(client, backend, threads) -> None:
    from .plugin import GpusegWorkerPlugin

    plugin = GpusegWorkerPlugin(backend, threads)
    reg = getattr(client, "register_plugin", None) or client.register_worker_plugin
    reg(plugin, name=GpusegWorkerPlugin.name)


def _run(client, task, prepared, out: Path, backend, threads, retries, resume, progress, log, kind) -> BatchResult:
    from distributed import as_completed

    t_start = time.time()
    t0 = time.perf_counter()
    _register(client, backend, threads)
    token = uuid.uuid4().hex[:8]
    by_key, attempts, records = {}, {}, {}

    def submit(case, opts):
        attempts[case.id] = attempts.get(case.id, 0) + 1
        key = f"gpuseg-batch-{task}-{case.id}-{attempts[case.id]}-{token}"
        fut = client.submit(run_case, task, case, opts, str(out), resume=resume, backend=backend,
                            numba_threads=threads, key=key, pure=False, retries=0)
        by_key[key] = (case, opts)
        return fut

    futures = as_completed([submit(c, o) for c, o in prepared])
    bar = _progress(len(prepared), progress)
    times: list[float] = []
    try:
        for fut in futures:
            case, opts = by_key.pop(fut.key)
            try:
                rec = fut.result()
            except Exception as exc:  # the worker died, or the task could not run at all
                name = type(exc).__name__
                if name in _LOST and attempts[case.id] <= retries:
                    log(f"case {case.id}: {name} (attempt {attempts[case.id]}); retrying")
                    futures.add(submit(case, opts))
                    continue
                rec = {"case": case.id, "task": task, "status": "failed", "rows": [], "seconds": None,
                       "error_type": name, "error": str(exc) or name}
            finally:
                fut.release()
            rec["attempts"] = attempts[case.id]
            records[case.id] = rec
            if rec["status"] == "done" and rec.get("seconds") is not None:
                times.append(rec["seconds"])
            if rec["status"] == "failed":
                bar.write(f"case {case.id}: failed: {rec['error_type']}: {rec['error']}", file=sys.stderr)
            bar.set_postfix_str(f"{rec['case']} {rec['status']} {rec.get('seconds') or 0:.1f} s"
                                + (f", mean {sum(times) / len(times):.1f} s/case" if times else ""), refresh=False)
            bar.update(1)
    finally:
        bar.close()
    ordered = [records[c.id] for c, _ in prepared]
    rows = table_rows(ordered)
    files = write_table(rows, out)
    counts = {s: sum(r["status"] == s for r in ordered) for s in ("done", "failed", "skipped")}
    wall = time.perf_counter() - t0
    summary = {
        "task": task, "cluster": kind, "workers": len(client.scheduler_info().get("workers", {})),
        "backend": backend or os.environ.get("GPUSEG_BACKEND") or "auto", "started": t_start,
        "seconds": wall, "cases_per_minute": 60.0 * counts["done"] / wall if wall > 0 else None,
        "counts": counts, "retried": sum(r["attempts"] > 1 for r in ordered),
        "files": {k: str(v) for k, v in files.items()},
        "cases": [{k: v for k, v in r.items() if k != "rows"} for r in ordered],
    }
    files["summary"] = out / "summary.json"
    _atomic_write(files["summary"], json.dumps(summary, indent=1, default=str).encode())
    log(f"{task}: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped "
        f"of {len(ordered)} cases in {wall:.1f} s; results in {files['csv']}")
    return BatchResult(rows, ordered, summary, files)
