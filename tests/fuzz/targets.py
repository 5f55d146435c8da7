"""Fuzz targets: seed inputs made in code, how a case is prepared (parent) and run (worker).

Readers: ``segnrrd``, ``nrrd_image``, ``nifti_labelmap``, ``nifti_image``, ``h5``, ``dicom``,
``dicom_seg``. Writers: ``write_segnrrd``, ``write_nifti``, ``write_h5``, ``write_dicom_seg``
(mutated segment metadata and unwritable targets; a written file must read back unchanged).
Edit scripts: ``edit`` (mutated JSON scripts run through ``gpuseg.cli.main(["edit", ...])``).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np

from . import strategies as S

READERS = ["segnrrd", "nrrd_image", "nifti_labelmap", "nifti_image", "h5", "dicom", "dicom_seg"]
WRITERS = ["write_segnrrd", "write_nifti", "write_h5", "write_dicom_seg"]
TARGETS = READERS + WRITERS + ["edit"]
SLICER_DATA = Path(os.environ.get("GPUSEG_TEST_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")) / "slicer"


class Changed(Exception):
    """A written file read back differently (silent data change)."""


# --- seeds (parent, once) ----------------------------------------------------------------------
def base_geometry():
    from gpuseg.geometry import ImageGeometry

    c, s = np.cos(0.3), np.sin(0.3)
    return ImageGeometry((4, 5, 37), spacing=(0.8, 1.1, 2.0), origin=(-10.0, 5.0, 3.0),
                         direction=[[c, -s, 0], [s, c, 0], [0, 0, 1]])


def base_segmentation(overlap: bool = True):
    from gpuseg.mask import Mask
    from gpuseg.segmentation import Segmentation

    g = base_geometry()
    rng = np.random.default_rng(7)
    seg = Segmentation(g, backend="cpu")
    a = np.zeros(g.shape, bool)
    a[1:3, 1:4, 2:30] = rng.random((2, 3, 28)) < 0.7
    b = np.zeros(g.shape, bool)
    b[0:4, 2:5, 20:36] = True
    if not overlap:
        b &= ~a
    seg.add_segment(Mask.from_numpy(a, g, backend="cpu", crop=True), name="liver", color=(0.8, 0.3, 0.2),
                    label_value=1)
    seg.add_segment(Mask.from_numpy(b, g, backend="cpu", crop=True), name="spleen", color=(0.1, 0.5, 0.9),
                    label_value=2)
    seg.add_segment(None, name="empty", color=(0.2, 0.9, 0.2), label_value=3)
    return seg


def _dicom_series(folder: Path, shape=(3, 6, 7)):
    from tests.test_dicom import write_series

    vol = np.arange(np.prod(shape)).reshape(shape) % 1000
    write_series(folder, vol, dz=2.0, origin=(-10.0, 5.0, 3.0))
    return folder


def make_seeds(root: Path) -> dict[str, list[Path]]:
    """Small valid inputs for every target (gpuseg-written; Slicer-written where the data is present)."""
    import gpuseg
    from gpuseg.io.images import write_labelmap
    from gpuseg.io.segnrrd import write_seg_nrrd

    root.mkdir(parents=True, exist_ok=True)
    seg = base_segmentation()
    flat = base_segmentation(overlap=False)
    out: dict[str, list[Path]] = {t: [] for t in TARGETS}
    write_seg_nrrd(seg, root / "overlap.seg.nrrd", encoding="raw")
    write_seg_nrrd(flat, root / "flat.seg.nrrd")
    # a detached header with its raw data file beside it
    raw = (root / "overlap.seg.nrrd").read_bytes()
    head, _, payload = raw.partition(b"\n\n")
    (root / "detached.raw").write_bytes(payload)
    (root / "detached.seg.nhdr").write_bytes(head.replace(b"encoding: raw", b"encoding: raw\ndata file: detached.raw")
                                             + b"\n")
    out["segnrrd"] = [root / "overlap.seg.nrrd", root / "flat.seg.nrrd", root / "detached.seg.nhdr"]
    for name in ("Segmentation.seg.nrrd", "SegmentationOverlapping.seg.nrrd"):
        if (SLICER_DATA / name).is_file():
            out["segnrrd"].append(SLICER_DATA / name)
    lab = flat.label_array().astype(np.uint8)
    write_labelmap(root / "labels.nrrd", lab, flat.geometry)
    img = (np.arange(np.prod(lab.shape)).reshape(lab.shape) % 500).astype(np.int16)
    write_labelmap(root / "image.nrrd", img, flat.geometry, compress=False)
    write_labelmap(root / "imagegz.nrrd", img, flat.geometry)
    out["nrrd_image"] = [root / "image.nrrd", root / "imagegz.nrrd"]
    gpuseg.write_segmentation(flat, root / "labels.nii.gz")
    out["nifti_labelmap"] = [root / "labels.nii.gz"]
    write_labelmap(root / "image.nii.gz", img, flat.geometry)
    write_labelmap(root / "image.nii", img, flat.geometry)
    out["nifti_image"] = [root / "image.nii.gz", root / "image.nii"]
    gpuseg.write_segmentation(seg, root / "seg.h5")
    gpuseg.write_segmentation(seg, root / "seg_gzip.h5", compression="gzip")
    out["h5"] = [root / "seg.h5", root / "seg_gzip.h5"]
    series = _dicom_series(root / "series")
    out["dicom"] = [series]
    from gpuseg.io.dicom import read_dicom_series

    _, dgeom = read_dicom_series(series)
    from gpuseg.mask import Mask
    from gpuseg.segmentation import Segmentation

    dseg = Segmentation(dgeom, backend="cpu")
    m = np.zeros(dgeom.shape, bool)
    m[0:2, 1:4, 2:6] = True
    dseg.add_segment(Mask.from_numpy(m, dgeom, backend="cpu", crop=True), name="lesion", color=(1, 0, 0))
    dseg.add_segment(Mask.from_numpy(~m, dgeom, backend="cpu", crop=True), name="rest", color=(0, 1, 0))
    gpuseg.write_segmentation(dseg, root / "seg.dcm", reference=series)
    out["dicom_seg"] = [root / "seg.dcm"]
    # the edit target: an image, a segmentation and a valid script
    gpuseg.write_segmentation(flat, root / "edit_in.seg.nrrd")
    script = [
        {"effect": "add_segment", "name": "new", "color": [0.1, 0.2, 0.3]},
        {"effect": "paint", "segment": "new", "points": [[1, 1, 1], [4, 3, 2]], "diameter_mm": 2, "space": "ijk"},
        {"effect": "threshold", "segment": "liver", "min": 100, "max": 300},
        {"effect": "margin", "segment": "spleen", "margin_mm": 1},
        {"effect": "erase", "segment": "new", "points": [[2, 2, 1]], "diameter_mm": 1.5, "space": "ijk"},
        {"effect": "islands", "segment": "liver", "operation": "remove_small", "min_size": 3},
        {"effect": "logical", "segment": "new", "operation": "union", "modifier": "spleen"},
        {"effect": "undo"},
        {"effect": "draw", "segment": "new", "points": [[1, 1, 1], [5, 1, 1], [5, 4, 1]], "axis": 2, "space": "ijk"},
    ]
    (root / "edit.json").write_text(json.dumps(script))
    out["edit"] = [root / "edit.json"]
    for w in WRITERS:
        out[w] = [root / "seed_marker"]
    (root / "seed_marker").write_text("writers mutate metadata, not files\n")
    return out


# --- preparing a case (parent) ---------------------------------------------------------------
def prepare(target: str, seeds: dict[str, list[Path]], case_dir: Path, rng: random.Random) -> dict:
    """Write the case's input under ``case_dir``; returns the message for the worker."""
    case_dir.mkdir(parents=True, exist_ok=True)
    seed = rng.choice(seeds[target])
    msg: dict = {"target": target, "dir": str(case_dir)}
    if target in ("segnrrd", "nrrd_image"):
        data = seed.read_bytes()
        name = seed.name
        if seed.suffix == ".nhdr":
            shutil.copy(seed.parent / "detached.raw", case_dir / "detached.raw")
            if rng.random() < 0.3:
                (case_dir / "detached.raw").write_bytes(S.mutate_bytes((case_dir / "detached.raw").read_bytes(), rng))
        (case_dir / name).write_bytes(S.mutate_file(data, rng, text_header=True, gz=True))
        msg["path"] = str(case_dir / name)
    elif target in ("nifti_labelmap", "nifti_image", "h5", "dicom_seg"):
        data = seed.read_bytes()
        (case_dir / seed.name).write_bytes(S.mutate_file(data, rng, gz=seed.name.endswith(".gz")))
        msg["path"] = str(case_dir / seed.name)
        side = seed.parent / "labels.labels.json"
        if target == "nifti_labelmap" and side.is_file():
            text = side.read_bytes()
            if rng.random() < 0.3:
                text = S.json_bytes(json.loads(text), rng)
            (case_dir / side.name).write_bytes(text)
    elif target == "dicom":
        folder = case_dir / "series"
        shutil.copytree(seed, folder)
        files = sorted(folder.iterdir())
        victim = rng.choice(files)
        if rng.random() < 0.5:
            _mutate_dicom_element(victim, rng)
        else:
            victim.write_bytes(S.mutate_bytes(victim.read_bytes(), rng))
        msg["path"] = str(folder)
    elif target == "edit":
        (case_dir / "script.json").write_bytes(S.json_bytes(json.loads(seed.read_text()), rng))
        msg.update(script=str(case_dir / "script.json"), seg=str(seed.parent / "edit_in.seg.nrrd"),
                   image=str(seed.parent / "image.nrrd"))
    else:  # writers: metadata mutations and an output place
        msg["changes"] = [_metadata_change(rng) for _ in range(rng.randint(1, 3))]
        ext = {"write_segnrrd": ".seg.nrrd", "write_nifti": ".nii.gz", "write_h5": ".h5", "write_dicom_seg": ".dcm"}[target]
        place = rng.random()
        if place < 0.85:
            out = case_dir / f"out{ext}"
        elif place < 0.9:
            out = Path(f"/proc/x{ext}")
        elif place < 0.95:  # a read-only folder (as root, which may write anywhere: a path below a file)
            ro = case_dir / "ro"
            ro.mkdir()
            os.chmod(ro, 0o555)
            out = ro / f"out{ext}"
            if os.geteuid() == 0:
                (case_dir / "file").write_text("x")
                out = case_dir / "file" / f"out{ext}"
        else:
            out = case_dir / "missing" / f"out{ext}"
        msg["out"] = str(out)
        msg["series"] = str(seed.parent / "series")
    return msg


