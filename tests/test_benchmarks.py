"""The benchmark scripts run end to end on a tiny phantom (their code is part of the project).

Timings here mean nothing; the scripts' own equality checks against the peers do run."""

import json

import pytest


@pytest.fixture
def bench_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUSEG_BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("GPUSEG_BENCH_CACHE", str(tmp_path / "cache"))
    import importlib

    import benchmarks.harness
    import benchmarks.standard_volume

    importlib.reload(benchmarks.harness)
    importlib.reload(benchmarks.standard_volume)
    yield tmp_path / "results"
    monkeypatch.undo()
    importlib.reload(benchmarks.harness)
    importlib.reload(benchmarks.standard_volume)


@pytest.mark.slow
@pytest.mark.parametrize("module,args", [
    ("bench_threshold", []), ("bench_stats", ["--classes", "12"]), ("bench_margin", []),
    ("bench_islands", []), ("bench_formats", ["--levels", "1"]), ("bench_grow", ["--opencl"]),
    ("bench_grow", ["--slicer-region"]),
    ("bench_interpolate", ["--repeat", "1", "--itk-repeat", "1"]), ("bench_surface", []), ("bench_measure", []),
])
def test_benchmark_runs_on_a_tiny_phantom(bench_env, module, args, capsys):
    import importlib

    mod = importlib.reload(importlib.import_module(f"benchmarks.{module}"))
    assert mod.main(["--size", "12x40x45", "--phantom", *args]) == 0
    out = capsys.readouterr().out
    assert "| case | implementation |" in out
    files = list(bench_env.glob("*.json"))
    assert files and json.loads(files[0].read_text())["results"]


DEVICE_CHECK = __import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks" / "device_check.sh"


def _device_check(*args, env=None):
    import os
    import shutil
    import subprocess

    return subprocess.run([shutil.which("bash"), str(DEVICE_CHECK), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_device_check_is_valid_bash_and_lists_its_steps_within_budget():
    import re
    import subprocess

    assert subprocess.run(["bash", "-n", str(DEVICE_CHECK)]).returncode == 0
    r = _device_check("--dry-run", "--size", "50x60x70")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for step in ("cuda tests", "grow", "threshold", "margin", "islands", "surface"):
        assert any(line.split()[0:len(step.split())] == step.split() for line in lines[1:]), step
    for bench in ("bench_grow", "bench_threshold", "bench_margin", "bench_islands", "bench_surface"):
        line = next(x for x in lines if bench in x)
        assert "--backends cpu,cuda" in line
        if bench != "bench_grow":
            assert "--size 50x60x70" in line
    assert "-m 'cuda or parity'" in r.stdout
    limits = [int(re.search(r"\s(\d+)s\s", x).group(1)) for x in lines[1:] if "total time limit" not in x]
    total = int(re.search(r"total time limit (\d+)s", r.stdout).group(1))
    assert sum(limits) == total <= 480


def test_device_check_fails_clearly_without_a_gpu(tmp_path):
    import os
    import shutil

    # no nvidia-smi on PATH: exit 2 at once, saying so
    bare = tmp_path / "bare"
    bare.mkdir()
    for tool in ("dirname", "mktemp", "date", "head", "tail", "sed", "timeout", "tr", "mkdir"):
        if shutil.which(tool):
            os.symlink(shutil.which(tool), bare / tool)
    r = _device_check(env={"PATH": str(bare)})
    assert r.returncode == 2 and "no usable GPU: nvidia-smi is not on PATH" in r.stderr
    # a driver that answers, but no CuPy (this machine): exit 2 naming CuPy, no step runs
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: fake'\n")
    (fake / "nvidia-smi").chmod(0o755)
    import sys

    r = _device_check(env={"PATH": f"{fake}:{os.environ['PATH']}", "PYTHON": sys.executable})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no usable GPU" in r.stderr and ("CuPy" in r.stderr or "cuda backend" in r.stderr)
    assert "===" not in r.stdout
