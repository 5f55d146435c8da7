"""Regression tests of issue 18's reader and writer defects; every input is generated here."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import gpuseg
from gpuseg.errors import DeviceMemoryError, FileFormatError, FileWriteError, GpusegError, InvalidInputError
from gpuseg.geometry import ImageGeometry
from gpuseg.io.segnrrd import read_seg_nrrd, write_seg_nrrd
from gpuseg.mask import Mask
from gpuseg.segmentation import Segmentation

REPO = Path(__file__).resolve().parents[1]
SLICER = Path(os.environ.get("GPUSEG_TEST_DATA", REPO.parent / "shared" / "data")) / "slicer"
NAMES = ["肝臓", "🦴 bone", "Hüfte", "two\nlines", " leading space", "back\\slash", "trailing "]


def small_seg(names=("a", "b"), shape=(3, 4, 33)):
    g = ImageGeometry(shape, spacing=(0.7, 1.2, 2.0), origin=(1.0, -2.0, 3.0))
    seg = Segmentation(g, backend="cpu")
    rng = np.random.default_rng(3)
    for n, name in enumerate(names):
        m = rng.random(shape) < 0.3
        seg.add_segment(Mask.from_numpy(m, g, backend="cpu", crop=True), name=name, label_value=n + 1,
                        color=(0.1 * n, 0.5, 0.9))
    return seg


def raw_seg_nrrd(tmp_path, seg=None) -> tuple[bytes, bytes]:
    p = tmp_path / "base.seg.nrrd"
    write_seg_nrrd(seg or small_seg(), p, encoding="raw")
    head, _, payload = p.read_bytes().partition(b"\n\n")
    return head, payload


def with_line(head: bytes, line: str, replace: str | None = None) -> bytes:
    lines = head.split(b"\n")
    if replace is not None:
        lines = [x for x in lines if not x.startswith(replace.encode())]
    return b"\n".join(lines[:3] + [line.encode()] + lines[3:])


# --- detached data files ----------------------------------------------------------------------
@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "/etc/hostname", "../outside.raw", "sub/../../x.raw",
                                    "LIST"])
def test_detached_data_file_confined(tmp_path, target):
    head, payload = raw_seg_nrrd(tmp_path)
    (tmp_path / "outside.raw").write_bytes(payload)
    d = tmp_path / "in"
    d.mkdir()
    hdr = d / "x.seg.nhdr"
    hdr.write_bytes(with_line(head, f"data file: {target}") + b"\n")
    with pytest.raises(FileFormatError, match="data file"):
        read_seg_nrrd(hdr, backend="cpu")


def test_detached_data_file_beside_header_reads_and_is_checked(tmp_path):
    seg = small_seg()
    head, payload = raw_seg_nrrd(tmp_path, seg)
    hdr = tmp_path / "x.seg.nhdr"
    hdr.write_bytes(with_line(head, "data file: x.raw") + b"\n")
    (tmp_path / "x.raw").write_bytes(payload)
    back = read_seg_nrrd(hdr, backend="cpu")
    assert [s.mask.equals(t.mask) for s, t in zip(seg, back)] == [True, True]
    (tmp_path / "x.raw").write_bytes(payload[:-5])  # shorter than declared
    with pytest.raises(FileFormatError, match="truncated"):
        read_seg_nrrd(hdr, backend="cpu")
    (tmp_path / "x.raw").unlink()
    os.symlink("/dev/zero", tmp_path / "x.raw")  # a link to a device beside the header
    with pytest.raises(FileFormatError, match="outside|regular"):
        read_seg_nrrd(hdr, backend="cpu")
    (tmp_path / "x.raw").unlink()
    (tmp_path / "x.raw").mkdir()
    with pytest.raises(FileFormatError, match="regular"):
        read_seg_nrrd(hdr, backend="cpu")


def test_detached_data_file_inside_allowed_root_only(tmp_path):
    head, payload = raw_seg_nrrd(tmp_path)
    d = tmp_path / "uploads" / "case"
    d.mkdir(parents=True)
    (d / "x.seg.nhdr").write_bytes(with_line(head, "data file: x.raw") + b"\n")
    (d / "x.raw").write_bytes(payload)
    assert len(gpuseg.read_segmentation(d / "x.seg.nhdr", backend="cpu", root=tmp_path / "uploads")) == 2
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(FileFormatError, match="outside"):
        gpuseg.read_segmentation(d / "x.seg.nhdr", backend="cpu", root=other)


# --- trusted sizes ---------------------------------------------------------------------------
@pytest.mark.parametrize("line, replace, error", [
    ("sizes: 100000 100000 100000", "sizes:", (DeviceMemoryError, FileFormatError)),
    ("line skip: 100000000", None, FileFormatError),
    ("byte skip: 100000000", None, FileFormatError),
    ("space origin: (1,2)", "space origin:", FileFormatError),
    ("space origin: (nan,0,0)", "space origin:", FileFormatError),
    ("Segment0_Extent:=0 inf 0 1 0 1", "Segment0_Extent", FileFormatError),
    ("Segment0_Extent:=0 1e400 0 1 0 1", "Segment0_Extent", FileFormatError),
    ("Segmentation_ReferenceImageExtentOffset:=0 0 1e400", "Segmentation_ReferenceImageExtentOffset", FileFormatError),
    ("Segment99999999999999_ID:=x", None, FileFormatError),
    ("Segment0_LabelValue:=70000", "Segment0_LabelValue", FileFormatError),
    ("encoding: bzip2", "encoding:", FileFormatError),
    ("type: double", "type:", FileFormatError),
])
def test_declared_sizes_refused_before_reading(tmp_path, line, replace, error):
    head, payload = raw_seg_nrrd(tmp_path)
    p = tmp_path / "x.seg.nrrd"
    p.write_bytes(with_line(head, line, replace) + b"\n\n" + payload)
    with pytest.raises(error):
        read_seg_nrrd(p, backend="cpu")


def test_reference_geometry_of_100000_cubed_is_refused(tmp_path):
    head, payload = raw_seg_nrrd(tmp_path)
    lines = head.split(b"\n")
    for n, x in enumerate(lines):
        if x.startswith(b"Segmentation_ConversionParameters:="):
            text = x.decode()
            start = text.index("Reference image geometry|") + len("Reference image geometry|")
            vals = text[start:text.index("|", start)].split(";")
            vals[17], vals[19], vals[21] = "99999", "99999", "99999"
            lines[n] = (text[:start] + ";".join(vals) + text[text.index("|", start):]).encode()
    p = tmp_path / "x.seg.nrrd"
    p.write_bytes(b"\n".join(lines) + b"\n\n" + payload)
    with pytest.raises(DeviceMemoryError):
        read_seg_nrrd(p, backend="cpu")


def test_gzip_bomb_and_corrupt_gzip(tmp_path):
    head, payload = raw_seg_nrrd(tmp_path)
    head = head.replace(b"encoding: raw", b"encoding: gzip")
    p = tmp_path / "x.seg.nrrd"
    p.write_bytes(with_line(head, "sizes: 30000 30000 3", "sizes:") + b"\n\n" + gzip.compress(payload))
    with pytest.raises((DeviceMemoryError, FileFormatError), match="gzip|limit"):
        read_seg_nrrd(p, backend="cpu")
    data = bytearray(gzip.compress(payload))
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(head + b"\n\n" + bytes(data))
    with pytest.raises(FileFormatError, match=str(p.name)):
        read_seg_nrrd(p, backend="cpu")


# --- UTF-8 names and tags -------------------------------------------------------------------
def test_utf8_names_and_tags_round_trip_unchanged(tmp_path):
    seg = small_seg(NAMES)
    seg[0].tags["Note"] = "Leber · 肝臓 ✓"
    seg[1].tags["Multi"] = "a\nb"
    p = tmp_path / "u.seg.nrrd"
    write_seg_nrrd(seg, p)
    back = read_seg_nrrd(p, backend="cpu")
    assert [s.name for s in back] == NAMES
    assert back[0].tags["Note"] == "Leber · 肝臓 ✓" and back[1].tags["Multi"] == "a\nb"
    head = p.read_bytes().partition(b"\n\n")[0]
    assert "Segment0_Name:=肝臓".encode() in head  # UTF-8 bytes, as 3D Slicer writes them
    assert b"Segment3_Name:=two\\nlines" in head  # teem's escape for a newline
    assert b"Segment4_Name:= leading space\n" in head and b"Segment5_Name:=back\\\\slash\n" in head
    # (slicerio is no independent check here: through pynrrd it drops non-ASCII bytes, the old defect)


def test_slicer_written_files_read_and_rewrite_unchanged(tmp_path):
    src = SLICER / "Segmentation.seg.nrrd"
    if not src.is_file():
        pytest.skip(f"real test data not present: {src}")
    seg = read_seg_nrrd(src, backend="cpu")
    raw = src.read_bytes()
    head, _, payload = raw.partition(b"\n\n")
    # Slicer writes UTF-8: put UTF-8 names into the Slicer file as Slicer would
    edited = head.replace(b"Segment0_Name:=ribs", "Segment0_Name:=肋骨 Hüfte 🦴".encode())
    edited = edited.replace(b"Segment1_Name:=cervical vertebral column", b"Segment1_Name:= leading\\nnewline")
    (tmp_path / "s.seg.nrrd").write_bytes(edited + b"\n\n" + payload)
    back = read_seg_nrrd(tmp_path / "s.seg.nrrd", backend="cpu")
    assert back[0].name == "肋骨 Hüfte 🦴" and back[1].name == " leading\nnewline"
    assert [s.name for s in back][2:] == [s.name for s in seg][2:]
    write_seg_nrrd(back, tmp_path / "w.seg.nrrd")
    again = read_seg_nrrd(tmp_path / "w.seg.nrrd", backend="cpu")
    assert [(s.id, s.name, s.tags, s.color) for s in again] == [(s.id, s.name, s.tags, s.color) for s in back]
    assert all(s.mask.equals(t.mask) for s, t in zip(back, again))


@pytest.mark.parametrize("name", ["\udc80 lone surrogate", "carriage\rreturn"])
def test_unrepresentable_names_are_refused_not_changed(tmp_path, name):
    seg = small_seg([name])
    with pytest.raises(InvalidInputError):
        write_seg_nrrd(seg, tmp_path / "x.seg.nrrd")
    assert not list(tmp_path.iterdir())


def test_invalid_utf8_header_is_a_typed_error(tmp_path):
    head, payload = raw_seg_nrrd(tmp_path)
    p = tmp_path / "x.seg.nrrd"
    p.write_bytes(head.replace(b"Segment0_Name:=a", b"Segment0_Name:=H\xfcfte") + b"\n\n" + payload)
    with pytest.raises(FileFormatError, match="UTF-8"):
        read_seg_nrrd(p, backend="cpu")


# --- label values ---------------------------------------------------------------------------
def test_label_values_above_65535(tmp_path):
    seg = small_seg(["big", "small"])
    seg[0].label_value = 70000
    seg[1].label_value = 5
    with pytest.raises(InvalidInputError, match="65535"):
        write_seg_nrrd(seg, tmp_path / "x.seg.nrrd")
    with pytest.raises(InvalidInputError, match="65535"):
        gpuseg.write_segmentation(seg, tmp_path / "x.nrrd")
    gpuseg.write_segmentation(seg, tmp_path / "x.nii.gz")
    back = gpuseg.read_segmentation(tmp_path / "x.nii.gz", backend="cpu")
    assert [(s.name, s.label_value) for s in back] == [("big", 70000), ("small", 5)]
    # a plain uint32 NIfTI without sidecar: values kept, no renumbering
    import nibabel as nib

    lab = np.zeros((4, 5, 6), np.uint32)
    lab[1, 1, 1], lab[2, 2, 2] = 70000, 4_000_000_000
    nib.save(nib.Nifti1Image(lab, np.eye(4)), str(tmp_path / "u32.nii.gz"))
    back = gpuseg.read_segmentation(tmp_path / "u32.nii.gz", backend="cpu")
    assert [(s.name, s.label_value, s.mask.count()) for s in back] == [
        ("Segment_70000", 70000, 1), ("Segment_4000000000", 4_000_000_000, 1)]


def test_nifti_huge_slope_is_typed(tmp_path):
    import nibabel as nib

    img = nib.Nifti1Image(np.full((3, 4, 5), 1000, np.int16), np.eye(4))
    img.header.set_slope_inter(1e38, 0)  # scl_slope is float32: finite, but 1000 * 1e38 is not
    nib.save(img, str(tmp_path / "s.nii.gz"))
    with pytest.raises(FileFormatError, match="scl_slope"):
        gpuseg.read_image(tmp_path / "s.nii.gz", backend="cpu")
    img.header.set_slope_inter(2.0 ** 40, 3)  # an integer slope that overflowed int() arithmetic
    nib.save(img, str(tmp_path / "t.nii.gz"))
    out = gpuseg.read_image(tmp_path / "t.nii.gz", backend="cpu")
    assert float(out.to_numpy().max()) == pytest.approx(1000 * 2.0 ** 40 + 3, rel=1e-6)


# --- NIfTI export keeps every segment; pairs are replaced together ----------------------------
def test_nifti_keeps_empty_segments_and_order(tmp_path):
    seg = small_seg(["z", "a"])
    seg.add_segment(None, name="empty", label_value=9)
    seg.move_segment("empty", 0)
    seg[1].label_value, seg[2].label_value = 7, 2
    p = tmp_path / "x.nii.gz"
    gpuseg.write_segmentation(seg, p)
    back = gpuseg.read_segmentation(p, backend="cpu")
    assert [(s.id, s.name, s.label_value) for s in back] == [(s.id, s.name, s.label_value) for s in seg]
    assert back[0].mask.count() == 0
    with pytest.warns(UserWarning, match="empty segment"):
        gpuseg.write_segmentation(seg, tmp_path / "y.nii.gz", sidecar=False)


def test_nifti_pair_survives_failure_between_renames(tmp_path, monkeypatch):
    p = tmp_path / "x.nii.gz"
    old = small_seg(["old a", "old b"])
    gpuseg.write_segmentation(old, p)
    before = gpuseg.read_segmentation(p, backend="cpu")
    new = small_seg(["new a", "new b", "new c"], shape=(3, 4, 33))
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the sidecar is in place, the NIfTI not yet
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(FileWriteError, match=str(p.name)):
        gpuseg.write_segmentation(new, p)
    monkeypatch.setattr(os, "replace", real)
    back = gpuseg.read_segmentation(p, backend="cpu")  # the old voxels with the old names
    assert [s.name for s in back] == ["old a", "old b"]
    assert all(s.mask.equals(t.mask) for s, t in zip(before, back)) and [s.id for s in back] == [s.id for s in old]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["x.labels.json", "x.nii.gz"]
    gpuseg.write_segmentation(new, p)
    assert [s.name for s in gpuseg.read_segmentation(p, backend="cpu")] == ["new a", "new b", "new c"]


# --- unwritable targets and temp files -------------------------------------------------------
@pytest.mark.parametrize("ext", [".seg.nrrd", ".nii.gz", ".h5"])
def test_unwritable_targets_are_typed_and_name_the_target(tmp_path, ext):
    seg = small_seg()
    for target in (Path("/proc/x" + ext), tmp_path / "missing" / ("x" + ext)):
        with pytest.raises(FileWriteError, match=str(target)):
            gpuseg.write_segmentation(seg, target)
    (tmp_path / ("d" + ext)).mkdir()
    with pytest.raises(FileWriteError, match="folder"):
        gpuseg.write_segmentation(seg, tmp_path / ("d" + ext))


def test_full_disk_is_typed_for_every_writer(tmp_path):
    """RLIMIT_FSIZE makes writes fail as on a full disk (EFBIG); no writer may crash or leave temps."""
    code = f"""
