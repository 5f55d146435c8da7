"""Pictures of measurement tables: ``gpuseg stats --plot`` and ``gpuseg compare --plot``.

Both take the rows the commands print (:func:`gpuseg.statistics`,
:func:`gpuseg.compare_segmentations`) and draw one horizontal bar per segment, so that 117
TotalSegmentator classes stay readable (the figure grows with the number of segments). The
figure is drawn with matplotlib's object API on an Agg canvas (no pyplot state, no display
needed) and written atomically; the format follows the extension (.png, .svg, .pdf).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from .errors import InvalidInputError
from .io import atomic_path

__all__ = ["plot_statistics", "plot_comparison", "statistics_figure", "comparison_figure", "PLOT_FORMATS", "BOX_PERCENTILES"]

PLOT_FORMATS = (".png", ".svg", ".pdf")
# The box of an intensity box plot: quartiles, whiskers at the 5th and 95th percentiles, the
# median inside, the minimum and maximum as points (the percentiles gpuseg stats computes).
BOX_PERCENTILES = (5.0, 25.0, 75.0, 95.0)


def _figure(rows: int, panels: int):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise InvalidInputError("--plot needs matplotlib (pip install 'gpuseg[plot]')") from exc
    fig = Figure(figsize=(5.0 * panels + 2.0, max(2.5, 0.28 * rows + 1.4)), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, panels, sharey=True, squeeze=False)[0]


def _check_format(path: str | Path) -> None:
    if Path(path).suffix.lower() not in PLOT_FORMATS:
        raise InvalidInputError(f"{path}: unsupported picture format; expected {', '.join(PLOT_FORMATS)}")


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lower()[1:], dpi=120)
    return path


def _label(row: Mapping) -> str:
    name = str(row.get("segment") or row.get("segment_reference") or row.get("segment_id") or "?")
    return name if len(name) <= 32 else name[:31] + "\u2026"


def plot_statistics(rows: Sequence[Mapping], path: str | Path, *,
                    colors: Mapping[str, Sequence[float]] | None = None, title: str = "") -> Path:
    """Volumes (cm³) as bars and, where the rows have intensities, a box plot per segment,
    written to ``path``.

    ``colors`` maps a segment id to its RGB colour (0..1), used for its bar and box. A row
    without intensity statistics (an empty segment, or no image) has no box.
    """
    _check_format(path)
    return _save(statistics_figure(rows, colors=colors, title=title), path)


def statistics_figure(rows: Sequence[Mapping], *, colors: Mapping[str, Sequence[float]] | None = None,
                      title: str = ""):
    """The matplotlib Figure :func:`plot_statistics` writes."""
    if not rows:
        raise InvalidInputError("nothing to plot: no segments")
    has_intensity = any(r.get("median") is not None for r in rows)
    if has_intensity:
        missing = [k for k in ("percentile_25", "percentile_75", "percentile_05", "percentile_95")
                   if not any(k in r for r in rows)]
        if missing:
            raise InvalidInputError(f"the box plot needs the percentiles {missing} in the statistics rows")
    fig, axes = _figure(len(rows), 2 if has_intensity else 1)
    ys = list(range(len(rows)))[::-1]
    colors = colors or {}
    face = [tuple(colors.get(r.get("segment_id"), (0.35, 0.55, 0.8)))[:3] for r in rows]
    vol = axes[0]
    values = [float(r.get("volume_cm3") or 0.0) for r in rows]
    vol.barh(ys, values, color=face, edgecolor="0.3", linewidth=0.5)
    vol.set_yticks(ys, [_label(r) for r in rows], fontsize=8)
    vol.set_xlabel("volume (cm³)")
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 1000:
        vol.set_xscale("log")  # organs and small structures together: a linear axis hides the small ones
    vol.grid(axis="x", alpha=0.3)
    if has_intensity:
        stats, where, boxface = [], [], []
        for y, r, c in zip(ys, rows, face):
            if r.get("median") is None:
                continue
            stats.append({"med": r["median"], "q1": r["percentile_25"], "q3": r["percentile_75"],
                          "whislo": r["percentile_05"], "whishi": r["percentile_95"], "mean": r.get("mean"),
                          "fliers": [r["min"], r["max"]], "label": ""})
            where.append(y)
            boxface.append(c)
        box = axes[1]
        art = box.bxp(stats, positions=where, orientation="horizontal", widths=0.6, patch_artist=True, showmeans=True, manage_ticks=False,
                      flierprops={"marker": ".", "markersize": 3}, meanprops={"marker": "|", "markeredgecolor": "k"})
        for patch, c in zip(art["boxes"], boxface):
            patch.set_facecolor(c)
        box.set_xlabel("intensity (box: quartiles; whiskers: 5th-95th percentile; dots: min, max)")
        box.grid(axis="x", alpha=0.3)
    vol.set_ylim(-0.7, len(rows) - 0.3)
    fig.suptitle(title or f"Segment statistics ({len(rows)} segments)")
    return fig


def plot_comparison(rows: Sequence[Mapping], path: str | Path, *, title: str = "") -> Path:
    """Dice and the 95th-percentile Hausdorff distance (mm) per segment pair, written to
    ``path``; a pair missing on one side is marked "unmatched", one without distances (an
    empty side) has no HD95 bar."""
    _check_format(path)
    return _save(comparison_figure(rows, title=title), path)


def comparison_figure(rows: Sequence[Mapping], *, title: str = ""):
    """The matplotlib Figure :func:`plot_comparison` writes."""
    if not rows:
        raise InvalidInputError("nothing to plot: no segment pairs")
    fig, (dice_ax, hd_ax) = _figure(len(rows), 2)
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows):
        matched = r.get("in_segmentation", True) and r.get("in_reference", True)
        d = r.get("dice")
        if not matched:
            dice_ax.text(0.01, y, "unmatched", va="center", fontsize=7, color="0.4")
        elif d is not None:
            dice_ax.barh(y, d, color=(0.2, 0.6 * d + 0.2, 0.3), edgecolor="0.3", linewidth=0.5)
            dice_ax.text(min(d, 0.88) + 0.01, y, f"{d:.3f}", va="center", fontsize=7)
        h = r.get("hausdorff_95_mm")
        if h is not None and math.isfinite(h):
            hd_ax.barh(y, h, color=(0.8, 0.45, 0.2), edgecolor="0.3", linewidth=0.5)
            hd_ax.text(h, y, f" {h:.3g}", va="center", fontsize=7)
    dice_ax.set_xlim(0, 1)
    dice_ax.set_xlabel("Dice")
    dice_ax.set_yticks(ys, [_label(r) for r in rows], fontsize=8)
    dice_ax.set_ylim(-0.7, len(rows) - 0.3)
    hd_ax.set_xlabel("Hausdorff distance, 95th percentile (mm)")
    for ax in (dice_ax, hd_ax):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title or f"Segment comparison ({len(rows)} pairs)")
    return fig
