"""gpuseg batch against a real Dask LocalCluster with 2 worker processes (one per module).

Small generated cases (odd shapes, anisotropic spacing, two labels), a corrupt file, and the real
TotalSegmentator example when ../shared is present. Every task's per-case outputs are compared
with what the same case gives alone through the CLI (``gpuseg.cli.main``), byte for byte.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import gpuseg
from gpuseg.batch import Case, cluster_kind, read_manifest, resolve_options, run
from gpuseg.batch.cluster import local_workers, start_local_cluster
from gpuseg.cli import main as cli
from gpuseg.errors import FileFormatError, InvalidInputError

distributed = pytest.importorskip("distributed")

# ../shared/data beside the checkout (as tests/conftest.py), or $GPUSEG_SHARED_DATA
TOTALSEG = Path(os.environ.get("GPUSEG_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
                ) / "totalseg"
BACKEND = "cpu"


@pytest.fixture(scope="module")
def client():
    cluster, threads = start_local_cluster(2)
    c = distributed.Client(cluster)
    c.wait_for_workers(2, timeout=120)
    yield c
    c.close()
    cluster.close()


def _blob_case(folder: Path, n: int, shape, spacing) -> tuple[Path, Path]:
    rng = np.random.default_rng(n)
    g = gpuseg.ImageGeometry(shape, spacing=spacing, origin=(3.0 * n, -5.0, 7.5))
    k, j, i = np.indices(shape)
    c = np.array(shape) / 2 + n
    ball = ((k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2) < (min(shape) / 3) ** 2
    img = (rng.normal(0, 25, shape) + 300 * ball).astype(np.int16)
    lab = np.zeros(shape, np.uint8)
    lab[img > 150] = 1
    lab[1:4, 2:7, 3:shape[2] - 2] = 2
    ct, sg = folder / f"g{n}_ct.nii.gz", folder / f"g{n}_seg.nii.gz"
    gpuseg.write_labelmap(ct, img, g)
    gpuseg.write_labelmap(sg, lab, g)
    return ct, sg


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    d = tmp_path_factory.mktemp("cases")
    rows = []
    for n, (shape, sp) in enumerate([((13, 30, 33), (0.8, 0.9, 1.5)), ((17, 21, 64), (1.0, 1.0, 2.5)),
                                     ((9, 40, 31), (0.7, 1.3, 1.1))]):
        ct, sg = _blob_case(d, n, shape, sp)
        rows.append({"id": f"g{n}", "image": ct.name, "segmentation": sg.name})
    (d / "corrupt_seg.nii.gz").write_bytes(b"\x1f\x8b\x08\x00 this is not a gzip stream")
    rows.append({"id": "corrupt", "image": "g0_ct.nii.gz", "segmentation": "corrupt_seg.nii.gz"})
    real = (TOTALSEG / "example_seg.nii.gz").exists()
    if real:
        rows.append({"id": "ts", "image": str(TOTALSEG / "example_ct_sm.nii.gz"),
                     "segmentation": str(TOTALSEG / "example_seg.nii.gz")})
    with open(d / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "image", "segmentation"])
        w.writeheader()
        w.writerows(rows)
    return d, [r["id"] for r in rows if r["id"] != "corrupt"], real


def _batch(manifest, task, out, client, *extra):
    addr = client.scheduler.address
    return cli(["batch", str(manifest), task, "-o", str(out), "--scheduler", addr, "--backend", BACKEND,
                "--no-progress", *extra])


def _same_file(a: Path, b: Path) -> bool:
    """Byte-identical files, except generated segment ids (random, as Slicer's) in a .seg.nrrd header."""
    import re

    da, db = a.read_bytes(), b.read_bytes()
    if a.name.endswith(".seg.nrrd"):
        da, db = (re.sub(rb"(Segment\d+_ID:=)[0-9.]+", rb"\1", x) for x in (da, db))
    return da == db


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _case_input(d: Path, cid: str, col: str) -> str:
    for r in _read_csv(d / "manifest.csv"):
        if r["id"] == cid:
            p = Path(r[col])
            return str(p if p.is_absolute() else d / p)
    raise KeyError(cid)


# ----------------------------------------------------------------------------- the batch itself

def test_stats_batch_records_the_corrupt_case_and_equals_the_cli(cases, client, tmp_path, capsys):
    d, good, real = cases
    out = tmp_path / "stats"
    rc = _batch(d / "manifest.csv", "stats", out, client)
    assert rc == 1  # one case failed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"done": len(good), "failed": 1, "skipped": 0}
    bad = next(c for c in summary["cases"] if c["case"] == "corrupt")
    assert bad["status"] == "failed" and bad["error_type"] == "FileFormatError" and "corrupt_seg" in bad["error"]
    assert "1 failed" in capsys.readouterr().out
    table = _read_csv(out / "results.csv")
    assert [r for r in table if r["case"] == "corrupt"][0]["error_type"] == "FileFormatError"
    pids = set()
    for cid in good:
        alone = tmp_path / f"{cid}.csv"
        assert cli(["stats", _case_input(d, cid, "segmentation"), "--image", _case_input(d, cid, "image"),
                    "--csv", str(alone), "--backend", BACKEND]) == 0
        assert (out / "cases" / cid / "stats.csv").read_bytes() == alone.read_bytes()
        mine = [{k: v for k, v in r.items() if k in _read_csv(alone)[0]} for r in table if r["case"] == cid]
        assert mine == _read_csv(alone)
        assert all(r["status"] == "done" and r["attempts"] == "1" for r in table if r["case"] == cid)
        pids.add(json.loads((out / "cases" / cid / "case.json").read_text())["worker_pid"])
    assert len(pids) == 2  # both worker processes took cases
    assert not any(p.name.startswith(".") for p in (out / "cases").iterdir())  # no temporaries left
    if real:
        assert len([r for r in table if r["case"] == "ts"]) == 41  # TotalSegmentator's 41 labels present
    pq = pytest.importorskip("pyarrow.parquet")
    t = pq.read_table(out / "results.parquet").to_pylist()
    assert [r["case"] for r in t] == [r["case"] for r in table]
    assert [r["voxel_count"] for r in t if r["status"] == "done"] == \
        [int(r["voxel_count"]) for r in table if r["status"] == "done"]


def test_resume_skips_finished_cases_and_reruns_changed_ones(cases, client, tmp_path):
    d, good, _ = cases
    src = tmp_path / "in"
    src.mkdir()
    for cid in ("g0", "g1"):
        for col in ("image", "segmentation"):
            p = Path(_case_input(d, cid, col))
            (src / p.name).write_bytes(p.read_bytes())
    (src / "m.json").write_text(json.dumps([{"id": c, "image": f"{c}_ct.nii.gz", "segmentation": f"{c}_seg.nii.gz"}
                                            for c in ("g0", "g1")]))
    out = tmp_path / "out"
    r1 = run(src / "m.json", "stats", client=client, outdir=out, backend=BACKEND, progress=False)
    assert r1.counts == {"done": 2, "failed": 0, "skipped": 0} and r1.exit_code == 0
    first = (out / "cases" / "g0" / "stats.csv").read_bytes()
    r2 = run(src / "m.json", "stats", client=client, outdir=out, backend=BACKEND, progress=False, resume=True)
    assert r2.counts == {"done": 0, "failed": 0, "skipped": 2}
    assert [r["status"] for r in r2.rows] == ["skipped"] * len(r1.rows)
    assert [r["mean"] for r in r2.rows] == [r["mean"] for r in r1.rows]
    # a changed input file reruns that case only; without --resume everything reruns
    import nibabel as nib

    nii = nib.load(src / "g1_seg.nii.gz")
    lab = np.asarray(nii.dataobj).copy()
    lab[lab == 2] = 0
    nib.save(nib.Nifti1Image(lab, nii.affine), src / "g1_seg.nii.gz")
    r3 = run(src / "m.json", "stats", client=client, outdir=out, backend=BACKEND, progress=False, resume=True)
    assert {c["case"]: c["status"] for c in r3.cases} == {"g0": "skipped", "g1": "done"}
    assert {r["segment"] for r in r3.rows if r["case"] == "g1"} == {"Segment_1"}
    assert (out / "cases" / "g0" / "stats.csv").read_bytes() == first
    # a deleted output reruns its case
    (out / "cases" / "g0" / "stats.csv").unlink()
    r5 = run(src / "m.json", "stats", client=client, outdir=out, backend=BACKEND, progress=False, resume=True)
    assert {c["case"]: c["status"] for c in r5.cases} == {"g0": "done", "g1": "skipped"}
    assert (out / "cases" / "g0" / "stats.csv").read_bytes() == first
    # changed options rerun
    r4 = run(src / "m.json", "stats", client=client, outdir=out, backend=BACKEND, progress=False, resume=True,
             options={"segments": ["Segment_1"]})
    assert r4.counts["done"] == 2 and {r["segment"] for r in r4.rows} == {"Segment_1"}


def test_convert_threshold_surface_identical_to_the_cli(cases, client, tmp_path):
    d, good, real = cases
    labels = TOTALSEG / "total_classes.json"
    extra = ["--labels", str(labels)] if real else []
    out = tmp_path / "convert"
    assert _batch(d / "manifest.csv", "convert", out, client, *extra) == 1  # the corrupt case
    for cid in good:
        alone = tmp_path / f"{cid}.seg.nrrd"
        assert cli(["convert", _case_input(d, cid, "segmentation"), str(alone), "--backend", BACKEND, *extra]) == 0
        assert _same_file(out / "cases" / cid / f"{cid}.seg.nrrd", alone)
    if real:
        table = _read_csv(out / "results.csv")
        assert "liver" in {r["segment"] for r in table if r["case"] == "ts"}

    out = tmp_path / "threshold"
    assert _batch(d / "manifest.csv", "threshold", out, client, "--min", "150", "--max", "3000") == 0
    for cid in good:
        alone = tmp_path / f"{cid}_t.seg.nrrd"
        assert cli(["threshold", _case_input(d, cid, "image"), "--min", "150", "--max", "3000", "-o", str(alone),
                    "--backend", BACKEND]) == 0
        assert _same_file(out / "cases" / cid / f"{cid}.seg.nrrd", alone)

    out = tmp_path / "surface"
    assert _batch(d / "manifest.csv", "surface", out, client, "--smoothing", "0.3") == 1
    for cid in good:
        alone = tmp_path / f"{cid}.vtp"
        assert cli(["surface", _case_input(d, cid, "segmentation"), "-o", str(alone), "--smoothing", "0.3",
                    "--no-progress", "--backend", BACKEND]) == 0
        assert (out / "cases" / cid / f"{cid}.vtp").read_bytes() == alone.read_bytes()


def test_edit_grow_compare(cases, client, tmp_path):
    d, good, _ = cases
    script = tmp_path / "edit.json"
    script.write_text(json.dumps([{"effect": "margin", "segment": "Segment_1", "margin_mm": 2},
                                  {"effect": "islands", "segment": "Segment_2", "operation": "keep_largest"}]))
    m = tmp_path / "m.csv"
    ids = [c for c in good if c.startswith("g")]
    m.write_text("id,image,segmentation,script,reference\n" + "".join(
        f"{c},{_case_input(d, c, 'image')},{_case_input(d, c, 'segmentation')},{script},"
        f"{_case_input(d, ids[0], 'segmentation')}\n" for c in ids))
    out = tmp_path / "edit"
    assert _batch(m, "edit", out, client) == 0
    for cid in ids:
        alone = tmp_path / f"{cid}_e.seg.nrrd"
        assert cli(["edit", _case_input(d, cid, "segmentation"), "--image", _case_input(d, cid, "image"),
                    "--script", str(script), "-o", str(alone), "--backend", BACKEND]) == 0
        assert _same_file(out / "cases" / cid / f"{cid}.seg.nrrd", alone)

    out = tmp_path / "grow"
    assert _batch(m, "grow", out, client, "--seed-locality", "0.5") == 0
    for cid in ids:
        alone = tmp_path / f"{cid}_g.seg.nrrd"
        assert cli(["grow", _case_input(d, cid, "image"), _case_input(d, cid, "segmentation"), "-o", str(alone),
                    "--seed-locality", "0.5", "--backend", BACKEND]) == 0
        assert _same_file(out / "cases" / cid / f"{cid}.seg.nrrd", alone)

    # compare every case against g0's segmentation: g0 with itself is Dice 1, others differ in grid -> failed
    out = tmp_path / "compare"
    res = run(m, "compare", client=client, outdir=out, backend=BACKEND, progress=False)
    status = {c["case"]: c for c in res.cases}
    assert status["g0"]["status"] == "done"
    assert [r["dice"] for r in res.rows if r["case"] == "g0"] == [1.0, 1.0]
    for cid in ids[1:]:  # other grids: a typed geometry error, recorded
        assert status[cid]["status"] == "failed" and status[cid]["error_type"] == "GeometryMismatchError"

    # same grid, different masks: Dice and Jaccard against numpy
    a = gpuseg.read_segmentation(_case_input(d, "g0", "segmentation"), backend=BACKEND)
    ref_path = tmp_path / "g0_ref.nii.gz"
    lab = np.zeros(a.geometry.shape, np.uint8)
    lab[2:9, 5:25, 4:30] = 1
    lab[0:3, 0:5, 0:6] = 3
    gpuseg.write_labelmap(ref_path, lab, a.geometry)
    res = run([Case("g0", segmentation=_case_input(d, "g0", "segmentation"), reference=str(ref_path))], "compare",
              client=client, outdir=tmp_path / "compare2", backend=BACKEND, progress=False)
    mine = gpuseg.read_segmentation(_case_input(d, "g0", "segmentation"), backend=BACKEND)
    dense = {s.name: s.mask.to_numpy() for s in mine}
    rows = {r["segment"]: r for r in res.rows}
    assert set(rows) == {"Segment_1", "Segment_2", "Segment_3"}
    x, y = dense["Segment_1"], lab == 1
    assert rows["Segment_1"]["dice"] == 2 * (x & y).sum() / (x.sum() + y.sum())
    assert rows["Segment_1"]["jaccard"] == (x & y).sum() / (x | y).sum()
    assert rows["Segment_1"]["volume_difference_mm3"] == (x.sum() - y.sum()) * a.geometry.voxel_volume
    assert rows["Segment_2"]["voxels_reference"] == 0 and rows["Segment_2"]["dice"] == 0.0
    assert rows["Segment_3"]["in_segmentation"] is False and rows["Segment_3"]["voxels"] == 0
    # surface=True adds the closed-surface distances, equal to the op's
    from gpuseg.ops.compare import compare_segmentations

    res = run([Case("g0", segmentation=_case_input(d, "g0", "segmentation"), reference=str(ref_path))], "compare",
              client=client, outdir=tmp_path / "compare3", backend=BACKEND, progress=False,
              options={"surface": True})
    want = compare_segmentations(mine, gpuseg.read_segmentation(ref_path, backend=BACKEND), surface=True)
    got = {r["segment"]: r for r in res.rows}
    for w in want:
        assert got[w["segment"]]["surface_hausdorff_max_mm"] == w["surface_hausdorff_max_mm"]
    assert got["Segment_1"]["surface_hausdorff_max_mm"] is not None


def test_a_killed_worker_is_retried_and_its_case_completes(client, tmp_path):
    # one case big enough (smoothed surfaces of several labels) to be killed while it runs
    shape = (64, 120, 150)
    g = gpuseg.ImageGeometry(shape, spacing=(0.9, 0.9, 1.2))
    k, j, i = np.indices(shape, dtype=np.int32)
    lab = np.zeros(shape, np.uint8)
    for v in range(1, 7):
        c = (10 + 7 * v, 20 + 13 * v, 25 + 17 * v)
        lab[((k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2) < 15 ** 2] = v
    gpuseg.write_labelmap(tmp_path / "big.nii.gz", lab, g)
    small = tmp_path / "small.nii.gz"
    gpuseg.write_labelmap(small, lab[:8, :20, :40], gpuseg.ImageGeometry((8, 20, 40)))
    cases = [Case("victim", segmentation=str(tmp_path / "big.nii.gz")), Case("other", segmentation=str(small))]
    box = {}
    t = threading.Thread(target=lambda: box.update(res=run(cases, "surface", client=client, outdir=tmp_path / "o",
                                                           options={"smoothing": 0.5}, backend=BACKEND,
                                                           progress=False, retries=1, log=lambda m: None)))
    t.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline and t.is_alive():
        for addr, keys in client.processing().items():
            if any("-victim-1-" in str(key) for key in keys):
                pid = client.run(os.getpid, workers=[addr])[addr]
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
        time.sleep(0.02)
    t.join(180)
    assert killed is not None, "the victim case finished before it could be killed"
    res = box["res"]
    rec = {c["case"]: c for c in res.cases}
    assert rec["victim"]["status"] == "done" and rec["victim"]["attempts"] == 2
    assert rec["victim"]["worker_pid"] != killed
    assert rec["other"]["status"] == "done"
    assert res.summary["retried"] == 1 and res.exit_code == 0
    alone = tmp_path / "alone.vtp"
    assert cli(["surface", str(tmp_path / "big.nii.gz"), "-o", str(alone), "--smoothing", "0.5", "--no-progress",
                "--backend", BACKEND]) == 0
    assert (tmp_path / "o" / "cases" / "victim" / "victim.vtp").read_bytes() == alone.read_bytes()
    assert not [p for p in (tmp_path / "o" / "cases").iterdir() if p.name.startswith(".")]
    client.wait_for_workers(2, timeout=120)  # the nanny restarted the killed worker


def test_workers_have_numba_threads_within_the_cores(client):
    def threads():
        import numba

        from gpuseg.batch.worker import _set_numba_threads, worker_state

        st = worker_state(BACKEND)
        _set_numba_threads(st.numba_threads)
        return numba.get_num_threads(), os.environ.get("NUMBA_NUM_THREADS"), id(st), os.getpid()

    workers = list(client.scheduler_info()["workers"])
    got = client.gather([client.submit(threads, pure=False, workers=[w]) for w in workers])
    again = client.gather([client.submit(threads, pure=False, workers=[w]) for w in workers])
    cores = os.cpu_count()
    assert len(got) == 2 and len({g[3] for g in got}) == 2
    assert sum(g[0] for g in got) <= max(cores, 2)
    assert all(g[1] == str(max(1, cores // 2)) for g in got)
    assert [g[2:] for g in got] == [g[2:] for g in again]  # the state is built once per worker process


# ----------------------------------------------------------------------------- rules and inputs (no cluster)

def test_cluster_rule():
    assert cluster_kind("tcp://10.0.0.1:8786", None, dask_cuda=True, n_gpus=4) == "scheduler"
    assert cluster_kind(None, None, dask_cuda=True, n_gpus=2) == "cuda"
    assert cluster_kind(None, "cuda", dask_cuda=True, n_gpus=1) == "cuda"
    assert cluster_kind(None, "auto", dask_cuda=True, n_gpus=0) == "local"
    assert cluster_kind(None, "auto", dask_cuda=False, n_gpus=8) == "local"
    assert cluster_kind(None, "cpu", dask_cuda=True, n_gpus=8) == "local"
    assert cluster_kind(None, "opencl", dask_cuda=True, n_gpus=8) == "local"
    assert cluster_kind(None, None) == "local"  # this machine: no dask_cuda or no GPU
    cores = os.cpu_count()
    assert local_workers(None) == (cores, 1)
    assert local_workers(1) == (1, cores)
    with pytest.raises(InvalidInputError):
        local_workers(0)


def test_manifests(tmp_path):
    (tmp_path / "a").mkdir()
    for cid in ("p1", "p2"):
        (tmp_path / "a" / cid).mkdir()
        (tmp_path / "a" / cid / "seg.nii.gz").write_bytes(b"")
    cs = read_manifest(str(tmp_path / "a" / "{id}" / "seg.nii.gz"), templates={"image": "/ct/{id}.nii.gz"})
    assert [(c.id, Path(c.segmentation).parent.name, c.image) for c in cs] == \
        [("p1", "p1", "/ct/p1.nii.gz"), ("p2", "p2", "/ct/p2.nii.gz")]
    m = tmp_path / "m.csv"
    m.write_text("id,image,min\nx,ct.nii.gz,5\ny,,\n")
    cs = read_manifest(m)
    assert cs[0].image == str(tmp_path / "ct.nii.gz") and cs[0].options == {"min": "5"} and cs[1].image is None
    assert resolve_options("threshold", {"min": 1, "max": 9}, cs[0].options)["min"] == 5.0
    j = tmp_path / "m.json"
    j.write_text(json.dumps({"cases": [{"id": "a", "segmentation": "/x.nii.gz", "options": {"smoothing": 0}}]}))
    assert read_manifest(j)[0].options == {"smoothing": 0}
    for text, err in (("id,image\na,x\na,y\n", "more than once"), ("id,image\n../up,x\n", "must be letters"),
                      ("image\nx\n", "no \"id\"")):
        m.write_text(text)
        with pytest.raises(FileFormatError, match=err):
            read_manifest(m)
    with pytest.raises(FileFormatError, match="no file matches"):
        read_manifest(str(tmp_path / "none" / "{id}.nii.gz"))
    with pytest.raises(InvalidInputError, match="needs option 'min'"):
        resolve_options("threshold", {"max": 3})
    with pytest.raises(InvalidInputError, match="has no option"):
        resolve_options("stats", {"smoothing": 3})
    with pytest.raises(InvalidInputError, match="writes"):
        resolve_options("surface", {"format": "seg.nrrd"})
    with pytest.raises(InvalidInputError, match="needs segmentation"):
        run([Case("a", image="x.nii.gz")], "stats", outdir=tmp_path / "o", progress=False)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli(["batch", str(tmp_path / "missing.csv"), "stats", "-o", str(tmp_path / "o")]) == 2
    assert "manifest not found" in capsys.readouterr().err
    m = tmp_path / "m.csv"
    m.write_text("id,segmentation\na,x.nii.gz\n")
    assert cli(["batch", str(m), "stats", "-o", str(tmp_path / "o"), "--smoothing", "1"]) == 2
    assert "does not take --smoothing" in capsys.readouterr().err


@pytest.mark.slow
def test_the_benchmark_runs_on_tiny_cases(client, tmp_path, monkeypatch, capsys):
    """benchmarks/bench_batch.py end to end on 2 tiny phantom cases (its equality checks run)."""
    import importlib

    monkeypatch.setenv("GPUSEG_BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("GPUSEG_BENCH_CACHE", str(tmp_path / "cache"))
    import benchmarks.harness
    import benchmarks.standard_volume

    try:
        importlib.reload(benchmarks.harness)
        importlib.reload(benchmarks.standard_volume)
        bench = importlib.reload(importlib.import_module("benchmarks.bench_batch"))
        argv = ["--size", "12x40x45", "--phantom", "--cases", "2", "--passes", "1", "--no-spawn"]
        assert bench.main(argv, client=client) == 0
    finally:
        monkeypatch.undo()
        importlib.reload(benchmarks.harness)
        importlib.reload(benchmarks.standard_volume)
    assert "| case | implementation |" in capsys.readouterr().out
    data = json.loads((tmp_path / "results" / "batch.json").read_text())
    assert [r["impl"].split(",")[0] for r in data["results"]] == \
        ["gpuseg batch", "gpuseg serial loop (cpu)", "gpuseg serial loop (cpu", "numpy statistics + VTK meshing per label"]


def test_package_doc_examples_and_no_dask_at_import():
    import doctest
    import subprocess
    import sys

    import gpuseg.batch

    res = doctest.testmod(gpuseg.batch, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0
    out = subprocess.run([sys.executable, "-c", "import sys, gpuseg.batch; print('distributed' in sys.modules)"],
                         capture_output=True, text=True, check=True, env={**os.environ})
    assert out.stdout.strip() == "False"
