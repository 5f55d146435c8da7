"""Fill between slices vs ITK's MorphologicalContourInterpolator (itk-morphologicalcontourinterpolation,
run in a child process by tests/itk_mci_oracle.py): bit-exact on every case below."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gpuseg
from gpuseg import Editor, ImageGeometry, Segmentation
from gpuseg.errors import InvalidInputError
from gpuseg.ops.interpolate import interpolate_labels
from gpuseg.steps import run_step

from .itk_mci_oracle import run_itk

pytest.importorskip("itk")  # declared in the test extra; CI installs it

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "totalseg" / "example_seg.nii.gz"


def _ell(shape, c, r):
    g = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((x - c0) / r0) ** 2 for x, c0, r0 in zip(g, c, r)) <= 1


def _synthetic():
    sh = (21, 37, 45)
    e = _ell(sh, (10, 18, 22), (8, 12, 15))
    cases = {}
    for ax, step in ((0, 5), (1, 4), (2, 6)):
        a = np.zeros(sh, np.uint8)
        sl = [slice(None)] * 3
        sl[ax] = slice(None, None, step)
        a[tuple(sl)] = e[tuple(sl)]
        cases[f"ellipsoid_axis{ax}"] = a
    t, u = _ell(sh, (10, 18, 12), (9, 8, 6)), _ell(sh, (16, 18, 30), (9, 8, 6))
    m = t | u
    m[8, 15:21, 11:32] = True  # a bridge: two regions in some slices, one in others (merge / split)
    a = np.zeros(sh, np.uint8)
    a[::4] = m[::4]
    cases["blobs_merge_split"] = a
    a = np.zeros(sh, np.uint8)
    a[::5] = e[::5]
    a[::5][t[::5]] = 2
    cases["two_labels"] = a
    rng = np.random.default_rng(7)
    sh2 = (33, 29, 41)
    a = np.zeros(sh2, np.uint8)
    for lab in (1, 2, 3):
        c = rng.uniform(8, 21, 3)
        r = rng.uniform(4, 9, 3)
        k = _ell(sh2, c, r)
        a[1::3][k[1::3]] = lab  # odd size, offset sampling, overlapping labels
    cases["random_ellipsoids"] = a
    a = np.zeros(sh, np.uint8)
    a[3] = _ell(sh, (3, 10, 10), (1, 5, 5))[3]
    a[12] = _ell(sh, (12, 26, 32), (1, 6, 6))[12]  # no overlap: both collapse to their centroid
    cases["unmatched"] = a
    a = np.zeros(sh, np.int16)  # label values past 4096 take the ranked path
    a[::5][e[::5]] = 5000
    a[::5][t[::5]] = 7
    cases["sparse_label_values"] = a
    cases["empty"] = np.zeros(sh, np.uint8)
    a = np.zeros(sh, np.uint8)
    a[10] = e[10]
    cases["one_slice"] = a
    return cases


@pytest.fixture(scope="module")
def synthetic():
    cases = _synthetic()
    return cases, run_itk(cases), run_itk({"aniso": cases["ellipsoid_axis0"]}, spacing=(3.0, 0.7, 0.9))


def test_synthetic_bit_exact_vs_itk(synthetic):
    cases, ref, aniso = synthetic
    for name, a in cases.items():
        got = interpolate_labels(a)
        diff = int((got != ref[name]).sum())
        assert diff == 0, f"{name}: {diff} voxels differ from ITK"
        if name not in ("empty", "one_slice"):
            assert (got > 0).sum() > (a > 0).sum(), name  # something was filled
    # ITK works in index space: spacing does not change its answer, nor ours
    assert np.array_equal(aniso["aniso"], ref["ellipsoid_axis0"])
    assert np.array_equal(interpolate_labels(cases["ellipsoid_axis0"], axis=0), ref["ellipsoid_axis0"])


def test_totalsegmentator_organs_vs_itk():
    nib = pytest.importorskip("nibabel")
    if not DATA.exists():
        pytest.skip(f"{DATA} is absent (shared test data)")
    seg = np.asarray(nib.load(str(DATA)).dataobj).transpose(2, 1, 0)  # (k, j, i)
    vals, counts = np.unique(seg[seg > 0], return_counts=True)
    organs = vals[np.argsort(counts)[::-1][:4]]
    cases = {}
    for n, v in zip((3, 5), organs[:2]):
        a = np.zeros(seg.shape, np.uint8)
        a[::n] = (seg[::n] == v)
        cases[f"label{v}_every{n}"] = a
    multi = np.zeros(seg.shape, np.uint8)
    for lab, v in enumerate(organs, start=1):
        multi[::4][seg[::4] == v] = lab
    cases["four_organs_every4"] = multi
    ref = run_itk(cases)
    for name, a in cases.items():
        got = interpolate_labels(a)
        assert int((got != ref[name]).sum()) == 0, name


def _scene(backend):
    g = ImageGeometry((21, 37, 45), spacing=(2.5, 0.8, 0.8))
    seg = Segmentation(g, backend=backend)
    e = _ell(g.shape, (10, 18, 22), (8, 12, 15))
    f = _ell(g.shape, (10, 18, 38), (6, 6, 5))
    a, b = np.zeros(g.shape, bool), np.zeros(g.shape, bool)
    a[::5], b[2::4] = e[::5], f[2::4]
    seg.add_segment(gpuseg.Mask.from_numpy(a, g, backend=backend), name="liver")
    seg.add_segment(gpuseg.Mask.from_numpy(b, g, backend=backend), name="kidney")
    seg.add_segment(gpuseg.Mask.from_numpy(e, g, backend=backend), name="hidden")
    seg["hidden"].visible = False
    lab = a.astype(np.uint8)
    lab[b] = 2
    return g, seg, a, b, e, interpolate_labels(lab)


def test_editor_preview_apply_undo(backend):
    g, seg, a, b, e, ref = _scene(backend)
    ed = Editor(seg)
    p = ed.fill_between_slices_preview()
    assert set(p) == {seg.segment("liver").id, seg.segment("kidney").id}
    assert seg["liver"].mask.to_numpy().sum() == a.sum()  # nothing changed yet
    n = ed.commit_fill_between_slices(p)
    assert np.array_equal(seg["liver"].mask.to_numpy(), (ref == 1) | a)
    assert np.array_equal(seg["kidney"].mask.to_numpy(), (ref == 2) | b)
    assert np.array_equal(seg["hidden"].mask.to_numpy(), e)
    assert n == int(((ref == 1) & ~a).sum() + ((ref == 2) & ~b).sum())
    ed.undo()
    assert np.array_equal(seg["liver"].mask.to_numpy(), a)
    assert np.array_equal(seg["kidney"].mask.to_numpy(), b)


def test_editor_words_identical_across_backends():
    words = {}
    for name in ("cpu", "opencl"):
        try:
            gpuseg.get_backend(name)
        except Exception:  # pragma: no cover - no OpenCL here
            pytest.skip("opencl unavailable")
        g, seg, *_ = _scene(name)
        ed = Editor(seg)
        ed.fill_between_slices(axis=0)
        words[name] = [seg[s].mask.to_numpy() for s in ("liver", "kidney")]
    for x, y in zip(words["cpu"], words["opencl"]):
        assert np.array_equal(x, y)


def test_step_and_errors():
    g, seg, a, b, e, ref = _scene("cpu")
    ed = Editor(seg)
    run_step(ed, {"effect": "fill_between_slices", "segments": ["liver"], "axis": 0})
    lab = a.astype(np.uint8)
    assert np.array_equal(seg["liver"].mask.to_numpy(), interpolate_labels(lab, axis=0) == 1)
    assert np.array_equal(seg["kidney"].mask.to_numpy(), b)
    with pytest.raises(InvalidInputError):
        interpolate_labels(np.zeros((3, 3), np.uint8))
    with pytest.raises(InvalidInputError):
        interpolate_labels(np.zeros((3, 3, 3), np.uint8), axis=3)
    with pytest.raises(InvalidInputError):
        interpolate_labels(-np.ones((3, 3, 3), np.int16))
    for s in seg:
        s.visible = False
    with pytest.raises(InvalidInputError):
        ed.fill_between_slices()


def test_distance_transform_matches_scipy():
    from scipy import ndimage

    from gpuseg.ops.interpolate import _sq_edt
    rng = np.random.default_rng(3)
    for _ in range(200):
        sh = tuple(int(v) for v in rng.integers(1, 60, 2))
        seed = rng.random(sh) < rng.uniform(0.002, 0.3)
        seed.flat[rng.integers(seed.size)] = True
        assert np.array_equal(np.sqrt(_sq_edt(seed)), ndimage.distance_transform_edt(~seed)), sh
    seed = np.zeros((700, 650), bool)
    seed[0, 0] = seed[699, 3] = seed[350, 649] = True  # long distances, far corners
    assert np.array_equal(np.sqrt(_sq_edt(seed)), ndimage.distance_transform_edt(~seed))


def test_threads_and_input_types_do_not_change_the_answer():
    import numba

    a = _synthetic()["random_ellipsoids"]
    ref = interpolate_labels(a)
    n = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        assert np.array_equal(interpolate_labels(a), ref)
    finally:
        numba.set_num_threads(n)
    b = _synthetic()["ellipsoid_axis0"]
    got = interpolate_labels(b.astype(bool))
    assert got.dtype == bool and np.array_equal(got, interpolate_labels(b) > 0)
    f = np.asfortranarray(a.astype(np.int32) * 3)  # non-contiguous input, other dtype
    assert np.array_equal(interpolate_labels(f), ref.astype(np.int32) * 3)


def test_slicer_extent_and_storage_box_independence():
    from gpuseg.geometry import Extent
    from gpuseg.ops.interpolate import fill_between_slices, slicer_extent

    # Slicer's auto-complete log: effective extent (21, 112, 13, 107, 11, 84) in a
    # (0, 124, 0, 121, 0, 92) image grows to [12, 121, 4, 116, 4, 91]
    ext = slicer_extent(Extent.from_slicer((21, 112, 13, 107, 11, 84)), (93, 122, 125))
    assert ext.to_slicer() == (12, 121, 4, 116, 4, 91)
    assert slicer_extent(Extent.from_slicer((0, 5, 2, 2, 9, 20)), (21, 10, 8)).to_slicer() == (0, 7, 0, 5, 6, 20)
    assert slicer_extent(Extent.empty(), (4, 4, 4)).is_empty
    # the answer depends on the segments' voxels, not on how their words are stored
    g, seg, a, b, e, _ = _scene("cpu")
    full = fill_between_slices([gpuseg.Mask.from_numpy(a, g)])[0].to_numpy()
    crop = fill_between_slices([gpuseg.Mask.from_numpy(a, g, crop=True)])[0].to_numpy()
    assert np.array_equal(full, crop) and full.sum() > a.sum()
