"""A small benchmark harness: implementations x cases, peers in the same process.

Each case gives a dict of implementations ``name -> (setup, run)``; the harness times the
first call (which includes kernel compilation for gpuseg) apart from the steady state
(best of ``repeat``), and reports each implementation's time and its ratio against a chosen
baseline peer. Results go to a markdown table, a JSON file and a bar plot.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

RESULTS = Path(os.environ.get("GPUSEG_BENCH_RESULTS", Path(__file__).resolve().parent / "results"))


@dataclass
class Result:
    case: str
    impl: str
    kind: str  # "gpuseg" or "peer" or "floor"
    first_s: float
    best_s: float
    repeat: int
    note: str = ""
    extra: dict = field(default_factory=dict)


def machine() -> str:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu or platform.machine()}, no GPU" if cpu else platform.platform()


def measure(fn: Callable[[], object], *, repeat: int = 5, sync: Callable[[], None] = lambda: None,
            min_time: float = 0.0) -> tuple[float, float, object]:
    """(first call seconds, best steady seconds, last output)."""
    t = time.perf_counter()
    out = fn()
    sync()
    first = time.perf_counter() - t
    best = float("inf")
    n = 0
    start = time.perf_counter()
    while n < repeat or (time.perf_counter() - start) < min_time:
        t = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - t)
        n += 1
    return first, best, out


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _malloc_trim() -> None:
    """Return the heap's free memory to the system, where the C library is glibc."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory(fn: Callable[[], object]) -> tuple[object, int | None]:
    """``(fn(), bytes)``: how far the process's peak resident memory rose above its resident
    memory at the start while ``fn`` ran (Linux: the peak is reset through
    ``/proc/self/clear_refs``); ``None`` where that is not available. Memory ``fn`` keeps
    counts, as does memory it frees before it returns. Freed heap memory is first handed back
    to the system (glibc ``malloc_trim``), so that what earlier work left in the heap cannot
    hide what ``fn`` needs."""
    import gc

    gc.collect()
    _malloc_trim()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return fn(), None
    before = _status_kib("VmRSS")
    out = fn()
    peak = _status_kib("VmHWM")
    if before is None or peak is None:
        return out, None
    return out, max(0, peak - before) * 1024


def backends(names: str):
    """The usable gpuseg backends among comma-separated ``names`` (skipped ones are reported)."""
    import sys

    import gpuseg

    for name in names.split(","):
        try:
            yield name, gpuseg.get_backend(name)
        except gpuseg.BackendUnavailableError as exc:
            print(f"skip {name}: {exc}", file=sys.stderr)


def finish(name: str, results: list[Result], baseline: dict[str, str], vol, extra_meta: dict | None = None) -> None:
    """Print the table and write the JSON and the plot."""
    print(f"\n{vol.source}, {vol.labels.shape}, spacing {tuple(round(s, 3) for s in vol.spacing_ijk)} mm, "
          f"{machine()}\n")
    print(table(results, baseline))
    path, png = save(name, results, baseline, {"volume": vol.name, "source": vol.source, **(extra_meta or {})})
    print(f"\nwrote {path}" + (f" and {png}" if png else ""))


def table(results: list[Result], baseline: dict[str, str]) -> str:
    """Markdown: case | implementation | steady ms | first call ms | speed-up vs baseline."""
    lines = ["| case | implementation | steady (ms) | first call (ms) | vs baseline |",
             "|---|---|---:|---:|---:|"]
    for r in results:
        base = next((x for x in results if x.case == r.case and x.impl == baseline.get(r.case)), None)
        ratio = f"{base.best_s / r.best_s:.2f}x" if base and r.best_s > 0 else ""
        name = f"**{r.impl}**" if r.kind == "gpuseg" else r.impl
        note = f" ({r.note})" if r.note else ""
        lines.append(f"| {r.case} | {name}{note} | {r.best_s * 1e3:.1f} | {r.first_s * 1e3:.1f} | {ratio} |")
    return "\n".join(lines)


def save(name: str, results: list[Result], baseline: dict[str, str], meta: dict) -> tuple[Path, Path | None]:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"machine": machine(), "meta": meta, "baseline": baseline, "results": [asdict(r) for r in results]}
    path.write_text(json.dumps(payload, indent=2))
    png = plot(name, results, baseline)
    return path, png


def plot(name: str, results: list[Result], baseline: dict[str, str]) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    cases = list(dict.fromkeys(r.case for r in results))
    fig, axes = plt.subplots(len(cases), 1, figsize=(8, 1.2 + 0.45 * len(results)), squeeze=False)
    for ax, case in zip(axes[:, 0], cases):
        rs = [r for r in results if r.case == case]
        colors = ["#1f77b4" if r.kind == "gpuseg" else ("#999999" if r.kind == "floor" else "#ff7f0e") for r in rs]
        ax.barh([r.impl for r in rs], [r.best_s * 1e3 for r in rs], color=colors)
        for y, r in enumerate(rs):
            ax.text(r.best_s * 1e3, y, f" {r.best_s * 1e3:.1f} ms", va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("steady-state time (ms), lower is better")
        ax.set_title(case, fontsize=10)
    fig.suptitle(f"gpuseg benchmark: {name} ({machine()})", fontsize=9)
    fig.tight_layout()
    out = RESULTS / f"{name}.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
