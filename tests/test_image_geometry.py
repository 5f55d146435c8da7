"""read_image_geometry: the grid of a volume file from its header alone, equal to the grid that
reading the whole file gives (the CLI's --reference options use it)."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from gpuseg.errors import FileFormatError
from gpuseg.io import read_image_array, read_image_geometry

from .conftest import shared_file


def same_grid(a, b):
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.ijk_to_world, b.ijk_to_world)


def oblique_affine(spacing=(0.7, 1.3, 2.9)):
    rot = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    m = np.eye(4)
    m[:3, :3] = rot @ np.diag(spacing)
    m[:3, 3] = (-31.5, 12.25, 7.0)
    return m


@pytest.mark.parametrize("shape", [(5, 7, 9), (6, 4, 3, 1)])
def test_nifti_oblique_anisotropic(tmp_path, shape):
    p = tmp_path / "img.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(np.prod(shape), dtype=np.int16).reshape(shape), oblique_affine()), p)
    g = read_image_geometry(p)
    same_grid(g, read_image_array(p)[1])
    assert g.shape == shape[:3][::-1]


def test_nrrd_with_space_directions(tmp_path):
    import nrrd

    p = tmp_path / "img.nrrd"
    data = np.zeros((4, 5, 6), np.int16)  # pynrrd order: fastest axis first
    nrrd.write(str(p), data, {"space": "right-anterior-superior",
                              "space directions": oblique_affine()[:3, :3].T,
                              "space origin": np.array([1.0, -2.0, 3.5])})
    g = read_image_geometry(p)
    same_grid(g, read_image_array(p)[1])
    assert g.shape == (6, 5, 4)


def test_shared_examples():
    for parts in (("slicer", "CTChest4.nrrd"), ("totalseg", "example_ct_sm.nii.gz")):
        f = shared_file(*parts)
        same_grid(read_image_geometry(f), read_image_array(f)[1])


def test_header_only_reads_no_voxels(tmp_path):
    """A NIfTI whose voxels are cut off still gives its grid (the voxels are never read), while
    reading the image fails with a typed error."""
    p = tmp_path / "img.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((40, 40, 40), np.int16), np.diag([0.5, 0.5, 2.0, 1.0])), p)
    raw = gzip.decompress(p.read_bytes())
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(gzip.compress(raw[:400]))
    assert read_image_geometry(cut).shape == (40, 40, 40)
    with pytest.raises(FileFormatError):
        read_image_array(cut)


def test_errors(tmp_path):
    with pytest.raises(FileFormatError, match="not found"):
        read_image_geometry(tmp_path / "missing.nii.gz")
    bad = tmp_path / "bad.nrrd"
    bad.write_bytes(b"not a nrrd\n")
    with pytest.raises(FileFormatError, match="magic"):
        read_image_geometry(bad)
    flat = tmp_path / "flat.nii"
    nib.save(nib.Nifti1Image(np.zeros((4, 5), np.uint8), np.eye(4)), flat)
    with pytest.raises(FileFormatError, match="3D"):
        read_image_geometry(flat)
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(FileFormatError, match="NIfTI"):
        read_image_geometry(junk)


def test_dicom_geometry_from_headers_without_pixels(tmp_path, rng, monkeypatch):
    """A DICOM series' grid comes from the slices' headers: equal to the full read's, oblique and
    anisotropic, and no slice's pixels are decoded or loaded (pydicom defers them)."""
    pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset

    from .test_dicom import write_series

    vol = rng.integers(0, 3000, (5, 6, 9)).astype(np.uint16)
    c, s_ = np.cos(0.4), np.sin(0.4)
    folder = tmp_path / "series"
    write_series(folder, vol, spacing=(0.6, 0.9), dz=3.1, orientation=(c, s_, 0, -s_, c, 0))
    full = read_image_array(folder)[1]

    def no_pixels(self):
        raise AssertionError("pixel data decoded")

    monkeypatch.setattr(Dataset, "pixel_array", property(no_pixels))
    same_grid(read_image_geometry(folder), full)
    with pytest.raises(FileFormatError):
        read_image_geometry(tmp_path / "missing_series")
