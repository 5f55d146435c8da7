"""Generate gpuseg/data/totalsegmentator.json from Slicer's TotalSegmentator extension.

The extension (https://github.com/lassoan/SlicerTotalSegmentator, Apache-2.0) ships two data
files: ``TotalSegmentator/Resources/totalsegmentator_snomed_mapping.csv`` (TotalSegmentator
class -> SNOMED-CT category, type, type modifier, anatomic region and region modifier, and a
colour) and ``TotalSegmentator/Resources/SegmentationCategoryTypeModifier-TotalSegmentator.term.json``
(a terminology context with recommended display colours and Slicer labels). This script reads
both from a git directory of that repository and writes, for every class, the terminology
entry as Slicer stores it in a segment's ``TerminologyEntry`` tag, the codes, the colour Slicer
shows and the Slicer label.

The extension names the context "Segmentation category and type - Total Segmentator" when the
type is one of that context's types, else "... - DICOM master list"; the colour comes from the
context's type (or type modifier) when it is there, as Slicer shows it, else from the CSV.

    python tools/make_totalseg_terminology.py /path/to/SlicerTotalSegmentator.git [commit]
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

CSV_PATH = "TotalSegmentator/Resources/totalsegmentator_snomed_mapping.csv"
TERM_PATH = "TotalSegmentator/Resources/SegmentationCategoryTypeModifier-TotalSegmentator.term.json"
TS_CONTEXT = "Segmentation category and type - Total Segmentator"
DICOM_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
OUT = Path(__file__).resolve().parents[1] / "gpuseg" / "data" / "totalsegmentator.json"


def git_show(git_dir: str, commit: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, "show", f"{commit}:{path}"], check=True,
                          capture_output=True, text=True).stdout


def code(row: dict, field: str) -> list[str] | None:
    c = [row.get(f"{field}_{k}", "") or "" for k in ("CodingScheme", "CodeValue", "CodeMeaning")]
    return c if c[0] and c[1] else None


def main(git_dir: str, commit: str = "HEAD") -> None:
    sha = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", commit], check=True, capture_output=True,
                         text=True).stdout.strip()
    rows = list(csv.DictReader(io.StringIO(git_show(git_dir, sha, CSV_PATH))))
    context = json.loads(git_show(git_dir, sha, TERM_PATH))
    types = {}
    for cat in context["SegmentationCodes"]["Category"]:
        for t in cat.get("Type", []):
            types[(cat["CodingSchemeDesignator"], cat["CodeValue"], t["CodingSchemeDesignator"], t["CodeValue"])] = t
    classes = {}
    for r in rows:
        name = r["Name"].strip()
        if not name:
            continue
        cat, typ, mod, reg, regmod = (code(r, f) for f in ("Category", "Type", "TypeModifier", "Region",
                                                            "RegionModifier"))
        t = types.get((cat[0], cat[1], typ[0], typ[1])) if cat and typ else None
        color = label = None
        if t is not None:
            color, label = t.get("recommendedDisplayRGBValue"), t.get("3dSlicerLabel")
            for m in t.get("Modifier", []) if mod else []:
                if m["CodeValue"] == mod[1] and m["CodingSchemeDesignator"] == mod[0]:
                    mc = m.get("recommendedDisplayRGBValue")
                    color = mc if mc and mc != [127, 127, 127] else color
                    label = m.get("3dSlicerLabel") or f"{label or typ[2]} {mod[2].lower()}"
            label = label or typ[2]
        if color is None and r.get("Color_R"):
            color = [int(r["Color_R"]), int(r["Color_G"]), int(r["Color_B"])]

        def s(c):
            return "^".join(c) if c else "^^"

        entry = "~".join([TS_CONTEXT if t is not None else DICOM_CONTEXT, s(cat), s(typ), s(mod), ANATOMIC_CONTEXT,
                          s(reg), s(regmod)])
        classes[name] = {"terminology": entry, "category": cat, "type": typ, "type_modifier": mod,
                         "region": reg, "region_modifier": regmod,
                         "color_rgb255": color, "slicer_label": label}
    out = {
        "source": {
            "repository": "https://github.com/lassoan/SlicerTotalSegmentator",
            "commit": sha,
            "files": [CSV_PATH, TERM_PATH],
            "license": "Apache-2.0 (the repository's LICENSE)",
            "generated_by": "tools/make_totalseg_terminology.py",
        },
        "classes": classes,
    }
    OUT.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
    print(f"wrote {OUT}: {len(classes)} classes, {sum(c['color_rgb255'] is not None for c in classes.values())} "
          "with a colour")


if __name__ == "__main__":
    main(*sys.argv[1:])
