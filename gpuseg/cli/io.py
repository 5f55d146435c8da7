"""Segmentation file subcommands: info and convert."""

from __future__ import annotations

import argparse
import time

from . import add_backend_arg, print_json
from ._checks import add_quiet_arg, check_output, progress


def register(sub) -> None:
    p = sub.add_parser("info", help="geometry, layers and segment table of a segmentation file")
    p.add_argument("segmentation", help=".seg.nrrd, .nrrd, .nii, .nii.gz, .h5 or .dcm (DICOM SEG)")
    p.add_argument("--labels", help="label table (JSON, CSV or Slicer color table) for labelmap inputs; "
                                    "TotalSegmentator's classes get their SNOMED-CT terminology and colours")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_backend_arg(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="convert a segmentation between formats (chosen by extension)")
    p.add_argument("input", help=".seg.nrrd, .nrrd, .nii, .nii.gz, .h5 or .dcm (DICOM SEG)")
    p.add_argument("output", help=".seg.nrrd, .nrrd, .nii.gz (multilabel), .h5, .dcm (DICOM SEG, needs "
                                  "--reference) or a folder (one .nii.gz per segment)")
    p.add_argument("--labels", help="label table (JSON, CSV or Slicer color table) naming the labels of a labelmap "
                                    "input; TotalSegmentator's classes (e.g. its total_classes.json) get their "
                                    "SNOMED-CT terminology and colours, as Slicer's TotalSegmentator extension "
                                    "shows them")
    p.add_argument("--reference", help="image (or DICOM folder) whose grid the segmentation must match (checked, "
                                       "not resampled); for a .dcm (DICOM SEG) output, the DICOM series it refers to")
    p.add_argument("--overlap", choices=["later", "earlier", "error"], default="later",
                   help="multilabel NIfTI output: which segment wins where segments overlap (default later), "
                        "or error: refuse to write overlapping segments")
    add_quiet_arg(p)
    add_backend_arg(p)
    p.set_defaults(func=cmd_convert)


def describe(seg) -> dict:
    """A JSON-able description of a segmentation: geometry, layers and a segment table."""
    from ..io.labels import collapse_layers

    g = seg.geometry
    layers, dtype = collapse_layers(seg, g.extent) if len(seg) else ([], None)
    where = {s.id: (li, v) for li, lay in enumerate(layers) for s, v in lay.members}
    rows = []
    for s in seg:
        ext = s.mask.extent()
        li, v = where.get(s.id, (None, None))
        rows.append({"id": s.id, "name": s.name, "color": [round(c, 6) for c in s.color], "layer": li,
                     "label": v, "voxels": s.mask.count(), "extent_ijk": list(ext.to_slicer()),
                     "visible": s.visible, "terminology": s.terminology})
    return {"geometry": g.to_dict(), "segments": rows, "layers": len(layers),
            "label_type": str(dtype) if dtype is not None else None,
            "resident_bytes": seg.nbytes, "backend": seg.backend.name,
            "conversion_parameters": {k: v for k, (v, _) in seg.conversion_parameters.items()}}


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with an ellipsis when it is longer (--json has it whole)."""
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def cmd_info(args: argparse.Namespace) -> int:
    from .. import read_segmentation

    seg = read_segmentation(args.segmentation, backend=args.backend, labels=args.labels)
    info = describe(seg)
    if args.json:
        print_json(info)
        return 0
    g = seg.geometry
    print(f"{args.segmentation}")
    print(f"  grid      {g.shape[2]} x {g.shape[1]} x {g.shape[0]} (i x j x k), spacing "
          f"{' x '.join(f'{v:g}' for v in g.spacing)} mm, origin ({', '.join(f'{v:g}' for v in g.origin)}) LPS")
    print(f"  segments  {len(seg)} in {info['layers']} layer(s) when saved as .seg.nrrd; "
          f"{info['resident_bytes'] / 2**20:.2f} MiB resident")
    print(f"  {'#':>3}  {'id':<24} {'name':<28} {'color':<20} {'layer/label':>11} {'voxels':>10}  extent (i0 i1 j0 j1 k0 k1)")
    for n, r in enumerate(info["segments"]):
        color = " ".join(f"{c:.3f}" for c in r["color"])
        ll = f"{r['layer']}/{r['label']}" if r["layer"] is not None else "-"
        ext = " ".join(str(v) for v in r["extent_ijk"])
        print(f"  {n:>3}  {_fit(r['id'], 24):<24} {_fit(r['name'], 28):<28} {color:<20} {ll:>11} "
              f"{r['voxels']:>10}  {ext}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .. import read_segmentation, write_segmentation
    from ..errors import InvalidInputError
    from ..io.images import read_image_geometry
    from ..io.segmentation_io import segmentation_format

    t0 = time.perf_counter()
    check_output(args.output, "segmentation", "output")
    in_fmt = segmentation_format(args.input)
    out_fmt = segmentation_format(args.output, for_writing=True)
    if out_fmt == "dicom-seg" and not args.reference:
        raise InvalidInputError("a .dcm (DICOM SEG) output needs --reference DICOM_FOLDER, the series it was drawn on")
    with progress(args, total=3, desc="convert", unit="step") as bar:
        bar.set_postfix_str(f"reading {args.input}")
        ref = read_image_geometry(args.reference) if args.reference else None
        seg = read_segmentation(args.input, backend=args.backend, labels=args.labels,
                                reference=ref if in_fmt == "dicom-seg" else None)
        if ref is not None:
            seg.geometry.check_same_grid(ref, "segmentation and reference image")
        bar.update(1)
        options = {"overlap": args.overlap} if out_fmt == "nifti" else {}
        if out_fmt == "nifti" and args.overlap == "error" and len(seg) > 1:
            from ..io.labels import collapse_layers

            bar.set_postfix_str("checking overlaps")
            if len(collapse_layers(seg, seg.geometry.extent)[0]) > 1:
                raise InvalidInputError(f"{args.input}: segments overlap, and a multilabel NIfTI cannot hold "
                                        "overlapping segments; use --overlap later or --overlap earlier, a folder "
                                        "output (one .nii.gz per segment), or .seg.nrrd")
        bar.update(1)
        if out_fmt == "dicom-seg":
            options["reference"] = args.reference
        bar.set_postfix_str(f"writing {len(seg)} segments")
        out = write_segmentation(seg, args.output, **options)
        bar.update(1)
    print(f"wrote {out}: {len(seg)} segments in {time.perf_counter() - t0:.2f} s")
    return 0
