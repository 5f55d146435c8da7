"""The representation graph (gpuseg.representations, Segmentation.representation): rules,
cheapest paths, the version-stamped cache on every mutation path, the conversion parameters,
and what written files list (docs/representations.md)."""

from __future__ import annotations

import ast
import gzip
from pathlib import Path

import numpy as np
import pytest

import gpuseg
from gpuseg import Editor, Image, ImageGeometry, Mask, Segmentation
from gpuseg.errors import InvalidInputError, UnsupportedParameterError
from gpuseg.representations import (BINARY_LABELMAP, CLOSED_SURFACE, FRACTIONAL_LABELMAP, PARAMETERS,
                                    PLANAR_CONTOUR, REPRESENTATIONS, RULES, SLICERRT_PARAMETERS, ConversionRule,
                                    Representation, cheapest_path, register_representation, register_rule)
from gpuseg.surface import closed_surface, fractional_labelmap, planar_contours, segment_surfaces

ROOT = Path(__file__).resolve().parents[1]


def _ball(shape, centre, r, spacing=(1.0, 1.0, 1.0)):
    k, j, i = np.indices(shape)
    sk, sj, si = spacing[2], spacing[1], spacing[0]
    return ((k - centre[0]) * sk) ** 2 + ((j - centre[1]) * sj) ** 2 + ((i - centre[2]) * si) ** 2 <= r * r


def _oblique() -> ImageGeometry:
    c, s = np.cos(0.3), np.sin(0.3)
    d = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    return ImageGeometry((14, 17, 37), spacing=(0.8, 1.1, 1.7), origin=(3.0, -2.0, 5.0), direction=d)


def _seg(backend, geometry=None):
    g = geometry or _oblique()
    seg = Segmentation(g, backend=backend)
    seg.add_segment(Mask.from_numpy(_ball(g.shape, (7, 8, 12), 5), g, backend=backend).cropped(), name="a")
    seg.add_segment(Mask.from_numpy(_ball(g.shape, (7, 8, 26), 4), g, backend=backend).cropped(), name="b")
    return seg


def _same_surface(x, y):
    np.testing.assert_array_equal(x.vertices, y.vertices)
    np.testing.assert_array_equal(x.faces, y.faces)
    if x.normals is None or y.normals is None:
        assert x.normals is None and y.normals is None
    else:
        np.testing.assert_array_equal(x.normals, y.normals)


def _fresh(seg, key, name, parameters=None):
    """The representation computed from scratch on a copy (no cache)."""
    other = Segmentation(seg.geometry, backend=seg.backend)
    other.conversion_parameters = dict(seg.conversion_parameters)
    src = seg[key]
    other.add_segment(src.mask.copy(), name=src.name)
    return other.representation(0, name, parameters=parameters)


P0 = {"Smoothing factor": 0, "Compute surface normals": 0}


# --- versions and read-only words ------------------------------------------------------------
def test_every_in_place_mask_method_bumps_the_version(backend):
    g = ImageGeometry((5, 6, 70))
    m = Mask.from_numpy(_ball(g.shape, (2, 3, 30), 2), g, backend=backend)
    seen = {m.version}

    def changed():
        assert m.version not in seen
        seen.add(m.version)

    m.shrink_(); changed()
    m.shrink_(); changed()  # a no-op shrink still bumps
    m.grow_(gpuseg.Extent(0, 5, 0, 6, 0, 70)); changed()
    blk = m.backend.asarray(np.full((1, 1, 1), 7, np.uint32))
    m.apply_block_(blk, (1, 1, 1, 1, 1, 1), "or"); changed()
    with m.writing():
        changed()
    changed()
    # versions are unique across masks: a new mask never repeats one
    assert Mask.zeros(g, backend=backend).version not in seen
    assert m.copy().version != m.version


