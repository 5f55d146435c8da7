"""The Segment Editor engine against a plain-numpy model of the same semantics, on every
backend: random sequences of paint, erase, undo and redo under random masking settings."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import gpuseg
from gpuseg import Editor, Image, ImageGeometry, Masking, Segmentation
from gpuseg.errors import InvalidInputError, UnknownSegmentError


def rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


GEOM = ImageGeometry((9, 14, 37), spacing=(0.7, 0.9, 1.6), origin=(3.0, -2.0, 5.0), direction=rotation(0.3))


def model_brush(g, points, d, shape="sphere", axis=0):
    """Every voxel whose centre is within d/2 of a stamp centre (stamps interpolated r/2 apart)."""
    nk, nj, ni = g.shape
    K, J, I = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    ijk = np.stack([I, J, K], -1).astype(float)
    world = g.ijk_to_world_points(ijk)
    pts = np.asarray(points, float)
    r = d / 2
    centres = [pts[0]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = int(np.ceil(np.linalg.norm(b - a) / (r / 2)))
        centres += [a + (b - a) * (t / n) for t in range(1, n + 1)]
    out = np.zeros(g.shape, bool)
    for c in centres:
        if shape == "sphere":
            out |= ((world - c) ** 2).sum(-1) <= r * r
        else:  # a disc: the distance within the stamp's slice
            cijk = g.world_to_ijk_points(c)
            plane = int(np.rint(cijk[2 - axis]))
            inplane = [K, J, I][axis] == plane
            m = g.ijk_to_world[:3, :3]
            dx = np.zeros(g.shape + (3,))
            for a_, steps in enumerate((I - cijk[0], J - cijk[1], K - cijk[2])):
                if a_ != 2 - axis:
                    dx += steps[..., None] * m[:, a_]
            out |= inplane & ((dx ** 2).sum(-1) <= r * r)
    return out


class Model:
    def __init__(self, n, image):
        self.segs = [np.zeros(GEOM.shape, bool) for _ in range(n)]
        self.visible = [True] * n
        self.image = image
        self.undo, self.redo = [], []

    def editable(self, s, m: Masking, erase):
        others = [self.segs[i] for i in range(len(self.segs)) if i != s]
        vis = [self.segs[i] for i in range(len(self.segs)) if i != s and self.visible[i]]
        u = lambda xs: np.any(xs, axis=0) if xs else np.zeros(GEOM.shape, bool)  # noqa: E731
        a = {"everywhere": np.ones(GEOM.shape, bool), "inside_all": u(others), "inside_visible": u(vis),
             "outside_all": ~u(others), "outside_visible": ~u(vis)}.get(m.editable_area)
        if m.editable_area == "inside":
            a = self.segs[int(m.mask_segment)].copy()
            if erase:
                a |= self.segs[s]
        if m.editable_area != "everywhere":
            a = a | self.segs[s]
        if m.intensity_range is not None:
            lo, hi = m.intensity_range
            a = a & (self.image >= lo) & (self.image <= hi)
        return a

    def apply(self, s, brush, m, erase, erase_all, targets=None, replace=False):
        before = [x.copy() for x in self.segs]
        mod = brush & self.editable(s, m, erase)
        if replace:  # Set mode
            self.segs[s] &= ~(self.editable(s, m, False) & ~mod)
        if erase:
            own = self.segs[s].copy()
            for i in (range(len(self.segs)) if erase_all else (targets if targets is not None else [s])):
                self.segs[i] &= ~mod
            if not erase_all and targets is None and m.editable_area == "inside" and int(m.mask_segment) != s:
                self.segs[int(m.mask_segment)] |= mod & own
        else:
            self.segs[s] |= mod
            if m.overwrite != "allow_overlap":
                for i in range(len(self.segs)):
                    if i != s and (m.overwrite == "overwrite_all" or self.visible[i]):
                        self.segs[i] &= ~mod
        if any((a != b).any() for a, b in zip(before, self.segs)):
            self.undo.append(before)
            self.redo.clear()


masking_st = st.builds(
    lambda area, x, rng, ow: Masking(area, str(x) if area == "inside" else None, rng, ow),
    st.sampled_from(["everywhere", "everywhere", "everywhere", "inside_all", "inside_visible", "outside_all",
                     "outside_visible", "inside"]),
    st.integers(0, 2), st.one_of(st.none(), st.just((-50.0, 60.0))),
    st.sampled_from(["overwrite_all", "overwrite_visible", "allow_overlap"]))
stroke_st = st.tuples(st.just("stroke"), st.integers(0, 2), st.booleans(), st.booleans(),
              st.lists(st.tuples(st.floats(8, 28), st.floats(2, 12), st.floats(1, 7)), min_size=1, max_size=3),
              st.floats(2.0, 8.0), st.sampled_from(["sphere", "disc", "pixel"]), st.integers(0, 2), masking_st,
              st.lists(st.booleans(), min_size=3, max_size=3))
scissors_st = st.tuples(st.just("scissors"), st.integers(0, 2),
                        st.sampled_from(["erase_inside", "erase_outside", "fill_inside", "fill_outside"]),
                        st.sampled_from(["rectangle", "freeform"]), st.sampled_from(["unlimited", "symmetric"]),
                        # corners off the pixel centres (the boundary rule of a polygon edge through a
                        # centre is not part of the definition)
                        st.tuples(st.integers(0, 12), st.integers(0, 35), st.integers(0, 12), st.integers(0, 35)).map(
                            lambda t: (t[0] + 0.31, t[1] + 0.17, t[2] + 0.43, t[3] + 0.59)),
                        st.floats(0.5, 8.5), st.booleans(), masking_st, st.lists(st.booleans(), min_size=3, max_size=3))
threshold_st = st.tuples(st.just("threshold"), st.integers(0, 2), st.integers(-100, 100), st.integers(0, 120),
                         masking_st, st.lists(st.booleans(), min_size=3, max_size=3))
action_st = st.one_of(stroke_st, stroke_st, stroke_st, scissors_st, threshold_st, st.tuples(st.just("undo")),
                      st.tuples(st.just("redo")))


def model_scissors(shape, rect, plane, extrusion, op):
    """The scissors region (3D) on GEOM, slices along axis 0 (k); rows j, columns i."""
    from matplotlib.path import Path

    r0, c0, r1, c1 = rect
    R, C = np.meshgrid(np.arange(GEOM.shape[1]), np.arange(GEOM.shape[2]), indexing="ij")
    if shape == "rectangle":
        inside = (R >= min(r0, r1)) & (R <= max(r0, r1)) & (C >= min(c0, c1)) & (C <= max(c0, c1))
    else:
        tri = np.array([[r0, c0], [r1, c0], [r1, c1]])
        if abs((r1 - r0) * (c1 - c0)) < 1e-6:
            inside = np.zeros(R.shape, bool)
        else:
            inside = Path(tri).contains_points(np.stack([R.ravel(), C.ravel()], 1)).reshape(R.shape)
    k = int(np.rint(plane))
    ks = range(GEOM.shape[0]) if extrusion == "unlimited" else range(max(0, k - 1), min(GEOM.shape[0], k + 2))
    region = np.zeros(GEOM.shape, bool)
    for kk in ks:
        region[kk] = inside
    return region if op.endswith("inside") else ~region


def run_sequence(backend, actions, seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(-100, 100, GEOM.shape).astype(np.int16)
    seg = Segmentation(GEOM, backend=backend)
    for n in range(3):
        seg.add_segment(name=str(n))
    ed = Editor(seg, Image.from_numpy(img, GEOM, backend=backend))
    model = Model(3, img)
    for act in actions:
        if act[0] == "undo":
            assert ed.undo() == bool(model.undo)
            if model.undo:
                model.redo.append([x.copy() for x in model.segs])
                model.segs = model.undo.pop()
        elif act[0] == "redo":
            assert ed.redo() == bool(model.redo)
            if model.redo:
                model.undo.append([x.copy() for x in model.segs])
                model.segs = model.redo.pop()
        elif act[0] == "scissors":
            _, s, op, shape, extrusion, rect, plane, all_visible, masking, visible = act
            for i, v in enumerate(visible):
                seg[i].visible = v
                model.visible[i] = v
            ed.masking = masking
            r0, c0, r1, c1 = rect
            pts = [[c0, r0, plane], [c1, r1, plane]] if shape == "rectangle" else \
                [[c0, r0, plane], [c0, r1, plane], [c1, r1, plane]]
            if shape == "freeform" and abs((r1 - r0) * (c1 - c0)) < 1e-6:
                continue
            # a symmetric cut of 2 * 1.6 mm on 1.6 mm slices keeps the slice and one each side
            ed.scissors(str(s), pts, operation=op, shape=shape, axis=0, extrusion=extrusion, depth_mm=3.3,
                        all_visible=all_visible, space="ijk")
            region = model_scissors(shape, rect, plane, extrusion, op)
            erase = op.startswith("erase")
            targets = [i for i in range(3) if model.visible[i]] if (erase and all_visible) else None
            model.apply(s, region, masking, erase, False, targets)
        elif act[0] == "threshold":
            _, s, lo, width, masking, visible = act
            for i, v in enumerate(visible):
                seg[i].visible = v
                model.visible[i] = v
            ed.masking = masking
            ed.threshold(str(s), lo, lo + width)
            model.apply(s, (img >= lo) & (img <= lo + width), masking, False, False, replace=True)
        else:
            _, s, erase, erase_all, pts_ijk, d, shape, axis, masking, visible = act
            for i, v in enumerate(visible):
                seg[i].visible = v
                model.visible[i] = v
            ed.masking = masking
            world = GEOM.ijk_to_world_points(np.asarray(pts_ijk, float))
            if shape == "pixel":
                brush = np.zeros(GEOM.shape, bool)
                # the nearest voxel of each world point: points on a half-voxel tie round the
                # way the world -> ijk transform leaves them, as in the editor
                for p in np.rint(GEOM.world_to_ijk_points(world)).astype(int):
                    if 0 <= p[0] < 37 and 0 <= p[1] < 14 and 0 <= p[2] < 9:
                        brush[p[2], p[1], p[0]] = True
            else:
                brush = model_brush(GEOM, world, d, shape, axis)
            if erase:
                ed.erase(str(s), world, d, all_segments=erase_all, shape=shape, axis=axis)
            else:
                ed.paint(str(s), world, d, shape=shape, axis=axis)
            model.apply(s, brush, masking, erase, erase_all)
        for i in range(3):
            np.testing.assert_array_equal(seg[i].mask.to_numpy(), model.segs[i], err_msg=f"segment {i} after {act}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=st.lists(action_st, min_size=3, max_size=10), seed=st.integers(0, 1000))
def test_edit_sequences_match_numpy_model_cpu(actions, seed):
    run_sequence("cpu", actions, seed)


@pytest.mark.opencl
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=st.lists(action_st, min_size=3, max_size=8), seed=st.integers(0, 1000))
def test_edit_sequences_match_numpy_model_opencl(actions, seed):
    from .parity import backend_or_skip

    run_sequence(backend_or_skip("opencl"), actions, seed)


def test_brush_crossing_the_border_and_extent_limited(backend):
    g = ImageGeometry((50, 60, 70), spacing=(0.8, 0.8, 0.8))
    seg = Segmentation(g, backend=backend)
    seg.add_segment(name="a")
    ed = Editor(seg)
    ed.paint("a", [[-1.0, -1.0, -1.0]], 5.0)  # centred outside the volume: clipped, not an error
    m = seg["a"].mask
    assert m.count() > 0 and m.box[:3] == (0, 0, 0)
    assert m.nbytes <= 4 * 4 * 4 * 1  # the mask stores only the brush's words
    np.testing.assert_array_equal(m.to_numpy(), model_brush(g, [[-1.0, -1.0, -1.0]], 5.0))
    before = ed.undo_memory
    changed = ed.paint("a", [[20, 20, 20], [40, 30, 25]], 4.0)
    grid_bytes = 50 * 60 * 3 * 4
    # only the change is kept (a compressed XOR of the stroke's box): far less than the mask
    assert ed.undo_memory - before <= 8 * changed and ed.undo_memory - before < grid_bytes // 20
    assert ed.paint("a", [[1000, 1000, 1000]], 3.0) == 0  # entirely outside: nothing happens


def test_undo_of_strokes_stored_as_recipes(backend):
    """Brush strokes keep "the stroke minus what stayed" plus the stroke's recipe when that is
    smaller than the XOR; undo and redo still restore every state bit for bit, with masking
    and strokes over earlier paint (where "what stayed" is not empty)."""
    rng = np.random.default_rng(4)
    g = ImageGeometry((40, 50, 70), spacing=(0.8, 0.8, 0.8))
    seg = Segmentation(g, backend=backend)
    seg.add_segment(name="a")
    seg.add_segment(name="b")
    ed = Editor(seg)
    states = [(seg["a"].mask.to_numpy(), seg["b"].mask.to_numpy())]
    kinds = []
    for n in range(12):
        p = rng.uniform([5, 5, 5], [50, 35, 27], 3)
        ed.masking = Masking(overwrite="overwrite_all" if n % 3 else "allow_overlap")
        if n % 4 == 3:
            changed = ed.erase("a", [p, p + rng.normal(0, 3, 3)], 6.0)
        else:
            changed = ed.paint("a" if n % 2 else "b", [p, p + rng.normal(0, 3, 3)], 9.0)
        if changed:  # an edit that changes nothing adds no undo level
            kinds += [c[2] for c in ed.history.undo_levels[-1].changes]
            states.append((seg["a"].mask.to_numpy(), seg["b"].mask.to_numpy()))
    assert "kept" in kinds and len(states) > 8
    for want in reversed(states[:-1]):
        assert ed.undo()
        np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want[0])
        np.testing.assert_array_equal(seg["b"].mask.to_numpy(), want[1])
    for want in states[1:]:
        assert ed.redo()
        np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want[0])
        np.testing.assert_array_equal(seg["b"].mask.to_numpy(), want[1])


def test_undo_budget_drops_oldest(backend):
    seg = Segmentation(GEOM, backend=backend)
    seg.add_segment(name="a")
    ed = Editor(seg, undo_budget=400)
    for x in range(6):
        ed.paint("a", GEOM.ijk_to_world_points([[3 + 5 * x, 5, 4]]), 3.0)
    assert ed.undo_memory <= 400
    n = 0
    while ed.undo():
        n += 1
    assert 0 < n < 6 and seg["a"].mask.count() > 0  # the oldest levels were dropped


def test_preview_slice_and_commit(backend):
    seg = Segmentation(GEOM, backend=backend)
    seg.add_segment(name="a")
    ed = Editor(seg)
    c = GEOM.ijk_to_world_points([18, 7, 4])
    p = ed.preview("a", [c], 4.0)
    assert seg["a"].mask.count() == 0  # a preview changes nothing
    bbox, packed = p.slice(0, 4)
    brush = model_brush(GEOM, [c], 4.0)
    r0, r1, c0, c1 = bbox
    want = brush[4, r0:r1, c0:c1]
    np.testing.assert_array_equal(np.unpackbits(packed, bitorder="little")[:want.size].reshape(want.shape), want)
    assert not brush[4][:r0].any() and not brush[4][r1:].any()
    assert p.slice(0, 8) is None or brush[8].any()
    ed.commit(p)
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), brush)


@pytest.mark.parametrize("call,msg,err", [
    (lambda ed: ed.paint("nope", [[0, 0, 0]], 3), "no segment", UnknownSegmentError),
    (lambda ed: ed.paint("a", [[0, 0, 0]], 0), "positive", InvalidInputError),
    (lambda ed: ed.paint("a", [[0, 0, 0]], -2), "positive", InvalidInputError),
    (lambda ed: ed.paint("a", [[0, 0, 0]], 1e6), "larger than", InvalidInputError),
    (lambda ed: ed.paint("a", [[0, np.nan, 0]], 3), "finite", InvalidInputError),
    (lambda ed: ed.paint("a", [], 3), "N >= 1", InvalidInputError),
    (lambda ed: ed.paint("a", [[0, 0, 0]], 3, shape="star"), "unknown brush shape", InvalidInputError),
    (lambda ed: ed.paint("a", [[0, 0, 0]], 3, space="ras"), "point space", InvalidInputError),
])
def test_bad_edits_change_nothing(backend, call, msg, err):
    seg = Segmentation(GEOM, backend=backend)
    seg.add_segment(name="a")
    ed = Editor(seg)
    ed.paint("a", GEOM.ijk_to_world_points([[10, 5, 4]]), 3.0)
    before = seg["a"].mask.to_numpy()
    with pytest.raises(err, match=msg):
        call(ed)
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), before)


def test_bad_masking_settings(backend):
    seg = Segmentation(GEOM, backend=backend)
    seg.add_segment(name="a")
    ed = Editor(seg)
    for m, msg in [(Masking("sideways"), "unknown editable area"), (Masking(overwrite="some"), "overwrite mode"),
                   (Masking("inside"), "needs mask_segment"), (Masking(intensity_range=(5, 1)), "empty"),
                   (Masking(intensity_range=(0, 1)), "source image")]:
        ed.masking = m
        with pytest.raises(InvalidInputError, match=msg):
            ed.paint("a", GEOM.ijk_to_world_points([[10, 5, 4]]), 3.0)
    assert seg["a"].mask.count() == 0


def test_masking_special_cases(backend):
    """The edited segment is always editable, and erasing with 'inside X' moves voxels back to X."""
    for area, segs_painted in [("inside_all", ["a"]), ("inside", ["x", "a"])]:
        seg = Segmentation(GEOM, backend=backend)
        for name in ("a", "x"):
            seg.add_segment(name=name)
        ed = Editor(seg)
        c = GEOM.ijk_to_world_points([[18, 7, 4]])
        ed.masking = Masking("everywhere", overwrite="allow_overlap")
        ed.paint("a", c, 5.0)
        a_before = seg["a"].mask.to_numpy()
        ed.masking = Masking(area, "x" if area == "inside" else None)
        ed.erase("a", c, 3.0)
        small = model_brush(GEOM, c, 3.0)
        # a's own voxels are editable even though they lie in no other segment
        np.testing.assert_array_equal(seg["a"].mask.to_numpy(), a_before & ~small)
        if area == "inside":
            np.testing.assert_array_equal(seg["x"].mask.to_numpy(), a_before & small)


def _slab(shape2d_mask, axis, plane_range, shape):
    out = np.zeros(shape, bool)
    for s in range(*plane_range):
        idx = [slice(None)] * 3
        idx[axis] = s
        out[tuple(idx)] = shape2d_mask
    return out


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_draw_fills_a_polygon_like_matplotlib(backend, axis):
    from matplotlib.path import Path

    g = ImageGeometry((12, 16, 40), spacing=(0.6, 0.8, 2.0))
    seg = Segmentation(g, backend=backend)
    seg.add_segment(name="a")
    ed = Editor(seg)
    dims = [d for a, d in enumerate(g.shape) if a != axis]
    poly = np.array([[1.3, 1.2], [dims[0] - 2.4, 2.1], [dims[0] - 3.7, dims[1] - 1.6], [2.2, dims[1] * 0.6]])
    pts_kji = np.insert(poly, axis, 5.2, axis=1)  # the slice through the first point: index 5
    ed.draw("a", pts_kji[:, ::-1], axis=axis, space="ijk")
    R, C = np.meshgrid(np.arange(dims[0]), np.arange(dims[1]), indexing="ij")
    inside = Path(poly).contains_points(np.stack([R.ravel(), C.ravel()], 1)).reshape(R.shape)
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), _slab(inside, axis, (5, 6), g.shape))


@pytest.mark.parametrize("extrusion,depth,planes", [("unlimited", 0, (0, 9)), ("positive", 0, (4, 9)),
                                                     ("negative", 0, (0, 5)), ("symmetric", 4.0, (3, 6)),
                                                     ("positive", 2.0, (4, 6))])
def test_scissors_shapes_and_extrusion(backend, extrusion, depth, planes):
    g = ImageGeometry((9, 20, 30), spacing=(1.0, 1.0, 2.0))
    seg = Segmentation(g, backend=backend)
    seg.add_segment(name="a")
    seg.add_segment(name="b")
    ed = Editor(seg)
    full = np.ones(g.shape, bool)
    ed.scissors("a", [[0, 0, 0], [29, 19, 8]], operation="fill_inside", shape="rectangle", space="ijk")
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), full)  # a rectangle over the whole slice, unlimited
    ed.scissors("a", [[10.4, 6.3, 4], [14.6, 6.3, 4]], operation="erase_inside", shape="circle", space="ijk",
                extrusion=extrusion, depth_mm=depth)
    R, C = np.meshgrid(np.arange(20), np.arange(30), indexing="ij")
    disc = (R - 6.3) ** 2 + (C - 10.4) ** 2 <= 4.2 ** 2
    want = full & ~_slab(disc, 0, planes, g.shape)
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want)
    # erase outside a rectangle on all visible segments (b is hidden and keeps its voxels)
    ed.masking = Masking(overwrite="allow_overlap")
    ed.paint("b", [[15, 10, 4]], 6.0, space="ijk")
    b_before = seg["b"].mask.to_numpy()
    seg["b"].visible = False
    ed.scissors("a", [[5.5, 5.5, 4], [20.5, 15.5, 4]], operation="erase_outside", shape="rectangle", space="ijk",
                all_visible=True)
    rect = np.zeros((20, 30), bool)
    rect[6:16, 6:21] = True
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want & _slab(rect, 0, (0, 9), g.shape))
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), b_before)
    assert ed.undo() and ed.undo()
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want)


def test_threshold_effect_with_masking_and_auto_threshold(backend, rng):
    from skimage.filters import threshold_otsu

    g = ImageGeometry((6, 10, 37))
    a = rng.integers(-200, 400, g.shape).astype(np.int16)
    seg = Segmentation(g, backend=backend)
    for n in ("a", "b"):
        seg.add_segment(name=n)
    ed = Editor(seg, Image.from_numpy(a, g, backend=backend))
    ed.threshold("b", -50, 50)
    editable = np.zeros(g.shape, bool)
    editable[2:5] = True
    old_a = np.zeros(g.shape, bool)
    old_a[:, :, :5] = True
    ed.masking = Masking(overwrite="allow_overlap")
    ed.scissors("a", [[0, 0, 0], [4, 9, 5]], operation="fill_inside", shape="rectangle", space="ijk")
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), old_a)
    ed.masking = Masking("inside", "b")
    b_before = seg["b"].mask.to_numpy()
    ed.threshold("a", 0, 300)  # only inside b (and a's own voxels) may change
    allowed = b_before | old_a
    want = (old_a & ~allowed) | (allowed & (a >= 0) & (a <= 300))
    np.testing.assert_array_equal(seg["a"].mask.to_numpy(), want)
    np.testing.assert_array_equal(seg["b"].mask.to_numpy(), b_before & ~want)  # overwrite all
    lo, hi = ed.auto_threshold("otsu")
    counts = np.bincount((a - a.min()).ravel())
    assert lo == pytest.approx(threshold_otsu(hist=(counts, np.arange(counts.size) + a.min())))
    assert hi == a.max()
    from skimage.filters import threshold_li, threshold_triangle

    assert ed.auto_threshold("li")[0] == pytest.approx(threshold_li(a), rel=1e-6)
    assert ed.auto_threshold("triangle")[0] == threshold_triangle(a, nbins=int(a.max()) - int(a.min()) + 1)
    assert ed.auto_threshold("mean")[0] == pytest.approx(a.mean())
    with pytest.raises(InvalidInputError, match="unknown auto-threshold"):
        ed.auto_threshold("kittler")


def test_scissors_errors(backend):
    seg = Segmentation(GEOM, backend=backend)
    seg.add_segment(name="a")
    ed = Editor(seg)
    for kw, msg in [(dict(operation="cut"), "unknown scissors operation"), (dict(shape="star"), "unknown scissors shape"),
                    (dict(extrusion="sideways"), "unknown extrusion"), (dict(depth_mm=-1, extrusion="symmetric"), "depth")]:
        with pytest.raises(InvalidInputError, match=msg):
            ed.scissors("a", [[1, 1, 1], [5, 1, 1], [3, 4, 1]], space="ijk", **kw)
    with pytest.raises(InvalidInputError, match="at least 3 points"):
        ed.draw("a", [[1, 1, 1], [5, 1, 1]], space="ijk")
    assert seg["a"].mask.count() == 0


@pytest.mark.parametrize("sign", [1, -1])
def test_triangle_and_li_on_skewed_histograms(backend, rng, sign):
    from skimage.filters import threshold_li, threshold_triangle

    g = ImageGeometry((8, 20, 33))
    a = (sign * rng.exponential(60, g.shape)).astype(np.int16)
    seg = Segmentation(g, backend=backend)
    ed = Editor(seg, Image.from_numpy(a, g, backend=backend))
    assert ed.auto_threshold("triangle")[0] == threshold_triangle(a, nbins=int(a.max()) - int(a.min()) + 1)
    assert ed.auto_threshold("li")[0] == pytest.approx(threshold_li(a), rel=1e-6)


def test_huang_threshold(backend, rng):
    """Huang and Wang's fuzzy threshold: a brute-force evaluation of the definition on the exact
    histogram, and close to SimpleITK's (whose histogram bins are not aligned to integers)."""
    import math

    import SimpleITK as sitk

    g = ImageGeometry((10, 20, 50))
    a = np.concatenate([rng.normal(0, 30, 6000), rng.normal(200, 40, 4000)]).astype(np.int16).reshape(g.shape)
    ed = Editor(Segmentation(g, backend=backend), Image.from_numpy(a, g, backend=backend))
    got = ed.auto_threshold("huang")[0]
    vals = a.ravel().astype(float)
    lo_v, hi_v = vals.min(), vals.max()
    best = None
    for t in range(int(lo_v), int(hi_v)):
        below, above = vals[vals <= t], vals[vals > t]
        e = 0.0
        for part in (below, above):
            if part.size:
                mean = math.floor(part.mean() + 0.5)
                mu = 1 / (1 + np.abs(part - mean) / (hi_v - lo_v))
                mu = mu[mu < 1]
                e += float((-mu * np.log(mu) - (1 - mu) * np.log(1 - mu)).sum())
        if best is None or e < best[0] - 1e-9 * abs(best[0]):
            best = (e, t)
    assert got == best[1]
    f = sitk.HuangThresholdImageFilter()
    f.SetNumberOfHistogramBins(int(hi_v - lo_v) + 1)
    f.Execute(sitk.GetImageFromArray(a))
    assert abs(got - f.GetThreshold()) <= 0.02 * (hi_v - lo_v)


@pytest.mark.parametrize("ni", [1, 31, 32, 33, 70])
def test_host_bit_packing_is_the_mask_layout(backend, ni):
    from gpuseg.mask import pack_bits, pack_block, unpack_bits

    rng = np.random.default_rng(ni)
    dense = rng.random((3, 4, ni)) < 0.4
    g = ImageGeometry((3, 4, ni))
    words = pack_bits(dense)
    np.testing.assert_array_equal(words, gpuseg.Mask.from_numpy(dense, g, backend=backend).words_numpy())
    np.testing.assert_array_equal(unpack_bits(words, ni), dense)
    # a block at an offset: the words of the word-aligned box, bits outside the extent clear
    big = ImageGeometry((5, 6, ni + 40))
    ext = gpuseg.Extent(1, 4, 2, 6, 37, 37 + ni)
    box, w = pack_block(ext, dense)
    m = gpuseg.Mask.from_numpy(dense, big, offset=(1, 2, 37), backend=backend)
    full = np.zeros(big.shape, bool)
    full[1:4, 2:6, 37:37 + ni] = dense
    np.testing.assert_array_equal(m.to_numpy(), full)
    np.testing.assert_array_equal(backend.to_numpy(m.block(box)), w)
