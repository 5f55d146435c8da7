"""Check a `gpuseg demo` output folder the way 3D Slicer and other tools would read it.

    python ci/check_demo.py DEMO_FOLDER

- phantom.seg.nrrd read with slicerio (Slicer's own reader): the named segments, their colours
  and terminology, and the geometry;
- phantom_ct.nrrd read with pynrrd: an int16 CT in HU on exactly the segmentation's grid (same
  sizes, space directions and origin, LPS), so Slicer shows the segments on their volume;
- statistics.csv lists every segment of the segmentation, the lesion and the grown aorta included;
- phantom.glb read with trimesh: one named mesh per surface, each closed;
- summary.json: the backends agree bit for bit.
Exits 1 with the reasons when anything is wrong.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np


def check(folder: Path) -> list[str]:
    import nrrd
    import slicerio

    bad: list[str] = []
    seg_path, ct_path = folder / "phantom.seg.nrrd", folder / "phantom_ct.nrrd"
    for name in ("phantom.seg.nrrd", "phantom_ct.nrrd", "phantom.h5", "statistics.csv", "overview.png",
                 "phantom.glb", "surfaces.png", "summary.json"):
        if not (folder / name).is_file():
            bad.append(f"{name} is missing")
    if bad:
        return bad
    seg = slicerio.read_segmentation(str(seg_path))
    names = [s["name"] for s in seg["segments"]]
    for want in ("liver", "ribs", "lesion (brush)", "aorta (grown from seeds)"):
        if want not in names:
            bad.append(f"phantom.seg.nrrd has no segment {want!r} (has {names})")
    colors = {tuple(np.round(s["color"], 3)) for s in seg["segments"]}
    if len(colors) < len(names) - 1:
        bad.append(f"phantom.seg.nrrd: {len(names)} segments share {len(colors)} colours")
    ct, header = nrrd.read(str(ct_path), index_order="C")
    if ct.dtype != np.int16 or not (-1024 <= ct.min() and ct.max() <= 3071):
        bad.append(f"phantom_ct.nrrd: expected int16 HU, got {ct.dtype} in [{ct.min()}, {ct.max()}]")
    if header.get("space") != "left-posterior-superior":
        bad.append(f"phantom_ct.nrrd: space {header.get('space')!r}, expected left-posterior-superior")
    voxels = seg["voxels"]
    seg_ijk = voxels.shape[-3:] if voxels.ndim == 4 else voxels.shape  # slicerio gives (i, j, k)
    if tuple(ct.shape[::-1]) != tuple(seg_ijk):
        bad.append(f"CT grid {ct.shape[::-1]} (i, j, k) is not the segmentation's {seg_ijk}")
    ijk_to_lps = np.asarray(seg["ijkToLPS"], float)
    if not np.allclose(np.asarray(header["space directions"], float).T, ijk_to_lps[:3, :3], atol=1e-5):
        bad.append("CT and segmentation have different space directions")
    if not np.allclose(np.asarray(header["space origin"], float), ijk_to_lps[:3, 3], atol=1e-5):
        bad.append("CT and segmentation have different origins")
    with open(folder / "statistics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if [r["segment"] for r in rows] != names:
        bad.append(f"statistics.csv lists {[r['segment'] for r in rows]}, the segmentation {names}")
    for r in rows:
        if r["segment"] == "lesion (brush)" and not int(r["voxel_count"]) > 0:
            bad.append("statistics.csv: the lesion is empty")
    try:
        import trimesh

        scene = trimesh.load(str(folder / "phantom.glb"), force="scene")
        open_meshes = [n for n, g in scene.geometry.items() if not g.is_watertight]
        if open_meshes:
            bad.append(f"phantom.glb: open meshes {open_meshes}")
    except ImportError:  # pragma: no cover - in the [mesh] extra
        pass
    summary = json.loads((folder / "summary.json").read_text())
    for b, row in summary["backends"].items():
        if row["identical_to_first_backend"] is False:
            bad.append(f"backend {b} differs from the first backend")
    return bad


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    folder = Path(argv[0])
    bad = check(folder)
    if bad:
        print(f"demo output in {folder} is wrong:", *bad, sep="\n  ", file=sys.stderr)
        return 1
    print(f"demo output in {folder}: segmentation (slicerio), CT on its grid (pynrrd), statistics, closed GLB meshes "
          "and identical backends checked")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
