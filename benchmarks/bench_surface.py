"""Closed surfaces on the standard volume: gpuseg marching cubes vs VTK and scikit-image.

Cases:
  * bone (200..3000 HU), unsmoothed, in voxel index space: gpuseg vs vtkDiscreteFlyingEdges3D
    (Slicer's filter), vtkFlyingEdges3D at 0.5, and scikit-image's marching_cubes (Lewiner).
    gpuseg's mesh must equal VTK's in triangle count, area and volume (checked here);
  * all label classes (TotalSegmentator's 117): gpuseg meshes each segment over its own box
    vs VTK vtkSurfaceNets3D with all labels in one pass, vtkDiscreteFlyingEdges3D with every
    label value in one pass, and zmesh (surface nets-style multi-label marching cubes);
  * Slicer's default conversion of bone (smoothing 0.5, normals) vs the same VTK pipeline
    (vtkDiscreteFlyingEdges3D + vtkWindowedSincPolyDataFilter + vtkPolyDataNormals).

Peers get their input prepared outside the timing (a padded uint8/uint16 volume wrapped as
vtkImageData), as gpuseg gets its packed masks. Triangles per second are reported.

    python -m benchmarks.bench_surface [--size standard|KxJxI] [--phantom] [--classes 117]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.harness import Result, backends, finish, measure
from benchmarks.standard_volume import load, parse_size


def _vtk_image(arr: np.ndarray):
    import vtk
    from vtk.util import numpy_support as ns

    img = vtk.vtkImageData()
    img.SetDimensions(arr.shape[2], arr.shape[1], arr.shape[0])
    img.GetPointData().SetScalars(ns.numpy_to_vtk(arr.ravel(), deep=1))
    return img


def _vtk_area_volume(poly) -> tuple[float, float]:
    from vtk.util import numpy_support as ns

    from gpuseg.surface import Surface

    if poly.GetNumberOfCells() == 0:
        return 0.0, 0.0
    pts = ns.vtk_to_numpy(poly.GetPoints().GetData()).astype(np.float64)
    tri = ns.vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    s = Surface(pts, tri)
    return s.area(), s.volume()


def _rate(n_tri: int, seconds: float) -> str:
    return f"{n_tri / seconds / 1e6:.1f} M triangles/s"


def bone_case(vol, res, args):
    import vtk

    import gpuseg
    from gpuseg.surface import Surface, mesh_index_space

    a = vol.image
    bone = (a >= 200) & (a <= 3000)
    case = f"bone surface, unsmoothed, {vol.name}"
    padded = np.pad(bone.astype(np.uint8), 1)
    img = _vtk_image(padded)
    ref = {}
    for cls, value, label in ((vtk.vtkDiscreteFlyingEdges3D, 1, "VTK vtkDiscreteFlyingEdges3D"),
                              (vtk.vtkFlyingEdges3D, 0.5, "VTK vtkFlyingEdges3D (0.5)")):
        def run(cls=cls, value=value):
            fe = cls()
            fe.SetInputData(img)
            fe.SetValue(0, value)
            fe.ComputeNormalsOff()
            fe.ComputeGradientsOff()
            fe.ComputeScalarsOff()
            fe.Update()
            return fe.GetOutput()

        f, t, out = measure(run, repeat=args.repeat)
        n = out.GetNumberOfCells()
        ref.setdefault("vtk", (n, *_vtk_area_volume(out)))
        res.append(Result(case, label, "peer", f, t, args.repeat, note=_rate(n, t), extra={"triangles": n}))
    n_ref, area_ref, vol_ref = ref["vtk"]
    for name, b in backends(args.backends):
        m = gpuseg.Mask.from_numpy(bone, vol.geometry, backend=b)
        f, t, out = measure(lambda: mesh_index_space(m), repeat=args.repeat, sync=b.synchronize)
        s = Surface(*out)
        assert s.n_faces == n_ref, f"gpuseg {name}: {s.n_faces} triangles, VTK {n_ref}"
        assert abs(s.area() / area_ref - 1) < 1e-6 and abs(s.volume() / vol_ref - 1) < 1e-6
        assert s.is_watertight()
        res.append(Result(case, f"gpuseg {name}", "gpuseg", f, t, args.repeat, note=_rate(s.n_faces, t),
                          extra={"triangles": s.n_faces, "area_vs_vtk": s.area() / area_ref - 1,
                                 "volume_vs_vtk": s.volume() / vol_ref - 1, "watertight": True}))
    if not args.no_skimage:
        from skimage import measure as skm

        f, t, out = measure(lambda: skm.marching_cubes(padded, 0.5), repeat=1)
        sk = Surface(out[0], out[1])
        res.append(Result(case, "scikit-image marching_cubes (Lewiner)", "peer", f, t, 1,
                          note=_rate(sk.n_faces, t),
                          extra={"triangles": sk.n_faces, "area_vs_vtk": sk.area() / area_ref - 1,
                                 "watertight": sk.is_watertight()}))
    return case, bone


def labels_case(vol, res, args):
    import vtk

    from benchmarks.bench_stats import segmentation_from_labels
    from gpuseg.surface import segment_surfaces

    labels = vol.labels
    values = list(range(1, args.classes + 1))
    present = [v for v in values if (labels == v).any()] if labels.size < 2e8 else values
    case = f"all {args.classes} label classes ({len(present)} present), unsmoothed, {vol.name}"
    for name, b in backends(args.backends):
        seg = segmentation_from_labels(labels, vol.geometry, b, values)

        def run(seg=seg):
            for sid in seg.segment_ids:  # time the meshing, not the cache
                seg.invalidate(sid)
            return segment_surfaces(seg, smoothing=0, normals=False)

        f, t, out = measure(run, repeat=args.repeat, sync=b.synchronize)
        n = sum(s.n_faces for s in out)
        assert all(s.is_watertight() for s in out)
        res.append(Result(case, f"gpuseg {name}, flying edges per segment box", "gpuseg", f, t, args.repeat,
                          note=_rate(n, t), extra={"triangles": n}))

        def nets(seg=seg):
            for sid in seg.segment_ids:
                seg.invalidate(sid)
            return segment_surfaces(seg, smoothing=0, normals=False, method="surface-nets")

        f, t, out = measure(nets, repeat=args.repeat, sync=b.synchronize)
        n = sum(s.n_faces for s in out)
        res.append(Result(case, f"gpuseg {name}, surface nets, shared vertices", "gpuseg", f, t, args.repeat,
                          note=_rate(n, t), extra={"triangles": n}))
    padded = np.pad(labels.astype(np.uint16), 1)
    img = _vtk_image(padded)

    def nets():
        sn = vtk.vtkSurfaceNets3D()
        sn.SetInputData(img)
        for n_, v in enumerate(present):
            sn.SetValue(n_, v)
        sn.SmoothingOff()
        sn.SetOutputMeshTypeToTriangles()
        sn.Update()
        return sn.GetOutput()

    f, t, out = measure(nets, repeat=1)
    res.append(Result(case, "VTK vtkSurfaceNets3D, all labels one pass", "peer", f, t, 1,
                      note=_rate(out.GetNumberOfCells(), t), extra={"triangles": out.GetNumberOfCells()}))

    def dfe():
        fe = vtk.vtkDiscreteFlyingEdges3D()
        fe.SetInputData(img)
        for n_, v in enumerate(present):
            fe.SetValue(n_, v)
        fe.ComputeNormalsOff()
        fe.ComputeGradientsOff()
        fe.ComputeScalarsOff()
        fe.Update()
        return fe.GetOutput()

    f, t, out = measure(dfe, repeat=1)
    res.append(Result(case, "VTK vtkDiscreteFlyingEdges3D, all labels one pass", "peer", f, t, 1,
                      note=_rate(out.GetNumberOfCells(), t), extra={"triangles": out.GetNumberOfCells()}))
    try:
        import zmesh
    except ImportError:
        print("zmesh is not installed: skipping it (pip install zmesh)")
    else:
        lab = np.asfortranarray(labels.transpose(2, 1, 0).astype(np.uint32))

        def zm():
            mesher = zmesh.Mesher((1, 1, 1))
            mesher.mesh(lab, close=True)
            n = 0
            for obj in mesher.ids():
                n += len(mesher.get(obj, normals=False).faces)
            mesher.clear()
            return n

        f, t, n = measure(zm, repeat=1)
        res.append(Result(case, "zmesh (all labels, close=True)", "peer", f, t, 1, note=_rate(n, t),
                          extra={"triangles": n}))
    return case


def slicer_case(vol, res, args, bone):
    import vtk

    import gpuseg
    from gpuseg.surface import closed_surface

    case = f"bone surface, Slicer default (smoothing 0.5, normals), {vol.name}"
    img = _vtk_image(np.pad(bone.astype(np.uint8), 1))
    s = 0.5

    def vtk_pipeline():
        fe = vtk.vtkDiscreteFlyingEdges3D()
        fe.SetInputData(img)
        fe.SetValue(0, 1)
        fe.ComputeNormalsOff()
        fe.ComputeGradientsOff()
        fe.ComputeScalarsOff()
        sm = vtk.vtkWindowedSincPolyDataFilter()
        sm.SetInputConnection(fe.GetOutputPort())
        sm.SetNumberOfIterations(int(20 + 40 * s))
        sm.SetPassBand(10 ** (-4 * s))
        sm.BoundarySmoothingOff()
        sm.FeatureEdgeSmoothingOff()
        sm.NonManifoldSmoothingOn()
        sm.NormalizeCoordinatesOn()
        nm = vtk.vtkPolyDataNormals()
        nm.SetInputConnection(sm.GetOutputPort())
        nm.ConsistencyOn()
        nm.SplittingOff()
        nm.Update()
        return nm.GetOutput()

    f, t, out = measure(vtk_pipeline, repeat=1)
    res.append(Result(case, "VTK flying edges + windowed sinc + normals", "peer", f, t, 1,
                      note=_rate(out.GetNumberOfCells(), t), extra={"triangles": out.GetNumberOfCells()}))
    for name, b in backends(args.backends):
        m = gpuseg.Mask.from_numpy(bone, vol.geometry, backend=b)
        f, t, surf = measure(lambda: closed_surface(m, smoothing=s), repeat=1, sync=b.synchronize)
        res.append(Result(case, f"gpuseg {name}", "gpuseg", f, t, 1, note=_rate(surf.n_faces, t),
                          extra={"triangles": surf.n_faces}))
    return case


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="standard")
    ap.add_argument("--phantom", action="store_true")
    ap.add_argument("--backends", default="cpu,opencl")
    ap.add_argument("--classes", type=int, default=117)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-skimage", action="store_true")
    ap.add_argument("--no-smoothing", action="store_true", help="skip the Slicer-pipeline case")
    args = ap.parse_args(argv)
    vol = load(parse_size(args.size), force_phantom=args.phantom)
    res: list[Result] = []
    bone_c, bone = bone_case(vol, res, args)
    baseline = {bone_c: "VTK vtkDiscreteFlyingEdges3D"}
    labels_c = labels_case(vol, res, args)
    baseline[labels_c] = "VTK vtkSurfaceNets3D, all labels one pass"
    if not args.no_smoothing:
        baseline[slicer_case(vol, res, args, bone)] = "VTK flying edges + windowed sinc + normals"
    finish("surface", res, baseline, vol, {"classes": args.classes})
    return 0


if __name__ == "__main__":
    sys.exit(main())
