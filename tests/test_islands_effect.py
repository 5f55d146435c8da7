"""Slicer's Islands effect in the Editor: keep largest with MinimumSize, split into segments named
``<name>_<n>``, keep/remove selected, add selected bounded by all visible segments; against
cc3d / scipy.ndimage.label (face connectivity, as Slicer's vtkITKIslandMath), with masking and undo,
identical on every backend."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest
from scipy import ndimage

import gpuseg
from gpuseg import Editor, ImageGeometry, Masking, Segmentation
from gpuseg.errors import InvalidInputError, OutOfBoundsError
from gpuseg.steps import run_steps

G = ImageGeometry((9, 23, 45), spacing=(0.7, 1.3, 2.1))


def _blobs(seed=3, p=0.3):
    rng = np.random.default_rng(seed)
    a = rng.random(G.shape) < p
    return a


def _ranked(a, min_size):
    """Islands of ``a`` with >= min_size voxels, largest first, ties by first voxel in raster order
    (cc3d numbers components in raster order)."""
    lab, n = cc3d.connected_components(a.astype(np.uint8), connectivity=6, return_N=True)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    order = sorted(range(1, n + 1), key=lambda v: (-sizes[v], v))
    return lab, [v for v in order if sizes[v] >= min_size]


def _seg(backend, **arrays):
    seg = Segmentation(G, backend=backend)
    for name, arr in arrays.items():
        seg.add_segment(gpuseg.Mask.from_numpy(arr, G, backend=backend), name=name)
    return seg


def test_keep_largest_minimum_size(backend):
    a = _blobs()
    lab, ranked = _ranked(a, 0)
    big = int((lab == ranked[0]).sum())
    seg = _seg(backend, s=a)
    ed = Editor(seg)
    ed.islands("s", "keep_largest", min_size=big)
    np.testing.assert_array_equal(seg["s"].mask.to_numpy(), lab == ranked[0])
    assert ed.undo()
    ed.islands("s", "keep_largest", min_size=big + 1)  # the largest is too small: Slicer clears
    assert seg["s"].mask.count() == 0
    assert ed.undo() and seg["s"].mask.count() == int(a.sum())
    ed.islands("s", "remove_small", min_size=7)
    _, keep = _ranked(a, 7)
    np.testing.assert_array_equal(seg["s"].mask.to_numpy(), np.isin(lab, keep))


@pytest.mark.parametrize("min_size", [4, 30])
def test_split_names_order_and_undo(backend, min_size):
    a = _blobs()
    other = np.zeros(G.shape, bool)
    other[0, 0, :5] = True
    seg = _seg(backend, organ=a, other=other)
    ed = Editor(seg)
    lab, ranked = _ranked(a, min_size)
    assert len(ranked) > 3
    ed.islands("organ", "split", min_size=min_size)
    names = [s.name for s in seg]
    assert names == ["organ", "other"] + [f"organ_{n}" for n in range(2, len(ranked) + 1)]
    np.testing.assert_array_equal(seg["organ"].mask.to_numpy(), lab == ranked[0])
    for n, v in enumerate(ranked[1:], start=2):
        np.testing.assert_array_equal(seg[f"organ_{n}"].mask.to_numpy(), lab == v)
    np.testing.assert_array_equal(seg["other"].mask.to_numpy(), other)
    assert ed.undo()
    assert [s.name for s in seg] == ["organ", "other"]
    np.testing.assert_array_equal(seg["organ"].mask.to_numpy(), a)
    assert ed.redo()
    assert len(seg) == len(ranked) + 1
    np.testing.assert_array_equal(seg[f"organ_{len(ranked)}"].mask.to_numpy(), lab == ranked[-1])


def test_split_through_masking(backend):
    a = _blobs()
    inside = np.zeros(G.shape, bool)
    inside[:, :, :20] = True
    seg = _seg(backend, organ=a, x=inside)
    ed = Editor(seg)
    ed.masking = Masking("inside", "x", overwrite="allow_overlap")
    lab, ranked = _ranked(a, 1)
    ed.islands("organ", "split", min_size=1)
    want = np.where(inside | a, lab == ranked[0], a)  # Set mode: own voxels are editable too
    np.testing.assert_array_equal(seg["organ"].mask.to_numpy(), want)
    for n, v in enumerate(ranked[1:], start=2):
        np.testing.assert_array_equal(seg[f"organ_{n}"].mask.to_numpy(), (lab == v) & inside)


def test_keep_remove_selected(backend):
    a = _blobs()
    lab, ranked = _ranked(a, 0)
    v = ranked[2]
    k, j, i = (int(x[0]) for x in np.nonzero(lab == v))
    seg = _seg(backend, s=a)
    ed = Editor(seg)
    ed.islands("s", "keep_selected", point=[i, j, k], space="ijk")
    np.testing.assert_array_equal(seg["s"].mask.to_numpy(), lab == v)
    assert ed.undo()
    ed.islands("s", "remove_selected", point=[i, j, k], space="ijk")
    np.testing.assert_array_equal(seg["s"].mask.to_numpy(), a & (lab != v))
    assert ed.undo()
    k, j, i = (int(x[0]) for x in np.nonzero(~a))
    assert ed.islands("s", "keep_selected", point=[i, j, k], space="ijk") == 0  # a click outside: nothing
    np.testing.assert_array_equal(seg["s"].mask.to_numpy(), a)


def _merged(masks):
    out = np.zeros(G.shape, np.int32)
    for n, m in enumerate(masks):
        out[m] = n + 1
    return out


def test_add_selected_bounded_by_visible_segments(backend):
    ring = np.zeros(G.shape, bool)
    ring[2:7, 4:15, 5:30] = True
    ring[3:6, 6:13, 8:27] = False  # a closed shell
    wall = np.zeros(G.shape, bool)
    wall[:, 9, :] = True  # a visible wall that splits the cavity in two
    hidden = np.zeros(G.shape, bool)
    hidden[:, 7, :] = True  # invisible: does not bound the region
    seg = _seg(backend, s=ring, wall=wall, hidden=hidden)
    seg["hidden"].visible = False
    ed = Editor(seg)
    ed.masking = Masking(overwrite="allow_overlap")
    ed.islands("s", "add_selected", point=[10, 6, 4], space="ijk")  # (i, j, k) in the cavity, below the wall
    merged = _merged([ring, wall])
    lab = ndimage.label(merged == 0)[0]  # the padded union extent is the whole grid here (wall spans it)
    want = ring | (lab == lab[4, 6, 10])
    np.testing.assert_array_equal(seg["s"].mask.to_numpy(), want)
    assert seg["s"].mask.to_numpy()[4, 6, 10] and not seg["s"].mask.to_numpy()[4, 11, 10]


def test_add_selected_padded_extent(backend):
    """The region is limited to the visible segments' union extent padded by one voxel (which may
    leave the grid, so the background connects around a segment that touches the border)."""
    a = np.zeros(G.shape, bool)
    a[0:9, 3:12, 10:11] = True  # a plate from k = 0 to the last slice, touching both k borders
    b = np.zeros(G.shape, bool)
    b[4, 5, 20] = True
    seg = _seg(backend, a=a, b=b)
    ed = Editor(seg)
    ed.masking = Masking(overwrite="allow_overlap")
    n = ed.islands("b", "add_selected", point=[9, 4, 4], space="ijk")  # i = 9: the padding left of the plate
    box = np.zeros(G.shape, bool)
    box[:, 2:13, 9:22] = True  # union extent (k 0..9, j 3..12, i 10..21) padded by one, clipped
    # the padding rows j = 2 and j = 12 connect the two sides of the plate
    free = box & ~a & ~b
    lab = ndimage.label(free)[0]
    want = b | (lab == lab[4, 4, 9])
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), want)
    assert n == int(want.sum()) - 1
    assert ed.islands("b", "add_selected", point=[40, 20, 4], space="ijk") == 0  # outside the extent


def test_add_selected_pad_outside_grid_connects(backend):
    """A wall that cuts the grid in two: inside the grid the sides do not connect, but Slicer's
    padding beyond the grid border connects them."""
    wall = np.zeros(G.shape, bool)
    wall[:, :, 10] = True
    seg = _seg(backend, wall=wall, t=np.zeros(G.shape, bool))
    ed = Editor(seg)
    assert ed.islands("t", "add_selected", point=[3, 3, 3], space="ijk") == 0  # outside the padded extent
    ed.islands("t", "add_selected", point=[9, 3, 3], space="ijk")
    want = np.zeros(G.shape, bool)
    want[:, :, 9] = want[:, :, 11] = True  # the padded extent is i 9..11; the sides join beyond the grid
    np.testing.assert_array_equal(seg["t"].mask.to_numpy(), want)


def test_steps_split_and_errors():
    a = _blobs()
    seg = _seg("cpu", organ=a)
    ed = Editor(seg)
    run_steps(ed, [{"effect": "islands", "segment": "organ", "operation": "split", "min_size": 5}])
    _, ranked = _ranked(a, 5)
    assert len(seg) == len(ranked)
    with pytest.raises(InvalidInputError, match="min_size"):
        ed.islands("organ", "split", min_size=-1)
    with pytest.raises(InvalidInputError, match="unknown islands operation"):
        ed.islands("organ", "explode")
    with pytest.raises(OutOfBoundsError):
        ed.islands("organ", "add_selected", point=[400, 0, 0], space="ijk")
    with pytest.raises(InvalidInputError, match="needs a point"):
        ed.islands("organ", "add_selected")
    with pytest.raises(InvalidInputError, match="at least one"):
        gpuseg.ops.islands.bounded_region([], (0, 0, 0))
