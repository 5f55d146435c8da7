"""Shared fixtures: run every op on every available backend.

``backend`` is parametrised over cpu, opencl and cuda. An unavailable backend is skipped
with its reason, except OpenCL when ``GPUSEG_REQUIRE_OPENCL=1`` (set by CI): then a missing
OpenCL platform fails the run instead of hiding a broken backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from gpuseg.backends import get_backend
from gpuseg.errors import BackendUnavailableError

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def _backend_or_skip(name: str):
    try:
        return get_backend(name)
    except BackendUnavailableError as exc:
        if name == "opencl" and os.environ.get("GPUSEG_REQUIRE_OPENCL") == "1":
            pytest.fail(f"OpenCL is required here (GPUSEG_REQUIRE_OPENCL=1) but unusable: {exc}")
        pytest.skip(f"{name} backend unavailable: {exc}")


@pytest.fixture(params=["cpu", pytest.param("opencl", marks=pytest.mark.opencl),
                        pytest.param("cuda", marks=pytest.mark.cuda)])
def backend(request):
    """Each backend in turn (skipped with a reason where unusable)."""
    return _backend_or_skip(request.param)


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