def test_host_words_are_read_only_outside_writing():
    g = ImageGeometry((2, 3, 40))
    m = Mask.zeros(g, backend="cpu")
    with pytest.raises(ValueError, match="read-only"):
        m.words[0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        m.words.fill(1)
    with m.writing() as w:
        w[0, 0, 0] = 0b11
        with m.writing() as inner:  # nested: still writable until the outer one ends
            inner[1, 0, 0] = 1
        w[0, 1, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0, 0] = 0  # a kept reference is no way around the version
    assert m.count() == 4
    # words handed to the constructor become the mask's: the caller's reference is read-only
    words = np.zeros((2, 3, 2), np.uint32)
    owned = Mask(g, m.backend, words, (0, 0, 0, 2, 3, 2))
    with pytest.raises(ValueError, match="read-only"):
        words[0, 0, 0] = 1
    # a view is copied, so its base cannot write the mask either
    base = np.zeros((4, 3, 2), np.uint32)
    viewed = Mask(g, m.backend, base[:2], (0, 0, 0, 2, 3, 2))
    base[0, 0, 0] = 1
    assert viewed.count() == 0 and owned.count() == 0
    # copy.copy / deepcopy make real copies: new version, read-only words
    import copy

    for c in (copy.copy(m), copy.deepcopy(m)):
        assert c.version != m.version and c.equals(m)
        with pytest.raises(ValueError, match="read-only"):
            c.words[0, 0, 0] = 0
    # a numba kernel that writes through .words is refused too
    from gpuseg.kernels.morphology import or_offsets

    with pytest.raises(Exception, match="(?i)read.?only"):
        or_offsets(m.words, 0, 0, 0, *m.words.shape, m.words, 0, 0, 0, *m.words.shape,
                   np.zeros(2, np.int32), 1)
    small = Mask.zeros(g, gpuseg.Extent(0, 1, 0, 1, 0, 5), backend="cpu")
    with pytest.raises(InvalidInputError, match="box cannot change"):
        with small.writing():
            small.grow_(g.extent)
    with pytest.raises(ValueError, match="read-only"):  # and the context still ended cleanly
        small.words[0, 0, 0] = 1


# --- the graph ----------------------------------------------------------------------------------
def test_rules_declare_source_target_cost_and_parameters():
    names = {(r.source, r.target): r for r in RULES}
    assert set(names) >= {(BINARY_LABELMAP, CLOSED_SURFACE), (CLOSED_SURFACE, BINARY_LABELMAP),
                          (CLOSED_SURFACE, FRACTIONAL_LABELMAP), (BINARY_LABELMAP, PLANAR_CONTOUR)}
    assert names[(BINARY_LABELMAP, CLOSED_SURFACE)].cost == 500  # Slicer's costs
    assert names[(CLOSED_SURFACE, FRACTIONAL_LABELMAP)].cost == 7000
    for r in RULES:
        assert r.parameters == tuple(dict.fromkeys(r.parameters)) and all(p in PARAMETERS for p in r.parameters)
    assert [r.target for r in cheapest_path(BINARY_LABELMAP, FRACTIONAL_LABELMAP)] == [CLOSED_SURFACE,
                                                                                      FRACTIONAL_LABELMAP]
    assert cheapest_path(BINARY_LABELMAP, BINARY_LABELMAP) == []
    with pytest.raises(InvalidInputError, match="unknown representation"):
        cheapest_path(BINARY_LABELMAP, "Ribbon model")
    # the cheapest path wins, not the shortest
    conv = lambda xs, v, c: xs  # noqa: E731
    rules = [ConversionRule("x1", BINARY_LABELMAP, FRACTIONAL_LABELMAP, 9000, (), conv),
             ConversionRule("x2", BINARY_LABELMAP, CLOSED_SURFACE, 500, (), conv),
             ConversionRule("x3", CLOSED_SURFACE, FRACTIONAL_LABELMAP, 7000, (), conv)]
    assert [r.name for r in cheapest_path(BINARY_LABELMAP, FRACTIONAL_LABELMAP, rules)] == ["x2", "x3"]
    assert [r.name for r in cheapest_path(BINARY_LABELMAP, FRACTIONAL_LABELMAP, rules[:1] + rules[2:])] == ["x1"]
    with pytest.raises(InvalidInputError, match="no conversion path"):
        cheapest_path(BINARY_LABELMAP, FRACTIONAL_LABELMAP, rules[2:])


def test_representations_equal_the_direct_conversions(backend):
    """Through the graph the surfaces stay the VTK-equal ones of closed_surface, bit for bit,
    and fractional labelmaps and contours equal their functions."""
    seg = _seg(backend)
    for key in ("a", "b"):
        m = seg[key].mask
        got = seg.representation(key, CLOSED_SURFACE, parameters=P0)
        _same_surface(got, closed_surface(m, smoothing=0, normals=False))
        assert got.name == key and got.segment_id == seg[key].id
        smooth = seg.representation(key, CLOSED_SURFACE)  # Slicer's defaults: 0.5, normals
        _same_surface(smooth, closed_surface(m, smoothing=0.5, normals=True))
        frac = seg.representation(key, FRACTIONAL_LABELMAP)
        counts, ext = fractional_labelmap(smooth, seg.geometry)
        np.testing.assert_array_equal(frac.counts, counts)
        assert frac.extent == ext and frac.to_slicer().dtype == np.int8
        contours = seg.representation(key, PLANAR_CONTOUR)
        ref = planar_contours(m, axis=0)
        assert contours.keys() == ref.keys()
        for k in ref:
            for x, y in zip(contours[k], ref[k]):
                np.testing.assert_array_equal(x, y)
    assert seg.representation("a", BINARY_LABELMAP) is seg["a"].mask


def test_backends_give_identical_representations(backend):
    cpu, other = _seg("cpu"), _seg(backend)
    for name in (CLOSED_SURFACE, FRACTIONAL_LABELMAP):
        for x, y in zip(cpu.representations(name), other.representations(name)):
            if name == CLOSED_SURFACE:
                _same_surface(x, y)
            else:
                np.testing.assert_array_equal(x.counts, y.counts)


def test_cache_hits_and_keys_on_parameters():
    seg = _seg("cpu")
    s1 = seg.representation("a", CLOSED_SURFACE)
    assert seg.representation("a", CLOSED_SURFACE) is s1
    assert seg.representation("a", CLOSED_SURFACE, parameters={"Smoothing factor": "0.50"}) is s1  # same value
    s2 = seg.representation("a", CLOSED_SURFACE, parameters={"Smoothing factor": 0.2})
    assert s2 is not s1
    _same_surface(s2, closed_surface(seg["a"].mask, smoothing=0.2))
    seg.set_conversion_parameter("Smoothing factor", 0.2)
    assert seg.representation("a", CLOSED_SURFACE) is s2
    # the intermediate surface is kept: the fractional labelmap reuses it
    f = seg.representation("a", FRACTIONAL_LABELMAP)
    assert seg["a"]._representations[CLOSED_SURFACE][1] is s2
    assert seg.representation("a", FRACTIONAL_LABELMAP) is f
    # whoever gets a cached value cannot change it for the next caller
    with pytest.raises(ValueError, match="read-only"):
        s2.vertices[0] = 0
    with pytest.raises(ValueError, match="read-only"):
        f.counts[...] = 0
    contours = seg.representation("a", PLANAR_CONTOUR)
    with pytest.raises(ValueError, match="read-only"):
        next(iter(contours.values()))[0][0] = 0
    # names and colors are not conversion inputs: they follow the segment
    seg.rename_segment("a", "liver")
    seg.set_color("liver", (1, 0, 0))
    again = seg.representation("liver", CLOSED_SURFACE)
    assert again is s2 and again.name == "liver" and again.color == (1.0, 0.0, 0.0)


# --- every mutation path invalidates ---------------------------------------------------------
def _check_after(seg, key, before):
    now = seg.representation(key, CLOSED_SURFACE, parameters=P0)
    assert now is not before
    _same_surface(now, _fresh(seg, key, CLOSED_SURFACE, P0))
    assert seg.representation(key, CLOSED_SURFACE, parameters=P0) is now
    return now


def test_readme_examples_and_mask_methods_invalidate(backend):
    seg = _seg(backend)
    liver = seg["a"]
    s = seg.representation("a", CLOSED_SURFACE, parameters=P0)
    liver.mask = gpuseg.margin(liver.mask, 1.5)  # the README's own example
    s = _check_after(seg, "a", s)
    seg.set_mask("a", gpuseg.margin(liver.mask, -1.0))
    s = _check_after(seg, "a", s)
    liver.mask |= seg["b"].mask  # an in-place operator rebinds the mask
    s = _check_after(seg, "a", s)
    liver.mask -= seg["b"].mask
    s = _check_after(seg, "a", s)
    m = liver.mask
    blk = np.zeros((1, 1, 1), np.uint32) + 0xFFFF
    m.apply_block_(m.backend.asarray(blk), (0, 0, 0, 1, 1, 1), "xor")  # in place on the same object
    s = _check_after(seg, "a", s)
    m.shrink_()
    s = _check_after(seg, "a", s)
    m.grow_(seg.geometry.extent)
    s = _check_after(seg, "a", s)
    with m.writing() as w:  # a kernel's write
        seg.backend.logic("invert", w, m.box, w, m.box, None, None, 0, seg.geometry.shape[2])
    s = _check_after(seg, "a", s)
    with pytest.raises(InvalidInputError, match="must be a Mask"):
        liver.mask = np.ones(seg.geometry.shape, bool)


def test_editor_paths_invalidate(monkeypatch):
    # the Editor also drops caches eagerly; without that, the versions alone must suffice
    monkeypatch.setattr(Segmentation, "invalidate", lambda self, segment_id: None)
    g = ImageGeometry((12, 14, 40), spacing=(1.0, 1.0, 2.0))
    seg = _seg("cpu", g)
    img = Image.from_numpy(np.zeros(g.shape, np.int16), g, backend="cpu")
    ed = Editor(seg, img)
    s = seg.representation("a", CLOSED_SURFACE, parameters=P0)
    steps = [lambda: ed.paint("a", [(20, 6, 6)], 6.0, space="ijk"),
             lambda: ed.erase("a", [(10, 7, 7)], 4.0, space="ijk"),
             ed.undo, ed.redo, ed.undo, ed.undo,
             lambda: ed.set_mask("a", gpuseg.margin(seg["a"].mask, 2.0)),
             lambda: ed.margin("a", -1.0),
             lambda: ed.logical("a", "union", "b"),  # merging b into a
             lambda: ed.islands("a", "keep_largest"),
             ed.undo]
    checked = 0
    for step in steps:
        before = seg["a"].mask.to_numpy()
        step()
        if np.array_equal(seg["a"].mask.to_numpy(), before):  # an edit that changed nothing may keep it
            continue
        s = _check_after(seg, "a", s)
        checked += 1
    assert checked >= 9


def test_merge_and_remove(backend):
    seg = _seg(backend)
    other = _seg(backend)
    other.representation("a", CLOSED_SURFACE)
    added = seg.merge(other, prefix="o_")
    assert all(not x.cached_representations for x in added)  # copies carry no cache
    s = seg.representation(added[0].id, CLOSED_SURFACE, parameters=P0)
    other["a"].mask.shrink_()  # the original's edits do not touch the copy
    assert seg.representation(added[0].id, CLOSED_SURFACE, parameters=P0) is s
    # a jointly smoothed group depends on its members: removing one recomputes the others
    joint = {"Conversion method": 1, "Joint smoothing": 1, "Smoothing factor": 0.5, "Compute surface normals": 0}
    first = seg.representations(CLOSED_SURFACE, parameters=joint)
    assert seg.representations(CLOSED_SURFACE, parameters=joint)[0] is first[0]
    seg.remove_segment(added[1].id)
    after = seg.representations(CLOSED_SURFACE, parameters=joint)
    assert after[0] is not first[0]
    assert seg.representation(0, CLOSED_SURFACE, parameters=joint) is after[0]  # one group: all segments
    seg["b"].mask.shrink_()  # an in-place change of one member recomputes the whole group
    assert seg.representations(CLOSED_SURFACE, parameters=joint)[0] is not after[0]


# --- contained representations and files ------------------------------------------------------
def _header(path: Path) -> dict[str, str]:
    raw = path.read_bytes()
    head = raw.split(b"\n\n", 1)[0].decode("latin-1")
    return dict(line.split(":=", 1) for line in head.splitlines() if ":=" in line)


def test_written_files_list_what_the_cache_holds(tmp_path):
    seg = _seg("cpu")
    assert seg.contained_representations == [BINARY_LABELMAP]
    out = gpuseg.write_segmentation(seg, tmp_path / "a.seg.nrrd")
    assert _header(out)["Segmentation_ContainedRepresentationNames"] == "Binary labelmap|"
    seg.representation("a", CLOSED_SURFACE)
    assert seg.contained_representations == [BINARY_LABELMAP]  # not every segment has one yet
    segment_surfaces(seg)
    assert seg.contained_representations == [BINARY_LABELMAP, CLOSED_SURFACE]
    out = gpuseg.write_segmentation(seg, tmp_path / "b.seg.nrrd")
    assert _header(out)["Segmentation_ContainedRepresentationNames"] == "Binary labelmap|Closed surface|"
    back = gpuseg.read_segmentation(out)
    assert back.listed_representations == [BINARY_LABELMAP, CLOSED_SURFACE]
    assert back.contained_representations == [BINARY_LABELMAP]  # nothing converted yet
    # surfaces made with other parameters than the file's are not listed
    segment_surfaces(seg, smoothing=0)
    assert seg.contained_representations == [BINARY_LABELMAP]
    segment_surfaces(seg)
    seg["b"].mask = gpuseg.margin(seg["b"].mask, 1.0)
    assert seg.contained_representations == [BINARY_LABELMAP]
    out = gpuseg.write_segmentation(seg, tmp_path / "c.seg.nrrd")
    assert _header(out)["Segmentation_ContainedRepresentationNames"] == "Binary labelmap|"
    assert gzip  # (the header is plain text before the gzip data)


# --- conversion parameters ---------------------------------------------------------------------
def test_all_slicer_parameters_are_known_with_their_defaults():
    names = set(PARAMETERS) | set(SLICERRT_PARAMETERS)
    assert names == {"Collapse labelmaps", "Compute surface normals", "Conversion method",
                     "Crop to reference image geometry", "Decimation factor",
                     "Fractional labelmap oversampling factor", "Joint smoothing", "Oversampling factor",
                     "Reference image geometry", "Smoothing factor", "SurfaceNets smoothing", "Threshold fraction",
                     "Default slice thickness", "End capping"}
    seg = Segmentation(ImageGeometry((2, 2, 2)))
    for name, p in {**PARAMETERS, **SLICERRT_PARAMETERS}.items():
        seg.set_conversion_parameter(name, p.default)  # every default is accepted
    assert seg.conversion_parameter("Smoothing factor") == "0.5"
    with pytest.raises(InvalidInputError, match="read-only"):
        seg.conversion_parameters["Smoothing factor"] = ("0", "")  # type: ignore[index]


@pytest.mark.parametrize("name, value", [
    ("Smoothing factor", "2"), ("Smoothing factor", "x"), ("Decimation factor", "1"), ("Decimation factor", "-0.1"),
    ("Compute surface normals", "2"), ("Conversion method", "0.5"), ("Joint smoothing", "yes"),
    ("Oversampling factor", "0"), ("Oversampling factor", "B"), ("Reference image geometry", "1;2;3;"),
    ("Crop to reference image geometry", "-1"), ("Collapse labelmaps", "3"), ("Threshold fraction", "1.5"),
    ("End capping", "3"), ("Default slice thickness", "-1"), ("No such parameter", "1")])
def test_bad_parameter_values_raise(name, value):
    seg = _seg("cpu")
    with pytest.raises(InvalidInputError, match=repr(name)[1:-1]):
        seg.set_conversion_parameter(name, value)
    if name != "No such parameter" and PARAMETERS.get(name) is not None:
        # the same value reaching a rule (e.g. from a file) is refused when the rule runs
        rules = [r for r in RULES if name in r.parameters and r.source == BINARY_LABELMAP]
        if rules:
            with pytest.raises(InvalidInputError, match=repr(name)[1:-1]):
                seg.representation("a", rules[0].target, parameters={name: value})


@pytest.mark.parametrize("name, value", [
    ("SurfaceNets smoothing", 1), ("Joint smoothing", 1), ("Oversampling factor", 2), ("Oversampling factor", "A"),
    ("Collapse labelmaps", 0), ("Fractional labelmap oversampling factor", 2), ("Threshold fraction", 0.3),
    ("Default slice thickness", 2.5), ("End capping", 2)])
def test_unimplemented_values_are_refused(name, value):
    seg = _seg("cpu")
    if name == "SurfaceNets smoothing":
        seg.set_conversion_parameter("Conversion method", 1)
    with pytest.raises(UnsupportedParameterError, match=repr(name)[1:-1]):
        seg.set_conversion_parameter(name, value)
    assert seg.conversion_parameter(name) == (PARAMETERS.get(name) or SLICERRT_PARAMETERS[name]).default
    # a file may hold such a value: it round-trips, and the rule that would read it refuses to run
    seg.conversion_parameters = {**seg.conversion_parameters,
                                 name: (gpuseg.representations.parameter_text(value), "")}
    readers = [r for r in RULES if name in r.parameters]
    if name in ("Collapse labelmaps", "Oversampling factor"):
        with pytest.raises(UnsupportedParameterError):
            seg.add_segment_from_surface(closed_surface(seg["a"].mask, smoothing=0), name="x")
        with pytest.raises(UnsupportedParameterError):
            seg.representation("a", FRACTIONAL_LABELMAP)
    elif readers:
        with pytest.raises(UnsupportedParameterError):
            seg.representation("a", readers[0].target)
    else:  # no gpuseg rule reads it: conversions are unaffected
        _same_surface(seg.representation("a", CLOSED_SURFACE), closed_surface(seg["a"].mask, smoothing=0.5))


def test_surface_parameters_are_honoured():
    seg = _seg("cpu")
    m = seg["a"].mask
    cases = [({"Smoothing factor": 0.3}, dict(smoothing=0.3)),
             ({"Smoothing factor": -0.5}, dict(smoothing=0.0)),  # negative: off, value remembered
             ({"Decimation factor": 0.4, "Smoothing factor": 0}, dict(decimation=0.4)),
             ({"Compute surface normals": 0}, dict(smoothing=0.5, normals=False)),
             ({"Conversion method": 1}, dict(smoothing=0.5, method="surface-nets")),
             # SurfaceNets smoothing only matters with surface nets and smoothing on (as in Slicer)
             ({"SurfaceNets smoothing": 1}, dict(smoothing=0.5)),
             ({"SurfaceNets smoothing": 1, "Conversion method": 1, "Smoothing factor": 0}, dict(method="surface-nets")),
             ({"Joint smoothing": 1, "Smoothing factor": 0}, dict())]
    for params, kw in cases:
        _same_surface(seg.representation("a", CLOSED_SURFACE, parameters=params), closed_surface(m, **kw))
    assert seg.representation("a", CLOSED_SURFACE, parameters={"Compute surface normals": 0}).normals is None
    # joint smoothing with surface nets: the shared boundary moves as one (tested in test_surface_nets);
    # here it must equal the function it wraps
    joint = seg.representations(CLOSED_SURFACE, parameters={"Conversion method": 1, "Joint smoothing": 1})
    from gpuseg.surface.mesh import surfaces_of_masks

    ref = surfaces_of_masks([x.mask for x in seg], smoothing=0.5, method="surface-nets", joint_smoothing=True)
    for x, y in zip(joint, ref):
        _same_surface(x, y)


def test_geometry_parameters_of_surface_to_labelmap():
    from gpuseg.io.segnrrd import serialize_geometry

    seg = _seg("cpu")
    g = seg.geometry
    s = closed_surface(seg["a"].mask, smoothing=0, normals=False)
    seg.set_conversion_parameter("Reference image geometry", serialize_geometry(g))  # its own grid: fine
    x = seg.add_segment_from_surface(s, name="x")
    assert x.mask.equals(seg["a"].mask)  # an unsmoothed surface voxelizes back to its mask
    other = ImageGeometry((g.shape[0], g.shape[1], g.shape[2] + 1))
    with pytest.raises(UnsupportedParameterError, match="Reference image geometry"):
        seg.set_conversion_parameter("Reference image geometry", serialize_geometry(other))
    # a model leaving the grid: an error with crop 0 (Slicer would grow the labelmap), cropped with 1
    shifted = gpuseg.Surface(s.vertices + g.ijk_to_world[:3, 2] * 8, s.faces)
    with pytest.raises(UnsupportedParameterError, match="Crop to reference image geometry"):
        seg.add_segment_from_surface(shifted, name="y")
    seg.set_conversion_parameter("Crop to reference image geometry", 1)
    y = seg.add_segment_from_surface(shifted, name="y")
    ref = gpuseg.mesh_to_mask(shifted.vertices, shifted.faces, g, backend="cpu")
    assert y.mask.equals(ref) and 0 < y.mask.count() < seg["a"].mask.count()
    with pytest.raises(InvalidInputError, match="closed"):
        seg.add_segment_from_surface((s.vertices, s.faces[:-1]), name="open")


# --- adding a representation, as docs/representations.md says -----------------------------------
@pytest.fixture
def inner_boundary():
    rep = register_representation(Representation("Inner boundary"))
    rule = register_rule(ConversionRule(
        "Binary labelmap to inner boundary", BINARY_LABELMAP, "Inner boundary", 50, (),
        lambda masks, values, ctx: [gpuseg.hollow(m, 1.0, "inside") for m in masks]))
    yield rep, rule
    RULES.remove(rule)
    del REPRESENTATIONS[rep.name]


def test_adding_a_representation_by_the_docs(inner_boundary):
    seg = _seg("cpu")
    got = seg.representation("a", "Inner boundary")
    assert got.equals(gpuseg.hollow(seg["a"].mask, 1.0, "inside"))
    assert seg.representation("a", "Inner boundary") is got
    seg["a"].mask = gpuseg.margin(seg["a"].mask, 1.0)
    assert not seg.representation("a", "Inner boundary").equals(got)
    seg.representations("Inner boundary")
    assert "Inner boundary" in seg.contained_representations


# --- structure ---------------------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    out = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom):
            out.add("." * n.level + (n.module or ""))
        elif isinstance(n, ast.Import):
            out.update(a.name for a in n.names)
    return out


def test_no_import_circle_between_mesh_and_representations():
    assert not any(i.endswith("representations") for i in _imports(ROOT / "gpuseg/surface/mesh.py"))
    graph = _imports(ROOT / "gpuseg/representations.py")
    assert not any(i.startswith(".io") or i.startswith(".segmentation") for i in graph)
    assert "_derived" not in (ROOT / "gpuseg/segmentation.py").read_text()  # the old string-keyed cache


def test_cli_import_mesh_goes_through_the_rule(tmp_path, capsys):
    from gpuseg.cli import main

    g = ImageGeometry((12, 14, 30), spacing=(1.0, 1.0, 2.0))
    ball = Mask.from_numpy(_ball(g.shape, (6, 7, 15), 4), g, backend="cpu")
    s = closed_surface(ball, smoothing=0, normals=False)
    ref = tmp_path / "ref.nrrd"
    gpuseg.write_labelmap(ref, np.zeros(g.shape, np.int16), g)
    s.save(tmp_path / "inside.stl")
    gpuseg.Surface(s.vertices + np.float32([0, 0, 9]), s.faces).save(tmp_path / "leaving.stl")  # past k = 11
    assert main(["import-mesh", str(tmp_path / "inside.stl"), "--reference", str(ref),
                 "-o", str(tmp_path / "a.seg.nrrd")]) == 0
    assert gpuseg.read_segmentation(tmp_path / "a.seg.nrrd")["inside"].mask.equals(ball)
    capsys.readouterr()
    assert main(["import-mesh", str(tmp_path / "leaving.stl"), "--reference", str(ref),
                 "-o", str(tmp_path / "b.seg.nrrd")]) == 2
    err = capsys.readouterr().err
    assert "Crop to reference image geometry" in err and len(err.strip().splitlines()) == 1
    assert main(["import-mesh", str(tmp_path / "leaving.stl"), "--reference", str(ref), "--crop",
                 "-o", str(tmp_path / "b.seg.nrrd")]) == 0
    got = gpuseg.read_segmentation(tmp_path / "b.seg.nrrd")["leaving"].mask
    assert 0 < got.count() < ball.count()


def test_surfaces_through_the_graph_equal_vtk(backend):
    """The unsmoothed closed surface of the graph is VTK's vtkDiscreteFlyingEdges3D mesh in world
    coordinates (an independent reference, on an oblique anisotropic grid)."""
    vtk = pytest.importorskip("vtk")
    from vtk.util import numpy_support as vtk_np

    seg = _seg(backend)
    vol = seg["a"].mask.to_numpy()
    v = np.pad(vol.astype(np.uint8), 1)
    img = vtk.vtkImageData()
    img.SetDimensions(v.shape[2], v.shape[1], v.shape[0])
    img.GetPointData().SetScalars(vtk_np.numpy_to_vtk(v.ravel(), deep=1))
    fe = vtk.vtkDiscreteFlyingEdges3D()
    fe.SetInputData(img)
    fe.SetValue(0, 1)
    fe.ComputeNormalsOff()
    fe.Update()
    out = fe.GetOutput()
    ijk = vtk_np.vtk_to_numpy(out.GetPoints().GetData()).astype(np.float64) - 1
    faces = vtk_np.vtk_to_numpy(out.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    m = seg.geometry.ijk_to_world
    world = ijk @ m[:3, :3].T + m[:3, 3]
    got = seg.representation("a", CLOSED_SURFACE, parameters=P0)
    assert got.n_faces == faces.shape[0] and got.n_vertices == world.shape[0]
    np.testing.assert_allclose(np.unique(got.vertices.astype(np.float64).round(3), axis=0),
                               np.unique(world.astype(np.float32).astype(np.float64).round(3), axis=0), atol=2e-3)
    ref = gpuseg.Surface(world, faces)
    assert got.area() == pytest.approx(ref.area(), rel=1e-5)
    assert abs(got.volume()) == pytest.approx(abs(ref.volume()), rel=1e-5)
    assert got.is_watertight() and got.volume() > 0