def _metadata_change(rng: random.Random) -> dict:
    what = rng.choice(["name", "tag", "color", "label_value", "extra", "id", "visible", "param"])
    return {"what": what, "segment": rng.randrange(3), "value": S.interesting_value(rng),
            "key": rng.choice(S.INTERESTING_STRINGS + ["Segmentation.Status", "TerminologyEntry"])}


_DICOM_ELEMENTS = ["PixelSpacing", "Rows", "Columns", "ImageOrientationPatient", "ImagePositionPatient",
                   "SamplesPerPixel", "BitsAllocated", "PixelData", "RescaleSlope", "RescaleIntercept",
                   "PhotometricInterpretation", "SeriesInstanceUID", "SliceThickness", "PixelRepresentation"]


def _mutate_dicom_element(path: Path, rng: random.Random) -> None:
    import pydicom

    ds = pydicom.dcmread(str(path))
    name = rng.choice(_DICOM_ELEMENTS)
    try:
        if rng.random() < 0.35 and name in ds:
            del ds[name]
        else:
            elem = ds[name] if name in ds else None
            value = S.interesting_value(rng)
            if name == "PixelData":
                ds.PixelData = bytes(ds.PixelData)[: rng.randrange(len(ds.PixelData) + 1)]
            elif name == "SamplesPerPixel":
                ds.SamplesPerPixel = 3
                ds.PhotometricInterpretation = "RGB"
            elif elem is not None and rng.random() < 0.5:
                elem.value = str(value).encode("utf-8", "surrogatepass")[:64]  # raw bytes under the element's VR
            else:
                setattr(ds, name, value if not isinstance(value, (dict,)) else str(value))
        buf = io.BytesIO()
        ds.save_as(buf)
        path.write_bytes(buf.getvalue())
    except Exception:  # the mutation itself was refused by pydicom: fall back to bytes
        path.write_bytes(S.mutate_bytes(path.read_bytes(), rng))


