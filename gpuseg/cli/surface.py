"""Closed surfaces: ``gpuseg surface`` (export meshes) and ``gpuseg import-mesh`` (meshes to segments)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import add_backend_arg, print_json
from ._checks import add_quiet_arg, check_output, progress, show_progress


def register(sub) -> None:
    p = sub.add_parser("surface", help="closed surfaces of segments to STL/OBJ/PLY/VTP/GLB")
    p.add_argument("segmentation", help="segmentation file (.seg.nrrd, .h5, .nii.gz labelmap, ...)")
    p.add_argument("-o", "--output", required=True,
                   help="output mesh file: .stl .obj .ply .vtp .glb (one scene; see --per-segment)")
    p.add_argument("--segment", action="append", help="only this segment (name or id); repeatable")
    p.add_argument("--smoothing", type=float, default=None,
                   help="smoothing factor 0..1 (Slicer's; negative = off; default: the file's conversion "
                        "parameter, else 0.5)")
    p.add_argument("--decimation", type=float, default=None,
                   help="fraction of triangles to remove, 0 <= f < 1 (default: the file's, else 0)")
    p.add_argument("--method", default=None, choices=["flying-edges", "surface-nets"],
                   help="labelmap-to-surface method (default: the file's conversion parameter, else flying-edges)")
    p.add_argument("--joint-smoothing", action="store_true",
                   help="surface nets: smooth all segments as one mesh, so touching segments share boundaries")
    p.add_argument("--no-normals", action="store_true", help="do not compute vertex normals")
    p.add_argument("--per-segment", action="store_true", help="one file per segment: OUT_<name>.<ext>")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("-q", "--quiet", "--no-progress", dest="quiet", action="store_true",
                   help="no progress bar (there is none either when the standard error is not a terminal)")
    add_backend_arg(p)
    p.set_defaults(func=cmd_surface)

    p = sub.add_parser("import-mesh", help="closed meshes (STL/OBJ/PLY/VTP) to segments of a segmentation")
    p.add_argument("meshes", nargs="+", help="closed mesh files, in world LPS mm (add --ras if they are RAS)")
    p.add_argument("--reference",
                   help="image (NIfTI, NRRD, DICOM folder) whose grid the segments get, or a .seg.nrrd/.h5 "
                        "segmentation to add them to; without it, Slicer's default grid for the meshes (about "
                        "250^3 voxels over their bounds, RAS axes)")
    p.add_argument("--oversampling", default=None, metavar="F|A",
                   help="Slicer's 'Oversampling factor' for the rasterization: a number, or A (automatic, from "
                        "each mesh's size and complexity); the output grid is the reference's oversampled, over "
                        "the meshes' bounds (the reference's segments are resampled onto it)")
    p.add_argument("-o", "--output", required=True, help="output segmentation (.seg.nrrd, .h5, .nii.gz)")
    p.add_argument("--ras", action="store_true", help="mesh coordinates are RAS (Slicer's models), not LPS")
    p.add_argument("--repair", action="store_true",
                   help="merge duplicate vertices and fix winding before the closed-mesh check")
    p.add_argument("--crop", action="store_true",
                   help="crop meshes that reach past the reference grid (Slicer's 'Crop to reference image "
                        "geometry' = 1; without it such a mesh is an error)")
    add_quiet_arg(p)
    add_backend_arg(p)
    p.set_defaults(func=cmd_import_mesh)


def cmd_surface(args: argparse.Namespace) -> int:
    from .. import read_segmentation
    from ..surface import segment_surfaces
    from ..io.meshes import write_meshes

    check_output(args.output, "mesh")  # before meshing every segment
    seg = read_segmentation(args.segmentation, backend=args.backend)
    t = time.perf_counter()
    surfaces = segment_surfaces(seg, args.segment, smoothing=args.smoothing, decimation=args.decimation,
                                normals=False if args.no_normals else None, method=args.method,
                                joint_smoothing=True if args.joint_smoothing else None,
                                progress=show_progress(args))
    mesh_s = time.perf_counter() - t
    written = write_meshes(args.output, surfaces, per_segment=args.per_segment)
    summary = {
        "segments": [{"name": s.name, "id": s.segment_id, "vertices": s.n_vertices, "triangles": s.n_faces,
                      "area_mm2": round(s.area(), 3), "volume_mm3": round(s.volume(), 3)} for s in surfaces],
        "files": [str(p) for p in written],
        "seconds": round(mesh_s, 4),
        "backend": seg.backend.name,
    }
    if args.json:
        print_json(summary)
    else:
        n = sum(s.n_faces for s in surfaces)
        print(f"{len(surfaces)} surfaces, {n} triangles in {mesh_s:.3f} s on {seg.backend.name} -> "
              + ", ".join(str(p) for p in written))
    return 0


def cmd_import_mesh(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import Segmentation, read_segmentation, write_segmentation
    from ..errors import FileFormatError
    from ..io.images import read_image_geometry
    from ..io.meshes import read_mesh

    check_output(args.output, "editable")
    seg = None
    if args.reference is not None:
        ref = Path(args.reference)
        if not ref.exists():
            raise FileFormatError(f"reference {ref} does not exist")
        if ref.name.lower().endswith((".seg.nrrd", ".h5", ".hdf5")):
            seg = read_segmentation(ref, backend=args.backend)
        else:
            seg = Segmentation(read_image_geometry(ref), backend=args.backend)  # the grid only: no voxels read
    meshes = []
    for path in args.meshes:
        v, f = read_mesh(path, repair=args.repair)
        if args.ras:  # RAS -> LPS flips x and y: a rotation, so the winding stays outward
            v = v * np.array([-1.0, -1.0, 1.0])
        meshes.append((path, (v, f)))
    if seg is None or args.oversampling is not None:
        # Slicer's CS -> BL geometry: the reference (or default) grid, oversampled, over the meshes' bounds
        from ..ops.segmentation_geometry import copy_segments, padded_geometry, surface_labelmap_geometry
        from ..surface.mesh import Surface

        surfaces = [Surface(np.asarray(v, np.float64), np.asarray(f, np.int64)) for _, (v, f) in meshes]
        meshes = [(path, s) for (path, _), s in zip(meshes, surfaces)]  # built once, reused below
        g = surface_labelmap_geometry(surfaces, None if seg is None else seg.geometry,
                                      oversampling=args.oversampling or "1", crop=args.crop)
        if seg is not None and not args.crop:
            g = padded_geometry(g, seg)  # the reference's segments are not cropped either
        new = Segmentation(g, backend=args.backend if seg is None else seg.backend)
        if seg is not None:
            new.conversion_parameters = {k: v for k, v in seg.conversion_parameters.items()
                                         if k != "Reference image geometry"}
            copy_segments(seg, new)  # the reference's own segments, nearest neighbour onto the new grid
        seg = new
    if args.crop:
        seg.set_conversion_parameter("Crop to reference image geometry", 1)
    bar = progress(args, total=len(meshes), desc="import meshes", unit="mesh")
    for path, mesh in meshes:
        bar.set_postfix_str(Path(path).name)
        name = Path(path).name.split(".")[0]
        # the graph's closed surface -> binary labelmap rule, with the segmentation's parameters
        s = seg.add_segment_from_surface(mesh, name=name, what=str(path))  # a Surface or (vertices, faces)
        bar.update(1)
        bar.write(f"{path}: segment {s.name!r}, {s.mask.count()} voxels")
    bar.close()
    write_segmentation(seg, args.output)
    return 0
