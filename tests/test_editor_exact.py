"""Brush and circle scissors are exact on any affine grid (sheared, oblique, mirrored): the voxels
they set are those a brute-force world-distance check over the whole grid finds; and a stroke's
work is bounded (typed errors naming the bound, before any work)."""

import numpy as np
import pytest

from gpuseg import Editor, ImageGeometry, Segmentation
from gpuseg.editor import StrokeLimits
from gpuseg.editor.brush import ball_half_widths, stamp_centres
from gpuseg.errors import InvalidInputError


def rotation(a, b):
    ca, sa, cb, sb = np.cos(a), np.sin(a), np.cos(b), np.sin(b)
    return np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, cb, -sb], [0, sb, cb]])


def grid(m3, shape=(40, 60, 60)):
    m = np.eye(4)
    m[:3, :3] = m3
    m[:3, 3] = (-20.0, 7.5, 3.25)
    return ImageGeometry.from_matrix(shape, m)


GRIDS = {
    "shear 1.5": np.array([[1, 0, 0], [0, 1.2, 1.5], [0, 0, 1.0]]),
    "shear 3.0": np.array([[1, 0, 0], [0, 1.2, 3.0], [0, 0, 1.0]]),
    "oblique": rotation(0.5, 0.3) @ np.diag([0.7, 0.9, 2.0]),
    "mirrored shear": np.diag([-1.0, 1.0, -1.0]) @ np.array([[0.9, 0.8, 0], [0, 1.1, 0], [0.4, 0, 1.3]]),
}


def all_ijk(g):
    k, j, i = np.meshgrid(*[np.arange(n) for n in g.shape], indexing="ij")
    return np.stack([i, j, k], -1).astype(np.float64)  # (k, j, i, 3) in ijk order


def brute_ball(g, cijk, r, skip=-1):
    """Voxels whose centre is within r mm (world) of a stamp centre; a disc (skip = the ijk axis
    normal to it) only in the stamp's slice and measured within it."""
    m = g.ijk_to_world[:3, :3]
    d = all_ijk(g) - cijk
    if skip >= 0:
        d[..., skip] = 0.0
    d2 = ((d @ m.T) ** 2).sum(-1)
    near = np.abs(d2 - r * r) <= 1e-9 * r * r
    assert not near.any(), "a voxel centre lies on the rim: pick another centre"
    out = d2 <= r * r
    if skip >= 0:
        plane = int(np.rint(cijk[skip]))
        keep = np.zeros(g.shape, bool)
        sl = [slice(None)] * 3
        sl[2 - skip] = plane
        keep[tuple(sl)] = True
        out &= keep
    return out


def old_box_misses(g, cijk, r, want):
    """Whether the per-axis box r / spacing (the bound of earlier versions, with its one-voxel
    margin) leaves out voxels of ``want``."""
    half = r / np.asarray(g.spacing)
    inside = np.all(np.abs(all_ijk(g) - cijk) <= half + 1, axis=-1)
    return bool((want & ~inside).any())


def test_ball_half_widths_hold_the_ellipsoid():
    rng = np.random.default_rng(3)
    for m in GRIDS.values():
        for skip in (-1, 0, 1, 2):
            half = ball_half_widths(m, 7.0, skip)
            cols = [a for a in range(3) if a != skip]
            # points on the rim of the ball (or disc) in world space, back to index offsets
            u = rng.normal(size=(4000, len(cols)))
            a = m[:, cols]
            # index offsets d (in cols) with |a d| = 7: d = 7 * x / |a x|
            d = 7.0 * u / np.linalg.norm(u @ a.T, axis=1)[:, None]
            assert np.all(np.abs(d) <= half[cols] * (1 + 1e-12))
            assert np.all(np.abs(d).max(0) >= half[cols] * 0.97)  # tight: the rim reaches the box
            if skip >= 0:
                assert half[skip] == 0


@pytest.mark.parametrize("name", list(GRIDS))
@pytest.mark.parametrize("shape", ["sphere", "disc"])
def test_brush_matches_brute_force_world_distance(backend, name, shape):
    g = grid(GRIDS[name])
    rng = np.random.default_rng(7)
    sensitive = False
    for trial in range(3):
        seg = Segmentation(g, backend=backend)
        seg.add_segment(name="a")
        ed = Editor(seg)
        c = np.array([30.0, 30.0, 20.0]) + rng.uniform(-4, 4, 3)
        axis = trial % 3
        skip = 2 - axis if shape == "disc" else -1
        d = 12.0
        n = ed.paint("a", g.ijk_to_world_points(c), d, shape=shape, axis=axis)
        want = brute_ball(g, c, d / 2, skip)
        got = seg["a"].mask.to_numpy()
        assert n == want.sum() and np.array_equal(got, want), (name, shape, trial, n, want.sum())
        sensitive |= old_box_misses(g, c, d / 2, want)
    if name.startswith("shear") and shape == "sphere":
        assert sensitive  # the per-axis box of earlier versions misses voxels here


