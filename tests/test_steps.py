"""The one edit-step schema (gpuseg/steps.py): every bad step is a typed error naming its step,
effect and key; bounds on a step's work; RAS points; strokes outside the volume; the JSON
Schema agrees with the validator; ``gpuseg edit --schema`` and ``--help``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpuseg
from gpuseg.cli import main
from gpuseg.errors import GpusegError, InvalidInputError, OutOfBoundsError
from gpuseg.steps import (MAX_POINTS, STEPS, StrokeOutsideWarning, json_schema, run_step, run_steps,
                          validate_steps)

REPO = Path(__file__).resolve().parents[1]


def _editor(shape=(6, 20, 30), spacing=(1.0, 1.5, 2.0)):
    g = gpuseg.ImageGeometry(shape, spacing=spacing, origin=(-5.0, 4.0, 2.0))
    a = np.random.default_rng(0).integers(0, 400, shape).astype(np.int16)
    img = gpuseg.Image.from_numpy(a, g, backend="cpu")
    seg = gpuseg.Segmentation(g, backend=img.backend)
    seg.add_segment(name="a")
    return gpuseg.Editor(seg, img)


@pytest.mark.parametrize("step, words", [
    ({"effect": "paint", "segment": "a", "points": [[1, 2, 3]], "diameter_mm": "big"}, ["diameter_mm", "number"]),
    ({"effect": "paint", "points": [[1, 2, 3]]}, ["missing required key 'segment'"]),
    ({"effect": "paint", "segment": ["a"], "points": [[1, 2, 3]]}, ["segment", "name"]),
    ({"effect": "paint", "segment": "a", "points": [[1, 2, 3]], "axis": 1.0}, ["axis", "integer"]),
    ({"effect": "paint", "segment": "a", "points": [[1, 2, 3]], "diameter_mm": 10**400}, ["diameter_mm"]),
    ({"effect": "paint", "segment": "a", "points": [[1, 2, 3]], "diameter_mm": 0}, ["diameter_mm", "> 0"]),
    ({"effect": "paint", "segment": "a", "points": [[1, 2]]}, ["points", "point 0"]),
    ({"effect": "paint", "segment": "a", "points": [[1, 2, float("nan")]]}, ["finite"]),
    ({"effect": "paint", "segment": "a", "points": [[0, 0, 0]] * (MAX_POINTS + 1)}, ["at most"]),
    ({"effect": "paint", "segment": "a", "points": [[1, 2, 3]], "space": "lps"}, ["space", "world, ras, ijk"]),
    ({"effect": "threshold", "segment": "a", "min": 1}, ["either"]),
    ({"effect": "threshold", "segment": "a", "min": 5, "max": 1}, ["min 5 > max 1"]),
    ({"effect": "margin", "segment": "a", "margin_mm": 1e9}, ["margin_mm", "<="]),
    ({"effect": "islands", "segment": "a", "operation": "keep_selected"}, ["needs \"point\""]),
    ({"effect": "islands", "segment": "a", "connectivity": 8}, ["connectivity", "6, 26"]),
    ({"effect": "logical", "segment": "a", "operation": "union"}, ["modifier"]),
    ({"effect": "masking", "editable_area": "inside"}, ["mask_segment"]),
    ({"effect": "visibility", "segment": "a", "visible": "no"}, ["visible", "true or false"]),
    ({"effect": "add_segment", "color": [1, 2, 3]}, ["colour"]),
    ({"effect": "fly"}, ["\"effect\" must be one of"]),
    ({"effect": "undo", "x": 1}, ["unknown keys ['x']"]),
    ([1, 2], ["a step is a JSON object"]),
])
def test_bad_steps_name_step_and_key(step, words):
    with pytest.raises(InvalidInputError) as e:
        validate_steps([{"effect": "undo"}, step])
    msg = str(e.value)
    assert msg.startswith("step 2"), msg
    for w in words:
        assert w in msg, (w, msg)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                     max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(effect=st.sampled_from(sorted(STEPS)), extra=st.dictionaries(
    st.sampled_from(["segment", "points", "point", "diameter_mm", "axis", "space", "shape", "min", "max", "auto",
                     "margin_mm", "operation", "modifier", "name", "color", "visible", "min_size", "segments",
                     "kernel_mm", "thickness_mm", "depth_mm", "extrusion", "seed_locality", "connectivity"]),
    _json, max_size=5))
def test_random_steps_run_or_fail_typed(effect, extra):
    """Any JSON step is validated and run with a typed error or a result, never another
    exception (the class behind issue 18's untyped edit-script cases)."""
    ed = _editor()
    step = {"effect": effect, **extra}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run_step(ed, step, 4)
        except GpusegError as exc:
            assert str(exc).startswith("step 4"), str(exc)


def test_schema_matches_the_validator():
    jsonschema_rs = pytest.importorskip("jsonschema_rs")  # schemathesis brings it
    schema = json_schema()
    v = jsonschema_rs.Draft202012Validator(schema)
    good = [{"effect": "add_segment", "name": "t"}, {"effect": "paint", "segment": "t", "points": [[1, 2, 3]],
            "space": "ras"}, {"effect": "threshold", "segment": "t", "auto": "otsu"}, {"effect": "undo"}]
    assert v.is_valid(good) and validate_steps(good) is good
    for bad in ([{"effect": "paint", "segment": "t", "points": [[1, 2]]}], [{"effect": "undo", "x": 1}],
                [{"effect": "margin", "segment": "t", "margin_mm": "big"}]):
        assert not v.is_valid(bad)
        with pytest.raises(InvalidInputError):
            validate_steps(bad)


def test_stamp_bound():
    ed = _editor()
    with pytest.raises(InvalidInputError, match="step 1 .paint.: .*brush stamps"):
        run_steps(ed, [{"effect": "paint", "segment": "a", "points": [[0, 0, 0], [1e6, 0, 0]], "diameter_mm": 0.01}])


def test_ras_points_are_lps_mirrored():
    ed1, ed2 = _editor(), _editor()
    g = ed1.segmentation.geometry
    lps = g.ijk_to_world_points(np.array([[10.0, 8.0, 3.0], [20.0, 12.0, 2.0]]))
    ras = lps * [-1, -1, 1]
    assert run_step(ed1, {"effect": "paint", "segment": "a", "points": lps.tolist(), "diameter_mm": 5}) > 0
    run_step(ed2, {"effect": "paint", "segment": "a", "points": ras.tolist(), "diameter_mm": 5, "space": "ras"})
    assert ed1.segmentation["a"].mask.equals(ed2.segmentation["a"].mask)
    # world (LPS) read as RAS lands elsewhere: the flag matters
    ed3 = _editor()
    with pytest.warns(StrokeOutsideWarning):  # here mirrored off the grid entirely
        run_step(ed3, {"effect": "paint", "segment": "a", "points": lps.tolist(), "diameter_mm": 5, "space": "ras"})
    assert not ed3.segmentation["a"].mask.equals(ed1.segmentation["a"].mask)


def test_stroke_outside_warns_or_fails_strict():
    ed = _editor()
    far = {"effect": "paint", "segment": "a", "points": [[500, 500, 500]], "diameter_mm": 5, "space": "ijk"}
    with pytest.warns(StrokeOutsideWarning, match="step 1 .paint.: the stroke lies wholly outside"):
        run_steps(ed, [far])
    with pytest.raises(OutOfBoundsError, match="step 1"):
        run_steps(ed, [far], strict=True)
    # a stroke whose ball only reaches in from outside is not "outside" and paints
    near = dict(far, points=[[-1.5, 5, 2]], diameter_mm=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StrokeOutsideWarning)
        assert run_steps(ed, [near])[0] > 0


def test_edit_cli_schema_help_strict(tmp_path, capsys):
    assert main_exit(["edit", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {v["title"] for v in schema["items"]["oneOf"]} == set(STEPS)
    assert main_exit(["edit", "--help"]) == 0
    helptext = capsys.readouterr().out
    for eff in STEPS:
        assert eff in helptext
    assert "diameter_mm" in helptext and '"ras"' in helptext
    g = gpuseg.ImageGeometry((4, 10, 12))
    img = tmp_path / "img.nrrd"
    gpuseg.write_labelmap(img, np.zeros(g.shape, np.int16), g)
    script = tmp_path / "s.json"
    script.write_text(json.dumps([{"effect": "add_segment", "name": "a"},
                                  {"effect": "paint", "segment": "a", "points": [[900, 900, 900]]}]))
    out = tmp_path / "o.seg.nrrd"
    base = [sys.executable, "-m", "gpuseg", "edit", "-", "--image", str(img), "--script", str(script), "-o", str(out)]
    r = subprocess.run(base, capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin"})
    assert r.returncode == 0 and "warning: step 2 (paint): the stroke lies wholly outside" in r.stderr
    out.unlink()
    r = subprocess.run(base + ["--strict"], capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin"})
    assert r.returncode == 2 and "step 2 (paint)" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    script.write_bytes(b'[{"effect": "add_segment", "name": "\xff"}]')
    r = subprocess.run(base, capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin"})
    assert r.returncode == 2 and "UTF-8" in r.stderr and "Traceback" not in r.stderr


def main_exit(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code or 0)


#: the example edit script proposed for the README (it must run as written on the demo phantom)
README_EXAMPLE = [
    {"effect": "add_segment", "name": "tumor", "color": [0.9, 0.2, 0.2]},
    {"effect": "masking", "editable_area": "inside", "mask_segment": "liver"},
    {"effect": "paint", "segment": "tumor", "points": [[65, 15, 240], [78, 15, 248]], "diameter_mm": 15,
     "space": "ras"},
    {"effect": "masking", "editable_area": "everywhere"},
    {"effect": "threshold", "segment": "vertebrae", "min": 250, "max": 3000},
    {"effect": "margin", "segment": "tumor", "margin_mm": 2},
    {"effect": "undo"},
]


def _readme_scripts() -> list[list[dict]]:
    """JSON edit scripts in the README: fenced ```json blocks that are lists of steps."""
    text = (REPO / "README.md").read_text()
    out = []
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        try:
            steps = json.loads(block)
        except ValueError:
            continue
        if isinstance(steps, list) and steps and isinstance(steps[0], dict) and "effect" in steps[0]:
            out.append(steps)
    return out


@pytest.mark.parametrize("source", ["proposed", "readme"])
def test_readme_example_runs(tmp_path, source):
    """The README's example script runs as written, through the CLI, on the phantom."""
    from gpuseg.phantom import make_phantom

    if source == "readme":
        scripts = _readme_scripts()
        if not scripts:
            pytest.skip("README.md has no ```json edit script yet (the proposed text adds one)")
    else:
        scripts = [README_EXAMPLE]
    ph = make_phantom((40, 64, 64), noise=0.0)
    img = tmp_path / "ct.nii.gz"
    gpuseg.write_labelmap(img, ph.image, ph.geometry)
    segmentation = gpuseg.Segmentation(ph.geometry, backend="cpu")
    for value, name in ph.label_names.items():
        segmentation.add_segment(gpuseg.Mask.from_numpy(ph.labels == value, ph.geometry, backend="cpu"), name=name)
    seg = tmp_path / "phantom.seg.nrrd"
    gpuseg.write_segmentation(segmentation, seg)
    for n, steps in enumerate(scripts):
        script = tmp_path / f"edits{n}.json"
        script.write_text(json.dumps(steps))
        out = tmp_path / f"out{n}.seg.nrrd"
        with warnings.catch_warnings():
            warnings.simplefilter("error", StrokeOutsideWarning)
            assert main(["edit", str(seg), "--image", str(img), "--script", str(script), "-o", str(out),
                         "--strict", "--backend", "cpu"]) == 0
        res = gpuseg.read_segmentation(out, backend="cpu")
        if source == "proposed":
            tumor = res["tumor"].mask
            liver = segmentation["liver"].mask  # before: painting took the tumor out of the liver
            assert tumor.count() > 0 and (tumor - liver).count() == 0 and (tumor & res["liver"].mask).count() == 0
