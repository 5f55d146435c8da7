"""Batch work over many cases on Dask: ``gpuseg.batch.run(cases, task)`` and ``gpuseg batch``.

>>> from gpuseg.batch import TASKS, resolve_options
>>> TASKS
('convert', 'stats', 'surface', 'edit', 'threshold', 'grow', 'compare')
>>> resolve_options("threshold", {"min": "200", "max": 3000})["min"]
200.0

Importing this package does not import Dask; :func:`run` does.
"""

from .cluster import cluster_kind, start_local_cluster
from .manifest import Case, read_manifest
from .runner import BatchResult, run
from .tasks import OPTIONS, TASKS, resolve_options, run_edit_steps
from .worker import case_hash

__all__ = ["run", "BatchResult", "Case", "read_manifest", "TASKS", "OPTIONS", "resolve_options",
           "cluster_kind", "start_local_cluster", "case_hash", "run_edit_steps"]