# --- running a case (worker) -------------------------------------------------------------------
def run(msg: dict) -> None:
    """Run one case; returns normally (ok) or raises what the code under test raised."""
    import gpuseg

    t = msg["target"]
    if t == "segnrrd":
        gpuseg.read_segmentation(msg["path"], backend="cpu")
    elif t == "nrrd_image" or t == "nifti_image":
        from gpuseg.io.images import read_image

        read_image(msg["path"], backend="cpu")
    elif t == "nifti_labelmap":
        gpuseg.read_segmentation(msg["path"], backend="cpu")
    elif t == "h5":
        gpuseg.read_segmentation(msg["path"], backend="cpu")
    elif t == "dicom":
        from gpuseg.io.images import read_image

        read_image(msg["path"], backend="cpu")
    elif t == "dicom_seg":
        gpuseg.read_segmentation(msg["path"], backend="cpu")
    elif t == "edit":
        _run_cli(["edit", msg["seg"], "--image", msg["image"], "--script", msg["script"], "-o",
                  str(Path(msg["dir"]) / "out.seg.nrrd"), "--backend", "cpu"])
    else:
        _run_writer(msg)


class CliFailure(Exception):
    """The CLI exited with a status other than 0 and 2, or printed more than one line for an error."""


def _run_cli(argv: list[str]) -> None:
    import contextlib

    from gpuseg.cli import main
    from gpuseg.errors import GpusegError

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: usage error, exit 2
            rc = exc.code
    text = err.getvalue().strip()
    if rc == 2:
        if text.count("\n") > 1 or not text:
            raise CliFailure(f"exit 2 with {text.count(chr(10)) + 1} lines of stderr: {text[:200]!r}")
        raise GpusegError(text.splitlines()[-1])
    if rc not in (0, None):
        raise CliFailure(f"exit {rc}: {text[-300:]!r}")


