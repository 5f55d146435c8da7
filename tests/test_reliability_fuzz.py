"""The short seeded fuzz run of CI: about 300 cases per target, nothing but ok or typed allowed.

The long run is ``python -m tests.fuzz --target all --cases 10000`` (see tests/fuzz/__main__.py).
"""

import os

import pytest

from tests.fuzz.runner import GOOD, run
from tests.fuzz.targets import TARGETS

CASES = int(os.environ.get("GPUSEG_FUZZ_CASES", "300"))
SEED = int(os.environ.get("GPUSEG_FUZZ_SEED", "20261202"))


@pytest.fixture(scope="module")
def results():
    return run(TARGETS, CASES, SEED, timeout=10.0, memory=6 << 30, jobs=2)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target(results, target):
    r = results[target]
    assert sum(r["counts"].values()) == CASES
    bad = [f for f in r["failures"] if f["outcome"] not in GOOD]
    assert not bad, "\n".join(f"case {f['case']}: {f['outcome']} {f.get('error')} at {f.get('where')}: "
                              f"{f.get('message', '')[:200]}" for f in bad[:20])