@pytest.mark.parametrize("name", ["shear 3.0", "mirrored shear"])
def test_brush_stroke_matches_brute_force(backend, name):
    g = grid(GRIDS[name])
    seg = Segmentation(g, backend=backend)
    seg.add_segment(name="a")
    ed = Editor(seg)
    ijk = np.array([[10.3, 12.1, 8.2], [40.7, 44.9, 30.4], [50.2, 20.6, 15.5]])
    d = 9.0
    ed.paint("a", g.ijk_to_world_points(ijk), d)
    centres = g.world_to_ijk_points(stamp_centres(g.ijk_to_world_points(ijk), d / 2, None))
    want = np.zeros(g.shape, bool)
    for c in centres:
        want |= brute_ball(g, c, d / 2)
    assert np.array_equal(seg["a"].mask.to_numpy(), want)
    assert ed.undo() and seg["a"].mask.count() == 0
    assert ed.redo() and np.array_equal(seg["a"].mask.to_numpy(), want)


@pytest.mark.parametrize("name", list(GRIDS))
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_circle_scissors_matches_brute_force(backend, name, axis):
    g = grid(GRIDS[name])
    seg = Segmentation(g, backend=backend)
    seg.add_segment(name="a")
    ed = Editor(seg)
    centre = np.array([29.6, 31.2, 19.7])  # ijk
    rim = centre.copy()
    rim[[a for a in range(3) if a != 2 - axis][0]] += 8.3
    ed.scissors("a", g.ijk_to_world_points(np.stack([centre, rim])), shape="circle", operation="fill_inside",
                axis=axis, extrusion="slice")
    skip = 2 - axis
    m = g.ijk_to_world[:3, :3]
    cols = [a for a in range(3) if a != skip]
    off = rim - centre
    rad = float(np.linalg.norm(m[:, cols] @ off[cols]))
    c = centre.copy()
    c[skip] = np.rint(c[skip])
    want = brute_ball(g, c, rad, skip)
    assert want.any() and np.array_equal(seg["a"].mask.to_numpy(), want), (name, axis)


# --- bounded work -------------------------------------------------------------------------------

def small():
    g = ImageGeometry((20, 30, 40), spacing=(0.8, 0.9, 1.5))
    seg = Segmentation(g, backend="cpu")
    seg.add_segment(name="a")
    return g, seg


@pytest.mark.parametrize("points, diameter, bound", [
    ([[0, 0, 0], [10, 0, 0]], 1e-9, "max_stamps"),            # a 1e-9 mm brush along 10 mm
    ([[0, 0, 0], [1e12, 0, 0]], 5.0, "max_stamps"),           # a stroke to 1e12 mm
    ([[0, 0, 0], [1e300, 1e300, 0]], 5.0, "max_stamps"),      # the distance overflows
    (np.zeros((100_001, 3)), 2.0, "max_points"),
])
def test_unbounded_strokes_fail_fast_with_the_bound_named(points, diameter, bound):
    g, seg = small()
    ed = Editor(seg)
    with pytest.raises(InvalidInputError, match=bound):
        ed.paint("a", points, diameter)
    assert seg["a"].mask.count() == 0 and not ed.can_undo


def test_limits_are_configurable_and_checked_before_work():
    g, seg = small()
    ed = Editor(seg, stroke_limits=StrokeLimits(max_box_voxels=1000))
    with pytest.raises(InvalidInputError, match="max_box_voxels"):
        ed.paint("a", [[10, 10, 10]], 10.0)
    ed.stroke_limits = StrokeLimits(max_tests=500)
    with pytest.raises(InvalidInputError, match="max_tests"):
        ed.paint("a", [[10, 10, 10], [20, 10, 10]], 4.0)
    ed.stroke_limits = StrokeLimits(max_stamps=3)
    with pytest.raises(InvalidInputError, match="max_stamps"):
        ed.paint("a", [[10, 10, 10], [20, 10, 10]], 4.0)
    ed.stroke_limits = StrokeLimits(max_points=1)
    with pytest.raises(InvalidInputError, match="max_points"):
        ed.paint("a", [[10, 10, 10], [11, 10, 10]], 4.0, shape="pixel")
    assert seg["a"].mask.count() == 0 and not ed.can_undo
    with pytest.raises(InvalidInputError, match="StrokeLimits"):
        Editor(seg, stroke_limits={"max_points": 3})


def test_default_limits_allow_real_strokes():
    g, seg = small()
    ed = Editor(seg)
    # a 1 mm brush dragged 300 mm across (1200 stamps), and a tiny brush at one point
    n = ed.paint("a", [[-100, 10.8, 10.5], [200, 10.8, 10.5]], 1.0)
    assert n > 0
    assert ed.paint("a", [[5.0, 5.4, 6.0]], 1e-9) == 0  # no voxel centre within 5e-10 mm
    with pytest.raises(InvalidInputError, match="positive number"):
        ed.paint("a", [[5, 5, 6]], "big")
