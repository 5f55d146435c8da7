"""``read_segmentation`` / ``write_segmentation``: pick the format from the file name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..backends import Backend
from ..errors import FileFormatError
from ..segmentation import Segmentation

__all__ = ["read_segmentation", "write_segmentation", "segmentation_format"]


def segmentation_format(path: str | os.PathLike, *, for_writing: bool = False) -> str:
    name = Path(path).name.lower()
    if name.endswith((".seg.nrrd", ".nrrd", ".seg.nhdr", ".nhdr")):
        return "nrrd"
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith((".h5", ".hdf5")):
        return "hdf5"
    if name.endswith(".dcm"):
        return "dicom-seg"
    if for_writing and (str(path).endswith(os.sep) or Path(path).is_dir() or not Path(path).suffix):
        return "nifti-folder"
    raise FileFormatError(f"{path}: unknown segmentation format (expected .seg.nrrd, .nrrd, .nii, .nii.gz, "
                          ".h5 or .dcm)")


def read_segmentation(path: str | os.PathLike, *, backend: str | Backend | None = None,
                      segments: Iterable[str] | None = None, labels: str | os.PathLike | None = None,
                      reference=None, root: str | os.PathLike | None = None) -> Segmentation:
    """Read a segmentation: ``.seg.nrrd`` (Slicer), ``.nrrd``/``.nii``/``.nii.gz`` labelmaps (one
    segment per label value; names from ``labels``, a label table), ``.h5`` (gpuseg's own
    format) or ``.dcm`` (DICOM SEG; ``reference``, an ImageGeometry or Image, places it on a
    grid). ``segments`` reads only those segments (ids or names). A detached NRRD data file must
    lie beside its header and inside ``root`` (a service passes its upload folder)."""
    fmt = segmentation_format(path)
    if not Path(path).exists():
        raise FileFormatError(f"{path}: file not found")
    if fmt == "nrrd":
        from .segnrrd import read_seg_nrrd

        seg = read_seg_nrrd(path, backend=backend, segments=segments, root=root)
        if labels is not None:
            _apply_table(seg, labels)
        return seg
    if fmt == "nifti":
        from .nifti import read_nifti_segmentation

        return read_nifti_segmentation(path, backend=backend, labels=labels, segments=segments)
    if fmt == "dicom-seg":
        from .dicom_seg import read_dicom_seg

        geom = reference.geometry if hasattr(reference, "geometry") else reference
        seg = read_dicom_seg(path, backend=backend, reference=geom)
        if segments is not None:
            seg.keep_only(segments)
        return seg
    from .hdf5 import read_h5

    return read_h5(path, backend=backend, segments=segments)


def _apply_table(seg: Segmentation, labels) -> None:
    from .labels import read_label_table

    table = read_label_table(labels)
    for s in seg:
        if s.name_auto_generated and s.label_value in table.names:
            s.name = table.names[s.label_value]
            s.name_auto_generated = False
        if s.color_auto_generated and s.label_value in table.colors:
            s.color = table.colors[s.label_value]
            s.color_auto_generated = False


def write_segmentation(seg: Segmentation, path: str | os.PathLike, **options) -> Path:
    """Write a segmentation; the format follows the extension (see :func:`read_segmentation`).
    A path without extension (or an existing folder) gets one NIfTI file per segment. A DICOM
    SEG (``.dcm``) needs ``reference=`` the folder of the DICOM series it was drawn on."""
    if not isinstance(seg, Segmentation):
        from ..errors import InvalidInputError

        raise InvalidInputError(f"expected a Segmentation, got {type(seg).__name__}")
    fmt = segmentation_format(path, for_writing=True)
    if fmt == "nrrd":
        from .segnrrd import write_seg_nrrd

        return write_seg_nrrd(seg, path, **options)
    if fmt == "nifti":
        from .nifti import write_nifti_segmentation

        return write_nifti_segmentation(seg, path, **options)
    if fmt == "nifti-folder":
        from .nifti import write_nifti_folder

        return write_nifti_folder(seg, path, **options)
    if fmt == "dicom-seg":
        from .dicom_seg import write_dicom_seg

        return write_dicom_seg(seg, path, **options)
    from .hdf5 import write_h5

    return write_h5(seg, path, **options)
