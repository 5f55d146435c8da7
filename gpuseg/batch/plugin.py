"""The Dask worker plugin that sets gpuseg up once per worker (imports ``distributed``)."""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin

from .worker import default_numba_threads, worker_state


class GpusegWorkerPlugin(WorkerPlugin):
    """Sets up gpuseg once per worker process: backend, numba threads, warm kernels. A worker
    that joins later (or restarts after dying) runs it too."""

    name = "gpuseg-batch"

    def __init__(self, backend: str | None = None, numba_threads: int | None = None):
        self.backend = backend
        self.numba_threads = numba_threads

    def setup(self, worker):
        worker_state(self.backend, self.numba_threads or default_numba_threads(worker.state.nthreads))
