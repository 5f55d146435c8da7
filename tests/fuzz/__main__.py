"""``python -m tests.fuzz --target all --cases 10000``: run the fuzz suite and print the table.

Exit status 1 if any case ends other than ok or typed (details of each on stderr with -v).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .runner import GOOD, run, table
from .targets import TARGETS


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    p.add_argument("--target", default="all", help=f"all, or a comma list of: {', '.join(TARGETS)}")
    p.add_argument("--cases", type=int, default=300, help="cases per target")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per case before it counts as a hang")
    p.add_argument("--memory", default="6GB", help="address-space limit of the worker")
    p.add_argument("--jobs", type=int, default=2, help="workers in parallel")
    p.add_argument("--keep", type=Path, help="copy the inputs of failing cases into this folder")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    names = TARGETS if a.target == "all" else [t.strip() for t in a.target.split(",")]
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        p.error(f"unknown target(s) {unknown}; choose from {TARGETS}")
    from gpuseg.backends.base import parse_bytes

    t0 = time.monotonic()
    results = run(names, a.cases, a.seed, timeout=a.timeout, memory=parse_bytes(a.memory), jobs=a.jobs,
                  verbose=a.verbose, keep=a.keep)
    print(table(results))
    print(f"\n{sum(sum(r['counts'].values()) for r in results.values())} cases in {time.monotonic() - t0:.0f} s")
    bad = [f for r in results.values() for f in r["failures"]]
    for f in bad[:50]:
        print(f"{f['target']} case {f['case']} (seed {f['seed']}): {f['outcome']} {f.get('error', '')} "
              f"{f.get('where', '')} {f.get('message', '')[:200]!r}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