def _apply(seg, change: dict) -> None:
    segs = list(seg)
    s = segs[change["segment"] % len(segs)]
    v, what = change["value"], change["what"]
    if what == "name":
        seg.rename_segment(s.id, v)
    elif what == "tag":
        s.tags[str(change["key"])] = v if isinstance(v, str) else json.dumps(v)
    elif what == "color":
        seg.set_color(s.id, v if isinstance(v, list) and len(v) == 3 else [v, 0.5, 0.5])
    elif what == "label_value":
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf"):
            s.label_value = int(v)
    elif what == "extra":
        seg.extra_fields[str(change["key"])] = v if isinstance(v, str) else json.dumps(v)
    elif what == "id":
        if isinstance(v, str) and v and v not in seg:
            seg.remove_segment(s.id)
            seg.add_segment(s.mask, name=s.name, segment_id=v, color=s.color, tags=s.tags, label_value=s.label_value)
    elif what == "visible":
        s.visible = bool(v)
    elif what == "param":
        seg.conversion_parameters[str(change["key"])] = (v if isinstance(v, str) else json.dumps(v), "fuzz")


def _run_writer(msg: dict) -> None:
    import gpuseg

    t = msg["target"]
    if t == "write_dicom_seg":
        from gpuseg.io.dicom import read_dicom_series
        from gpuseg.mask import Mask
        from gpuseg.segmentation import Segmentation

        _, g = read_dicom_series(msg["series"])
        seg = Segmentation(g, backend="cpu")
        m = np.zeros(g.shape, bool)
        m[0:2, 1:4, 2:6] = True
        seg.add_segment(Mask.from_numpy(m, g, backend="cpu", crop=True), name="lesion", color=(1, 0, 0))
        seg.add_segment(Mask.from_numpy(~m, g, backend="cpu", crop=True), name="rest", color=(0, 1, 0))
        seg.add_segment(None, name="empty", color=(0, 0, 1))
        options = {"reference": msg["series"]}
    else:
        seg = base_segmentation(overlap=t != "write_nifti")
        options = {}
    for change in msg["changes"]:
        _apply(seg, change)
    out = Path(msg["out"])
    gpuseg.write_segmentation(seg, out, **options)
    back = gpuseg.read_segmentation(out, backend="cpu")
    _compare(seg, back, t)


def _compare(seg, back, t: str) -> None:
    a, b = list(seg), list(back)
    if t == "write_dicom_seg":
        a = [s for s in a if s.mask.count()] if len(b) != len(a) else a
    if [s.name for s in a] != [s.name for s in b]:
        raise Changed(f"names {[s.name for s in a]!r} read back as {[s.name for s in b]!r}")
    for s, r in zip(a, b):
        if not np.array_equal(s.mask.to_numpy(), r.mask.to_numpy()):
            raise Changed(f"segment {s.name!r}: voxels changed")
        if t == "write_dicom_seg":
            continue
        if s.id != r.id:
            raise Changed(f"segment {s.name!r}: id {s.id!r} read back as {r.id!r}")
        if s.tags != r.tags:
            diff = {k: (s.tags.get(k), r.tags.get(k)) for k in set(s.tags) | set(r.tags) if s.tags.get(k) != r.tags.get(k)}
            raise Changed(f"segment {s.name!r}: tags changed {diff!r}"[:400])
        if not np.allclose(s.color, r.color, atol=1e-5):
            raise Changed(f"segment {s.name!r}: color {s.color} read back as {r.color}")
        if t in ("write_h5", "write_nifti") and s.label_value != r.label_value:
            raise Changed(f"segment {s.name!r}: label value {s.label_value} read back as {r.label_value}")
    if t in ("write_segnrrd", "write_h5"):
        if seg.extra_fields != back.extra_fields:
            raise Changed("extra fields changed")
