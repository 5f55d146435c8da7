"""Print the measured results in benchmarks/results/*.json as markdown tables (for the README).

    python -m benchmarks.report [name ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.harness import RESULTS, Result, table


def render(name: str) -> str:
    data = json.loads((RESULTS / f"{name}.json").read_text())
    results = [Result(**r) for r in data["results"]]
    meta = data.get("meta", {})
    head = f"*{meta.get('source', '')}, {meta.get('volume', '')}; {data['machine']}*"
    return head + "\n\n" + table(results, data["baseline"])


def main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or sorted(p.stem for p in RESULTS.glob("*.json"))
    for n in names:
        print(f"### {n}\n\n{render(n)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
