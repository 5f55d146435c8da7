"""Reading intensity images and writing plain labelmaps (NIfTI and NRRD).

NIfTI stores IJK→RAS; NRRD may be LPS or RAS. Both become gpuseg's LPS ``ImageGeometry``
and a ``(k, j, i)`` C-ordered array.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np

from ..backends import Backend
from ..errors import FileFormatError, GpusegError, InvalidInputError
from ..geometry import LPS_TO_RAS, ImageGeometry
from ..image import Image
from ._atomic import atomic_path
from ._nrrd import NrrdHeader, check_host_bytes, read_nrrd, read_nrrd_header

__all__ = ["read_image", "read_image_array", "write_labelmap", "image_format", "to_supported_dtype"]


def image_format(path: str | os.PathLike) -> str:
    """``"nifti"``, ``"nrrd"`` or ``"dicom"`` from the path, or raise."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz", ".hdr", ".img")):
        return "nifti"
    if name.endswith((".nrrd", ".nhdr")):
        return "nrrd"
    if p.is_dir():
        return "dicom"
    raise FileFormatError(f"{path}: unknown image format (expected .nii, .nii.gz, .nrrd, .nhdr or a DICOM folder)")


def to_supported_dtype(array: np.ndarray, source: str = "image") -> np.ndarray:
    """Convert to the nearest supported image dtype without losing values where possible."""
    dt = array.dtype
    if dt in (np.int16, np.uint16, np.int32, np.float32):
        return array
    if dt == np.bool_ or dt in (np.uint8, np.int8):
        return array.astype(np.int16)
    if dt.kind in "iu":
        if array.size == 0:
            return array.astype(np.int32)
        lo, hi = int(array.min()), int(array.max())
        for cand in (np.int16, np.uint16, np.int32):
            info = np.iinfo(cand)
            if info.min <= lo and hi <= info.max:
                return array.astype(cand)
        raise InvalidInputError(f"{source}: integer values {lo}..{hi} do not fit int32")
    if dt.kind == "f":
        return array.astype(np.float32)
    raise InvalidInputError(f"{source}: unsupported voxel type {dt}")


def _read_nifti(path: Path) -> tuple[np.ndarray, ImageGeometry]:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        shape = tuple(int(v) for v in img.header.get_data_shape())
        check_host_bytes(math.prod(shape) * max(img.header.get_data_dtype().itemsize, 4), f"the image {shape}", path)
        proxy = img.dataobj
        slope = getattr(proxy, "slope", 1.0)
        inter = getattr(proxy, "inter", 0.0)
        raw = np.asanyarray(proxy.get_unscaled() if hasattr(proxy, "get_unscaled") else proxy)
        affine = img.affine if img.affine is not None else np.eye(4)
    except FileNotFoundError:
        raise FileFormatError(f"{path}: file not found") from None
    except GpusegError:
        raise
    except Exception as exc:  # nibabel, gzip, zlib and numpy raise many types on corrupt files
        raise FileFormatError(f"{path}: cannot read NIfTI ({type(exc).__name__}: {exc})") from None
    if raw.ndim == 4 and raw.shape[3] == 1:
        raw = raw[..., 0]
    if raw.ndim != 3:
        raise FileFormatError(f"{path}: expected a 3D volume, got shape {raw.shape}")
    if raw.dtype.kind not in "iuf":
        raise FileFormatError(f"{path}: unsupported voxel type {raw.dtype} (RGB and complex images are not read)")
    try:
        slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
        inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    except (TypeError, ValueError):
        raise FileFormatError(f"{path}: scl_slope/scl_inter are not numbers") from None
    if slope != 1.0 or inter != 0.0:
        small = abs(slope) < 2**31 and abs(inter) < 2**62
        if small and slope.is_integer() and inter.is_integer() and raw.dtype.kind in "iu" and raw.dtype.itemsize <= 4:
            raw = raw.astype(np.int64) * int(slope) + int(inter)  # exact: |v| < 2^32 * 2^31 + 2^62
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                raw = raw.astype(np.float64) * slope + inter
                if not np.all(np.isfinite(raw)) or (raw.size and float(np.abs(raw).max()) > 3.4e38):
                    raise FileFormatError(f"{path}: scl_slope {slope:g} and scl_inter {inter:g} scale voxels "
                                          "beyond float32 (corrupt header?)")
    elif raw.dtype.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            if raw.dtype.itemsize > 4 and raw.size and float(np.nanmax(np.abs(raw))) > 3.4e38:
                raise FileFormatError(f"{path}: voxel values beyond float32")
    arr = np.ascontiguousarray(np.asarray(raw).transpose(2, 1, 0))
    return arr, _nifti_geometry(arr.shape, affine, path)


