"""``gpuseg stats --plot`` and ``compare --plot``: the figures show the rows' numbers."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import gpuseg
from gpuseg.cli import main
from gpuseg.errors import InvalidInputError
from gpuseg.plots import comparison_figure, plot_comparison, plot_statistics, statistics_figure

PNG = b"\x89PNG\r\n\x1a\n"


def _rows():
    rng = np.random.default_rng(3)
    rows = []
    for n in range(5):
        v = np.sort(rng.normal(40 * n, 10 + n, 200))
        p = {q: float(np.percentile(v, q)) for q in (5, 25, 50, 75, 95)}
        rows.append({"segment_id": f"s{n}", "segment": f"organ {n}", "volume_cm3": 1.5 * (n + 1),
                     "median": p[50], "percentile_05": p[5], "percentile_25": p[25], "percentile_75": p[75],
                     "percentile_95": p[95], "min": float(v[0]), "max": float(v[-1]), "mean": float(v.mean())})
    rows.append({"segment_id": "e", "segment": "empty", "volume_cm3": 0.0, "median": None})
    return rows


def test_statistics_figure_draws_each_volume_and_box():
    rows = _rows()
    fig = statistics_figure(rows, colors={"s2": (1.0, 0.0, 0.0)})
    vol, box = fig.axes[:2]
    bars = sorted(vol.patches, key=lambda b: -b.get_y())  # first row on top
    assert [b.get_width() for b in bars] == pytest.approx([r["volume_cm3"] for r in rows])
    assert bars[2].get_facecolor()[:3] == (1.0, 0.0, 0.0)
    assert [t.get_text() for t in vol.get_yticklabels()] == [r["segment"] for r in rows]
    # one box per segment with intensities (not the empty one), its quartiles and median as given
    medians = sorted(((ln.get_ydata()[0], ln.get_xdata()[0]) for ln in box.lines
                      if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == ln.get_xdata()[1]
                      and any(abs(ln.get_xdata()[0] - r["median"]) < 1e-9 for r in rows[:5])), reverse=True)
    assert [m for _, m in medians] == pytest.approx([r["median"] for r in rows[:5]])


def test_comparison_figure_draws_dice_and_hd95_and_marks_unmatched():
    rows = [{"segment": "a", "dice": 0.9, "hausdorff_95_mm": 2.5},
            {"segment": "b", "dice": 0.5, "hausdorff_95_mm": 7.0},
            {"segment": "c", "dice": None, "hausdorff_95_mm": None, "in_reference": False}]
    fig = comparison_figure(rows)
    dice_ax, hd_ax = fig.axes[:2]
    assert sorted(b.get_width() for b in dice_ax.patches) == pytest.approx([0.5, 0.9])
    assert sorted(b.get_width() for b in hd_ax.patches) == pytest.approx([2.5, 7.0])
    assert any(t.get_text() == "unmatched" for t in dice_ax.texts)


def test_plot_errors(tmp_path, monkeypatch):
    with pytest.raises(InvalidInputError, match="picture format"):
        plot_statistics(_rows(), tmp_path / "x.jpg")
    with pytest.raises(InvalidInputError, match="no segments"):
        plot_statistics([], tmp_path / "x.png")
    bad = [dict(_rows()[0])]
    del bad[0]["percentile_25"]
    with pytest.raises(InvalidInputError, match="percentile_25"):
        plot_statistics(bad, tmp_path / "x.png")
    with pytest.raises(InvalidInputError, match="no segment pairs"):
        plot_comparison([], tmp_path / "x.png")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # matplotlib not installed
    with pytest.raises(InvalidInputError, match=r"gpuseg\[plot\]"):
        plot_comparison([{"segment": "a", "dice": 1.0}], tmp_path / "x.png")
    assert not list(tmp_path.iterdir())  # nothing half-written


def _files(tmp_path):
    g = gpuseg.ImageGeometry((6, 17, 19), spacing=(0.8, 0.8, 2.0))
    a = np.zeros(g.shape, np.uint8)
    a[1:5, 2:12, 3:15] = 1
    a[2:4, 12:16, 4:9] = 2
    b = a.copy()
    b[1:5, 2:12, 13:15] = 0
    img = np.random.default_rng(0).integers(-100, 100, g.shape).astype(np.int16)
    for name, arr in (("a", a), ("b", b)):
        gpuseg.write_segmentation(gpuseg.segmentation_from_labelmap(arr, g, backend="cpu"), tmp_path / f"{name}.seg.nrrd")
    gpuseg.write_labelmap(tmp_path / "img.nrrd", img, g)
    return tmp_path / "a.seg.nrrd", tmp_path / "b.seg.nrrd", tmp_path / "img.nrrd"


def test_cli_plots(tmp_path, capsys):
    a, b, img = _files(tmp_path)
    assert main(["stats", str(a), "--image", str(img), "--plot", str(tmp_path / "s.png"), "--json", "-q",
                 "--backend", "cpu"]) == 0
    assert (tmp_path / "s.png").read_bytes().startswith(PNG)
    assert main(["compare", str(a), str(b), "--plot", str(tmp_path / "c.svg"), "-q", "--backend", "cpu"]) == 0
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()[:2000]
    capsys.readouterr()
    assert main(["stats", str(a), "--plot", str(tmp_path / "s.bmp")]) == 2  # checked before any work
    assert ".png, .svg or .pdf" in capsys.readouterr().err
