"""Kill-safe saves: a writer SIGKILLed at a random moment never leaves a partial file under the
target name; the target (and the .nii.gz + .labels.json pair) reads back exactly as one complete
version, and the next save removes the dead writer's temp files."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FORMATS = [".seg.nrrd", ".nii.gz", ".h5", ".dcm"]
TRIALS = int(os.environ.get("GPUSEG_KILL_TRIALS", "4"))


def version(which: str, geometry):
    """Version "A" or "B": different names, counts and voxels (no overlaps, so every format holds it)."""
    from gpuseg.mask import Mask
    from gpuseg.segmentation import Segmentation

    rng = np.random.default_rng(1 if which == "A" else 2)
    seg = Segmentation(geometry, backend="cpu")
    lab = rng.integers(0, 3 if which == "A" else 4, geometry.shape)
    for v in range(1, int(lab.max()) + 1):
        seg.add_segment(Mask.from_numpy(lab == v, geometry, backend="cpu", crop=True), name=f"{which} {v} 肝臓",
                        color=(0.2 * v, 0.5, 0.5), label_value=v)
    return seg


def series(folder: Path) -> Path:
    from tests.test_dicom import write_series

    if not folder.is_dir():
        write_series(folder, np.zeros((24, 96, 96), np.uint16))
    return folder


def geometry_for(ext: str, folder: Path):
    from gpuseg.geometry import ImageGeometry

    if ext == ".dcm":
        from gpuseg.io.dicom import read_dicom_series

        return read_dicom_series(series(folder / "series"))[1]
    return ImageGeometry((40, 96, 128), spacing=(0.8, 0.8, 1.5))


def save(seg, target: Path, folder: Path) -> None:
    import gpuseg

    opts = {"reference": folder / "series"} if target.suffix == ".dcm" else {}
    gpuseg.write_segmentation(seg, target, **opts)


def child(target: str) -> None:  # runs in the killed process
    target_p = Path(target)
    folder = target_p.parent
    g = geometry_for("".join(target_p.suffixes[-2:]) if target.endswith(".nii.gz") else target_p.suffix, folder)
    versions = [version("B", g), version("A", g)]
    import time

    (folder / "warm").mkdir(exist_ok=True)
    save(versions[0], folder / "warm" / target_p.name, folder)  # compile first; time one save
    t0 = time.perf_counter()
    save(versions[1], folder / "warm" / target_p.name, folder)
    sys.stdout.write(f"ready {time.perf_counter() - t0:.4f}\n")
    sys.stdout.flush()
    n = 0
    while True:
        save(versions[n % 2], target_p, folder)
        n += 1


def loads_as(target: Path, expected: dict) -> str:
    import gpuseg

    back = gpuseg.read_segmentation(target, backend="cpu")
    for which, seg in expected.items():
        if [s.name for s in back] == [s.name for s in seg]:
            for s, t in zip(seg, back):
                assert np.array_equal(s.mask.to_numpy(), t.mask.to_numpy()), f"{target}: voxels of {s.name!r} torn"
            return which
    raise AssertionError(f"{target} reads as neither version: {[s.name for s in back]}")


@pytest.mark.slow
@pytest.mark.parametrize("ext", FORMATS)
def test_sigkilled_saves_leave_old_or_new_never_partial(tmp_path, ext):
    if ext == ".dcm":
        pytest.importorskip("highdicom")
    target = tmp_path / f"x{ext}"
    g = geometry_for(ext, tmp_path)
    expected = {"A": version("A", g), "B": version("B", g)}
    save(expected["A"], target, tmp_path)
    rng = random.Random(f"kill{ext}")
    env = dict(os.environ, GPUSEG_BACKEND="cpu", PYTHONPATH=str(REPO))
    env.pop("GPUSEG_REQUIRE_OPENCL", None)
    seen, temps = [], []
    for _ in range(TRIALS):
        proc = subprocess.Popen([sys.executable, "-c", f"from tests.test_reliability_killsafe import child; "
                                 f"child({str(target)!r})"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready
        word, duration = proc.stdout.readline().split()
        assert word == "ready"
        delay = rng.uniform(0.0, 3 * float(duration))  # within the first few saves
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            pass
        assert proc.poll() is None, "the writer stopped by itself"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        seen.append(loads_as(target, expected))
        temps.append(sum(1 for p in tmp_path.iterdir() if p.name.startswith(".")))
        # the next save removes the dead writer's temp file (if it left one)
        save(expected["A"], target, tmp_path)
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
        assert leftovers == [], leftovers
        assert loads_as(target, expected) == "A"
    assert set(seen) <= {"A", "B"}
    print(f"{ext}: versions after the kills {seen}, temp files left by the killed writer {temps}")
