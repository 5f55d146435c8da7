"""DICOM SEG (highdicom, the ``dicom`` extra): export for clinical interchange, and import.

A DICOM SEG references the image series it was drawn on, so export needs that series
(``reference=`` a DICOM folder) on the segmentation's grid. Segments are written as a BINARY
SEG (overlaps allowed), with their names, their terminology (category and type codes from the
``TerminologyEntry`` tag; Slicer's default "Tissue" otherwise) and display colors. Import reads
every segment back onto the SEG's own grid (its frames' positions), or onto ``reference`` (an
``ImageGeometry``) when the SEG lies on that grid's lattice.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..backends import Backend, get_backend
from ..errors import FileFormatError, GeometryMismatchError, GpusegError, InvalidInputError
from ..geometry import ImageGeometry
from ..mask import Mask
from ..segmentation import DEFAULT_TERMINOLOGY, Segmentation
from ._atomic import atomic_path

__all__ = ["write_dicom_seg", "read_dicom_seg"]


def _hd():
    try:
        import highdicom as hd
    except ImportError as exc:  # pragma: no cover - in the [dicom] extra
        raise FileFormatError("DICOM SEG needs highdicom (pip install 'gpuseg[dicom]')") from exc
    return hd


def _code(text: str, default):
    hd = _hd()
    parts = text.split("^") if text else []
    if len(parts) >= 3 and parts[0] and parts[1]:
        return hd.sr.CodedConcept(value=parts[1], scheme_designator=parts[0], meaning=parts[2] or parts[1])
    return default


def _terminology(entry: str | None):
    """Category, type, type modifier, anatomic region and region modifier codes of a Slicer
    ``TerminologyEntry`` (context~category~type~type modifier~region context~region~region modifier);
    the last three are None where the entry has none."""
    hd = _hd()
    tissue = hd.sr.CodedConcept(value="85756007", scheme_designator="SCT", meaning="Tissue")
    parts = (entry or DEFAULT_TERMINOLOGY).split("~")
    category = _code(parts[1] if len(parts) > 1 else "", tissue)
    kind = _code(parts[2] if len(parts) > 2 else "", tissue)
    extra = [_code(parts[i], None) if len(parts) > i else None for i in (3, 5, 6)]
    return (category, kind, *extra)


def write_dicom_seg(seg: Segmentation, path: str | os.PathLike, *, reference: str | os.PathLike | None = None,
                    series_description: str = "gpuseg segmentation") -> Path:
    """Write ``seg`` as a DICOM SEG that references the DICOM series in folder ``reference``."""
    hd = _hd()
    from .dicom import load_dicom_series

    if reference is None:
        raise InvalidInputError("a DICOM SEG must reference its source images: pass reference=<DICOM folder> "
                                "(CLI: --reference)")
    _, geom, datasets = load_dicom_series(reference, pixels=False)
    if not geom.is_same_grid(seg.geometry, atol=1e-3):
        raise GeometryMismatchError(f"the segmentation's grid {seg.geometry!r} is not the DICOM series' grid {geom!r}")
    if len(seg) == 0:
        raise InvalidInputError("a DICOM SEG needs at least one segment")
    for s in seg:  # SegmentLabel is a DICOM LO: 64 characters, no backslash, no control characters
        if (len(s.name) > 64 or "\\" in s.name or s.name != s.name.strip(" ")
                or any(ord(c) < 32 or 0xD800 <= ord(c) < 0xE000 for c in s.name)):
            raise InvalidInputError(f"segment name {s.name[:80]!r} cannot be a DICOM segment label (at most 64 "
                                    "characters, no backslash or control characters, no leading or trailing "
                                    "spaces, which DICOM drops)")
    nk, nj, ni = geom.shape
    pixels = np.zeros((nk, nj, ni, len(seg)), bool)
    descriptions = []
    for n, s in enumerate(seg):
        ext = s.mask.box_extent
        if not ext.is_empty:
            pixels[ext.slices + (n,)] = s.mask.to_numpy(ext)
        category, kind, modifier, region, region_modifier = _terminology(s.terminology)
        lab = hd.color.CIELabColor.from_rgb(*[int(round(255 * c)) for c in s.color]) \
            if hasattr(hd.color.CIELabColor, "from_rgb") else None
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=n + 1, segment_label=s.name, segmented_property_category=category,
            segmented_property_type=kind, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            display_color=lab, anatomic_regions=[region] if region is not None else None))
        if modifier is not None:  # e.g. Kidney + Left (highdicom has no argument for it)
            descriptions[-1].SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [modifier]
        if region is not None and region_modifier is not None:
            descriptions[-1].AnatomicRegionSequence[0].AnatomicRegionModifierSequence = [region_modifier]
    from ..version import __version__

    try:
        dcm = hd.seg.Segmentation(
            source_images=datasets, pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=9001,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="gpuseg", manufacturer_model_name="gpuseg",
            software_versions=__version__, device_serial_number="0", series_description=series_description,
            omit_empty_frames=True)
    except (AttributeError, ValueError, TypeError) as exc:
        raise FileFormatError(f"{reference}: cannot make a DICOM SEG of this series ({type(exc).__name__}: {exc})") from exc
    dcm.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: segment labels are written unchanged ("肝臓", emoji)
    p = Path(path)
    with atomic_path(p, suffix=".dcm") as tmp:
        dcm.save_as(str(tmp))
    return p


def read_dicom_seg(path: str | os.PathLike, *, backend: str | Backend | None = None,
                   reference: ImageGeometry | None = None) -> Segmentation:
    """Read a DICOM SEG (binary or fractional thresholded at 0.5) into a Segmentation."""
    try:
        return _read(path, backend, reference)
    except (GpusegError, MemoryError):
        raise
    except Exception as exc:  # pydicom/highdicom parse lazily and raise many types on corrupt files
        raise FileFormatError(f"{path}: corrupt DICOM SEG ({type(exc).__name__}: {exc})") from None


def _read(path, backend, reference) -> Segmentation:
    hd = _hd()
    p = Path(path)
    try:
        dcm = hd.seg.segread(str(p))
    except FileNotFoundError as exc:
        raise FileFormatError(f"{p}: file not found") from exc
    except Exception as exc:
        raise FileFormatError(f"{p}: not a readable DICOM SEG ({type(exc).__name__}: {exc})") from exc
    numbers = [int(s.SegmentNumber) for s in dcm.SegmentSequence]
    from ._nrrd import check_host_bytes

    frames = int(getattr(dcm, "NumberOfFrames", 1) or 1)
    check_host_bytes(int(dcm.Rows) * int(dcm.Columns) * max(frames, 1) * max(len(numbers), 1) * 4,
                     "the DICOM SEG's frames", p)
    try:
        vol = dcm.get_volume(combine_segments=False, segment_numbers=numbers)
    except Exception as exc:
        raise FileFormatError(f"{p}: the SEG's frames do not form a regular volume ({exc})") from exc
    arr = np.asarray(vol.array)
    if arr.ndim == 3:
        arr = arr[..., None]
    a = np.asarray(vol.affine, dtype=np.float64)  # (slice, row, column) -> LPS
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = a[:3, 2], a[:3, 1], a[:3, 0], a[:3, 3]
    if np.dot(m[:3, 2], np.cross(m[:3, 0], m[:3, 1])) < 0:
        # order the slices along the normal of the rows and columns, as the series reader does
        arr = arr[::-1]
        m[:3, 3] = m[:3, 3] + (arr.shape[0] - 1) * m[:3, 2]
        m[:3, 2] = -m[:3, 2]
    geom = ImageGeometry.from_matrix(arr.shape[:3], m)
    offset = (0, 0, 0)
    if reference is not None:
        if not reference.is_same_lattice(geom, atol=1e-3):
            raise GeometryMismatchError(f"{p}: the SEG is not on the reference grid's lattice")
        i, j, k = np.rint(reference.world_to_ijk_points(geom.origin)).astype(int)
        offset = (int(k), int(j), int(i))
        if not reference.extent.contains(geom.sub_geometry(geom.extent).extent) or min(offset) < 0 or any(
                o + s > r for o, s, r in zip(offset, geom.shape, reference.shape)):
            raise GeometryMismatchError(f"{p}: the SEG reaches outside the reference grid")
        geom = reference
    b = get_backend(backend)
    seg = Segmentation(geom, backend=b)
    for n, desc in enumerate(dcm.SegmentSequence):
        bits = arr[..., n] > (0.5 if arr.dtype.kind == "f" else 0)
        mask = Mask.from_numpy(bits, geom, offset=offset, backend=b, crop=True)
        tags = {"Segmentation.Status": "completed"}
        try:
            cat = desc.SegmentedPropertyCategoryCodeSequence[0]
            typ = desc.SegmentedPropertyTypeCodeSequence[0]

            def c(seq_owner, name):
                seq = getattr(seq_owner, name, None) if seq_owner is not None else None
                x = seq[0] if seq else None
                return f"{x.CodingSchemeDesignator}^{x.CodeValue}^{x.CodeMeaning}" if x is not None else "^^"

            region = desc.AnatomicRegionSequence[0] if getattr(desc, "AnatomicRegionSequence", None) else None
            tags["TerminologyEntry"] = (
                "Segmentation category and type - DICOM master list~"
                f"{cat.CodingSchemeDesignator}^{cat.CodeValue}^{cat.CodeMeaning}~"
                f"{typ.CodingSchemeDesignator}^{typ.CodeValue}^{typ.CodeMeaning}~"
                f"{c(typ, 'SegmentedPropertyTypeModifierCodeSequence')}~"
                f"Anatomic codes - DICOM master list~{c(desc, 'AnatomicRegionSequence')}~"
                f"{c(region, 'AnatomicRegionModifierSequence')}")
        except (AttributeError, IndexError):
            pass
        color = None
        lab = getattr(desc, "RecommendedDisplayCIELabValue", None)
        if lab is not None and hasattr(hd.color, "CIELabColor"):
            try:
                rgb = hd.color.CIELabColor.from_dicom_value(tuple(int(v) for v in lab)).to_rgb()
                color = tuple(min(1.0, max(0.0, c / 255.0)) for c in rgb)
            except Exception:
                color = None
        s = seg.add_segment(mask, name=str(desc.SegmentLabel), color=color, tags=tags)
        s.name_auto_generated = False
    return seg
