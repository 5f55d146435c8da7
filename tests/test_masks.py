"""Mask kernels on every backend against numpy: pack/unpack, count, extent, slices, logic ops."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gpuseg
from gpuseg import Extent, ImageGeometry, Mask
from gpuseg.errors import GeometryMismatchError, InvalidInputError, OutOfBoundsError

from gpuseg.backends import get_backend

from .conftest import ODD_SHAPES
from .parity import parity


def random_mask(rng, shape, p=0.3):
    return rng.random(shape) < p


def numpy_extent(a):
    nz = np.nonzero(a)
    if nz[0].size == 0:
        return Extent.empty()
    return Extent(nz[0].min(), nz[0].max() + 1, nz[1].min(), nz[1].max() + 1, nz[2].min(), nz[2].max() + 1)


def packed_reference(a):
    """Design invariant 2 written with numpy: LSB-first words, zero padding."""
    nk, nj, ni = a.shape
    nw = (ni + 31) // 32
    pad = np.zeros((nk, nj, nw * 32), bool)
    pad[:, :, :ni] = a
    return np.packbits(pad.reshape(nk, nj, nw, 32), axis=-1, bitorder="little").view("<u4")[..., 0]


@pytest.mark.parametrize("shape", ODD_SHAPES)
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_pack_layout_count_extent(backend, rng, shape, p):
    a = random_mask(rng, shape, p)
    g = ImageGeometry(shape, spacing=(0.5, 1.0, 3.0))
    m = Mask.from_numpy(a, g, backend=backend)
    words = m.words_numpy()
    assert words.dtype == np.uint32 and words.shape == (shape[0], shape[1], (shape[2] + 31) // 32)
    np.testing.assert_array_equal(words, packed_reference(a))
    assert m.count() == int(a.sum())
    assert m.extent() == numpy_extent(a)
    np.testing.assert_array_equal(m.to_numpy(), a)


def test_padding_bits_are_zero_after_every_op(backend, rng):
    shape = (3, 4, 33)
    g = ImageGeometry(shape)
    a = Mask.from_numpy(random_mask(rng, shape), g, backend=backend)
    b = Mask.from_numpy(random_mask(rng, shape), g, backend=backend)
    for m in (~a, a | b, a ^ b, gpuseg.fill(a), Mask.full(g, backend=backend)):
        w = m.words_numpy()
        assert np.all(w[..., -1] >> np.uint32(1) == 0), "bits past ni must stay zero"


@pytest.mark.parametrize("shape", [(4, 5, 100), (3, 3, 33), (3, 3, 31)])
def test_offset_upload_and_partial_download(backend, rng, shape):
    g = ImageGeometry(shape)
    sub = random_mask(rng, (2, 2, min(20, shape[2] - 3)), 0.5)
    off = (1, 1, 3)
    m = Mask.from_numpy(sub, g, offset=off, backend=backend)
    full = np.zeros(shape, bool)
    full[1:3, 1:3, 3:3 + sub.shape[2]] = sub
    assert m.box[2] == 0 and m.box[:2] == (1, 1)
    np.testing.assert_array_equal(m.to_numpy(), full)
    ext = Extent(0, 3, 1, 2, 2, shape[2] - 1)
    np.testing.assert_array_equal(m.to_numpy(ext), full[ext.slices])


def test_shrink_grow_keep_voxels(backend, rng):
    shape = (6, 7, 130)
    g = ImageGeometry(shape)
    a = np.zeros(shape, bool)
    a[2:4, 3:6, 70:101] = random_mask(rng, (2, 3, 31), 0.6)
    a[3, 4, 75] = True
    m = Mask.from_numpy(a, g, backend=backend)
    eff = m.extent()
    m.shrink_()
    assert m.box_extent.contains(eff)
    assert m.box[2] == eff.i0 // 32 and m.box[:2] == (eff.k0, eff.j0)
    assert m.nbytes < 4 * 6 * 7 * 5
    np.testing.assert_array_equal(m.to_numpy(), a)
    m.grow_(Extent(0, 6, 0, 7, 0, 10))
    assert m.box_extent.contains(Extent(0, 6, 0, 7, 0, 10))
    np.testing.assert_array_equal(m.to_numpy(), a)
    e = Mask.from_numpy(np.zeros(shape, bool), g, backend=backend, crop=True)
    assert e.nbytes == 0 and e.count() == 0 and e.extent().is_empty
    np.testing.assert_array_equal(e.to_numpy(), np.zeros(shape, bool))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_display_slices(backend, rng, axis):
    shape = (5, 6, 37)
    a = np.zeros(shape, bool)
    a[1:4, 2:5, 10:35] = random_mask(rng, (3, 3, 25), 0.5)
    m = Mask.from_numpy(a, ImageGeometry(shape), backend=backend).shrink_()
    for index in range(shape[axis]):
        np.testing.assert_array_equal(m.slice(axis, index), np.take(a, index, axis=axis))
    with pytest.raises(OutOfBoundsError):
        m.slice(axis, shape[axis])
    with pytest.raises(InvalidInputError):
        m.slice(3, 0)
    empty = Mask.empty(ImageGeometry(shape), backend=backend)
    assert not empty.slice(axis, 0).any()


def _box_mask(rng, g, backend, ext):
    a = np.zeros(g.shape, bool)
    a[ext.slices] = random_mask(rng, ext.shape, 0.5)
    return a, Mask.from_numpy(a, g, backend=backend).shrink_()


def test_logic_ops_with_different_extents(backend, rng):
    g = ImageGeometry((6, 7, 101), spacing=(0.3, 0.3, 2.0))
    an, a = _box_mask(rng, g, backend, Extent(0, 4, 1, 6, 3, 70))
    bn, b = _box_mask(rng, g, backend, Extent(2, 6, 0, 5, 40, 101))
    cases = {
        "union": (gpuseg.union(a, b), an | bn),
        "intersect": (gpuseg.intersect(a, b), an & bn),
        "subtract": (gpuseg.subtract(a, b), an & ~bn),
        "xor": (gpuseg.xor(a, b), an ^ bn),
        "invert": (gpuseg.invert(a), ~an),
        "copy": (gpuseg.copy(a), an),
        "operators": ((a | b) - (a & b), an ^ bn),
    }
    for name, (got, want) in cases.items():
        np.testing.assert_array_equal(got.to_numpy(), want, err_msg=name)
    ext = Extent(1, 5, 2, 6, 5, 77)
    sel = np.zeros(g.shape, bool)
    sel[ext.slices] = True
    np.testing.assert_array_equal(gpuseg.invert(a, ext).to_numpy(), ~an & sel)
    np.testing.assert_array_equal(gpuseg.fill(a, ext).to_numpy(), an | sel)
    np.testing.assert_array_equal(gpuseg.clear(a, ext).to_numpy(), an & ~sel)
    assert gpuseg.clear(a).count() == 0
    assert gpuseg.invert(a).equals(~a) and not a.equals(b)


def test_logic_on_empty_and_full(backend):
    g = ImageGeometry((2, 3, 33))
    e = Mask.empty(g, backend=backend)
    f = Mask.full(g, backend=backend)
    assert f.count() == 2 * 3 * 33
    assert (e | f).count() == f.count() and (e & f).count() == 0
    assert (f - e).count() == f.count() and (~f).count() == 0 and (~e).count() == f.count()
    assert Mask.full(g, Extent(0, 1, 0, 1, 31, 33), backend=backend).count() == 2


def test_logic_errors(backend):
    a = Mask.zeros(ImageGeometry((2, 3, 4)), backend=backend)
    b = Mask.zeros(ImageGeometry((2, 3, 5)), backend=backend)
    with pytest.raises(GeometryMismatchError, match="different grids"):
        gpuseg.union(a, b)
    with pytest.raises(InvalidInputError, match="expected a Mask"):
        gpuseg.union(a, np.zeros((2, 3, 4), bool))
    with pytest.raises(OutOfBoundsError):
        Mask.full(a.geometry, Extent(0, 3, 0, 1, 0, 1), backend=backend)
    with pytest.raises(InvalidInputError, match="3D"):
        Mask.from_numpy(np.zeros((3, 4), bool), backend=backend)
    with pytest.raises(InvalidInputError, match="bool or integer"):
        Mask.from_numpy(np.zeros((1, 3, 4), np.float32), backend=backend)
    with pytest.raises(OutOfBoundsError):
        Mask.from_numpy(np.zeros((2, 3, 4), bool), a.geometry, offset=(1, 0, 0), backend=backend)


def _masks_reference(rng):
    g = ImageGeometry((5, 9, 77))
    an, bn = random_mask(rng, g.shape), random_mask(rng, g.shape, 0.6)
    return {"dense": [an | bn, an & ~bn, ~an, an ^ bn]}


@parity(reference=_masks_reference)
def test_cross_backend_masks_are_bit_identical(backend, rng):
    g = ImageGeometry((5, 9, 77))
    an, bn = random_mask(rng, g.shape), random_mask(rng, g.shape, 0.6)
    a = Mask.from_numpy(an, g, backend=backend)
    b = Mask.from_numpy(bn, g, backend=backend).shrink_()
    out = [a | b, a - b, ~a, a ^ b]
    cpu = get_backend("cpu")
    assert a.to(cpu).to(backend).equals(a)
    return {"dense": [m.to_numpy() for m in out], "words": [m.words_numpy() for m in out],
            "extent": np.array(a.extent().to_slicer())}


@settings(max_examples=25, deadline=None)
@given(nk=st.integers(1, 4), nj=st.integers(1, 4), ni=st.integers(1, 70), seed=st.integers(0, 2**31),
       ops=st.lists(st.sampled_from(["or", "and", "sub", "xor", "inv", "shrink", "grow"]), min_size=1, max_size=6))
def test_random_op_sequences_cpu(nk, nj, ni, seed, ops):
    r = np.random.default_rng(seed)
    g = ImageGeometry((nk, nj, ni))
    an = r.random(g.shape) < 0.4
    m = Mask.from_numpy(an, g, backend="cpu")
    for op in ops:
        bn = r.random(g.shape) < 0.4
        b = Mask.from_numpy(bn, g, backend="cpu").shrink_()
        if op == "or":
            m, an = m | b, an | bn
        elif op == "and":
            m, an = m & b, an & bn
        elif op == "sub":
            m, an = m - b, an & ~bn
        elif op == "xor":
            m, an = m ^ b, an ^ bn
        elif op == "inv":
            m, an = ~m, ~an
        elif op == "shrink":
            m.shrink_()
        else:
            m.grow_(g.extent)
        assert m.count() == an.sum()
    np.testing.assert_array_equal(m.to_numpy(), an)
    assert m.extent() == numpy_extent(an)
