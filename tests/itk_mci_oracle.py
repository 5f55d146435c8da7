"""Run ITK's MorphologicalContourInterpolator (itk-morphologicalcontourinterpolation) on label
volumes in a child process: ``python -m tests.itk_mci_oracle in.npz out.npz``. A child process
because ITK's Python module can abort the interpreter at exit (malloc_consolidate) after use
together with SciPy and numba in this environment."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def run_itk(volumes: dict[str, np.ndarray], spacing=(1.0, 1.0, 1.0), timeout=900, repeat=1) -> dict[str, np.ndarray]:
    """ITK's result per named (k, j, i) label volume, plus ``<name>__s`` seconds (best of
    ``repeat`` runs) and ``<name>__first_s`` (the first run). uint8 volumes run
    as ITK's unsigned char image, all others as short (int16, the type of Slicer's merged
    labelmap): ITK bins the median distances in tenths of a voxel in the pixel type, so with
    unsigned char, distances over 25.5 voxels wrap and its answer changes."""
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "in.npz", Path(d) / "out.npz"
        np.savez(src, __spacing=np.asarray(spacing, float), __repeat=np.int64(repeat), **volumes)
        subprocess.run([sys.executable, "-m", "tests.itk_mci_oracle", str(src), str(dst)], check=True,
                       timeout=timeout, cwd=Path(__file__).resolve().parents[1])
        with np.load(dst) as z:
            return {k: z[k] for k in z.files}


def _main(src: str, dst: str) -> None:
    import itk

    out = {}
    with np.load(src) as z:
        spacing = [float(v) for v in z["__spacing"]][::-1]
        repeat = int(z["__repeat"]) if "__repeat" in z.files else 1
        # warm-up: ITK loads its modules lazily on first use (tens of seconds)
        w = itk.image_from_array(np.zeros((3, 3, 3), np.uint8))
        itk.MorphologicalContourInterpolator.New(w).Update()
        for name in z.files:
            if name in ("__spacing", "__repeat"):
                continue
            a = z[name]
            img = itk.image_from_array(np.ascontiguousarray(a.astype(np.uint8 if a.dtype == np.uint8 else np.int16)))
            img.SetSpacing(spacing)
            times = []
            for _ in range(max(1, repeat)):
                t = time.perf_counter()
                f = itk.MorphologicalContourInterpolator.New(img)
                f.Update()
                times.append(time.perf_counter() - t)
            out[name + "__s"] = np.float64(min(times))
            out[name + "__first_s"] = np.float64(times[0])
            out[name] = itk.array_from_image(f.GetOutput()).astype(a.dtype)
    np.savez(dst, **out)
    sys.stdout.flush()
    import os
    os._exit(0)  # skip ITK's teardown


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