def _nifti_geometry(shape_kji, affine, path: Path) -> ImageGeometry:
    try:
        return ImageGeometry.from_ras_matrix(shape_kji, affine)
    except (InvalidInputError, TypeError, ValueError) as exc:
        raise FileFormatError(f"{path}: invalid NIfTI geometry ({exc})") from None


def _nrrd_space_to_lps(space: str, path: Path) -> np.ndarray:
    space = space.strip().lower()
    flip = {"left-posterior-superior": (1, 1, 1), "lps": (1, 1, 1), "right-anterior-superior": (-1, -1, 1),
            "ras": (-1, -1, 1), "left-anterior-superior": (1, -1, 1), "las": (1, -1, 1)}.get(space)
    if flip is None:
        raise FileFormatError(f"{path}: unsupported NRRD space {space[:60]!r} (expected LPS, RAS or LAS)")
    return np.diag(list(flip) + [1]).astype(np.float64)


def nrrd_geometry(header: NrrdHeader, shape_kji, path: Path) -> ImageGeometry:
    """ImageGeometry of the three domain axes of a 3D (or list+3D) NRRD header."""
    dim = header.dimension
    space = header.field("space")
    if space is None:
        sd = header.field("space dimension")
        if sd is not None and sd.strip() != "3":
            raise FileFormatError(f"{path}: 'space dimension' must be 3, got {sd[:20]!r}")
        space = "left-posterior-superior"
    vecs = header.vectors("space directions", dim)
    if vecs:
        dirs = [v for v in vecs if v is not None]
        if len(dirs) != 3 or any(len(v) != 3 for v in dirs):
            raise FileFormatError(f"{path}: NRRD space directions must hold three 3-vectors (one per domain axis)")
        dirs_a = np.asarray(dirs, dtype=np.float64)
    else:
        spacings = header.floats("spacings", dim)
        if spacings is not None:
            sp = [v for v in spacings if math.isfinite(v)]
            if len(sp) != 3:
                raise FileFormatError(f"{path}: 'spacings' must give three finite domain spacings")
            dirs_a = np.diag(sp)
        else:
            dirs_a = np.eye(3)
    origin_v = header.vectors("space origin", 1)
    if origin_v and (origin_v[0] is None or len(origin_v[0]) != 3):
        raise FileFormatError(f"{path}: 'space origin' must be one 3-vector (x,y,z)")
    origin = np.asarray(origin_v[0], dtype=np.float64) if origin_v else np.zeros(3)
    m = np.eye(4)
    m[:3, :3] = dirs_a.T  # rows of 'space directions' are the axis vectors
    m[:3, 3] = origin
    m = _nrrd_space_to_lps(space, path) @ m
    try:
        return ImageGeometry.from_matrix(shape_kji, m)
    except InvalidInputError as exc:
        raise FileFormatError(f"{path}: invalid NRRD geometry: {exc}") from exc


def _scalar_volume_geometry(header: NrrdHeader, shape_kji, path: Path) -> ImageGeometry:
    """The geometry of a NRRD that must hold one 3D scalar volume."""
    kinds = header.words("kinds", header.dimension)
    if len(shape_kji) != 3 or (kinds is not None and any(k.lower() not in ("domain", "space") for k in kinds)):
        raise FileFormatError(f"{path}: expected a 3D scalar volume, got {len(shape_kji)}D (kinds: {kinds})")
    return nrrd_geometry(header, shape_kji, path)


