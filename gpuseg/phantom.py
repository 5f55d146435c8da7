"""A synthetic torso CT phantom with realistic Hounsfield units, for demos and benchmarks.

The phantom is generated in code (no downloads): an elliptical body with a fat layer and
muscle, lungs, heart, liver, spleen, kidneys, aorta, a segmented spine with discs, ribs and
a pelvis, plus Gaussian noise. It also returns the ground-truth label of each voxel, so a
demo can show named segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import InvalidInputError
from .geometry import ImageGeometry

__all__ = ["Phantom", "make_phantom", "PHANTOM_LABELS"]

#: label value -> (name, HU mean, RGB color 0..1)
PHANTOM_LABELS: dict[int, tuple[str, float, tuple[float, float, float]]] = {
    1: ("body", 40.0, (0.89, 0.71, 0.61)),
    2: ("fat", -100.0, (0.90, 0.86, 0.55)),
    3: ("lung", -850.0, (0.77, 0.71, 0.85)),
    4: ("heart", 45.0, (0.81, 0.25, 0.24)),
    5: ("liver", 60.0, (0.86, 0.52, 0.40)),
    6: ("spleen", 50.0, (0.62, 0.35, 0.44)),
    7: ("kidney", 35.0, (0.72, 0.43, 0.28)),
    8: ("aorta", 160.0, (0.87, 0.20, 0.20)),
    9: ("vertebrae", 700.0, (0.95, 0.92, 0.80)),
    10: ("intervertebral disc", 90.0, (0.55, 0.75, 0.85)),
    11: ("ribs", 600.0, (0.25, 0.50, 1.00)),  # blue, not bone's colour: the demo's scissors cut must show
    12: ("pelvis", 650.0, (0.89, 0.83, 0.62)),
}


@dataclass
class Phantom:
    image: np.ndarray  # (k, j, i) int16 HU
    labels: np.ndarray  # (k, j, i) uint8, values of PHANTOM_LABELS (0 = air)
    geometry: ImageGeometry

    @property
    def label_names(self) -> dict[int, str]:
        return {v: n for v, (n, _, _) in PHANTOM_LABELS.items()}


def _ellipse(x, y, cx, cy, rx, ry):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def make_phantom(shape: tuple[int, int, int] = (400, 512, 512), *, spacing: tuple[float, float, float] | None = None,
                 seed: int = 0, noise: float = 20.0,
                 progress: Callable[[int], None] | None = None) -> Phantom:
    """Generate the phantom.

    Parameters
    ----------
    shape : (nk, nj, ni)
        Grid size. The anatomy scales with the grid: the body spans the in-plane field of
        view and the whole torso (lungs to pelvis) spans the slices.
    spacing : (si, sj, sk) mm, optional
        Default: 400 mm field of view in-plane and 500 mm of torso along k.
    seed : int
        Random seed of the noise.
    noise : float
        Standard deviation of the Gaussian noise in HU.
    progress : callable, optional
        Called with the number of slices done after each slice.
    """
    nk, nj, ni = (int(s) for s in shape)
    if min(nk, nj, ni) < 1:
        raise InvalidInputError(f"phantom shape must be positive, got {shape}")
    if nk * nj * ni > 2_000_000_000:
        raise InvalidInputError(f"phantom shape {shape} is too large (over 2e9 voxels)")
    if spacing is None:
        spacing = (400.0 / ni, 400.0 / nj, 500.0 / nk)
    geom = ImageGeometry((nk, nj, ni), spacing=spacing, origin=(-200.0, -200.0, 0.0))
    rng = np.random.default_rng(seed)
    image = np.empty((nk, nj, ni), np.int16)
    labels = np.zeros((nk, nj, ni), np.uint8)

    # normalised in-plane coordinates: x (i, left-right) and y (j, anterior-posterior) in [-1, 1]
    x = np.linspace(-1, 1, ni, dtype=np.float32)[None, :]
    y = np.linspace(-1, 1, nj, dtype=np.float32)[:, None]
    hu = {v: m for v, (_, m, _) in PHANTOM_LABELS.items()}
    for k in range(nk):
        z = (k + 0.5) / nk  # 0 = bottom (pelvis), 1 = top (upper chest)
        lab = np.zeros((nj, ni), np.uint8)
        # body and fat: the outer 8% of the body ellipse is subcutaneous fat
        rx, ry = 0.86 - 0.05 * np.cos(np.pi * z), 0.62
        body = _ellipse(x, y, 0.0, 0.02, rx, ry)
        lab[body] = 2
        lab[_ellipse(x, y, 0.0, 0.02, rx * 0.9, ry * 0.88)] = 1
        if z > 0.55:  # chest: lungs and heart
            # lungs: a dome over the diaphragm, narrowing again at the apex
            t = float(np.sqrt(min(1.0, (z - 0.55) / 0.12)) * np.sqrt(min(1.0, max(0.0, (1.0 - z) / 0.1) + 0.35)))
            lab[_ellipse(x, y, -0.38, -0.02, 0.27 * t, 0.4 * t)] = 3
            lab[_ellipse(x, y, 0.38, -0.02, 0.27 * t, 0.4 * t)] = 3
            if z < 0.85:
                lab[_ellipse(x, y, 0.1, -0.2, 0.22, 0.2)] = 4
        if 0.38 < z < 0.62:  # upper abdomen: liver and spleen
            lab[_ellipse(x, y, -0.35, -0.05, 0.32, 0.35)] = 5
            lab[_ellipse(x, y, 0.45, 0.15, 0.14, 0.18)] = 6
        if 0.3 < z < 0.45:  # kidneys
            lab[_ellipse(x, y, -0.3, 0.28, 0.1, 0.12)] = 7
            lab[_ellipse(x, y, 0.3, 0.28, 0.1, 0.12)] = 7
        if z > 0.25:  # aorta in front of the spine
            lab[_ellipse(x, y, 0.05, 0.2, 0.055, 0.06)] = 8
        # spine: vertebral bodies with discs between them, and the posterior arch
        level = (z * 24.0) % 1.0
        if z > 0.2:
            lab[_ellipse(x, y, 0.0, 0.37, 0.1, 0.09)] = 10 if level < 0.18 else 9
            if level >= 0.18:
                arch = _ellipse(x, y, 0.0, 0.5, 0.09, 0.07) & ~_ellipse(x, y, 0.0, 0.5, 0.045, 0.035)
                lab[arch] = 9
        if z > 0.5:  # ribs: thin rings in bands along z
            if (z * 36.0) % 1.0 < 0.35:
                ring = _ellipse(x, y, 0.0, 0.02, rx * 0.84, ry * 0.82) & ~_ellipse(x, y, 0.0, 0.02, rx * 0.8, ry * 0.77)
                lab[ring & (y < 0.45)] = 11
        if z < 0.22:  # pelvis: two iliac wings and the sacrum
            wing = _ellipse(x, y, -0.45, 0.25, 0.22, 0.08) | _ellipse(x, y, 0.45, 0.25, 0.22, 0.08)
            lab[wing] = 12
            lab[_ellipse(x, y, 0.0, 0.42, 0.12, 0.07)] = 12
        lab[~body] = 0
        vals = np.full((nj, ni), -1000.0, np.float32)
        for v, m in hu.items():
            vals[lab == v] = m
        vals += rng.normal(0.0, noise, (nj, ni)).astype(np.float32)
        image[k] = np.clip(np.rint(vals), -1024, 3071).astype(np.int16)
        labels[k] = lab
        if progress is not None:
            progress(1)
    return Phantom(image=image, labels=labels, geometry=geom)
