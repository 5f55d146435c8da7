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

from ..errors import FileFormatError, GpusegError
from ..geometry import ImageGeometry
from ._nrrd import check_host_bytes

__all__ = ["read_dicom_series", "load_dicom_series"]

#: Relative tolerance on slice spacing before a series counts as having a gap.
GAP_TOLERANCE = 0.05
#: Most slices read from one folder.
MAX_SLICES = 100_000


def _load(folder: Path, pixels: bool = True):
    """``(file, dataset)`` of every image slice in ``folder``. Without ``pixels``, values over
    1 KiB (the pixel data) are left unread in the files (pydicom's ``defer_size``)."""
    try:
        import pydicom
    except ImportError as exc:  # pragma: no cover - in the [dicom] extra
        raise FileFormatError("reading DICOM needs pydicom (pip install 'gpuseg[dicom]')") from exc
    datasets = []
    for f in sorted(folder.iterdir()):
        if not f.is_file():
            continue
        try:
            ds = pydicom.dcmread(str(f), defer_size=None if pixels else 1024)
        except Exception:  # not a DICOM file (DICOMDIR, notes, ...): skip it
            continue
        if "PixelData" in ds and "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
            datasets.append((f, ds))
    return datasets


def _floats(ds, name: str, n: int, f: Path) -> np.ndarray:
    """``n`` finite numbers from element ``name`` or a FileFormatError naming the file."""
    try:
        value = ds.get(name)
        vals = [float(v) for v in (value if isinstance(value, (list, tuple)) or hasattr(value, "__iter__")
                                   and not isinstance(value, (str, bytes)) else [value])]
    except Exception:  # pydicom parses elements lazily and raises many types on odd VRs
        raise FileFormatError(f"{f}: {name} is not a list of numbers") from None
    if len(vals) != n or not all(np.isfinite(vals)):
        raise FileFormatError(f"{f}: {name} must hold {n} finite numbers, got {vals[:8]}")
    return np.asarray(vals, dtype=np.float64)


def _float(ds, name: str, default: float, f: Path) -> float:
    try:
        v = ds.get(name)
        v = default if v is None or v == "" else float(v)
    except Exception:  # pydicom parses elements lazily and raises many types on odd VRs
        raise FileFormatError(f"{f}: {name} is not a number") from None
    if not np.isfinite(v):
        raise FileFormatError(f"{f}: {name} is not finite")
    return v


def _int(ds, name: str, f: Path, default: int | None = None) -> int:
    try:
        v = ds.get(name)
        if v is None and default is not None:
            return default
        v = int(v)
    except Exception:  # pydicom parses elements lazily and raises many types on odd VRs
        raise FileFormatError(f"{f}: {name} is missing or not an integer") from None
    if not 1 <= v <= 65535:
        raise FileFormatError(f"{f}: {name} is {v}, outside 1..65535")
    return v


def read_dicom_series(folder: str | os.PathLike, *, series_uid: str | None = None) -> tuple[np.ndarray, ImageGeometry]:
    """Read one image series from ``folder`` into a ``(k, j, i)`` array and its LPS geometry."""
    data, geom, _ = load_dicom_series(folder, series_uid=series_uid)
    return data, geom


def load_dicom_series(folder: str | os.PathLike, *, series_uid: str | None = None, pixels: bool = True):
    """``(array, geometry, datasets)``: the series and its pydicom datasets in k order."""
    try:
        return _load_series(Path(folder), series_uid, pixels)
    except (GpusegError, MemoryError):
        raise
    except Exception as exc:  # pydicom's lazy element parsing can raise anywhere
        raise FileFormatError(f"{folder}: corrupt DICOM series ({type(exc).__name__}: {exc})") from None


def _load_series(path: Path, series_uid: str | None, pixels: bool):
    if not path.is_dir():
        raise FileFormatError(f"{path}: not a folder of DICOM files")
    items = _load(path, pixels)
    if not items:
        raise FileFormatError(f"{path}: no DICOM image slices found")
    if len(items) > MAX_SLICES:
        raise FileFormatError(f"{path}: {len(items)} slices; at most {MAX_SLICES} are read")
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
    orient = _floats(first, "ImageOrientationPatient", 6, chosen[0][0])
    spacing = _floats(first, "PixelSpacing", 2, chosen[0][0])
    if np.any(spacing <= 0):
        raise FileFormatError(f"{chosen[0][0]}: PixelSpacing must be positive, got {spacing.tolist()}")
    rows, cols = _int(first, "Rows", chosen[0][0]), _int(first, "Columns", chosen[0][0])
    check_host_bytes(rows * cols * len(chosen) * 8, f"the series ({cols} x {rows} x {len(chosen)})", path)
    for f, ds in chosen:
        if not np.allclose(_floats(ds, "ImageOrientationPatient", 6, f), orient, atol=1e-4):
            raise FileFormatError(f"{path}: {f.name} has a different orientation than {chosen[0][0].name}")
        if not np.allclose(_floats(ds, "PixelSpacing", 2, f), spacing, rtol=1e-4):
            raise FileFormatError(f"{path}: {f.name} has a different pixel spacing")
        if (_int(ds, "Rows", f), _int(ds, "Columns", f)) != (rows, cols):
            raise FileFormatError(f"{path}: {f.name} has {ds.Rows}x{ds.Columns} pixels, others {rows}x{cols}")
        spp = _int(ds, "SamplesPerPixel", f, default=1)
        if spp != 1:
            raise FileFormatError(f"{path}: {f.name} has {spp} samples per pixel; only grayscale series are read")
    row_dir, col_dir = orient[:3], orient[3:]
    normal = np.cross(row_dir, col_dir)
    if np.linalg.norm(normal) < 0.5:
        raise FileFormatError(f"{path}: ImageOrientationPatient {orient.tolist()} is degenerate")
    pos = np.array([_floats(ds, "ImagePositionPatient", 3, f) for f, ds in chosen])
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
        try:
            dz = float(getattr(first, "SliceThickness", 1.0) or 1.0)
        except (TypeError, ValueError):
            dz = 1.0
        if not np.isfinite(dz) or dz <= 0:
            dz = 1.0
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
        except Exception as exc:  # pydicom raises many types on corrupt or unsupported pixel data
            raise FileFormatError(f"{path}: cannot decode the pixels of {f.name} ({type(exc).__name__}: {exc})") from None
        if pix.shape != (rows, cols) or pix.dtype.kind not in "iuf":
            raise FileFormatError(f"{path}: {f.name} decodes to pixels {pix.shape} {pix.dtype}, expected "
                                  f"({rows}, {cols}) grayscale")
        slope = _float(ds, "RescaleSlope", 1.0, f) or 1.0
        inter = _float(ds, "RescaleIntercept", 0.0, f)
        integral &= slope.is_integer() and inter.is_integer()
        with np.errstate(over="ignore", invalid="ignore"):
            out[k] = pix.astype(np.float64) * slope + inter
        if not np.all(np.isfinite(out[k])):
            raise FileFormatError(f"{path}: {f.name}: RescaleSlope/RescaleIntercept give non-finite values")
    if integral:
        data = out.astype(np.int64)
    else:
        data = out.astype(np.float32)
    return data, geom, datasets