def _read_nrrd(path: Path) -> tuple[np.ndarray, ImageGeometry]:
    data, header = read_nrrd(path)
    return data, _scalar_volume_geometry(header, data.shape, path)


def _existing(path: str | os.PathLike) -> tuple[Path, str]:
    """``(path, format)``, with a typed error for a missing file (a DICOM folder is checked by its reader)."""
    p = Path(path)
    fmt = image_format(p)
    if fmt != "dicom" and not p.exists():
        raise FileFormatError(f"{p}: file not found")
    return p, fmt


def read_image_array(path: str | os.PathLike) -> tuple[np.ndarray, ImageGeometry]:
    """Read a volume file into a host ``(k, j, i)`` array (original dtype) and its geometry."""
    p, fmt = _existing(path)
    if fmt == "nifti":
        return _read_nifti(p)
    if fmt == "nrrd":
        return _read_nrrd(p)
    from .dicom import read_dicom_series  # noqa: PLC0415 - optional dependency

    return read_dicom_series(p)


def read_image_geometry(path: str | os.PathLike) -> ImageGeometry:
    """The geometry of a volume file from its headers alone: the NIfTI or NRRD header, or every
    slice's DICOM header (the pixel data is not read). Equal to ``read_image_array(path)[1]``."""
    p, fmt = _existing(path)
    if fmt == "dicom":
        from .dicom import load_dicom_series  # noqa: PLC0415 - optional dependency

        return load_dicom_series(p, pixels=False)[1]
    if fmt == "nifti":
        import nibabel as nib

        try:
            img = nib.load(str(p))
            shape = tuple(int(v) for v in img.header.get_data_shape())
            affine = img.affine if img.affine is not None else np.eye(4)
        except FileNotFoundError:
            raise FileFormatError(f"{p}: file not found") from None
        except Exception as exc:  # nibabel raises many types on corrupt headers
            raise FileFormatError(f"{p}: cannot read NIfTI ({type(exc).__name__}: {exc})") from None
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        if len(shape) != 3:
            raise FileFormatError(f"{p}: expected a 3D volume, got shape {shape}")
        return _nifti_geometry(shape[::-1], affine, p)
    if fmt == "nrrd":
        header = read_nrrd_header(p)
        return _scalar_volume_geometry(header, tuple(header.sizes[::-1]), p)


def read_image(path: str | os.PathLike, *, backend: str | Backend | None = None) -> Image:
    """Read a NIfTI or NRRD volume onto a backend.

    Values are converted to the nearest supported dtype (uint8 → int16, float64 → float32,
    int64 → the smallest integer type that holds the values).
    """
    arr, geom = read_image_array(path)
    arr = to_supported_dtype(arr, str(path))
    return Image.from_numpy(arr, geom, backend=backend)


def write_labelmap(path: str | os.PathLike, labels: np.ndarray, geometry: ImageGeometry, *,
                   compress: bool = True) -> Path:
    """Write a ``(k, j, i)`` integer labelmap as NIfTI or NRRD, atomically."""
    p = Path(path)
    fmt = image_format(p)
    if labels.shape != geometry.shape:
        raise InvalidInputError(f"labelmap shape {labels.shape} does not match geometry {geometry.shape}")
    if fmt == "nifti":
        import nibabel as nib

        img = nib.Nifti1Image(np.asarray(labels).transpose(2, 1, 0), geometry.ijk_to_ras)
        img.set_qform(geometry.ijk_to_ras, code=1)
        img.set_sform(geometry.ijk_to_ras, code=1)
        with atomic_path(p) as tmp:
            nib.save(img, str(tmp))
    elif fmt == "nrrd":
        import nrrd

        header = {"space": "left-posterior-superior", "space directions": geometry.ijk_to_world[:3, :3].T,
                  "space origin": np.asarray(geometry.origin), "kinds": ["domain"] * 3,
                  "encoding": "gzip" if compress else "raw"}
        with atomic_path(p) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nrrd.write(str(tmp), np.ascontiguousarray(labels), header, index_order="C")
    else:
        raise FileFormatError(f"{p}: cannot write a labelmap as {fmt}")
    return p
