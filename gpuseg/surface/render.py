"""Offscreen pictures of surfaces (matplotlib, no display or OpenGL needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .mesh import Surface


def _lps_to_ras(v: np.ndarray) -> np.ndarray:
    return v * np.array([-1.0, -1.0, 1.0])


def render_surfaces_png(path, surfaces: Sequence[Surface], title: str = "", *,
                        views: Sequence[tuple[float, float, str]] = ((0, 90, "anterior"), (0, 180, "left"),
                                                                     (30, 120, "oblique")),
                        max_triangles: int = 150_000, dpi: int = 80, progress: bool = False) -> Path | None:
    """Render surfaces from a few viewpoints into one PNG (flat Lambert shading, segment colours).

    Views are (elevation, azimuth, name) of the camera in RAS: azimuth 90 looks from anterior
    (the patient's right on the viewer's left, as radiologists look), 180 from the left. Surfaces with more triangles than their share of ``max_triangles`` are
    decimated for the picture only. The legend stands beside the views. ``progress`` shows a
    bar (unit: view). Returns the path, or None without matplotlib.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    except ImportError:  # pragma: no cover - matplotlib is in the [bench]/[all] extras
        return None
    from ..io import atomic_path

    shown = [s for s in surfaces if not s.is_empty()]
    total = sum(s.n_faces for s in shown)
    polys, colors = [], []
    light = np.array([0.3, -0.8, 0.5])
    light /= np.linalg.norm(light)
    for s in shown:
        v, f = s.vertices.astype(np.float64), s.faces
        if total > max_triangles and s.n_faces > 200:
            from .postprocess import decimate

            keep = max(200, int(max_triangles * s.n_faces / total))
            v, f = decimate(v, f, min(0.99, 1.0 - keep / s.n_faces))
        tri = _lps_to_ras(v)[f]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        shade = 0.35 + 0.65 * np.abs(n @ light)
        polys.append(tri)
        colors.append(np.clip(np.asarray(s.color)[None, :] * shade[:, None], 0, 1))
    from tqdm import tqdm

    fig = plt.figure(figsize=(5 * len(views) + 3, 5.6))
    if polys:
        allv = np.concatenate([p.reshape(-1, 3) for p in polys])
        lo, hi = allv.min(0), allv.max(0)
        centre, half = (lo + hi) / 2, (hi - lo).max() / 2
    bar = tqdm(total=len(views) + 1, desc="render surfaces.png", unit="view", disable=not progress, leave=False)
    for n_view, (elev, azim, name) in enumerate(views):
        ax = fig.add_subplot(1, len(views), n_view + 1, projection="3d")
        if polys:  # one collection, so that matplotlib depth-sorts triangles across segments
            ax.add_collection3d(Poly3DCollection(np.concatenate(polys), facecolors=np.concatenate(colors),
                                                 edgecolors="none", linewidths=0))
        if polys:
            for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre):
                setter(c - half, c + half)
        try:
            ax.set_box_aspect((1, 1, 1), zoom=1.6)
        except TypeError:  # pragma: no cover - matplotlib < 3.6
            ax.set_box_aspect((1, 1, 1))
        ax.view_init(elev=elev, azim=azim)
        ax.set_title(name)
        ax.axis("off")
        bar.update(1)
    handles = [plt.Rectangle((0, 0), 1, 1, color=s.color) for s in shown]
    right = 1.0 - 3.0 / (5 * len(views) + 3)
    if handles:  # beside the views, never over them
        fig.legend(handles, [s.name for s in shown], loc="center right", ncol=1, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, right, 0.95))
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")  # the drawing (depth sort) happens here
    bar.update(1)
    bar.close()
    plt.close(fig)
    return Path(path)