import resource, signal, sys, numpy as np
sys.path.insert(0, {str(REPO)!r})
from tests.test_reliability import small_seg
import gpuseg
from gpuseg.errors import FileWriteError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
seg = small_seg(shape=(20, 30, 70))
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
for ext in ('.seg.nrrd', '.nii.gz', '.h5'):
    try:
        gpuseg.write_segmentation(seg, {str(tmp_path)!r} + '/out' + ext, **({{'encoding': 'raw'}} if ext == '.seg.nrrd' else {{}}))
        print('written', ext)
    except FileWriteError as e:
        print('typed', ext, e)
"""
    env = dict(os.environ, GPUSEG_BACKEND="cpu")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert [x.split()[:2] for x in lines] == [["typed", ".seg.nrrd"], ["typed", ".nii.gz"], ["typed", ".h5"]], r.stdout
    assert all(str(tmp_path) in x for x in lines)
    assert list(tmp_path.iterdir()) == []


def test_stale_temps_of_dead_writers_are_removed_on_next_save(tmp_path):
    p = tmp_path / "x.seg.nrrd"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".x.seg.nrrd.{pid}.0123456789abcdef.tmp.nrrd"
    stale.write_bytes(b"partial")
    live = tmp_path / f".x.seg.nrrd.1.0123456789abcdef.tmp.nrrd"  # pid 1 is alive: not ours to remove
    live.write_bytes(b"partial")
    other = tmp_path / ".y.seg.nrrd.123.0123456789abcdef.tmp.nrrd"  # another target's
    other.write_bytes(b"x")
    legacy = tmp_path / ".x.seg.nrrd.ab_c12de.tmp.nrrd"  # the old mkstemp naming, two hours old
    legacy.write_bytes(b"partial")
    os.utime(legacy, (1e9, 1e9))
    fresh = tmp_path / ".x.seg.nrrd.zz_c12de.tmp.nrrd"  # old naming, but recent: maybe in use
    fresh.write_bytes(b"partial")
    write_seg_nrrd(small_seg(), p)
    assert not stale.exists() and live.exists() and other.exists()
    assert not legacy.exists() and fresh.exists()


# --- HDF5 --------------------------------------------------------------------------------------
def _h5(tmp_path, seg=None):
    p = tmp_path / "x.h5"
    gpuseg.write_segmentation(seg or small_seg(), p, compression="gzip")
    return p


def test_h5_trusted_sizes_and_structure(tmp_path):
    import h5py

    p = _h5(tmp_path)
    with h5py.File(p, "a") as f:
        f.attrs["shape_kji"] = np.array([10**5, 10**5, 10**5])
    with pytest.raises(DeviceMemoryError):
        gpuseg.read_segmentation(p, backend="cpu")
    p = _h5(tmp_path)
    with h5py.File(p, "a") as f:  # a dataset that declares far more than its box
        table = json.loads(f.attrs["segments"])
        k0, j0, w0, nk, nj, nw = table[0]["box"]
        del f["words/0000"]
        f["words"].create_dataset("0000", shape=(10**6, 10**6, 10**3), dtype=np.uint32, chunks=(1, 1, 8),
                                  compression="gzip")
    with pytest.raises(FileFormatError, match="words have shape"):
        gpuseg.read_segmentation(p, backend="cpu")
    p = _h5(tmp_path)
    with h5py.File(p, "a") as f:  # a link loop
        del f["words/0000"]
        f["words/0000"] = h5py.SoftLink("/words/0000")
    with pytest.raises(FileFormatError, match=str(p)):
        gpuseg.read_segmentation(p, backend="cpu")
    p = _h5(tmp_path)
    with h5py.File(p, "a") as f:  # a null attribute
        del f.attrs["segments"]
        f.attrs["segments"] = h5py.Empty("f")
    with pytest.raises(FileFormatError, match=str(p)):
        gpuseg.read_segmentation(p, backend="cpu")


def test_h5_corrupt_chunk_names_the_file(tmp_path):
    import h5py

    seg = small_seg(shape=(8, 16, 200))
    p = _h5(tmp_path, seg)
    with h5py.File(p, "r") as f:
        ds = f["words/0000"]
        offset = ds.id.get_chunk_info(0).byte_offset
    data = bytearray(p.read_bytes())
    for i in range(offset, offset + 40):
        data[i] ^= 0x5A
    p.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match=str(p)):
        gpuseg.read_segmentation(p, backend="cpu")


def test_h5_probe_turns_a_library_crash_into_a_typed_error(tmp_path, monkeypatch):
    import signal

    from gpuseg.io import hdf5

    p = _h5(tmp_path)

    def crash(path, limit):  # a real segmentation fault, as libhdf5 had on a flipped bit
        import ctypes
        import faulthandler

        faulthandler.disable()
        ctypes.string_at(0)

    monkeypatch.setattr(hdf5, "_probe_child", crash)
    with pytest.raises(FileFormatError, match="crashed.*SIG(SEGV|BUS)"):
        gpuseg.read_segmentation(p, backend="cpu")

    def hang(path, limit):
        import time

        time.sleep(60)

    monkeypatch.setattr(hdf5, "_probe_child", hang)
    monkeypatch.setattr(hdf5, "PROBE_TIMEOUT", 0.5)
    with pytest.raises(FileFormatError, match="did not finish"):
        hdf5.probe_h5(p, timeout=0.5)


# --- DICOM -------------------------------------------------------------------------------------
@pytest.mark.parametrize("change", ["no PixelSpacing", "short PixelSpacing", "no Rows", "short orientation",
                                    "no position", "rgb", "text Rows", "nan spacing", "short pixels"])
def test_dicom_bad_elements_are_typed(tmp_path, change):
    pydicom = pytest.importorskip("pydicom")
    from tests.test_dicom import write_series

    write_series(tmp_path / "s", np.zeros((3, 4, 5), np.uint16))
    f = sorted((tmp_path / "s").iterdir())[1]
    ds = pydicom.dcmread(str(f))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if change == "no PixelSpacing":
            del ds.PixelSpacing
        elif change == "short PixelSpacing":
            ds.PixelSpacing = [0.5]
        elif change == "no Rows":
            del ds.Rows
        elif change == "short orientation":
            ds.ImageOrientationPatient = [1, 0, 0]
        elif change == "no position":
            ds.ImagePositionPatient = [1, 2]
        elif change == "rgb":
            ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
            ds.BitsAllocated = ds.BitsStored = 8
            ds.HighBit = 7
            ds.PixelData = bytes(4 * 5 * 3)
        elif change == "text Rows":
            ds.Rows = 0
        elif change == "nan spacing":
            ds.PixelSpacing = ["nan", "1"]
        elif change == "short pixels":
            ds.PixelData = bytes(ds.PixelData)[:7]
        ds.save_as(str(f))
    with pytest.raises(FileFormatError):
        gpuseg.read_image(tmp_path / "s", backend="cpu")


def test_dicom_seg_labels_utf8_and_refused_when_not_representable(tmp_path):
    pytest.importorskip("highdicom")
    from tests.test_dicom import write_series

    write_series(tmp_path / "s", np.zeros((3, 4, 5), np.uint16))
    _, g = gpuseg.io.dicom.read_dicom_series(tmp_path / "s")
    seg = Segmentation(g, backend="cpu")
    m = np.zeros(g.shape, bool)
    m[1, 1:3, 1:4] = True
    seg.add_segment(Mask.from_numpy(m, g, backend="cpu", crop=True), name="肝臓 🦴 Hüfte")
    gpuseg.write_segmentation(seg, tmp_path / "x.dcm", reference=tmp_path / "s")
    assert gpuseg.read_segmentation(tmp_path / "x.dcm", backend="cpu")[0].name == "肝臓 🦴 Hüfte"
    for bad in ("x" * 65, "a\\b", "two\nlines"):
        seg.rename_segment(seg[0].id, bad)
        with pytest.raises(InvalidInputError, match="DICOM segment label"):
            gpuseg.write_segmentation(seg, tmp_path / "y.dcm", reference=tmp_path / "s")


# --- the CLI: one line, exit 2 -------------------------------------------------------------------
def _cli(*args):
    env = dict(os.environ, GPUSEG_BACKEND="cpu", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "gpuseg", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_errors_are_one_line_exit_2(tmp_path):
    src = tmp_path / "in.seg.nrrd"
    write_seg_nrrd(small_seg(["two\nlines"]), src)
    bad = tmp_path / "bad.seg.nrrd"
    head, payload = raw_seg_nrrd(tmp_path)
    bad.write_bytes(with_line(head, "data file: /dev/zero") + b"\n\n")
    h5 = tmp_path / "bad.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    for args in (["convert", src, "/proc/x.seg.nrrd"], ["convert", bad, tmp_path / "o.h5"],
                 ["convert", h5, tmp_path / "o.seg.nrrd"], ["convert", tmp_path / "none.seg.nrrd", tmp_path / "o.h5"]):
        r = _cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
