"""The parity harness itself: it must catch a one-bit difference, a dtype change, a wrong
reference, and give every backend the same random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from .parity import assert_identical, available_backends, parity


def test_assert_identical_catches_one_bit_and_dtype():
    a = np.zeros((3, 4), np.uint32)
    b = a.copy()
    b[2, 1] = 1 << 7
    with pytest.raises(AssertionError, match="not bit-identical"):
        assert_identical(b, a)
    with pytest.raises(AssertionError, match="dtype"):
        assert_identical(a.astype(np.int32), a)
    f = np.array([0.0, np.nan])
    assert_identical(f.copy(), f)  # NaN equals NaN bit for bit
    with pytest.raises(AssertionError):
        assert_identical(np.array([-0.0, np.nan]), f)  # -0 differs from 0 in its bits
    assert_identical({"x": [a, 3]}, {"x": [a.copy(), 3]})


def test_a_wrong_reference_fails(rng):
    @parity(reference=lambda: {"v": np.arange(4)})
    def body(backend):
        return {"v": np.arange(4) + (1 if backend.name == "cpu" else 1)}

    with pytest.raises(AssertionError, match="reference"):
        body()


def test_a_backend_difference_fails():
    if len(available_backends()) < 2:
        pytest.skip("one backend only: nothing to compare")

    @parity
    def body(backend):
        return np.array([0 if backend.name == "cpu" else 1], np.uint8)

    with pytest.raises(AssertionError, match="vs cpu"):
        body()


def test_every_backend_sees_the_same_random_inputs(rng):
    seen = []

    @parity
    def body(backend, rng):
        seen.append(rng.random(3))
        return seen[-1]

    body(rng=rng)
    assert len(seen) == len(available_backends())
    for s in seen[1:]:
        np.testing.assert_array_equal(s, seen[0])
