"""Shared fixtures: run every op on every available backend.

``backend`` is parametrised over cpu, opencl and cuda. An unavailable backend is skipped
with its reason, except OpenCL when ``GPUSEG_REQUIRE_OPENCL=1`` (set by CI): then a missing
OpenCL platform fails the run instead of hiding a broken backend. Cross-backend equality is
asserted with the one parity harness, :func:`tests.parity.parity`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from .parity import backend_or_skip

REPO = Path(__file__).resolve().parents[1]
#: ../shared/data beside the checkout, or $GPUSEG_SHARED_DATA (e.g. from a git worktree).
SHARED_DATA = Path(os.environ.get("GPUSEG_SHARED_DATA") or REPO.parent / "shared" / "data")


#: Old name of :func:`tests.parity.backend_or_skip`, kept for test modules that import it.
_backend_or_skip = backend_or_skip


@pytest.fixture(params=["cpu", pytest.param("opencl", marks=pytest.mark.opencl),
                        pytest.param("cuda", marks=pytest.mark.cuda)])
def backend(request):
    """Each backend in turn (skipped with a reason where unusable)."""
    return backend_or_skip(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test with a clear reason."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real test data not present: {p} (it lives in ../shared/data beside the checkout)")
    return p


#: Odd grid shapes (k, j, i) that exercise partial words and single-voxel rows.
ODD_SHAPES = [(1, 1, 1), (2, 3, 31), (3, 2, 33), (4, 5, 100), (1, 7, 64), (5, 1, 32)]
