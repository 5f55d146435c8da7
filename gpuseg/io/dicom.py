"""Reading a DICOM image series from a folder (pydicom, the ``dicom`` extra).

Slices are sorted by their position along the slice normal (the cross product of the row and
column directions of ImageOrientationPatient), rescale slope and intercept are applied, and the
orientation becomes the direction matrix. DICOM patient coordinates are LPS, like gpuseg's.
Mixed series, inconsistent orientation or pixel spacing, differing sizes and gaps between
slices are errors, not silently resampled.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from ..geometry import ImageGeometry

__all__ = ["read_dicom_series", "load_dicom_series"]

#: Relative tolerance on slice spacing before a series counts as having a gap.
GAP_TOLERANCE = 0.05


def _load(folder: Path):
    try:
        import pydicom
    except ImportError as exc:  # pragma: no cover - in the [dicom] extra
        raise FileFormatError("reading DICOM needs pydicom (pip install 'gpuseg[dicom]')") from exc
    datasets = []
    for f in sorted(folder.iterdir()):
        if not f.is_file():
            continue
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=False)
        except Exception:  # not a DICOM file (DICOMDIR, notes, ...): skip it
            continue
        if "PixelData" in ds and "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
            datasets.append((f, ds))
    return datasets


def read_dicom_series(folder: str | os.PathLike, *, series_uid: str | None = None) -> tuple[np.ndarray, ImageGeometry]:
    """Read one image series from ``folder`` into a ``(k, j, i)`` array and its LPS geometry."""
    data, geom, _ = load_dicom_series(folder, series_uid=series_uid)
    return data, geom


def load_dicom_series(folder: str | os.PathLike, *, series_uid: str | None = None, pixels: bool = True):
    """``(array, geometry, datasets)``: the series and its pydicom datasets in k order."""
    path = Path(folder)
    if not path.is_dir():
        raise FileFormatError(f"{path}: not a folder of DICOM files")
    items = _load(path)
    if not items:
        raise FileFormatError(f"{path}: no DICOM image slices found")
    series: dict[str, list] = {}
    for f, ds in items:
        series.setdefault(str(getattr(ds, "SeriesInstanceUID", "")), []).append((f, ds))
    if series_uid is not None:
        if series_uid not in series:
            raise FileFormatError(f"{path}: no series {series_uid} (found {', '.join(series)})")
        chosen = series[series_uid]
    elif len(series) > 1:
        desc = "; ".join(f"{uid} ({len(v)} slices)" for uid, v in series.items())
        raise FileFormatError(f"{path}: the folder mixes {len(series)} series ({desc}); pass series_uid")
    else:
        chosen = next(iter(series.values()))
    first = chosen[0][1]
    orient = np.asarray([float(v) for v in first.ImageOrientationPatient])
    spacing = np.asarray([float(v) for v in first.PixelSpacing])
    rows, cols = int(first.Rows), int(first.Columns)
    for f, ds in chosen:
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], orient, atol=1e-4):
            raise FileFormatError(f"{path}: {f.name} has a different orientation than {chosen[0][0].name}")
        if not np.allclose([float(v) for v in ds.PixelSpacing], spacing, rtol=1e-4):
            raise FileFormatError(f"{path}: {f.name} has a different pixel spacing")
        if (int(ds.Rows), int(ds.Columns)) != (rows, cols):
            raise FileFormatError(f"{path}: {f.name} has {ds.Rows}x{ds.Columns} pixels, others {rows}x{cols}")
    row_dir, col_dir = orient[:3], orient[3:]
    normal = np.cross(row_dir, col_dir)
    if np.linalg.norm(normal) < 0.5:
        raise FileFormatError(f"{path}: ImageOrientationPatient {orient.tolist()} is degenerate")
    pos = np.array([[float(v) for v in ds.ImagePositionPatient] for _, ds in chosen])
    along = pos @ normal
    order = np.argsort(along, kind="stable")
    along, pos = along[order], pos[order]
    chosen = [chosen[i] for i in order]
    if len(chosen) > 1:
        steps = np.diff(along)
        if np.any(steps < 1e-6):
            dup = [chosen[i][0].name for i in np.nonzero(steps < 1e-6)[0][:2]]
            raise FileFormatError(f"{path}: two slices share a position ({', '.join(dup)})")
        dz = float(np.median(steps))
        bad = np.nonzero(np.abs(steps - dz) > GAP_TOLERANCE * dz)[0]
        if bad.size:
            i = int(bad[0])
            raise FileFormatError(f"{path}: gap or uneven spacing between slices {chosen[i][0].name} and "
                                  f"{chosen[i + 1][0].name} ({steps[i]:.3g} mm, others {dz:.3g} mm)")
        # the slice positions must lie on the normal through the first (no shear)
        offs = (pos - pos[0]) - np.outer(along - along[0], normal)
        if np.max(np.abs(offs)) > 0.05 * max(dz, 1e-3) + 1e-3:
            raise FileFormatError(f"{path}: slice positions are not stacked along the slice normal (gantry tilt "
                                  "or inconsistent positions are not supported)")
    else:
        dz = float(getattr(first, "SliceThickness", 1.0) or 1.0)
    datasets = [ds for _, ds in chosen]
    geom = ImageGeometry((len(chosen), rows, cols), spacing=(spacing[1], spacing[0], dz), origin=pos[0],
                         direction=np.column_stack([row_dir, col_dir, normal]))
    if not pixels:
        return None, geom, datasets
    out = np.empty((len(chosen), rows, cols), np.float64)
    integral = True
    for k, (f, ds) in enumerate(chosen):
        try:
            pix = ds.pixel_array
        except Exception as exc:
            raise FileFormatError(f"{path}: cannot decode the pixels of {f.name} ({exc})") from exc
        slope = float(getattr(ds, "RescaleSlope", 1) or 1)
        inter = float(getattr(ds, "RescaleIntercept", 0) or 0)
        integral &= slope.is_integer() and inter.is_integer()
        out[k] = pix.astype(np.float64) * slope + inter
    if integral:
        data = out.astype(np.int64)
    else:
        data = out.astype(np.float32)
    return data, geom, datasets
