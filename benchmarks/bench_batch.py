"""Batch throughput: 16 cases of statistics + closed surfaces, gpuseg batch on Dask against serial loops.

The cases are the real CT resampled to 100 x 256 x 256 with TotalSegmentator's labels, and
shifted (rolled) or flipped copies of it, written as ``.nii.gz`` pairs with a label table. Each
case runs the ``stats`` task (Slicer's segment statistics of every class) and the ``surface``
task (every class's closed surface with Slicer's default conversion: smoothing 0.5, normals,
written as ``.vtp``). Compared:

- ``gpuseg batch`` on a ``LocalCluster`` of ``--workers`` processes (1 thread each, numba threads
  = cores // workers), the cluster started once and timed apart;
- the same gpuseg calls in a serial Python loop (one process, numba on all cores), and the same loop
  on one numba thread (what the batch's workers each run: the ratio is the scaling over processes);
- the loop users write today: per case, read the image and the labelmap (SimpleITK), then per
  label TotalSegmentator-style statistics in numpy (``seg == k``: voxel count, volume, mean HU)
  and VTK meshing (``vtkDiscreteFlyingEdges3D`` + ``vtkWindowedSincPolyDataFilter`` with Slicer's
  settings + ``vtkPolyDataNormals``, one ``.vtp`` per label).

Each serial loop runs in its own fresh process, so its peak memory is its own. The shape
statistics of the issue's ``stats --shape`` belong to the measurement issue and are not run.

    python -m benchmarks.bench_batch [--size 100x256x256] [--cases 16] [--workers 2] [--phantom]

``GPUSEG_SHARED_DATA`` points at ``shared/data`` when it is not beside the checkout.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.harness import Result, finish
from benchmarks import standard_volume
from benchmarks.standard_volume import CACHE, load, parse_size

TASKS = (("stats", {}), ("surface", {"format": ".vtp"}))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_cases(vol, n_cases: int, folder: Path) -> tuple[Path, Path]:
    """``n_cases`` (image, labels) pairs: the volume, then rolled and flipped copies; a manifest and
    a label table. Reused when already there."""
    import gpuseg

    manifest, table = folder / "manifest.csv", folder / "labels.json"
    if manifest.exists() and len(manifest.read_text().splitlines()) == n_cases + 1:
        return manifest, table
    folder.mkdir(parents=True, exist_ok=True)
    table.write_text(json.dumps({str(k): v for k, v in vol.label_names.items()}))
    g = vol.geometry
    lines = ["id,image,segmentation"]
    for n in range(n_cases):
        img, lab = vol.image, vol.labels
        shift = (n % 5 - 2, 3 * (n % 7) - 9, 4 * (n % 4) - 6)
        if n:
            img, lab = np.roll(img, shift, axis=(0, 1, 2)), np.roll(lab, shift, axis=(0, 1, 2))
        if n % 2:
            img, lab = img[:, :, ::-1], lab[:, :, ::-1]
        if n % 4 == 3:
            img, lab = img[:, ::-1], lab[:, ::-1]
        cid = f"case{n:02d}"
        gpuseg.write_labelmap(folder / f"{cid}_ct.nii.gz", np.ascontiguousarray(img), g)
        gpuseg.write_labelmap(folder / f"{cid}_seg.nii.gz", np.ascontiguousarray(lab), g)
        lines.append(f"{cid},{cid}_ct.nii.gz,{cid}_seg.nii.gz")
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, table


# ----------------------------------------------------------------------------- serial loops (own process)

def serial_gpuseg(manifest: str, table: str, out: str, backend: str, passes: int, numba_threads: int = 0) -> dict:
    """The gpuseg calls of the two tasks, one case after another, in this process (numba on all
    cores, or on ``numba_threads``)."""
    import numba

    before = numba.get_num_threads()
    if numba_threads:
        numba.set_num_threads(numba_threads)
    try:
        return _serial_gpuseg(manifest, table, out, backend, passes)
    finally:
        numba.set_num_threads(before)


def _serial_gpuseg(manifest: str, table: str, out: str, backend: str, passes: int) -> dict:
    from gpuseg.batch import read_manifest, resolve_options
    from gpuseg.batch.tasks import TASK_FUNCS
    import gpuseg

    b = gpuseg.get_backend(backend)
    cases = read_manifest(manifest)
    times, rows = [], {}
    for p in range(passes):
        t = time.perf_counter()
        for c in cases:
            for task, opts in TASKS:
                o = resolve_options(task, {"labels": table, **opts}, c.options)
                d = Path(out) / f"p{p}" / task / c.id
                d.mkdir(parents=True)
                r, _ = TASK_FUNCS[task](c, o, d, b)
                rows[(task, c.id)] = r
        times.append(time.perf_counter() - t)
    return {"times": times, "rows": {f"{k[0]}/{k[1]}": v for k, v in rows.items()}, "peak_mib": _peak_mib()}


def _vtk_mesh(mask: np.ndarray, spacing, smoothing: float = 0.5):
    import vtk
    from vtk.util import numpy_support as ns

    img = vtk.vtkImageData()
    m = np.pad(mask.astype(np.uint8), 1)
    img.SetDimensions(m.shape[2], m.shape[1], m.shape[0])
    img.SetSpacing(*spacing)
    img.GetPointData().SetScalars(ns.numpy_to_vtk(m.ravel(), deep=1))
    fe = vtk.vtkDiscreteFlyingEdges3D()
    fe.SetInputData(img)
    fe.SetValue(0, 1)
    fe.ComputeNormalsOff()
    fe.ComputeGradientsOff()
    fe.ComputeScalarsOff()
    sm = vtk.vtkWindowedSincPolyDataFilter()  # Slicer's closed-surface smoothing settings
    sm.SetInputConnection(fe.GetOutputPort())
    sm.SetNumberOfIterations(int(20 + 40 * smoothing))
    sm.SetPassBand(10 ** (-4 * smoothing))
    sm.BoundarySmoothingOff()
    sm.FeatureEdgeSmoothingOff()
    sm.NonManifoldSmoothingOn()
    sm.NormalizeCoordinatesOn()
    nm = vtk.vtkPolyDataNormals()
    nm.SetInputConnection(sm.GetOutputPort())
    nm.ConsistencyOn()
    nm.SplittingOff()
    nm.Update()
    return nm.GetOutput()


def serial_numpy_vtk(manifest: str, out: str, passes: int) -> dict:
    """What users write today: TotalSegmentator-style statistics per label in numpy, VTK meshing per label."""
    import csv

    import SimpleITK as sitk
    import vtk

    from gpuseg.batch import read_manifest

    cases = read_manifest(manifest)
    times, stats = [], {}
    for p in range(passes):
        t = time.perf_counter()
        for c in cases:
            ct_img = sitk.ReadImage(c.image)
            ct = sitk.GetArrayFromImage(ct_img)
            seg = sitk.GetArrayFromImage(sitk.ReadImage(c.segmentation))
            spacing = ct_img.GetSpacing()
            vox_vol = float(np.prod(spacing))
            d = Path(out) / f"p{p}" / c.id
            d.mkdir(parents=True)
            rows = []
            for k in range(1, int(seg.max()) + 1):
                roi = seg == k  # TotalSegmentator's statistics: one boolean mask per class
                n = int(roi.sum())
                if n == 0:
                    continue
                rows.append({"label": k, "voxel_count": n, "volume_mm3": n * vox_vol,
                             "mean": float(ct[roi].mean())})
                w = vtk.vtkXMLPolyDataWriter()
                w.SetFileName(str(d / f"label_{k}.vtp"))
                w.SetInputData(_vtk_mesh(roi, spacing))
                w.Write()
            with open(d / "stats.csv", "w", newline="") as f:
                wr = csv.DictWriter(f, fieldnames=["label", "voxel_count", "volume_mm3", "mean"])
                wr.writeheader()
                wr.writerows(rows)
            stats[c.id] = rows
        times.append(time.perf_counter() - t)
    return {"times": times, "stats": stats, "peak_mib": _peak_mib()}


def _in_fresh_process(fn, *args, spawn: bool = True):
    if not spawn:
        return fn(*args)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


# ----------------------------------------------------------------------------- the batch

def batch_runs(manifest: Path, table: Path, out: Path, workers: int, backend: str, passes: int,
               client=None) -> dict:
    import distributed

    from gpuseg.batch import run
    from gpuseg.batch.cluster import start_local_cluster

    t = time.perf_counter()
    own = client is None
    if own:
        cluster, threads = start_local_cluster(workers)
        client = distributed.Client(cluster)
        client.wait_for_workers(workers)
    else:
        threads = None
    start_s = time.perf_counter() - t
    times, per_task, rows = [], [], {}
    try:
        for p in range(passes):
            t = time.perf_counter()
            split = {}
            for task, opts in TASKS:
                t1 = time.perf_counter()
                res = run(manifest, task, client=client, outdir=out / f"p{p}" / task, backend=backend,
                          options={"labels": str(table), **opts}, progress=False, log=lambda m: None)
                split[task] = time.perf_counter() - t1
                if res.exit_code:
                    raise RuntimeError(f"batch {task}: {res.counts}")
                for r in res.cases:
                    rows[f"{task}/{r['case']}"] = r["rows"]
            times.append(time.perf_counter() - t)
            per_task.append(split)
        peak = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    finally:
        if own:
            client.close()
            cluster.close()
    return {"times": times, "per_task": per_task, "rows": rows, "start_s": start_s, "threads": threads,
            "peak_mib": sorted(peak.values())}


def main(argv=None, client=None) -> int:
    """``client``: an existing Dask client to run the batch on (the tests pass theirs)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="100x256x256")
    ap.add_argument("--cases", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--phantom", action="store_true")
    ap.add_argument("--passes", type=int, default=2, help="runs of each (the first includes warm-up)")
    ap.add_argument("--no-spawn", action="store_true",
                    help="run the serial loops in this process (quicker; their peak memory is then this process's)")
    args = ap.parse_args(argv)
    if os.environ.get("GPUSEG_SHARED_DATA"):  # ../shared/data elsewhere (e.g. from a git worktree)
        standard_volume.SHARED = Path(os.environ["GPUSEG_SHARED_DATA"]) / "totalseg"
    vol = load(parse_size(args.size), force_phantom=args.phantom)
    folder = CACHE / f"batch_{'phantom' if 'phantom' in vol.source else 'ct'}_{vol.name}_{args.cases}"
    manifest, table = make_cases(vol, args.cases, folder)
    work = Path(tempfile.mkdtemp(prefix="gpuseg-bench-batch-"))
    try:
        b = batch_runs(manifest, table, work / "batch", args.workers, args.backend, args.passes,
                       client=client)
        s = _in_fresh_process(serial_gpuseg, str(manifest), str(table), str(work / "serial"), args.backend,
                              args.passes, spawn=not args.no_spawn)
        s1 = _in_fresh_process(serial_gpuseg, str(manifest), str(table), str(work / "serial1"), args.backend,
                               args.passes, 1, spawn=not args.no_spawn)
        v = _in_fresh_process(serial_numpy_vtk, str(manifest), str(work / "vtk"), args.passes,
                              spawn=not args.no_spawn)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # the batch gives exactly the serial loop's rows; statistics equal the numpy loop's
    for loop in (s, s1):
        assert b["rows"] == {k: json.loads(json.dumps(r)) for k, r in loop["rows"].items()}, "batch != serial rows"
    for cid, ref in v["stats"].items():
        by_count = sorted((r["voxel_count"], r["mean"]) for r in b["rows"][f"stats/{cid}"] if r["voxel_count"])
        theirs = sorted((r["voxel_count"], r["mean"]) for r in ref)
        assert len(by_count) == len(theirs), (cid, len(by_count), len(theirs))
        for (n1, m1), (n2, m2) in zip(by_count, theirs):
            assert n1 == n2 and abs(m1 - m2) <= 1e-9 * max(1.0, abs(m2)), (cid, n1, n2, m1, m2)

    n = args.cases
    case = f"{n} cases, stats + surface (smoothing 0.5), {vol.name}"
    res = []

    def best(ts):
        return min(ts[1:]) if len(ts) > 1 else ts[0]

    def cpm(t):
        return 60.0 * n / t

    tb, ts, ts1, tv = best(b["times"]), best(s["times"]), best(s1["times"]), best(v["times"])
    res.append(Result(case, f"gpuseg batch, {args.workers} workers ({args.backend})", "gpuseg", b["times"][0], tb,
                      len(b["times"]) - 1,
                      note=f"{cpm(tb):.1f} cases/min, {ts / tb:.2f}x the serial gpuseg loop, {ts1 / tb:.2f}x it on 1 "
                           f"numba thread, peak "
                           f"{max(b['peak_mib']):.0f} MiB per worker",
                      extra={"cases_per_minute": cpm(tb), "cluster_start_s": b["start_s"],
                             "numba_threads_per_worker": b["threads"], "per_task_s": b["per_task"],
                             "peak_rss_mib_per_worker": b["peak_mib"], "vs_serial_gpuseg": ts / tb,
                             "vs_serial_gpuseg_1_thread": ts1 / tb}))
    res.append(Result(case, f"gpuseg serial loop ({args.backend})", "gpuseg", s["times"][0], ts, len(s["times"]) - 1,
                      note=f"{cpm(ts):.1f} cases/min, peak {s['peak_mib']:.0f} MiB",
                      extra={"cases_per_minute": cpm(ts), "peak_rss_mib": s["peak_mib"]}))
    res.append(Result(case, f"gpuseg serial loop ({args.backend}, 1 numba thread)", "gpuseg", s1["times"][0], ts1,
                      len(s1["times"]) - 1, note=f"{cpm(ts1):.1f} cases/min, peak {s1['peak_mib']:.0f} MiB",
                      extra={"cases_per_minute": cpm(ts1), "peak_rss_mib": s1["peak_mib"]}))
    res.append(Result(case, "numpy statistics + VTK meshing per label, serial", "peer", v["times"][0], tv,
                      len(v["times"]) - 1, note=f"{cpm(tv):.1f} cases/min, peak {v['peak_mib']:.0f} MiB",
                      extra={"cases_per_minute": cpm(tv), "peak_rss_mib": v["peak_mib"]}))
    baseline = {case: "numpy statistics + VTK meshing per label, serial"}
    finish("batch", res, baseline, vol, {"cases": n, "workers": args.workers, "backend": args.backend})
    print(f"cluster start {b['start_s']:.1f} s (not counted); batch vs serial gpuseg loop: {ts / tb:.2f}x "
          f"(target >= 1.7x: {'met' if ts / tb >= 1.7 else 'not met'}); vs the serial loop on 1 numba thread "
          f"(process scaling alone): {ts1 / tb:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
