"""The brush-preview service on loopback (docs/protocol.md), against the peers' way.

* stroke -> patch latency of a 10 mm brush as the client measures it (send to first patch, and
  to the ack), p50 / p99, with 1 and with 8 clients each painting at 60 events/s, committed
  strokes (journaled, fsynced) and previews;
* bytes on the wire per stroke;
* in the same process, the peers' whole-volume round trip per interaction: MONAI Label's
  uint16 NRRD (raw) and SlicerNNInteractive's ``np.packbits`` + gzip of the mask, with ratios;
* N clients x M strokes flat out: throughput, lost or misordered patches (must be 0), server
  memory before and after.

    python -m benchmarks.bench_service --size 1500x512x512       # the target size
    python -m benchmarks.bench_service --size 150x512x512 --strokes 200   # a busy machine

Results: a markdown table on stdout and ``benchmarks/results/service_<size>.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("GPUSEG_BENCH_RESULTS", REPO / "benchmarks" / "results"))


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _pct(xs, q) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, q)) if xs else float("nan")


def start_server(root: Path, backend: str, threads: int | None):
    from gpuseg.client import Client, ServiceError

    port = _port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if threads:
        env["NUMBA_NUM_THREADS"] = str(threads)
    log = open(root.parent / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "gpuseg", "serve", "--port", str(port), "--data-root", str(root),
                             "--backend", backend, "--max-sessions", "4", "--session-memory", "64GB"],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    client = Client(f"http://127.0.0.1:{port}", timeout=600)
    for _ in range(600):
        try:
            client.request("GET", "/api/health")
            return proc, client
        except (ServiceError, OSError):
            if proc.poll() is not None:
                raise RuntimeError("server failed to start; see server.log")
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def stroke_points(rng, g, centre, n: int = 2, step_mm: float = 2.0) -> list:
    """A short mouse-move segment near ``centre`` (LPS mm), in the axial plane."""
    p = np.asarray(centre, float) + rng.uniform(-15, 15, 3) * [1, 1, 0.2]
    d = rng.normal(size=3) * [1, 1, 0]
    d /= np.linalg.norm(d) + 1e-12
    return [(p + d * step_mm * t).tolist() for t in range(n)]


def paced(conn, g, centre, events: int, hz: float, mode: str, seed: int, out: dict, segment: str) -> None:
    rng = np.random.default_rng(seed)
    seqs = []
    t0 = time.perf_counter()
    for n in range(events):
        due = t0 + n / hz
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        seqs.append(conn.stroke(segment, stroke_points(rng, g, centre), mode=mode, diameter_mm=10.0, wait=False))
    for s in seqs:
        conn.wait(s, timeout=600)
    first, nbytes, patched = [], [], 0
    for s in seqs:
        sent = conn.sent_at[s]
        # the first patch; a stroke that changes nothing (painted ground) gets only its ack
        first.append(conn.first_patch.get(s, conn.first_frame[s]) - sent)
        patched += s in conn.first_patch
        nbytes.append(conn.bytes_for.get(s, 0))
    out.update(first=first, bytes=nbytes, patched=patched, resyncs=conn.resyncs, misordered=conn.misordered)


def latency(client, sid, g, centre, clients: int, events: int, mode: str) -> dict:
    conns = [client.connect(sid) for _ in range(clients)]
    for c in conns:
        c.subscribe(axis=0, index=int(round(g.world_to_ijk_points(np.asarray(centre)[None])[0][2])))
    outs = [dict() for _ in conns]
    ths = [threading.Thread(target=paced, args=(c, g, centre, events, 60.0, mode, 100 + n, outs[n], "lesion"))
           for n, c in enumerate(conns)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    for c in conns:
        c.close()
    first = [x for o in outs for x in o["first"]]
    nbytes = [x for o in outs for x in o["bytes"]]
    return {"clients": clients, "mode": mode, "events": events * clients, "patched": sum(o["patched"] for o in outs),
            "p50_ms": _pct(first, 50), "p99_ms": _pct(first, 99), "bytes_mean": float(np.mean(nbytes)),
            "bytes_p99": float(np.percentile(nbytes, 99)), "misordered": sum(o["misordered"] for o in outs),
            "resyncs": sum(o["resyncs"] for o in outs)}


def flat_out(client, proc, sid, g, centre, clients: int, strokes: int) -> dict:
    conns = [client.connect(sid) for _ in range(clients)]
    rss0 = _rss(proc.pid)
    errors = []

    def run(c, seed):
        rng = np.random.default_rng(seed)
        window = []
        try:
            for _ in range(strokes):
                window.append(c.stroke("lesion", stroke_points(rng, g, centre), diameter_mm=10.0, wait=False))
                if len(window) >= 4:
                    c.wait(window.pop(0), timeout=600)
            for s in window:
                c.wait(s, timeout=600)
        except Exception as exc:  # reported, not hidden
            errors.append(repr(exc))

    t0 = time.perf_counter()
    ths = [threading.Thread(target=run, args=(c, 1000 + n)) for n, c in enumerate(conns)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = time.perf_counter() - t0
    v = conns[0].call("ping")["version"]
    for c in conns:
        c.wait_version(v, timeout=600)
    with client.connect(sid) as fresh:
        ref = fresh.copy()
    mismatched = sum(any(not np.array_equal(c.copy().get(k), w) for k, w in ref.items()) for c in conns)
    rss1 = _rss(proc.pid)
    res = {"clients": clients, "strokes": clients * strokes, "seconds": wall,
           "strokes_per_s": clients * strokes / wall, "misordered": sum(c.misordered for c in conns),
           "resyncs": sum(c.resyncs for c in conns), "copies_differing": mismatched, "errors": errors[:3],
           "server_rss_before_mib": rss0 / 2**20, "server_rss_after_mib": rss1 / 2**20}
    for c in conns:
        c.close()
    return res


def peers(seg_mask, label_uint16, geometry, repeat: int = 3) -> dict:
    """One interaction the peers' way: the whole volume to the client and back."""
    import nrrd

    out = {}
    # MONAI Label: uint16 NRRD, uncompressed, for the whole labelmap
    best = float("inf")
    nbytes = 0
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
        p = Path(d) / "label.nrrd"
        for _ in range(repeat):
            t = time.perf_counter()
            nrrd.write(str(p), label_uint16.transpose(2, 1, 0), {"encoding": "raw"})
            data = p.read_bytes()
            q = Path(d) / "back.nrrd"
            q.write_bytes(data)
            back, _ = nrrd.read(str(q))
            best = min(best, time.perf_counter() - t)
            nbytes = len(data)
    out["monai_nrrd_uint16"] = {"bytes": nbytes, "seconds": best}
    # SlicerNNInteractive: np.packbits of the mask, gzipped
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        dense = seg_mask.to_numpy()
        blob = gzip.compress(np.packbits(dense).tobytes(), compresslevel=6)
        back = np.unpackbits(np.frombuffer(gzip.decompress(blob), np.uint8))[:dense.size].reshape(dense.shape)
        best = min(best, time.perf_counter() - t)
        nbytes = len(blob)
    assert back.shape == dense.shape
    out["nninteractive_packbits_gzip"] = {"bytes": nbytes, "seconds": best}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1500x512x512", help="phantom grid KxJxI (default 1500x512x512)")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--events", type=int, default=300, help="events per client in the 60 Hz runs")
    ap.add_argument("--clients", type=int, default=32, help="clients of the flat-out run")
    ap.add_argument("--strokes", type=int, default=1000, help="strokes per client of the flat-out run")
    ap.add_argument("--threads", type=int, default=None, help="NUMBA_NUM_THREADS of the server")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    import gpuseg
    from gpuseg.phantom import make_phantom

    shape = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        t = time.perf_counter()
        ph = make_phantom(shape)
        gpuseg.write_labelmap(root / "ct.nrrd", ph.image, ph.geometry)
        liver = gpuseg.Mask.from_numpy(ph.labels == 5, ph.geometry, backend=args.backend)
        seg = gpuseg.Segmentation(ph.geometry, backend=args.backend)
        seg.add_segment(liver, name="liver", segment_id="liver")
        gpuseg.write_segmentation(seg, root / "start.seg.nrrd")
        k, j, i = np.nonzero(ph.labels == 5)
        centre = ph.geometry.ijk_to_world_points(np.array([[i.mean(), j.mean(), k.mean()]]))[0]
        label16 = ph.labels.astype(np.uint16)
        del ph
        print(f"phantom {args.size} ready in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        proc, client = start_server(root, args.backend, args.threads)
        try:
            sid = client.create_session("ct.nrrd", "start.seg.nrrd")["id"]
            with client.connect(sid) as c:
                c.effect({"effect": "add_segment", "name": "lesion", "id": "lesion"})
                for n in range(20):  # warm up: kernels compiled or loaded
                    c.stroke("lesion", [centre.tolist()], diameter_mm=10.0)
                    c.stroke("lesion", [centre.tolist()], diameter_mm=10.0, mode="preview")
            g = seg.geometry
            runs = []
            for clients in (1, 8):
                for mode in ("preview", "commit"):
                    r = latency(client, sid, g, centre, clients, args.events, mode)
                    runs.append(r)
                    print(r, file=sys.stderr)
            flat = flat_out(client, proc, sid, g, centre, args.clients, args.strokes)
            print(flat, file=sys.stderr)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        peer = peers(liver, label16, seg.geometry)
    commit1 = next(r for r in runs if r["clients"] == 1 and r["mode"] == "commit")
    res = {"size": args.size, "backend": args.backend, "machine": f"{platform.processor() or platform.machine()}, "
           f"{os.cpu_count()} cores", "latency": runs, "flat_out": flat, "peers": peer}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"service_{args.size}.json"
    out.write_text(json.dumps(res, indent=2))
    print(f"\n#### service, {args.size}, backend {args.backend}\n")
    print("| run | clients | p50 ms | p99 ms | bytes/stroke (mean) | misordered | resyncs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['mode']} at 60 Hz | {r['clients']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['bytes_mean']:.0f} | {r['misordered']} | {r['resyncs']} |")
    print("\n| one interaction | bytes | time ms | bytes vs gpuseg commit |")
    print("|---|---:|---:|---:|")
    print(f"| gpuseg stroke (commit, patches + ack) | {commit1['bytes_mean']:.0f} | {commit1['p50_ms']:.2f} (p50) | 1x |")
    for name, p in peer.items():
        print(f"| {name} | {p['bytes']} | {p['seconds'] * 1e3:.1f} | {p['bytes'] / commit1['bytes_mean']:.0f}x |")
    f = flat
    print(f"\nflat out: {f['clients']} clients x {f['strokes'] // f['clients']} strokes: {f['strokes_per_s']:.0f} "
          f"strokes/s, misordered {f['misordered']}, resyncs {f['resyncs']}, copies differing "
          f"{f['copies_differing']}, server RSS {f['server_rss_before_mib']:.0f} -> {f['server_rss_after_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
