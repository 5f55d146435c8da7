"""Start-up cost of the CLI: wall time of ``gpuseg info``, ``stats`` and ``convert`` on the small
real examples, cold (an empty numba cache, so every kernel a command needs compiles) and warm
(the cache that the cold run wrote; each command gets its own empty cache for its cold run), plus the import time of the package.

Each command runs in a fresh process, as a user runs it. The cold runs use a private
``NUMBA_CACHE_DIR``, so they neither use nor disturb the project's cache; the warm figure is the
best of three runs after the cold one. A listener on numba's ``numba:compile`` event counts the
functions each run compiled: a warm run must compile none (tests/test_startup.py checks the
same). Results: ``benchmarks/results/startup.json``; the README quotes them.

    python -m benchmarks.bench_startup [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .harness import RESULTS, machine

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"

# Runs the CLI in-process after installing a compile counter; prints {"compiled": n} last on stderr.
_RUNNER = """
import json, sys
from numba.core import event
n = [0]
class _Count(event.Listener):
    def on_start(self, ev): n[0] += 1
    def on_end(self, ev): pass
event.register("numba:compile", _Count())
from gpuseg.cli import exit_quickly, main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
print(json.dumps({"compiled": n[0], "rc": rc}), file=sys.stderr)
exit_quickly(rc or 0)  # as the gpuseg console script ends
"""


def commands(out_dir: Path) -> dict[str, list[str]]:
    slicer = DATA / "slicer" / "Segmentation.seg.nrrd"
    ts = DATA / "totalseg"
    labels = ["--labels", str(ts / "total_classes.json")]
    return {
        "info Segmentation.seg.nrrd (Slicer, 7 segments)": ["info", str(slicer)],
        "info example_seg.nii.gz (TotalSegmentator, 41 labels)": ["info", str(ts / "example_seg.nii.gz"), *labels],
        "stats example_seg.nii.gz --image example_ct_sm": ["stats", str(ts / "example_seg.nii.gz"), *labels,
                                                           "--image", str(ts / "example_ct_sm.nii.gz"), "--csv",
                                                           str(out_dir / "stats.csv"), "-q"],
        "convert example_seg.nii.gz -> .seg.nrrd": ["convert", str(ts / "example_seg.nii.gz"), *labels,
                                                  str(out_dir / "out.seg.nrrd"), "-q"],
    }


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _RUNNER, *argv], env=env, capture_output=True, text=True,
                       cwd=ROOT, timeout=900)
    wall = time.perf_counter() - t
    try:
        tail = json.loads(p.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"gpuseg {' '.join(argv)} failed:\n{p.stderr[-2000:]}")
    if tail["rc"] not in (0, None):
        raise SystemExit(f"gpuseg {' '.join(argv)} exited {tail['rc']}:\n{p.stderr[-2000:]}")
    return wall, int(tail["compiled"])


def import_seconds(env: dict[str, str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import gpuseg.cli"], env=env, check=True, cwd=ROOT)
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="warm runs per command (best is reported)")
    args = ap.parse_args(argv)
    if not (DATA / "totalseg" / "example_seg.nii.gz").exists():
        print(f"the small examples are not in {DATA}; see ../shared/data/README.md", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n, (name, cmd) in enumerate(commands(tmp).items()):
            env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp / f"numba{n}"), GPUSEG_BACKEND="cpu")
            env.pop("NUMBA_DISABLE_JIT", None)
            cold, cold_compiled = run_once(cmd, env)
            warm, warm_compiled = min(run_once(cmd, env) for _ in range(args.repeat))
            rows.append({"command": name, "cold_s": cold, "cold_compiled": cold_compiled, "warm_s": warm,
                         "warm_compiled": warm_compiled})
            print(f"{name:<55} cold {cold:6.2f} s ({cold_compiled:3d} compiled)   "
                  f"warm {warm:5.2f} s ({warm_compiled} compiled)", flush=True)
        imp = import_seconds(env, args.repeat)
        bare = min(_python_seconds(env) for _ in range(args.repeat))
    print(f"{'import gpuseg.cli (process wall, warm)':<55} {imp:5.2f} s; bare python -c pass {bare:.2f} s")
    out = {"machine": machine(), "load": os.getloadavg()[0], "backend": "cpu", "rows": rows,
           "import_s": imp, "python_s": bare}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "startup.json"
    tmp_path = path.with_suffix(".json.tmp")
    tmp_path.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp_path, path)
    print(f"wrote {path}")
    return 0


def _python_seconds(env) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())
