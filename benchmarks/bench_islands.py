"""Connected components of bone on the standard volume: gpuseg vs cc3d, SimpleITK and SciPy.

    python -m benchmarks.bench_islands [--size standard|KxJxI] [--phantom] [--connectivity 6]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.harness import Result, backends, finish, measure
from benchmarks.standard_volume import load, parse_size


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="standard")
    ap.add_argument("--phantom", action="store_true")
    ap.add_argument("--connectivity", type=int, default=6, choices=[6, 26])
    ap.add_argument("--backends", default="cpu,opencl")
    args = ap.parse_args(argv)
    size = parse_size(args.size)
    vol = load(size, force_phantom=args.phantom)
    bone = (vol.image >= 200) & (vol.image <= 3000)
    case = f"connected components ({args.connectivity}), bone, {vol.name}"
    case2 = f"keep largest island ({args.connectivity}), bone, {vol.name}"
    res: list[Result] = []
    import gpuseg

    ns = {}
    for name, b in backends(args.backends):
        m = gpuseg.Mask.from_numpy(bone, vol.geometry, backend=b)
        first, best, isl = measure(lambda: gpuseg.connected_components(m, args.connectivity), repeat=3,
                                   sync=b.synchronize)
        ns[name] = isl.n
        res.append(Result(case, f"gpuseg {name}", "gpuseg", first, best, 3, note=f"{isl.n} islands, as runs"))
        first, best, _ = measure(lambda: gpuseg.label(m, args.connectivity), repeat=3, sync=b.synchronize)
        res.append(Result(case, f"gpuseg {name}", "gpuseg", first, best, 3, note="dense int32 labels, like cc3d"))
        first, best, _ = measure(lambda: gpuseg.keep_largest_island(m, args.connectivity), repeat=3,
                                 sync=b.synchronize)
        res.append(Result(case2, f"gpuseg {name}", "gpuseg", first, best, 3))
    import cc3d

    u8 = bone.astype(np.uint8)
    f, t, lab = measure(lambda: cc3d.connected_components(u8, connectivity=args.connectivity), repeat=3)
    res.append(Result(case, "cc3d", "peer", f, t, 3))
    n_cc3d = int(lab.max())

    def cc3d_largest():
        lab = cc3d.connected_components(u8, connectivity=args.connectivity)
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        return lab == int(np.argmax(sizes))

    f, t, _ = measure(cc3d_largest, repeat=2)
    res.append(Result(case2, "cc3d + bincount", "peer", f, t, 2))
    import SimpleITK as sitk

    simg = sitk.GetImageFromArray(u8)
    f, t, _ = measure(lambda: sitk.ConnectedComponent(simg, args.connectivity == 26), repeat=2)
    res.append(Result(case, "SimpleITK ConnectedComponent", "peer", f, t, 2))
    from scipy import ndimage

    st = ndimage.generate_binary_structure(3, 1 if args.connectivity == 6 else 3)
    f, t, _ = measure(lambda: ndimage.label(bone, st), repeat=1)
    res.append(Result(case, "scipy.ndimage.label", "peer", f, t, 1))
    # flood fill from a click in the largest bone island, range [200, 3000]
    case3 = f"flood fill from a click, HU [200, 3000], {vol.name}"
    big = lab == int(np.argmax(np.bincount(lab.ravel())[1:]) + 1)
    seed = tuple(int(v) for v in np.argwhere(big)[int(big.sum()) // 2])
    counts = {}
    for name, b in backends(args.backends):
        img = gpuseg.Image.from_numpy(vol.image, vol.geometry, backend=b)
        first, best, fm = measure(lambda: gpuseg.flood_fill(img, seed, 200, 3000, connectivity=args.connectivity),
                                  repeat=3, sync=b.synchronize)
        counts[name] = fm.count()
        res.append(Result(case3, f"gpuseg {name}", "gpuseg", first, best, 3, note=f"{counts[name]} voxels"))
        del img
    sitk_img = sitk.GetImageFromArray(vol.image)
    seed_xyz = [seed[2], seed[1], seed[0]]
    if args.connectivity == 6:
        f, t, out = measure(lambda: sitk.ConnectedThreshold(sitk_img, seedList=[seed_xyz], lower=200, upper=3000),
                            repeat=2)
        res.append(Result(case3, "SimpleITK ConnectedThreshold", "peer", f, t, 2))
        n_sitk = int(sitk.GetArrayViewFromImage(out).sum())
        for name, n in counts.items():
            assert n == n_sitk, f"{name} flood: {n} voxels, SimpleITK {n_sitk}"
    for name, n in ns.items():
        assert n == n_cc3d, f"{name}: {n} islands, cc3d {n_cc3d}"
    finish("islands", res, {case: "cc3d", case2: "cc3d + bincount", case3: "SimpleITK ConnectedThreshold"}, vol,
           {"connectivity": args.connectivity})
    return 0


if __name__ == "__main__":
    sys.exit(main())
