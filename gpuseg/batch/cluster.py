"""Which Dask cluster a batch runs on, and starting the local ones.

The rule (:func:`cluster_kind`):

1. ``scheduler`` given: connect to that cluster (dask-jobqueue, Kubernetes, ``dask scheduler``...);
2. else, when ``dask_cuda`` is installed, CUDA GPUs are visible and the backend is ``auto`` or
   ``cuda``: ``dask_cuda.LocalCUDACluster``, one worker per GPU (each worker sees only its own GPU
   through ``CUDA_VISIBLE_DEVICES``, so its ``cuda`` backend is pinned to it);
3. else a ``distributed.LocalCluster`` of worker processes with one thread each, and numba (and
   PoCL) threads set so that workers x threads <= cores.
"""

from __future__ import annotations

import contextlib
import os
import sys

from ..errors import BackendUnavailableError, InvalidInputError


def cuda_device_count() -> int:
    """Visible CUDA GPUs (0 without CuPy or a driver)."""
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no CuPy, no driver, no device: no GPU for this rule
        return 0


def have_dask_cuda() -> bool:
    import importlib.util

    return importlib.util.find_spec("dask_cuda") is not None


def cluster_kind(scheduler: str | None, backend: str | None, *, dask_cuda: bool | None = None,
                 n_gpus: int | None = None) -> str:
    """``"scheduler"``, ``"cuda"`` or ``"local"`` (see the module doc)."""
    if scheduler:
        return "scheduler"
    b = (backend or os.environ.get("GPUSEG_BACKEND") or "auto").lower()
    if b not in ("auto", "cuda"):
        return "local"
    dask_cuda = have_dask_cuda() if dask_cuda is None else dask_cuda
    if not dask_cuda:
        return "local"
    n_gpus = cuda_device_count() if n_gpus is None else n_gpus
    return "cuda" if n_gpus > 0 else "local"


def local_workers(n_workers: int | None) -> tuple[int, int]:
    """(workers, numba threads per worker) for a local cluster: by default one worker per core;
    threads = cores // workers, at least 1."""
    cores = os.cpu_count() or 1
    if n_workers is None:
        n_workers = cores
    if n_workers < 1:
        raise InvalidInputError(f"--workers must be at least 1, got {n_workers}")
    return n_workers, max(1, cores // n_workers)


def _require_distributed():
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - the dask extra is installed here
        raise BackendUnavailableError("gpuseg batch needs Dask: pip install \"gpuseg[dask]\"") from exc
    return distributed


def start_local_cluster(n_workers: int | None = None, *, kind: str = "local", memory_limit="auto"):
    """A local cluster for a batch; returns (cluster, numba threads per worker).

    Worker deaths are not retried by the scheduler (``allowed-failures`` 0): the runner retries
    the case itself and counts the attempts."""
    distributed = _require_distributed()
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        if kind == "cuda":
            import dask_cuda

            n = cuda_device_count() if n_workers is None else n_workers
            threads = max(1, (os.cpu_count() or 1) // max(1, n))
            return dask_cuda.LocalCUDACluster(n_workers=n, threads_per_worker=1, host="127.0.0.1",
                                              env=_thread_env(threads), memory_limit=memory_limit), threads
        n, threads = local_workers(n_workers)
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                           dashboard_address=_dashboard_address(), env=_thread_env(threads),
                                           memory_limit=memory_limit)
        return cluster, threads


def _thread_env(threads: int) -> dict[str, str]:
    t = str(threads)
    return {"NUMBA_NUM_THREADS": t, "OMP_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t, "MKL_NUM_THREADS": t,
            "POCL_CPU_MAX_CU_COUNT": t, "POCL_MAX_PTHREAD_COUNT": t}


def _dashboard_address():
    """The dashboard needs bokeh; without it, serve none (and say so)."""
    import importlib.util

    return "127.0.0.1:0" if importlib.util.find_spec("bokeh") is not None else None


@contextlib.contextmanager
def open_client(scheduler: str | None = None, n_workers: int | None = None, backend: str | None = None,
                log=None):
    """Yield (client, kind, numba threads or None): connected to ``scheduler`` or to a new local cluster
    that is closed afterwards."""
    distributed = _require_distributed()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    kind = cluster_kind(scheduler, backend)
    if kind == "scheduler":
        with distributed.Client(scheduler) as client:
            log(f"connected to {scheduler}; dashboard {client.dashboard_link}")
            yield client, kind, None
        return
    cluster, threads = start_local_cluster(n_workers, kind=kind)
    try:
        with distributed.Client(cluster) as client:
            n = len(cluster.workers)
            dash = client.dashboard_link if _dashboard_address() else "none (pip install bokeh for one)"
            log(f"{'LocalCUDACluster' if kind == 'cuda' else 'LocalCluster'}: {n} workers x 1 thread, "
                f"{threads} numba thread(s) each; dashboard {dash}")
            yield client, kind, threads
    finally:
        cluster.close()
