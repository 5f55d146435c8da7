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
])
def test_benchmark_runs_on_a_tiny_phantom(bench_env, module, args, capsys):
    import importlib

    mod = importlib.reload(importlib.import_module(f"benchmarks.{module}"))
    assert mod.main(["--size", "12x40x45", "--phantom", *args]) == 0
    out = capsys.readouterr().out
    assert "| case | implementation |" in out
    files = list(bench_env.glob("*.json"))
    assert files and json.loads(files[0].read_text())["results"]
