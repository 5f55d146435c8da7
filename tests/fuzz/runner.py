"""The fuzz driver: prepares seeded cases, feeds them to persistent workers under time and
memory limits, and tabulates the outcomes (ok, typed, raw, untyped, changed, memory, hang, crash)."""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from . import targets as T

OUTCOMES = ["ok", "typed", "raw", "untyped", "changed", "memory", "hang", "crash"]
GOOD = {"ok", "typed"}
REPO = Path(__file__).resolve().parents[2]


class Worker:
    def __init__(self, memory: int, timeout: float) -> None:
        self.memory, self.timeout = memory, timeout
        self.proc = None
        self.starts = 0

    def start(self) -> None:
        r, w = os.pipe()
        env = dict(os.environ, GPUSEG_BACKEND="cpu", NUMBA_NUM_THREADS="1", GPUSEG_MEMORY_BUDGET=os.environ.get("FUZZ_BUDGET", "1GB"),
                   GPUSEG_MAX_READ_BYTES=os.environ.get("FUZZ_BUDGET", "1GB"), GPUSEG_H5_PROBE_TIMEOUT="5",
                   PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("GPUSEG_REQUIRE_OPENCL", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker", str(w), str(self.memory)],
                                     stdin=subprocess.PIPE, pass_fds=(w,), cwd=REPO, env=env, text=True,
                                     start_new_session=True)
        os.close(w)
        self.out = os.fdopen(r, "r")
        self.starts += 1
        line = self._readline(120)
        if line is None or not json.loads(line).get("ready"):
            raise RuntimeError("the fuzz worker did not start")

    def _readline(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.out], [], [], timeout)
        if not ready:
            return None
        line = self.out.readline()
        return line or None

    def stop(self) -> None:
        if self.proc is not None:
            with_suppress(lambda: os.killpg(self.proc.pid, signal.SIGKILL))
            self.proc.wait()
            self.out.close()
            self.proc = None

    def run(self, msg: dict) -> dict:
        if self.proc is None:
            self.start()
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._readline(self.timeout)
        if line is not None:
            return json.loads(line)
        if self.proc.poll() is None:  # still running: a hang
            self.stop()
            return {"outcome": "hang", "message": f"no answer in {self.timeout:g} s"}
        code = self.proc.wait()
        self.stop()
        if code < 0 and -code == signal.SIGKILL:
            return {"outcome": "memory", "message": "killed (SIGKILL: out of memory?)"}
        return {"outcome": "crash", "message": f"worker died with status {code}"
                                               f" ({signal.Signals(-code).name if code < 0 else 'exit'})"}


def with_suppress(fn) -> None:
    try:
        fn()
    except (OSError, ProcessLookupError):
        pass


def run(target_names: list[str], cases: int, seed: int = 0, *, timeout: float = 10.0, memory: int = 6 << 30,
        jobs: int = 2, verbose: bool = False, keep: Path | None = None) -> dict[str, dict]:
    """Run ``cases`` cases per target; returns ``{target: {"counts": Counter, "failures": [...]}}``."""
    import warnings

    warnings.simplefilter("ignore")  # pydicom warns about every odd value the mutations set
    work = Path(tempfile.mkdtemp(prefix="gpuseg-fuzz-"))
    try:
        seeds = T.make_seeds(work / "seeds")
        jobs_list = [(t, n) for t in target_names for n in range(cases)]
        results: dict[str, dict] = {t: {"counts": Counter(), "failures": [], "seconds": 0.0} for t in target_names}
        lock = threading.Lock()
        queue = list(reversed(jobs_list))

        def loop(wid: int) -> None:
            w = Worker(memory, timeout)
            try:
                while True:
                    with lock:
                        if not queue:
                            return
                        t, n = queue.pop()
                    rng = random.Random(f"{seed}:{t}:{n}")
                    case_dir = work / f"w{wid}" / f"{t}-{n}"
                    msg = T.prepare(t, seeds, case_dir, rng)
                    t0 = time.monotonic()
                    res = w.run(msg)
                    with lock:
                        results[t]["seconds"] += time.monotonic() - t0
                        results[t]["counts"][res["outcome"]] += 1
                        if res["outcome"] not in GOOD:
                            res.update(target=t, case=n, seed=seed)
                            results[t]["failures"].append(res)
                            if verbose:
                                print(json.dumps(res), file=sys.stderr)
                            if keep is not None:
                                shutil.copytree(case_dir, keep / f"{t}-{n}", dirs_exist_ok=True)
                    if (case_dir / "ro").is_dir():
                        os.chmod(case_dir / "ro", 0o755)
                    shutil.rmtree(case_dir, ignore_errors=True)
            finally:
                w.stop()

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(max(1, jobs))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(results: dict[str, dict]) -> str:
    lines = ["| target (cases) | " + " | ".join(OUTCOMES) + " | worker s |", "|---|" + "---:|" * (len(OUTCOMES) + 1)]
    for t, r in results.items():
        c = r["counts"]
        lines.append(f"| `{t}` ({sum(c.values())}) | " + " | ".join(str(c.get(o, 0)) for o in OUTCOMES)
                     + f" | {r.get('seconds', 0):.0f} |")
    return "\n".join(lines)
