"""DICOM series reading on series generated in the test with pydicom."""

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

import gpuseg  # noqa: E402
from gpuseg.errors import FileFormatError  # noqa: E402
from gpuseg.io.dicom import read_dicom_series  # noqa: E402


def write_series(folder, volume, *, spacing=(0.7, 0.8), dz=2.5, origin=(-100.0, -50.0, 20.0),
                 orientation=(1, 0, 0, 0, 1, 0), slope=1.0, intercept=-1024.0, series_uid=None, positions=None):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    row, col = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row, col)
    series_uid = series_uid or generate_uid()
    for k in range(volume.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID = series_uid
        ds.StudyInstanceUID = "1.2.3"
        ds.Modality = "CT"
        ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "P1", "Phantom^Test", "19700101", "O"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", "A1"
        ds.ReferringPhysicianName = ""
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.FrameOfReferenceUID = "1.2.3.4"
        pos = np.array(origin) + (positions[k] if positions is not None else k * dz) * normal
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
        ds.PixelSpacing = [spacing[1], spacing[0]]  # row spacing (j), column spacing (i)
        ds.SliceThickness = dz
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        ds.PixelData = np.ascontiguousarray(volume[k].astype(np.uint16)).tobytes()
        # files named out of order: the reader must sort by position
        ds.save_as(str(folder / f"img{(k * 7) % volume.shape[0]:03d}_{k}_{series_uid[-6:]}_{pos[2]:.0f}.dcm"),
                   enforce_file_format=True)
    return series_uid


def test_series_sorted_rescaled_oriented(tmp_path, rng):
    vol = rng.integers(0, 3000, (6, 5, 7)).astype(np.uint16)
    c, s = np.cos(0.3), np.sin(0.3)
    orientation = (c, s, 0, -s, c, 0)  # rotated about the axial normal
    write_series(tmp_path / "ct", vol, orientation=orientation)
    data, geom = read_dicom_series(tmp_path / "ct")
    np.testing.assert_array_equal(data, vol.astype(np.int64) - 1024)
    np.testing.assert_allclose(geom.spacing, (0.7, 0.8, 2.5), atol=1e-4)
    np.testing.assert_allclose(geom.direction[:, 0], orientation[:3], atol=1e-6)
    np.testing.assert_allclose(geom.origin, (-100, -50, 20), atol=1e-5)
    img = gpuseg.read_image(tmp_path / "ct", backend="cpu")
    assert img.dtype == np.int16  # -1024..1975 fits int16
    # voxel (k=3, j=2, i=4) lies where DICOM puts it
    want = np.array([-100, -50, 20]) + 4 * 0.7 * np.array(orientation[:3]) + 2 * 0.8 * np.array(orientation[3:]) \
        + 3 * 2.5 * np.array([0, 0, 1])
    np.testing.assert_allclose(geom.ijk_to_world_points([4, 2, 3]), want, atol=1e-5)


def test_float_rescale(tmp_path, rng):
    vol = rng.integers(0, 100, (3, 4, 4)).astype(np.uint16)
    write_series(tmp_path / "pet", vol, slope=0.5, intercept=0.25)
    data, _ = read_dicom_series(tmp_path / "pet")
    assert data.dtype == np.float32
    np.testing.assert_allclose(data, vol * 0.5 + 0.25)


def test_mixed_series_gap_and_orientation_errors(tmp_path, rng):
    vol = rng.integers(0, 100, (4, 3, 3)).astype(np.uint16)
    write_series(tmp_path / "mixed", vol)
    uid = write_series(tmp_path / "mixed", vol, origin=(0, 0, 500))
    with pytest.raises(FileFormatError, match="mixes 2 series"):
        read_dicom_series(tmp_path / "mixed")
    data, _ = read_dicom_series(tmp_path / "mixed", series_uid=uid)
    assert data.shape == (4, 3, 3)
    write_series(tmp_path / "gap", vol, positions=[0, 2.5, 5.0, 10.0])
    with pytest.raises(FileFormatError, match="gap"):
        read_dicom_series(tmp_path / "gap")
    uid = write_series(tmp_path / "tilt", vol[:2])
    write_series(tmp_path / "tilt", vol[:2], orientation=(1, 0, 0, 0, 0.8, 0.6), series_uid=uid, origin=(0, 0, 40))
    with pytest.raises(FileFormatError, match="different orientation"):
        read_dicom_series(tmp_path / "tilt")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not dicom")
    with pytest.raises(FileFormatError, match="no DICOM image slices"):
        gpuseg.read_image(tmp_path / "empty")


def test_dicom_seg_round_trip(tmp_path, rng):
    pytest.importorskip("highdicom")
    from gpuseg import Mask, Segmentation

    vol = rng.integers(0, 2000, (5, 16, 20)).astype(np.uint16)
    write_series(tmp_path / "ct", vol, orientation=(1, 0, 0, 0, 1, 0))
    img = gpuseg.read_image(tmp_path / "ct", backend="cpu")
    seg = Segmentation(img.geometry, backend="cpu")
    a = np.zeros(img.shape, bool)
    a[1:4, 2:10, 3:15] = True
    b = np.zeros(img.shape, bool)
    b[2:5, 5:14, 10:19] = True  # overlaps a
    liver = ("Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure~"
             "SCT^10200004^Liver~^^~Anatomic codes - DICOM master list~^^~^^")
    seg.add_segment(Mask.from_numpy(a, img.geometry, backend="cpu"), name="liver", color=(0.8, 0.4, 0.3),
                    tags={"TerminologyEntry": liver})
    seg.add_segment(Mask.from_numpy(b, img.geometry, backend="cpu"), name="lesion")
    out = tmp_path / "seg.dcm"
    with pytest.raises(gpuseg.InvalidInputError, match="reference"):
        gpuseg.write_segmentation(seg, out)
    gpuseg.write_segmentation(seg, out, reference=tmp_path / "ct")
    back = gpuseg.read_segmentation(out, backend="cpu", reference=img.geometry)
    assert [s.name for s in back] == ["liver", "lesion"]
    np.testing.assert_array_equal(back[0].mask.to_numpy(), a)
    np.testing.assert_array_equal(back[1].mask.to_numpy(), b)
    assert "SCT^10200004^Liver" in back[0].terminology
    np.testing.assert_allclose(back[0].color, (0.8, 0.4, 0.3), atol=0.02)
    own = gpuseg.read_segmentation(out, backend="cpu")  # on the SEG's own grid (slices with frames)
    assert own[0].mask.count() == a.sum()
    np.testing.assert_allclose(own.geometry.spacing, img.geometry.spacing, atol=1e-4)
    other = Segmentation(gpuseg.ImageGeometry((5, 16, 21)), backend="cpu")
    other.add_segment(name="x")
    with pytest.raises(gpuseg.GeometryMismatchError):
        gpuseg.write_segmentation(other, tmp_path / "bad.dcm", reference=tmp_path / "ct")
    assert not (tmp_path / "bad.dcm").exists()
