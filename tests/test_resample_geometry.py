"""Segmentation geometry (Slicer's Specify geometry) and resampling on the device.

Oracles: SimpleITK ``Resample`` (nearest neighbour for masks, linear for images) on random,
anisotropic and oblique grids; Slicer's formulas, worked by hand, for the geometry computations
(docs/geometry.md); numpy's ``repeat`` for exact integer oversampling. Every backend gives the
same bits (the parity harness).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

import gpuseg
from gpuseg import Image, ImageGeometry, Mask, Segmentation
from gpuseg.errors import InvalidInputError
from gpuseg.geometry import Extent
from gpuseg.ops.resample import resample_image, resample_nearest
from gpuseg.ops.segmentation_geometry import (box_geometry, copy_segments, isotropic_geometry, oversampled_geometry,
                                              padded_geometry, resample_segmentation, specify_geometry,
                                              transform_extent)

from .parity import parity


def _sitk(arr: np.ndarray, g: ImageGeometry) -> sitk.Image:
    im = sitk.GetImageFromArray(arr)
    im.SetSpacing(g.spacing)
    im.SetOrigin(g.origin)
    im.SetDirection(g.direction.ravel().tolist())
    return im


def _sitk_resample(arr, src: ImageGeometry, dst: ImageGeometry, interp) -> np.ndarray:
    ref = _sitk(np.zeros(dst.shape, arr.dtype), dst)
    return sitk.GetArrayFromImage(sitk.Resample(_sitk(arr, src), ref, sitk.Transform(), interp, 0.0))


def _oblique(rng, shape, spacing_range=(0.4, 2.5)) -> ImageGeometry:
    return ImageGeometry(shape, rng.uniform(*spacing_range, 3), rng.uniform(-10, 10, 3),
                         Rotation.from_euler("xyz", rng.uniform(-0.6, 0.6, 3)).as_matrix())


def _grids(seed: int):
    rng = np.random.default_rng(seed)
    src = _oblique(rng, tuple(rng.integers(5, 40, 3)))
    # the target covers about the same region, finer or coarser
    ext = np.array(src.shape[::-1]) * np.array(src.spacing)
    sp = rng.uniform(0.3, 2.0, 3)
    shape = tuple(int(x) for x in np.maximum(np.ceil(ext / sp * 1.2), 3)[::-1])
    dst = ImageGeometry(shape, sp, np.asarray(src.origin) - sp,
                        Rotation.from_euler("xyz", rng.uniform(-0.6, 0.6, 3)).as_matrix())
    a = rng.random(src.shape) < rng.uniform(0.2, 0.8)
    return a, src, dst


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@parity(reference=lambda seed: {"dense": _sitk_resample(_grids(seed)[0].astype(np.uint8), _grids(seed)[1],
                                                         _grids(seed)[2], sitk.sitkNearestNeighbor).astype(bool)})
def test_resample_nearest_equals_simpleitk(backend, seed):
    a, src, dst = _grids(seed)
    m = resample_nearest(Mask.from_numpy(a, src, backend=backend), dst)
    assert m.geometry is dst
    return {"dense": m.to_numpy(), "count": m.count()}


@parity(reference=lambda: {"dense": np.repeat(np.repeat(np.repeat(_upsample_case()[0], 2, 0), 2, 1), 2, 2)})
def test_oversampling_by_two_splits_each_voxel_in_eight(backend):
    a, g = _upsample_case()
    m = resample_nearest(Mask.from_numpy(a, g, backend=backend), oversampled_geometry(g, 2))
    return {"dense": m.to_numpy()}


def _upsample_case():
    rng = np.random.default_rng(7)
    g = ImageGeometry((9, 14, 37), (0.7, 1.3, 2.9), (4.0, -3.0, 11.0),
                      Rotation.from_euler("z", 0.4).as_matrix())
    return rng.random(g.shape) < 0.4, g


def test_resample_nearest_empty_full_and_disjoint(backend):
    g = ImageGeometry((7, 9, 40), (1.0, 1.0, 2.0))
    fine = oversampled_geometry(g, 3)
    assert resample_nearest(Mask.empty(g, backend=backend), fine).count() == 0
    full = resample_nearest(Mask.full(g, backend=backend), fine)
    assert full.count() == fine.n_voxels  # oversampling covers the same box: every fine voxel is set
    far = ImageGeometry((5, 5, 5), origin=(1000.0, 0.0, 0.0))
    assert resample_nearest(Mask.full(g, backend=backend), far).count() == 0
    with pytest.raises(InvalidInputError):
        resample_nearest(np.zeros(g.shape, bool), fine)
    with pytest.raises(InvalidInputError):
        resample_nearest(Mask.full(g, backend=backend), "not a geometry")


def _image_case(seed, dtype):
    a, src, dst = _grids(seed)
    rng = np.random.default_rng(seed + 100)
    img = (rng.normal(0, 400, src.shape)).astype(dtype)
    return img, src, dst


@pytest.mark.parametrize("seed", [0, 3])
@parity()
def test_resample_image_linear_float_matches_simpleitk(backend, seed):
    img, src, dst = _image_case(seed, np.float32)
    out = resample_image(Image.from_numpy(img, src, backend=backend), dst)
    got = out.to_numpy()
    ref = _sitk_resample(img.astype(np.float64), src, dst, sitk.sitkLinear)
    # SimpleITK interpolates in double and keeps double; gpuseg keeps float32 (one rounding)
    inside = ref != 0
    np.testing.assert_allclose(got[inside], ref[inside], rtol=2e-6, atol=1e-3)
    # outside the source (more than half a voxel past its edge centres): background in both,
    # except in the edge half-voxel, where gpuseg repeats the edge voxel (docs/geometry.md)
    assert np.count_nonzero(got[~inside]) <= max(1, inside.sum() // 20)
    return got


@parity()
def test_resample_image_int16_rounds_half_up(backend):
    img, src, dst = _image_case(1, np.int16)
    got = resample_image(Image.from_numpy(img, src, backend=backend), dst, background=-1000).to_numpy()
    ref = _sitk_resample(img.astype(np.float64), src, dst, sitk.sitkLinear)
    ref_bg = _sitk_resample(np.ones_like(img, np.float64), src, dst, sitk.sitkLinear) == 0
    inside = ~ref_bg
    assert got.dtype == np.int16
    diff = np.abs(got[inside].astype(np.float64) - np.floor(ref[inside] + 0.5))
    assert diff.max() <= 1 and np.count_nonzero(diff) <= 3  # only at rounding ties of the two maps
    assert np.count_nonzero(got[ref_bg] != -1000) <= max(1, inside.sum() // 20)  # the edge half-voxel only
    return got


def test_resample_image_bad_input():
    g = ImageGeometry((4, 5, 6))
    img = Image.from_numpy(np.zeros(g.shape, np.int16), g)
    with pytest.raises(InvalidInputError, match="does not fit"):
        resample_image(img, g, background=1e6)
    with pytest.raises(InvalidInputError):
        resample_image(img, "grid")
    with pytest.raises(InvalidInputError):
        resample_image(np.zeros(g.shape), g)


# --- Slicer's geometry formulas (docs/geometry.md), worked by hand ---------------------------

def test_oversampled_geometry_slicer_formula():
    g = ImageGeometry((10, 20, 30), (1.0, 2.0, 3.0), (5.0, 6.0, 7.0))  # n = (30, 20, 10) along i, j, k
    o = oversampled_geometry(g, 1.7)
    # n' = floor(1.7 n) = (51, 34, 17); s' = s n / n'
    assert o.shape == (17, 34, 51)
    np.testing.assert_allclose(o.spacing, (30 / 51, 2 * 20 / 34, 3 * 10 / 17))
    # the outer corners coincide: origin' - s'/2 = origin - s/2 along each axis
    np.testing.assert_allclose(np.asarray(o.origin) - np.asarray(o.spacing) / 2,
                               np.asarray(g.origin) - np.asarray(g.spacing) / 2, atol=1e-12)
    c = oversampled_geometry(g, 0.5)
    assert c.shape == (5, 10, 15)
    np.testing.assert_allclose(c.spacing, (2.0, 4.0, 6.0))
    np.testing.assert_allclose(c.origin, (5.5, 7.0, 8.5))  # 5 - 0.5 + 1, 6 - 1 + 2, 7 - 1.5 + 3
    assert oversampled_geometry(g, 1) is g
    # n' is at least 1 (Slicer: extent max(.., 0))
    assert oversampled_geometry(ImageGeometry((1, 1, 1)), 0.3).shape == (1, 1, 1)
    for bad in (0.0, 0.001, 101, "x", float("nan")):
        with pytest.raises(InvalidInputError):
            oversampled_geometry(g, bad)


def test_oblique_oversampling_keeps_the_box():
    rng = np.random.default_rng(3)
    g = _oblique(rng, (11, 13, 17))
    o = oversampled_geometry(g, 2.5)
    corner = g.ijk_to_world_points([-0.5, -0.5, -0.5])
    np.testing.assert_allclose(o.ijk_to_world_points([-0.5, -0.5, -0.5]), corner, atol=1e-9)
    np.testing.assert_allclose(o.direction, g.direction)


def test_isotropic_geometry_slicer_formula():
    g = ImageGeometry((10, 20, 30), (0.8, 0.8, 2.5), (1.0, 2.0, 3.0))
    iso = isotropic_geometry(g)
    assert iso.spacing == (0.8, 0.8, 0.8)
    assert iso.shape == (31, 20, 30)  # floor(2.5 / 0.8 * 10) = 31
    assert iso.origin == g.origin  # Slicer keeps the centre of voxel 0


def test_box_geometry_rounds_half_away_from_zero():
    b = box_geometry((0, 0, 0), (10, 10, 10), 1.0)
    # corners at -4.5 and 4.5 voxels round to -5 and 5: 11 voxels (vtkMath::Round)
    assert b.shape == (11, 11, 11)
    np.testing.assert_allclose(b.origin, (-5, -5, -5))
    b2 = box_geometry((10, 20, 30), (4.2, 6.0, 9.0), (0.5, 1.0, 1.5))
    # (-2.1 + 0.25) / 0.5 = -3.7 -> -4 .. 4: 9; (-3 + .5) / 1 = -2.5 -> -3 .. 3: 7; (-4.5 + .75) / 1.5 = -2.5 -> 7
    assert b2.shape == (7, 7, 9)
    np.testing.assert_allclose(b2.origin, (10 - 2.0, 20 - 3.0, 30 - 4.5))
    rot = Rotation.from_euler("z", 0.3).as_matrix()
    b3 = box_geometry((1, 2, 3), (8, 8, 8), 2.0, rot)
    np.testing.assert_allclose(b3.direction, rot, atol=1e-12)
    np.testing.assert_allclose(b3.ijk_to_world_points((np.array(b3.shape[::-1]) - 1) / 2), (1, 2, 3), atol=1e-9)
    for args in (((0, 0, 0), (1, 1, 1), 0.0), ((0, 0, 0), (0, 1, 1), 1.0), ((0, 0), (1, 1, 1), 1.0)):
        with pytest.raises(InvalidInputError):
            box_geometry(*args)


def test_transform_extent_is_slicers():
    g = ImageGeometry((10, 10, 10))
    fine = oversampled_geometry(g, 2)
    # voxels 2..4 (i) of the coarse grid are the fine voxels 4..9
    assert transform_extent(Extent(0, 1, 0, 1, 2, 5), g, fine) == Extent(0, 2, 0, 2, 4, 10)
    shifted = ImageGeometry((10, 10, 10), origin=(0.3, 0, 0))
    # voxel 0 spans -0.8 .. 0.2 in the shifted grid; half a voxel in: -0.3 .. -0.3, floor / ceil:
    # shifted voxels -1 and 0 (inclusive), i.e. the half-open -1 .. 1
    assert transform_extent(Extent(0, 1, 0, 1, 0, 1), g, shifted) == Extent(0, 1, 0, 1, -1, 1)
    assert transform_extent(Extent.empty(), g, fine).is_empty


def _segmentation(backend="cpu"):
    g = ImageGeometry((12, 16, 20), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    seg = Segmentation(g, backend=backend)
    a = np.zeros(g.shape, bool)
    a[2:5, 3:9, 14:20] = True  # touches the i edge
    seg.add_segment(Mask.from_numpy(a, g, backend=backend), name="liver", color=(0.8, 0.2, 0.1))
    b = np.zeros(g.shape, bool)
    b[6:11, 1:4, 1:3] = True
    seg.add_segment(Mask.from_numpy(b, g, backend=backend), name="spleen")
    seg.add_segment(name="empty")
    return seg


def test_specify_geometry_pads_to_hold_every_segment(backend):
    seg = _segmentation(backend)
    small = ImageGeometry((6, 6, 6), (0.5, 0.5, 0.5), (2.0, 2.0, 2.0))
    padded = specify_geometry(seg, small)
    unpadded = specify_geometry(seg, small, pad=False)
    assert unpadded.is_same_grid(small)
    out = resample_segmentation(seg, padded)
    ref = resample_segmentation(seg, unpadded)
    for name in ("liver", "spleen"):
        n = out.segment(name).mask.count()
        # every coarse voxel becomes (2 / 0.5) * (1 / 0.5)**2 = 16 fine voxels, none cropped
        assert n == 16 * seg.segment(name).mask.count()
        assert ref.segment(name).mask.count() < n
    assert out.segment("empty").mask.count() == 0


def test_specify_geometry_options_in_slicers_order():
    seg = _segmentation()
    g = seg.geometry
    iso2 = specify_geometry(seg, g, isotropic=True, oversampling=2)
    assert iso2.spacing == (0.5, 0.5, 0.5)
    assert iso2.shape == (48, 32, 40)  # k: 12 voxels of 2 mm -> 24 of 1 mm -> 48; j: 16 -> 32; i: 20 -> 40
    sp = specify_geometry(seg, g, spacing=0.5, pad=False)
    # the outer box (20 x 16 x 24 mm along i, j, k) as a box source at 0.5 mm (Slicer's bounds
    # formula): corners at +-(10 - 0.25) / 0.5 = +-19.5 voxels round away from zero to +-20: 41
    # voxels along i, 33 along j, 49 along k, centred on the box
    assert sp.shape == (49, 33, 41)
    np.testing.assert_allclose(sp.ijk_to_world_points([20, 16, 24]), g.ijk_to_world_points([9.5, 7.5, 5.5]))
    bx = specify_geometry(seg, box=((20.0, 8.0, 6.0), (10.0, 10.0, 10.0)), spacing=1.0, pad=False)
    assert bx.shape == (11, 11, 11)
    with pytest.raises(InvalidInputError, match="needs a spacing"):
        specify_geometry(seg, box=((0, 0, 0), (1, 1, 1)))
    with pytest.raises(InvalidInputError, match="either"):
        specify_geometry(seg, g, box=((0, 0, 0), (1, 1, 1)), spacing=1)
    with pytest.raises(InvalidInputError, match="ImageGeometry"):
        specify_geometry(seg, "CT.nrrd")
    with pytest.raises(InvalidInputError, match="more than"):
        specify_geometry(seg, ImageGeometry((100, 100, 100)), oversampling=100)  # 1e12 voxels: refused


def test_resample_segmentation_keeps_metadata_and_round_trips():
    seg = _segmentation()
    fine = specify_geometry(seg, oversampling=3)
    out = resample_segmentation(seg, fine)
    assert [s.name for s in out] == [s.name for s in seg]
    assert [s.id for s in out] == [s.id for s in seg]
    assert out.segment("liver").color == seg.segment("liver").color
    assert out.segment("liver").tags == seg.segment("liver").tags
    # factor 3: target centres fall at -1/3, 0, 1/3 of a coarse voxel: no ties, 27 per voxel,
    # and back onto the coarse grid each coarse centre hits its own middle fine voxel
    assert out.segment("liver").mask.count() == 27 * seg.segment("liver").mask.count()
    back = resample_segmentation(out, seg.geometry)
    for s in seg:
        assert np.array_equal(back.segment(s.id).mask.to_numpy(), s.mask.to_numpy())
    assert len(seg) == 3  # the source is unchanged


def test_copy_and_move_segments_between_grids():
    seg = _segmentation()
    other = Segmentation(oversampled_geometry(seg.geometry, 2))
    other.add_segment(name="liver")
    added = copy_segments(seg, other, ["liver"])
    assert [s.name for s in other] == ["liver", "liver"]
    assert added[0] is list(other)[1]
    assert added[0].mask.count() == 8 * seg.segment("liver").mask.count()
    moved = copy_segments(seg, other, ["spleen"], move=True)
    assert "spleen" not in [s.name for s in seg] and moved[0].name == "spleen"
    with pytest.raises(InvalidInputError):
        copy_segments(seg, seg)
    with pytest.raises(gpuseg.UnknownSegmentError):
        copy_segments(seg, other, ["nope"])


def test_padded_geometry_without_segments_is_unchanged():
    seg = Segmentation(ImageGeometry((4, 4, 4)))
    seg.add_segment(name="empty")
    g = ImageGeometry((2, 2, 2), origin=(10, 10, 10))
    assert padded_geometry(g, seg) is g


def test_editor_resamples_a_source_image_on_another_grid(backend):
    seg = _segmentation(backend)
    coarse = oversampled_geometry(seg.geometry, 0.5)
    rng = np.random.default_rng(5)
    img = Image.from_numpy(rng.integers(-200, 200, coarse.shape).astype(np.int16), coarse, backend=backend)
    ed = gpuseg.Editor(seg, img)
    assert ed.source_image is img and ed.image.geometry is seg.geometry
    aligned = resample_image(img, seg.geometry)
    assert np.array_equal(ed.image.to_numpy(), aligned.to_numpy())
    ed.threshold("liver", 0, 100)
    ref = (aligned.to_numpy() >= 0) & (aligned.to_numpy() <= 100)
    assert np.array_equal(seg.segment("liver").mask.to_numpy(), ref)


def test_cli_resample(tmp_path):
    from gpuseg.cli import main

    seg = _segmentation()
    src = tmp_path / "in.seg.nrrd"
    gpuseg.write_segmentation(seg, src)
    out = tmp_path / "fine.seg.nrrd"
    assert main(["resample", str(src), "--oversampling", "2", "-o", str(out), "-q"]) == 0
    fine = gpuseg.read_segmentation(out)
    assert fine.geometry.shape == tuple(2 * n for n in seg.geometry.shape)
    for s in seg:
        assert fine.segment(s.name).mask.count() == 8 * s.mask.count()
    # --reference: the grid of an image; the segments stick out of it, so the grid is padded
    ref_g = ImageGeometry((5, 6, 7), (0.5, 0.5, 0.5), (3.0, 3.0, 3.0))
    ref = tmp_path / "ref.nrrd"
    gpuseg.write_labelmap(ref, np.zeros(ref_g.shape, np.int16), ref_g)
    out2 = tmp_path / "onref.seg.nrrd"
    assert main(["resample", str(src), "--reference", str(ref), "-o", str(out2), "-q"]) == 0
    on_ref = gpuseg.read_segmentation(out2)
    np.testing.assert_allclose(on_ref.geometry.spacing, (0.5, 0.5, 0.5))
    assert on_ref.segment("liver").mask.count() == 16 * seg.segment("liver").mask.count()
    out3 = tmp_path / "cropped.seg.nrrd"
    assert main(["resample", str(src), "--reference", str(ref), "--no-pad", "-o", str(out3), "-q"]) == 0
    assert gpuseg.read_segmentation(out3).geometry.shape == ref_g.shape
    # errors: exit 2 with a message, nothing written
    bad = tmp_path / "bad.seg.nrrd"
    assert main(["resample", str(src), "--oversampling", "500", "-o", str(bad)]) == 2
    assert main(["resample", str(tmp_path / "missing.seg.nrrd"), "--oversampling", "2", "-o", str(bad)]) == 2
    assert not bad.exists()
    with pytest.raises(SystemExit):
        main(["resample", str(src), "-o", str(bad)])  # no geometry source
    with pytest.raises(SystemExit):
        main(["resample", str(src), "--spacing", "1", "--oversampling", "2", "-o", str(bad)])


# --- closed surface -> labelmap geometry: Oversampling factor (a number or A) and cropping ---

def _sphere_volume_area(r):
    return 4.0 / 3.0 * np.pi * r ** 3, 4.0 * np.pi * r ** 2


@pytest.mark.parametrize("radius_voxels, area_scale, expected", [
    (3.0, 1.0, 4.0),    # very small (relative size 4.8): only "very high" fires, centre 1.86 -> 2^2
    (15.0, 1.0, 1.0),   # medium, smooth: "normal", symmetric about 0 -> 2^0
    (60.0, 1.0, 0.5),   # large (relative size 97): "low", centre -0.86 -> 2^-1
    (8.0, 2.0, 2.0),    # small (12.9) and complex (shape index 1.41 -> complexity 0.41: high 0.53, low 0.47)
])
def test_auto_oversampling_factor_slicers_fuzzy_rules(radius_voxels, area_scale, expected):
    g = ImageGeometry((10, 10, 10), (0.5, 0.5, 0.5))
    v, a = _sphere_volume_area(radius_voxels * 0.5)
    assert gpuseg.ops.segmentation_geometry.auto_oversampling_factor(v, a * area_scale, g) == expected


def test_auto_oversampling_factor_mixed_rules_worked_by_hand():
    # relative size 9.5: very small 0.5 and small 0.5; a sphere: complexity 0 (low 1). Rules 1
    # (very high, clipped at 0.5) and 4 (normal, clipped at 0.5): areas 0.4375 (moment 0.7917)
    # and 0.625 (moment 0); centre 0.745 -> floor(1.245) = 1 -> factor 2
    g = ImageGeometry((4, 4, 4))
    r = 9.5 / (4.0 / 3.0 * np.pi) ** (1.0 / 3.0)
    v, a = _sphere_volume_area(r)
    assert gpuseg.ops.segmentation_geometry.auto_oversampling_factor(v, a, g) == 2.0
    with pytest.raises(InvalidInputError):
        gpuseg.ops.segmentation_geometry.auto_oversampling_factor(0.0, 1.0, g)


def _vtk_sphere(radius, center=(0.0, 0.0, 0.0), res=40):
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    src = vtk.vtkSphereSource()
    src.SetRadius(radius)
    src.SetCenter(*center)
    src.SetThetaResolution(res)
    src.SetPhiResolution(res)
    src.Update()
    pd = src.GetOutput()
    v = vtk_to_numpy(pd.GetPoints().GetData()).astype(np.float64)
    f = vtk_to_numpy(pd.GetPolys().GetConnectivityArray()).reshape(-1, 3).astype(np.int64)
    mp = vtk.vtkMassProperties()
    mp.SetInputData(pd)
    mp.Update()
    return v, f, mp


def test_shape_measures_match_vtk_mass_properties():
    from gpuseg.surface.mesh import Surface

    v, f, mp = _vtk_sphere(7.0)
    s = Surface(v, f)
    # the complexity input of the automatic factor is VTK's normalized shape index
    ours = np.sqrt(s.area()) / np.cbrt(abs(s.volume())) / 2.199085233
    assert ours == pytest.approx(mp.GetNormalizedShapeIndex(), rel=1e-9)
    assert abs(s.volume()) == pytest.approx(mp.GetVolume(), rel=1e-9)


def test_surface_labelmap_geometry_reference_oversampling_and_crop():
    from gpuseg.ops.segmentation_geometry import surface_labelmap_geometry
    from gpuseg.surface.mesh import Surface

    v, f, _ = _vtk_sphere(6.0, center=(10.0, 10.0, 10.0))
    s = Surface(v, f)
    ref = ImageGeometry((20, 20, 20), (1.0, 1.0, 1.0))
    g = surface_labelmap_geometry([s], ref, oversampling=2)
    assert g.spacing == (0.5, 0.5, 0.5)
    ijk = g.world_to_ijk_points(v)  # the grid holds the vertex bounds, floor / ceil, on the oversampled lattice
    assert np.all(ijk.min(0) >= 0) and np.all(ijk.min(0) < 1) and np.all(ijk.max(0) <= np.array(g.shape[::-1]) - 1)
    assert g.is_same_lattice(oversampled_geometry(ref, 2))
    # a mesh reaching past the reference: the whole mesh without crop, cut at the reference with it
    v2, f2, _ = _vtk_sphere(6.0, center=(18.0, 10.0, 10.0))
    big = surface_labelmap_geometry([Surface(v2, f2)], ref)
    assert big.shape[2] > 20 - 12 and ref.world_to_ijk_points(big.ijk_to_world_points([big.shape[2] - 1, 0, 0]))[0] > 19
    cut = surface_labelmap_geometry([Surface(v2, f2)], ref, crop=True)
    assert ref.world_to_ijk_points(cut.ijk_to_world_points([cut.shape[2] - 1, 0, 0]))[0] == pytest.approx(19)
    # no reference: Slicer's default, about 250^3 over the bounds, RAS axes
    d = surface_labelmap_geometry([s])
    assert abs(np.prod(d.shape) - 250 ** 3) / 250 ** 3 < 0.05
    np.testing.assert_allclose(d.direction, np.diag([-1.0, -1.0, 1.0]))
    auto = surface_labelmap_geometry([s], ref, oversampling="A")
    assert auto.spacing == (0.5, 0.5, 0.5)  # radius 6 voxels: relative size 9.7, a sphere -> factor 2 (see above)
    with pytest.raises(InvalidInputError, match="number or 'A'"):
        surface_labelmap_geometry([s], ref, oversampling="B")


def test_cli_import_mesh_with_oversampling(tmp_path):
    import trimesh

    from gpuseg.cli import main

    v, f, _ = _vtk_sphere(5.0, center=(10.0, 10.0, 10.0))
    stl = tmp_path / "ball.stl"
    trimesh.Trimesh(v, f, process=False).export(stl)
    ref_g = ImageGeometry((20, 20, 20))
    ref = tmp_path / "ref.nrrd"
    gpuseg.write_labelmap(ref, np.zeros(ref_g.shape, np.int16), ref_g)
    plain, fine, auto, free = (tmp_path / f"{n}.seg.nrrd" for n in ("plain", "fine", "auto", "free"))
    assert main(["import-mesh", str(stl), "--reference", str(ref), "-o", str(plain), "-q"]) == 0
    assert main(["import-mesh", str(stl), "--reference", str(ref), "--oversampling", "2", "-o", str(fine), "-q"]) == 0
    assert main(["import-mesh", str(stl), "--reference", str(ref), "--oversampling", "A", "-o", str(auto), "-q"]) == 0
    assert main(["import-mesh", str(stl), "-o", str(free), "-q"]) == 0
    vol = {p.stem: (lambda s: s.segments[0].mask.count() * s.geometry.voxel_volume)(gpuseg.read_segmentation(p))
           for p in (plain, fine, auto, free)}
    exact = 4.0 / 3.0 * np.pi * 125
    assert gpuseg.read_segmentation(fine).geometry.spacing == (0.5, 0.5, 0.5)
    # finer grids measure the ball better
    assert abs(vol["fine.seg"] - exact) < abs(vol["plain.seg"] - exact) or abs(vol["plain.seg"] - exact) < 0.01 * exact
    assert abs(vol["free.seg"] - exact) < 0.01 * exact  # 250^3 voxels over the ball
    assert main(["import-mesh", str(stl), "--reference", str(ref), "--oversampling", "x", "-o", str(tmp_path / "b.seg.nrrd")]) == 2
