"""The standard benchmark volumes of ../shared/reference/performance.md.

``standard_volume()`` is the real abdominal CT (``example_ct.nii.gz``) resampled linearly to
400 x 512 x 512 (k, j, i) int16, with TotalSegmentator's labels resampled nearest-neighbour
onto the same grid. ``whole_body`` is 1500 x 512 x 512. Without ``../shared`` (a user's
clone), a generated phantom of the same size stands in. Results are cached in
``benchmarks/.cache`` (git-ignored).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared" / "data" / "totalseg"
CACHE = Path(os.environ.get("GPUSEG_BENCH_CACHE", HERE / ".cache"))

SIZES = {"standard": (400, 512, 512), "wholebody": (1500, 512, 512)}


@dataclass
class Volume:
    name: str
    image: np.ndarray  # (k, j, i) int16
    labels: np.ndarray  # (k, j, i) uint8
    spacing_ijk: tuple[float, float, float]
    source: str  # "real CT" or "phantom"
    label_names: dict[int, str]

    @property
    def geometry(self):
        from gpuseg import ImageGeometry

        return ImageGeometry(self.labels.shape, spacing=self.spacing_ijk)


def _resample(shape, use_shared: bool = True) -> Volume:
    import json

    import nibabel as nib
    from scipy import ndimage

    ct = nib.load(str(SHARED / "example_ct.nii.gz"))
    seg = nib.load(str(SHARED / "example_seg.nii.gz"))
    a = np.asarray(ct.dataobj).transpose(2, 1, 0).astype(np.float32)
    # example_seg is on example_ct_sm's grid (30 slices); put it on example_ct's grid first
    lab = np.asarray(seg.dataobj).transpose(2, 1, 0).astype(np.uint8)
    src_shape = a.shape
    zoom = [n / s for n, s in zip(shape, src_shape)]
    img = np.empty(shape, np.int16)
    chunk = 50
    for k0 in range(0, shape[0], chunk):
        k1 = min(shape[0], k0 + chunk)
        kk, jj, ii = np.meshgrid(np.arange(k0, k1), np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
        coords = [(kk + 0.5) / zoom[0] - 0.5, (jj + 0.5) / zoom[1] - 0.5, (ii + 0.5) / zoom[2] - 0.5]
        img[k0:k1] = np.rint(ndimage.map_coordinates(a, coords, order=1, mode="nearest")).astype(np.int16)
    # labels: the segmentation covers example_ct_sm's slices; map the slices by world position
    sm_aff, ct_aff = seg.affine, ct.affine
    z_of_sm = sm_aff[2, 3] + np.arange(lab.shape[0]) * sm_aff[2, 2]
    z_of_ct = ct_aff[2, 3] + (np.arange(shape[0]) + 0.5) / zoom[0] * ct_aff[2, 2] - 0.5 * ct_aff[2, 2]
    ks = np.rint((z_of_ct - z_of_sm[0]) / sm_aff[2, 2]).astype(int)
    jj = np.clip(((np.arange(shape[1]) + 0.5) / zoom[1] - 0.5).round().astype(int), 0, lab.shape[1] - 1)
    ii = np.clip(((np.arange(shape[2]) + 0.5) / zoom[2] - 0.5).round().astype(int), 0, lab.shape[2] - 1)
    labels = np.zeros(shape, np.uint8)
    for k in range(shape[0]):
        if 0 <= ks[k] < lab.shape[0]:
            labels[k] = lab[ks[k]][np.ix_(jj, ii)]
    spacing = tuple(float(abs(ct_aff[i, i])) / zoom[2 - i] for i in range(3))
    names = {int(k): v for k, v in json.loads((SHARED / "total_classes.json").read_text()).items()}
    return Volume("x".join(map(str, shape)), img, labels, spacing, "real CT (example_ct.nii.gz, resampled)", names)


def parse_size(text: str):
    """A --size argument: "standard", "wholebody" or KxJxI."""
    return text if text in SIZES else tuple(int(v) for v in text.split("x"))


def load(size: str | tuple[int, int, int] = "standard", *, force_phantom: bool = False, log=print) -> Volume:
    """The benchmark volume of ``size`` ("standard", "wholebody", or a (k, j, i) shape)."""
    shape = SIZES[size] if isinstance(size, str) else tuple(size)
    use_real = (SHARED / "example_ct.nii.gz").exists() and not force_phantom
    tag = ("ct" if use_real else "phantom") + "_" + "x".join(map(str, shape))
    CACHE.mkdir(exist_ok=True)
    f_img, f_lab, f_meta = CACHE / f"{tag}_image.npy", CACHE / f"{tag}_labels.npy", CACHE / f"{tag}_meta.npy"
    if f_img.exists() and f_lab.exists() and f_meta.exists():
        meta = np.load(f_meta, allow_pickle=True).item()
        return Volume(meta["name"], np.load(f_img, mmap_mode=None), np.load(f_lab), tuple(meta["spacing"]),
                      meta["source"], meta["names"])
    t = time.perf_counter()
    if use_real:
        log(f"resampling the real CT to {shape} (cached afterwards) ...", file=sys.stderr)
        vol = _resample(shape)
    else:
        from gpuseg.phantom import make_phantom

        log(f"../shared absent: generating a phantom of {shape} ...", file=sys.stderr)
        ph = make_phantom(shape)
        vol = Volume("x".join(map(str, shape)), ph.image, ph.labels, ph.geometry.spacing, "phantom",
                     ph.label_names)
    np.save(f_img, vol.image)
    np.save(f_lab, vol.labels)
    np.save(f_meta, np.array({"name": vol.name, "spacing": vol.spacing_ijk, "source": vol.source,
                              "names": vol.label_names}, dtype=object))
    log(f"  ready in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return vol
