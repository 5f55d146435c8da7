"""Start-up: a CLI call pays numba's compilation once, not on every run, also when the package
is installed where its user cannot write (docs/performance.md, start-up).

Each run is a fresh process that counts numba's ``numba:compile`` events (fired only when a
function is compiled, not when it is loaded from the cache) and ends as the console script
does (:func:`gpuseg.cli.exit_quickly`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import gpuseg

ROOT = Path(__file__).resolve().parent.parent

RUNNER = """
import json, sys
from numba.core import event
n = [0]
class _Count(event.Listener):
    def on_start(self, ev): n[0] += 1
    def on_end(self, ev): pass
event.register("numba:compile", _Count())
from gpuseg.cli import exit_quickly, main
rc = main(sys.argv[1:])
print(json.dumps({"compiled": n[0], "rc": rc}), file=sys.stderr)
exit_quickly(rc)
"""


def _small_segmentation(path: Path) -> Path:
    g = gpuseg.ImageGeometry((9, 11, 37), spacing=(2.0, 0.7, 0.7))
    labels = np.zeros(g.shape, np.uint8)
    labels[2:6, 3:9, 5:30] = 1
    labels[4:8, 1:4, 20:36] = 2
    seg = gpuseg.segmentation_from_labelmap(labels, g, backend="cpu")
    gpuseg.write_segmentation(seg, path)
    return path


def _run(args: list[str], env: dict[str, str], **kw) -> tuple[dict, str]:
    p = subprocess.run([sys.executable, "-c", RUNNER, *args], env=env, capture_output=True, text=True,
                       cwd=ROOT, timeout=900, **kw)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 0 and lines, p.stderr[-3000:]
    return json.loads(lines[-1]), p.stdout


def _env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(GPUSEG_BACKEND="cpu", PYTHONPATH=str(ROOT), **extra)
    return env


def test_a_second_run_compiles_nothing(tmp_path):
    seg = _small_segmentation(tmp_path / "s.seg.nrrd")
    env = _env(NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    first, out1 = _run(["info", "--json", str(seg)], env)
    second, out2 = _run(["info", "--json", str(seg)], env)
    assert first["compiled"] > 0  # a fresh cache: the kernels info needs were compiled ...
    assert list((tmp_path / "numba").rglob("*.nbi"))  # ... and written to it
    assert second["compiled"] == 0  # and the next process loaded every one of them
    assert json.loads(out1) == json.loads(out2)  # the quick exit flushed the whole output
    assert [s["voxels"] for s in json.loads(out2)["segments"]] == [580, 192]  # 600 and 192, 20 overwritten


NOBODY = 65534


@pytest.fixture
def shared_tmp():
    """A folder another user can reach (pytest's own tmp_path is root's, mode 700)."""
    d = Path(tempfile.mkdtemp(prefix="gpuseg-startup-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _as_nobody(shared_tmp: Path, home: Path | None):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root, to run a process as a user who cannot write the install")
    seg = _small_segmentation(shared_tmp / "s.seg.nrrd")
    os.chmod(seg, 0o644)
    env = _env(HOME=str(home) if home else "/nonexistent")
    probe = subprocess.run([sys.executable, "-c", "import os, gpuseg.jitcache as j; "
                            "print(j._writable(j.PACKAGE / '__pycache__'))"],
                           env=env, capture_output=True, text=True, user=NOBODY, group=NOBODY, cwd="/")
    if probe.returncode != 0:
        pytest.skip(f"the install is not readable by uid {NOBODY}: {probe.stderr.strip()[-300:]}")
    assert probe.stdout.strip() == "False"  # the premise: this user cannot write the package folder
    return seg, env


def test_read_only_install_caches_in_the_user_cache_directory(shared_tmp):
    """The install is root's; a user with a home gets ``~/.cache/gpuseg/numba``, written on
    the first run and used on the next."""
    home = shared_tmp / "home"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    seg, env = _as_nobody(shared_tmp, home)
    first, _ = _run(["info", str(seg)], env, user=NOBODY, group=NOBODY)
    written = list((home / ".cache" / "gpuseg" / "numba").rglob("*.nbi"))
    second, out = _run(["info", str(seg)], env, user=NOBODY, group=NOBODY)
    assert first["compiled"] > 0 and written
    assert second["compiled"] == 0
    assert "2 in 1 layer(s)" in out


def test_read_only_install_without_a_home_still_runs_and_caches(shared_tmp):
    """No writable home either (``HOME=/nonexistent``, as for ``nobody``): numba alone would
    refuse to define the kernels (RuntimeError at import); gpuseg caches in the temp folder."""
    seg, env = _as_nobody(shared_tmp, None)
    tmpdir = shared_tmp / "tmp"
    tmpdir.mkdir()
    os.chmod(tmpdir, 0o1777)
    env["TMPDIR"] = str(tmpdir)
    first, _ = _run(["info", str(seg)], env, user=NOBODY, group=NOBODY)
    second, out = _run(["info", str(seg)], env, user=NOBODY, group=NOBODY)
    assert list((tmpdir / f"gpuseg-numba-{NOBODY}").rglob("*.nbi"))
    assert first["compiled"] > 0 and second["compiled"] == 0
    assert "2 in 1 layer(s)" in out


def test_console_entry_exits_with_the_command_status(tmp_path):
    """``python -m gpuseg`` (the console script's code path) keeps main's exit status and
    its error message on a bad input."""
    p = subprocess.run([sys.executable, "-m", "gpuseg", "info", str(tmp_path / "missing.seg.nrrd")],
                       env=_env(), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 2
    assert "missing.seg.nrrd" in p.stderr and "Traceback" not in p.stderr


def test_numba_blas_probe_does_not_import_scipy_linalg():
    """gpuseg.jitcache.defer_blas_probe: running a (cached or new) kernel no longer imports
    scipy.linalg through numba's BLAS probe, and a jitted np.dot still works."""
    code = """
import sys
import numpy as np
import gpuseg
from gpuseg import Mask, ImageGeometry
g = ImageGeometry((3, 4, 40))
m = Mask.from_numpy(np.ones(g.shape, bool), g, backend="cpu")
assert m.count() == 480
probe_free = "scipy.linalg" not in sys.modules
import numba
@numba.njit
def dot(a, b):
    return np.dot(a, b)
print(probe_free, float(dot(np.ones((2, 3)), np.ones((3, 2))).sum()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "12.0"], out.stdout
