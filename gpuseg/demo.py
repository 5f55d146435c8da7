"""``gpuseg demo``: the main job on a generated CT phantom.

It generates the phantom, thresholds bone on every usable backend (timing the first call,
which compiles kernels, apart from the steady state), checks that the backends agree bit for
bit, and writes the results and a picture to a folder.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .backends import available_backends, get_backend
from .errors import GpusegError, InvalidInputError
from .image import Image
from .ops.threshold import threshold
from .phantom import PHANTOM_LABELS, make_phantom

BONE = (200.0, 3000.0)


def parse_size(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*[xX,]\s*(\d+)\s*", str(text))
    if not m:
        raise InvalidInputError(f"size must look like 400x512x512 (slices x rows x columns), got {text!r}")
    shape = tuple(int(v) for v in m.groups())
    if min(shape) < 1:
        raise InvalidInputError(f"size must be positive, got {text!r}")
    return shape  # type: ignore[return-value]


def _best_of(fn, repeat: int, sync) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best, out


def _select_backends(names: str | None):
    if names:
        return [get_backend(n.strip()) for n in names.split(",") if n.strip()]
    return [b for b in available_backends().values() if not isinstance(b, GpusegError)]


def save_overview_png(path: Path, image: np.ndarray, overlays: dict[str, tuple[np.ndarray, tuple]],
                      spacing_kji, title: str) -> Path | None:
    """Axial, coronal and sagittal slices through the centre with coloured overlays."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is in the [bench]/[all] extras
        return None
    from .io._atomic import atomic_path

    nk, nj, ni = image.shape
    sk, sj, si = spacing_kji
    views = [("axial (k = %d)" % (nk // 2), lambda a: a[nk // 2], sj / si),
             ("coronal (j = %d)" % (nj // 2), lambda a: a[::-1, nj // 2, :], sk / si),
             ("sagittal (i = %d)" % (ni // 2), lambda a: a[::-1, :, ni // 2], sk / sj)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.6))
    for ax, (name, take, aspect) in zip(axes, views):
        ax.imshow(take(image), cmap="gray", vmin=-400, vmax=600, aspect=aspect, interpolation="nearest")
        for label, (mask, color) in overlays.items():
            sl = take(mask)
            rgba = np.zeros(sl.shape + (4,), np.float32)
            rgba[sl] = (*color, 0.55)
            ax.imshow(rgba, aspect=aspect, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for _, (_, c) in overlays.items()]
    if handles:
        fig.legend(handles, list(overlays), loc="lower center", ncol=min(6, len(handles)))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return path


def run_demo(shape: tuple[int, int, int] = (400, 512, 512), outdir: Path = Path("gpuseg-demo"), *,
             backends: str | None = None, seed: int = 0, progress: bool = True,
             log: Callable[..., None] = print) -> dict:
    """Run the demo and return a summary (also written to ``outdir/summary.json``)."""
    from tqdm import tqdm

    from .io.images import write_labelmap

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    chosen = _select_backends(backends)
    log(f"gpuseg demo: phantom {shape[0]} x {shape[1]} x {shape[2]} (k x j x i), backends: "
        f"{', '.join(b.name for b in chosen)}")

    t0 = time.perf_counter()
    with tqdm(total=shape[0], desc="phantom", unit="slice", disable=not progress, leave=False) as bar:
        ph = make_phantom(shape, seed=seed, progress=bar.update)
    t_phantom = time.perf_counter() - t0
    log(f"  generated the phantom in {t_phantom:.1f} s ({ph.image.nbytes / 2**20:.0f} MiB int16)")

    summary: dict = {"shape_kji": list(shape), "spacing_ijk": list(ph.geometry.spacing),
                     "phantom_seconds": t_phantom, "bone_range_hu": list(BONE), "backends": {}}
    reference_words = None
    bone_mask = None
    for b in tqdm(chosen, desc="backends", disable=not progress, leave=False):
        t = time.perf_counter()
        img = Image.from_numpy(ph.image, ph.geometry, backend=b)
        b.synchronize()
        t_upload = time.perf_counter() - t
        t_first, _ = _best_of(lambda: threshold(img, *BONE), 1, b.synchronize)
        t_steady, m = _best_of(lambda: threshold(img, *BONE), 3, b.synchronize)
        n = m.count()
        words = m.words_numpy()
        identical = None if reference_words is None else bool(np.array_equal(words, reference_words))
        if reference_words is None:
            reference_words, bone_mask = words, m
        summary["backends"][b.name] = {"device": b.device_name, "upload_s": t_upload, "first_call_s": t_first,
                                       "threshold_s": t_steady, "bone_voxels": n,
                                       "identical_to_first_backend": identical}
        same = "" if identical is None else ("  identical to " + chosen[0].name if identical else "  DIFFERENT!")
        log(f"  {b.name:<7} threshold bone: {t_steady * 1000:7.1f} ms steady, first call {t_first * 1000:.0f} ms "
            f"(compile), upload {t_upload * 1000:.0f} ms; {n} voxels{same}")
        del img

    # outputs
    assert bone_mask is not None
    bone = bone_mask.to_numpy()
    t = time.perf_counter()
    out_bone = write_labelmap(outdir / "bone.nrrd", bone.astype(np.uint8), ph.geometry)
    out_truth = write_labelmap(outdir / "phantom_labels.nrrd", ph.labels, ph.geometry)
    summary["outputs"] = {"bone_labelmap": str(out_bone), "phantom_labels": str(out_truth)}
    truth_bone = np.isin(ph.labels, [9, 11, 12])
    inter = int(np.count_nonzero(bone & truth_bone))
    dice = 2 * inter / max(1, int(bone.sum()) + int(truth_bone.sum()))
    summary["bone_dice_vs_truth"] = dice
    png = save_overview_png(outdir / "overview.png", ph.image, {"bone (threshold)": (bone, (1.0, 0.85, 0.2))},
                            ph.geometry.spacing_kji, f"gpuseg demo: bone = HU in [{BONE[0]:g}, {BONE[1]:g}]")
    if png is not None:
        summary["outputs"]["overview_png"] = str(png)
    log(f"  bone vs phantom truth: Dice {dice:.3f}; wrote {outdir} in {time.perf_counter() - t:.1f} s")
    summary["labels"] = {str(v): n for v, (n, _, _) in PHANTOM_LABELS.items()}
    with open(outdir / "summary.json", "w") as f:
        json.dump(summary, f, indent=2)
    return summary
