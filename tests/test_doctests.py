"""The examples in public docstrings run and are right."""

import doctest
import importlib

import pytest

MODULES = ["gpuseg", "gpuseg.ops.threshold", "gpuseg.ops.morphology", "gpuseg.surface.mesh", "gpuseg.segmentation",
           "gpuseg.mask", "gpuseg.ops.surface_distance"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0, f"{name} has no examples"
    assert res.failed == 0
