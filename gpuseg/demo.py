"""``gpuseg demo``: the main job on a generated CT phantom.

It generates the phantom, and on every usable backend thresholds bone (timing the first call,
which compiles kernels, apart from the steady state), grows it by a 3 mm margin, splits the
phantom's label map into named segments and computes their statistics; it checks that the
backends agree bit for bit, then writes the segmentation (.seg.nrrd for 3D Slicer, and .h5),
the statistics as CSV and an overview picture to a folder.
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
from .ops.morphology import margin
from .ops.stats import statistics
from .ops.threshold import threshold
from .phantom import PHANTOM_LABELS, make_phantom

BONE = (200.0, 3000.0)


def parse_size(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*[xX,]\s*(\d+)\s*", str(text))
    if not m:
        raise InvalidInputError(f"size must look like 400x512x512 (slices x rows x columns), got {text!r}")
    shape = tuple(int(v) for v in m.groups())
    check_size(shape, text)
    return shape  # type: ignore[return-value]


#: the smallest phantom on which every organ the demo edits (liver, ribs, aorta) exists
MIN_SIZE = (16, 32, 32)
MAX_VOXELS = 2_000_000_000


def check_size(shape, text=None) -> None:
    """Reject a phantom size the demo cannot run on, before anything is written."""
    said = text if text is not None else "x".join(map(str, shape))
    if any(int(n) < m for n, m in zip(shape, MIN_SIZE)):
        raise InvalidInputError(f"size {said!r} is too small: the demo needs at least "
                                f"{'x'.join(map(str, MIN_SIZE))} (slices x rows x columns) for its organs to exist")
    n = int(np.prod([int(v) for v in shape], dtype=np.int64))
    if n > MAX_VOXELS:
        raise InvalidInputError(f"size {said!r} is too large: {n:.3g} voxels, over {MAX_VOXELS:.0e} "
                                "(400x512x512 is the default)")


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


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
    from .io import atomic_path

    nk, nj, ni = image.shape
    sk, sj, si = spacing_kji
    views = [("axial (k = %d)" % (nk // 2), lambda a: a[nk // 2], sj / si),
             ("coronal (j = %d)" % (nj // 2), lambda a: a[::-1, nj // 2, :], sk / si),
             ("sagittal (i = %d)" % (ni // 2), lambda a: a[::-1, :, ni // 2], sk / sj)]
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.6))
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
    if handles:  # beside the panels, never over them
        fig.legend(handles, list(overlays), loc="center right", ncol=1, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.82, 0.95))
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return path


def _grow(ph, seg, log) -> dict:
    """Grow from seeds, as a user would for a vessel: small balls in the aorta on a few slices,
    and an "other" seed of small balls around it (a rough ring of strokes in the neighbouring
    tissue). The region is Slicer's (the seeds' extent plus a margin); the grown aorta is added as
    a segment and compared with the phantom's aorta inside that region. (The aorta, because the
    phantom's soft organs differ by 10-25 HU under 20 HU of uncorrelated noise: too little for
    FastGrowCut's intensity paths.)"""
    from .mask import Mask
    from .ops.grow import GrowCut

    g, b = ph.geometry, seg.backend
    kk, jj, ii = np.ogrid[: g.shape[0], : g.shape[1], : g.shape[2]]
    target = 8  # aorta
    truth = ph.labels == target
    pts = np.argwhere(truth)
    if len(pts) == 0:
        return {"skipped": "the phantom has no aorta at this size"}

    def ball(c, r=2):
        return (kk - c[0]) ** 2 + (jj - c[1]) ** 2 + (ii - c[2]) ** 2 <= r * r

    vessel = np.zeros(g.shape, bool)
    other = np.zeros(g.shape, bool)
    for q in (0.15, 0.35, 0.5, 0.65, 0.85):
        k = pts[int(q * (len(pts) - 1))][0]
        sl = np.argwhere(truth[k])
        cj, ci = sl.mean(0).round().astype(int)
        radius = int(np.sqrt(len(sl) / np.pi))
        vessel |= ball((k, cj, ci)) & truth
        d = radius + max(4, radius // 2)
        for dj, di in ((d, 0), (-d, 0), (0, d), (0, -d)):
            other |= ball((k, cj + dj, ci + di)) & ~truth
    masks = [Mask.from_numpy(s, g, backend=b).cropped() for s in (vessel, other)]
    img = Image.from_numpy(ph.image, g, backend=b)
    t = time.perf_counter()
    gc = GrowCut(img, masks)
    grown = gc.result()
    t_grow = time.perf_counter() - t
    r = gc.region
    got = grown[0].to_numpy()[r.slices]
    inside = truth[r.slices]
    dice = 2 * int(np.count_nonzero(got & inside)) / max(1, int(got.sum()) + int(inside.sum()))
    seg.add_segment(grown[0], name="aorta (grown from seeds)", color=(0.95, 0.35, 0.2))
    log(f"  grow from seeds (aorta, other) over {'x'.join(map(str, r.shape))} voxels: {t_grow:.2f} s on "
        f"{b.name}; grown aorta vs the phantom's aorta in that region: Dice {dice:.3f}")
    return {"region_kji": list(r.shape), "seconds": t_grow, "aorta_dice": dice, "backend": b.name}


#: the demo's GLB decimation: the largest of these reductions that keeps each surface closed and
#: its volume within MAX_VOLUME_CHANGE is used (thin ribs get less, big organs more)
REDUCTIONS = (0.9, 0.7, 0.4)
MAX_VOLUME_CHANGE = 0.01
MIN_PIECE_FACES = 2000  # smaller pieces weigh little in the file: left as they are


def closed_oriented(faces: np.ndarray) -> bool:
    """Every edge shared by exactly two triangles in opposite directions: Surface.is_watertight,
    with one sort and a binary search instead of np.unique and np.isin (5x faster on the demo's
    400k-triangle lungs, where these checks dominated the decimation)."""
    f = np.asarray(faces, np.int64)
    if f.size == 0:
        return True
    n = int(f.max()) + 1
    a = f.ravel()
    b = f[:, [1, 2, 0]].ravel()
    key = np.sort(a * n + b)
    if key.size > 1 and bool((key[1:] == key[:-1]).any()):  # a directed edge twice
        return False
    rkey = b * n + a
    at = np.searchsorted(key, rkey)
    at[at == key.size] = 0
    return bool((key[at] == rkey).all())


def _decimate_closed(v, f, reductions, max_volume_change):
    """One connected piece: the largest reduction that keeps it closed within the volume bound."""
    from .surface.mesh import Surface
    from .surface.postprocess import decimate

    if len(f) < MIN_PIECE_FACES or not closed_oriented(f):
        return v, f, 0.0
    v0 = Surface(v, f).volume()
    for r in reductions:
        dv, df = decimate(v, f, r)
        out = Surface(dv, df)
        if out.n_faces and closed_oriented(df) and abs(out.volume() - v0) <= max_volume_change * abs(v0):
            return dv, df, r
    return v, f, 0.0


def bounded_decimation(surface, reductions=REDUCTIONS, max_volume_change: float = MAX_VOLUME_CHANGE):
    """``surface`` decimated, each connected piece (e.g. each rib) by the largest of ``reductions``
    that keeps it watertight with its enclosed volume within ``max_volume_change`` (relative);
    a piece no reduction keeps so stays as it is. Returns (surface, faces removed / faces)."""
    from .surface.mesh import Surface
    from .surface.postprocess import vertex_normals

    if surface.is_empty():
        return surface, 0.0
    try:
        import fast_simplification  # noqa: F401  (decimate's library, in the [mesh] extra)
        import trimesh
    except ImportError:  # pragma: no cover - in the [mesh] extra
        return surface, 0.0
    parts = trimesh.Trimesh(surface.vertices, surface.faces, process=False).split(only_watertight=False)
    vs, fs, offset = [], [], 0
    for part in parts:
        v, f, _ = _decimate_closed(np.asarray(part.vertices, np.float64), np.asarray(part.faces, np.int64),
                                   reductions, max_volume_change)
        vs.append(v)
        fs.append(np.asarray(f, np.int64) + offset)
        offset += len(v)
    v, f = np.concatenate(vs), np.concatenate(fs)
    out = Surface(v, f, vertex_normals(v, f) if surface.normals is not None else None, name=surface.name,
                  color=surface.color, segment_id=surface.segment_id, parameters=dict(surface.parameters))
    return out, 1.0 - out.n_faces / surface.n_faces


def _surfaces(seg, outdir: Path, log, progress: bool = False) -> dict:
    """Closed surfaces of the segments (Slicer's default smoothing) to a GLB scene and a picture.
    The bone threshold is left out (its ribs would hide the scissors cut); the GLB's meshes are
    decimated as far as they stay closed and keep their volume within 1%."""
    from tqdm import tqdm

    from .surface import segment_surfaces
    from .io.meshes import write_meshes
    from .surface.render import render_surfaces_png

    ids = [s.id for s in seg if s.name not in ("body", "fat") and not s.name.startswith("bone")]
    t = time.perf_counter()
    surfaces = segment_surfaces(seg, ids, smoothing=0.5, decimation=0.0, normals=True, progress=progress)
    t_mesh = time.perf_counter() - t
    n = sum(s.n_faces for s in surfaces)
    watertight = all(s.is_watertight() for s in surfaces)
    t = time.perf_counter()
    small = []
    for s in tqdm(surfaces, desc="decimate for the GLB", unit="segment", disable=not progress, leave=False):
        small.append(bounded_decimation(s)[0])
    t_dec = time.perf_counter() - t
    glb = write_meshes(outdir / "phantom.glb", small)[0]
    png = render_surfaces_png(outdir / "surfaces.png", surfaces,
                              "gpuseg demo: closed surfaces (marching cubes + windowed-sinc smoothing 0.5); "
                              "front right ribs cut with scissors", progress=progress,
                              views=((0, 90, "anterior"), (20, 60, "front right: the cut"), (0, 180, "left")))
    n_small = sum(s.n_faces for s in small)
    vol_change = max((abs(a.volume() - b.volume()) / abs(a.volume()) for a, b in zip(surfaces, small)
                      if a.volume()), default=0.0)
    mib = glb.stat().st_size / 2**20
    log(f"  surfaces: {len(surfaces)} segments, {n} triangles in {t_mesh:.2f} s (smoothing 0.5), all watertight: "
        f"{watertight}; decimated to {n_small} triangles in {t_dec:.2f} s (each still closed, volume within "
        f"{vol_change:.2%}); wrote {glb.name} ({mib:.1f} MiB)" + (" and surfaces.png" if png else ""))
    return {"segments": len(surfaces), "triangles": n, "seconds": t_mesh, "watertight": watertight,
            "glb_triangles": n_small, "glb_watertight": all(s.is_watertight() for s in small),
            "glb_max_volume_change": vol_change, "glb_mib": mib, "decimation_seconds": t_dec,
            "glb": str(glb), "png": str(png) if png else None}


def run_demo(shape: tuple[int, int, int] = (400, 512, 512), outdir: Path = Path("gpuseg-demo"), *,
             backends: str | None = None, seed: int = 0, progress: bool = True,
             log: Callable[..., None] = print) -> dict:
    """Run the demo and return a summary (also written to ``outdir/summary.json``). Bad sizes and
    backend names fail before the output folder is made."""

    check_size(shape)
    chosen = _select_backends(backends)  # a bad name fails here, before the folder exists
    if not chosen:
        raise InvalidInputError("no usable backend (run 'gpuseg backends' to see why)")
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InvalidInputError(f"output {outdir} is a file, not a folder")
    made = not outdir.exists()
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        return _run(shape, outdir, chosen, seed, progress, log)
    except BaseException:
        if made and not any(outdir.iterdir()):  # leave no empty folder behind
            outdir.rmdir()
        raise


def _write_ct(path: Path, image: np.ndarray, geometry) -> Path:
    """The phantom CT as NRRD (int16 HU, LPS), on the segmentation's grid, so that Slicer shows the
    segments on their volume."""
    import warnings

    import nrrd

    from .io import atomic_path

    header = {"space": "left-posterior-superior", "space directions": geometry.ijk_to_world[:3, :3].T,
              "space origin": np.asarray(geometry.origin), "kinds": ["domain"] * 3, "encoding": "gzip"}
    with atomic_path(path, suffix=".nrrd") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nrrd.write(str(tmp), np.ascontiguousarray(image), header, index_order="C")
    return path


def _run(shape, outdir: Path, chosen, seed: int, progress: bool, log) -> dict:
    from tqdm import tqdm

    log(f"gpuseg demo: phantom {shape[0]} x {shape[1]} x {shape[2]} (k x j x i), backends: "
        f"{', '.join(b.name for b in chosen)}")

    t0 = time.perf_counter()
    with tqdm(total=shape[0], desc="phantom", unit="slice", disable=not progress, leave=False) as bar:
        ph = make_phantom(shape, seed=seed, progress=bar.update)
    t_phantom = time.perf_counter() - t0
    log(f"  generated the phantom in {t_phantom:.1f} s ({ph.image.nbytes / 2**20:.0f} MiB int16)")

    summary: dict = {"shape_kji": list(shape), "spacing_ijk": list(ph.geometry.spacing),
                     "phantom_seconds": t_phantom, "bone_range_hu": list(BONE), "backends": {}}
    from .io.labels import LabelTable, segmentation_from_labelmap

    table = LabelTable(names={v: n for v, (n, _, _) in PHANTOM_LABELS.items()},
                       colors={v: c for v, (_, _, c) in PHANTOM_LABELS.items()})
    reference = None
    seg = None
    for b in tqdm(chosen, desc="backends", disable=not progress, leave=False):
        row: dict = {"device": b.device_name}
        t = time.perf_counter()
        img = Image.from_numpy(ph.image, ph.geometry, backend=b)
        b.synchronize()
        row["upload_s"] = time.perf_counter() - t
        row["first_call_s"], _ = _best_of(lambda: threshold(img, *BONE), 1, b.synchronize)
        row["threshold_s"], bone = _best_of(lambda: threshold(img, *BONE), 3, b.synchronize)
        row["bone_voxels"] = bone.count()
        _, margin_mask = _best_of(lambda: margin(bone, 3.0), 1, b.synchronize)  # compile
        row["margin_3mm_s"], margin_mask = _best_of(lambda: margin(bone, 3.0), 2, b.synchronize)
        t = time.perf_counter()
        s = segmentation_from_labelmap(ph.labels, ph.geometry, backend=b, table=table)
        s.add_segment(bone.shrink_(), name="bone (threshold 200..3000 HU)", color=(1.0, 0.85, 0.2))
        row["segments_from_labels_s"] = time.perf_counter() - t
        statistics(s, img)  # compile
        row["statistics_s"], stats = _best_of(lambda: statistics(s, img), 2, b.synchronize)
        words = [bone.words_numpy(), margin_mask.words_numpy()]
        means = [r["mean"] for r in stats]
        if reference is None:
            reference, seg, stats_rows = (words, means), s, stats
            row["identical_to_first_backend"] = None
        else:
            row["identical_to_first_backend"] = bool(
                all(np.array_equal(x, y) for x, y in zip(words, reference[0])) and means == reference[1])
        summary["backends"][b.name] = row
        same = "" if row["identical_to_first_backend"] is None else (
            "  identical to " + chosen[0].name if row["identical_to_first_backend"] else "  DIFFERENT!")
        log(f"  {b.name:<7} threshold bone {row['threshold_s'] * 1e3:6.1f} ms (first call {row['first_call_s'] * 1e3:.0f} ms), "
            f"margin 3 mm {row['margin_3mm_s'] * 1e3:.0f} ms, statistics of {len(s)} segments "
            f"{row['statistics_s'] * 1e3:.0f} ms{same}")
        del img

    # editing: a brush stroke of a new "lesion" segment inside the liver (allowed only there),
    # and a scissors cut removing the front right ribs (i < ni/2 is LPS x < 0, the patient's right;
    # j < nj/3 is anterior), each one undo level
    assert seg is not None
    from .editor import Editor, Masking

    bone_seg = seg.segment(len(seg) - 1)
    bone = bone_seg.mask.to_numpy()
    ed = Editor(seg)
    g = ph.geometry
    nk, nj, ni = g.shape
    lesion = seg.add_segment(name="lesion (brush)", color=(0.2, 0.9, 0.3))
    ed.masking = Masking("inside", "liver", overwrite="allow_overlap")
    stroke = g.ijk_to_world_points([[0.30 * ni, 0.45 * nj, 0.50 * nk], [0.36 * ni, 0.50 * nj, 0.52 * nk],
                                    [0.40 * ni, 0.46 * nj, 0.54 * nk]])
    t = time.perf_counter()
    n_paint = ed.paint(lesion.id, stroke, 20.0)
    t_paint = time.perf_counter() - t
    ed.masking = Masking()
    t = time.perf_counter()
    n_cut = ed.scissors("ribs", g.ijk_to_world_points([[0.0, 0.0, nk / 2], [ni / 2, nj / 3, nk / 2]]),
                        shape="rectangle", operation="erase_inside", extrusion="unlimited")
    t_cut = time.perf_counter() - t
    summary["editing"] = {"brush_voxels": n_paint, "brush_s": t_paint, "scissors_voxels": n_cut,
                          "scissors_s": t_cut, "undo_bytes": ed.undo_memory}
    log(f"  editing: a 20 mm brush stroke inside the liver ({n_paint} voxels, {t_paint * 1e3:.1f} ms), a scissors "
        f"cut of the patient's front right ribs ({n_cut} voxels, {t_cut * 1e3:.1f} ms); undo holds {ed.undo_memory} bytes")

    summary["grow"] = _grow(ph, seg, log)

    # outputs
    from .io.segmentation_io import write_segmentation

    t = time.perf_counter()
    out_seg = write_segmentation(seg, outdir / "phantom.seg.nrrd")
    out_ct = _write_ct(outdir / "phantom_ct.nrrd", ph.image, ph.geometry)
    out_h5 = write_segmentation(seg, outdir / "phantom.h5")
    summary["outputs"] = {"segmentation_seg_nrrd": str(out_seg), "ct_nrrd": str(out_ct),
                          "segmentation_h5": str(out_h5)}
    # statistics of the segmentation as written: with the lesion, the cut ribs and the grown aorta
    stats_rows = statistics(seg, Image.from_numpy(ph.image, ph.geometry, backend=seg.backend))
    from .io import atomic_path

    keys = ["segment", "voxel_count", "volume_cm3", "mean", "stdev", "median", "min", "max"]
    lines = [",".join(keys)]
    for r in stats_rows:
        lines.append(",".join("" if r.get(k) is None else (f"{r[k]:.4f}" if isinstance(r[k], float) else
                                                           _csv_cell(str(r[k]))) for k in keys))
    with atomic_path(outdir / "statistics.csv") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    summary["outputs"]["statistics_csv"] = str(outdir / "statistics.csv")
    truth_bone = np.isin(ph.labels, [9, 11, 12])
    inter = int(np.count_nonzero(bone & truth_bone))
    dice = 2 * inter / max(1, int(bone.sum()) + int(truth_bone.sum()))
    summary["bone_dice_vs_truth"] = dice
    # the segmentation as edited: the bone threshold underneath, then the organs, the cut ribs and the lesion
    overlays = {"bone (threshold)": (bone, (1.0, 0.85, 0.2))}
    overlays.update({s.name: (s.mask.to_numpy(), s.color) for s in seg
                     if s.name not in ("body", "fat") and not s.name.startswith("bone")})
    png = save_overview_png(outdir / "overview.png", ph.image, overlays, ph.geometry.spacing_kji,
                            f"gpuseg demo: phantom segments, bone = HU in [{BONE[0]:g}, {BONE[1]:g}], a brush "
                            "stroke in the liver, front right ribs cut with scissors")
    if png is not None:
        summary["outputs"]["overview_png"] = str(png)
    log(f"  bone vs phantom truth: Dice {dice:.3f}; wrote {len(seg)} segments to {out_seg.name} and "
        f"{out_h5.name}, the CT to {out_ct.name}, statistics.csv and overview.png in {outdir} ({time.perf_counter() - t:.1f} s)")
    summary["surfaces"] = _surfaces(seg, outdir, log, progress)
    summary["outputs"]["surfaces_glb"] = summary["surfaces"]["glb"]
    if summary["surfaces"].get("png"):
        summary["outputs"]["surfaces_png"] = summary["surfaces"]["png"]
    summary["labels"] = {str(v): n for v, (n, _, _) in PHANTOM_LABELS.items()}
    with open(outdir / "summary.json", "w") as f:
        json.dump(summary, f, indent=2)
    return summary
