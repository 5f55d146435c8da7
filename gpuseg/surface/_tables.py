"""Marching-cubes case tables, generated here from one rule (no table is copied).

Corner ``c`` of a cube is the voxel at offset ``(dk, dj, di) = (c >> 2 & 1, c >> 1 & 1, c & 1)``
from the cube's base voxel. A cube's case is the 8-bit number whose bit ``c`` is set when corner
``c`` is inside the mask.

Edge ``e`` joins two corners that differ along one axis: edges 0-3 run along i, 4-7 along j,
8-11 along k; within an axis the two other offsets are ``e & 3`` (the lower of the two axes in
the order i, j, k first). A surface vertex sits at the midpoint of every edge whose corners
differ (a binary mask has no other level to interpolate to: the same rule as VTK's discrete
marching cubes and flying edges).

Triangles come from one rule, applied face by face so that neighbouring cubes always agree
(watertight):
  * on each cube face, the crossed edges are joined by segments that cut off the **inside**
    corners; on an ambiguous face (two diagonal corners inside) each inside corner is cut off
    on its own, so inside voxels that touch only along an edge are not joined;
  * the segments of the six faces form closed cycles; each cycle becomes one polygon,
    oriented so that normals point from inside to outside, and triangulated as
    ``_triangulate`` says.
These are the same polygons as VTK's marching-cubes table produces (the tests compare the
triangle count of every case and whole meshes against vtkDiscreteFlyingEdges3D).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# corner offsets (i, j, k)
CORNERS = [(c & 1, (c >> 1) & 1, (c >> 2) & 1) for c in range(8)]


def _corner(i: int, j: int, k: int) -> int:
    return i | (j << 1) | (k << 2)


def _edges() -> list[tuple[int, int]]:
    out = []
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        for e in range(4):
            lo = [0, 0, 0]
            lo[others[0]] = e & 1
            lo[others[1]] = (e >> 1) & 1
            hi = list(lo)
            hi[axis] = 1
            out.append((_corner(*lo), _corner(*hi)))
    return out


EDGES = _edges()
_EDGE_OF = {frozenset(p): n for n, p in enumerate(EDGES)}


def _faces() -> list[list[int]]:
    """The six faces, each as its four corners in cyclic order."""
    faces = []
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        for side in (0, 1):
            ring = []
            for u, v in ((0, 0), (1, 0), (1, 1), (0, 1)):
                p = [0, 0, 0]
                p[axis] = side
                p[others[0]] = u
                p[others[1]] = v
                ring.append(_corner(*p))
            faces.append(ring)
    return faces


FACES = _faces()


def _edge_midpoint(e: int) -> np.ndarray:
    a, b = EDGES[e]
    return (np.array(CORNERS[a], float) + np.array(CORNERS[b], float)) / 2


def _cycles(case: int) -> list[list[int]]:
    inside = [(case >> c) & 1 for c in range(8)]
    adj: dict[int, list[int]] = {}

    def link(e1: int, e2: int) -> None:
        adj.setdefault(e1, []).append(e2)
        adj.setdefault(e2, []).append(e1)

    for ring in FACES:
        crossed = [_EDGE_OF[frozenset((ring[n], ring[(n + 1) % 4]))] for n in range(4)
                   if inside[ring[n]] != inside[ring[(n + 1) % 4]]]
        if len(crossed) == 2:
            link(*crossed)
        elif len(crossed) == 4:
            # ambiguous face: cut off each inside corner on its own
            for n in range(4):
                if inside[ring[n]]:
                    prev_c, next_c = ring[(n - 1) % 4], ring[(n + 1) % 4]
                    link(_EDGE_OF[frozenset((prev_c, ring[n]))], _EDGE_OF[frozenset((ring[n], next_c))])
    cycles = []
    seen: set[int] = set()
    for start in sorted(adj):
        if start in seen:
            continue
        cycle = [start]
        seen.add(start)
        prev, cur = start, min(adj[start])
        while cur != start:
            cycle.append(cur)
            seen.add(cur)
            a, b = adj[cur]
            prev, cur = cur, (b if a == prev else a)
        # orient: the polygon normal must point from the inside corners to the outside ones
        pts = np.array([_edge_midpoint(e) for e in cycle])
        normal = np.zeros(3)
        for n in range(len(pts)):  # Newell's method
            normal += np.cross(pts[n], pts[(n + 1) % len(pts)])
        outward = np.zeros(3)
        for e in cycle:
            a, b = EDGES[e]
            if inside[b]:
                a, b = b, a
            outward += np.array(CORNERS[b], float) - np.array(CORNERS[a], float)
        if normal @ outward < 0:
            cycle = [cycle[0]] + cycle[:0:-1]
        cycles.append(cycle)
    return cycles


_FACE_EDGES = [frozenset(_EDGE_OF[frozenset((ring[n], ring[(n + 1) % 4]))] for n in range(4)) for ring in FACES]


def _coplanar_on_face(e1: int, e2: int) -> bool:
    return any(e1 in f and e2 in f for f in _FACE_EDGES)


def _triangulations(poly: list[int]):
    """Every triangulation of a polygon (vertices in cycle order), in a fixed order."""
    if len(poly) == 3:
        yield [tuple(poly)]
        return
    a, b = poly[0], poly[-1]  # the polygon edge (a, b) and each possible apex c
    for m in range(1, len(poly) - 1):
        c = poly[m]
        left, right = poly[: m + 1], poly[m:]
        for tl in (_triangulations(left) if len(left) > 2 else [[]]):
            for tr in (_triangulations(right) if len(right) > 2 else [[]]):
                yield tl + tr + [(a, c, b)]


def _area(tris) -> float:
    total = 0.0
    for a, b, c in tris:
        pa, pb, pc = _edge_midpoint(a), _edge_midpoint(b), _edge_midpoint(c)
        total += 0.5 * float(np.linalg.norm(np.cross(pb - pa, pc - pa)))
    return round(total, 9)


def _bulge(cycle: list[int], tris) -> float:
    """Signed volume between the triangles and the centroid of the cycle's vertices."""
    o = np.mean([_edge_midpoint(e) for e in cycle], axis=0)
    total = 0.0
    for a, b, c in tris:
        total += float(np.dot(_edge_midpoint(a) - o, np.cross(_edge_midpoint(b) - o, _edge_midpoint(c) - o))) / 6
    return round(total, 9)


def _heptagon_fan(case: int, cycle: list[int]) -> list[tuple[int, int, int]]:
    """A heptagon comes from three outside corners: two joined by a cube edge, and one alone.
    It is fanned from its vertex on the lone corner's edge parallel to the pair's edge (the
    classic table's choice; the largest-area rule would differ from VTK by about 1% of volume
    on CT bone)."""
    outside = [c for c in range(8) if not (case >> c) & 1]
    pair = next((a, b) for a in outside for b in outside if a < b and frozenset((a, b)) in _EDGE_OF)
    lone = next(c for c in outside if c not in pair)
    axis = (pair[0] ^ pair[1]).bit_length() - 1
    apex = _EDGE_OF[frozenset((lone, lone ^ (1 << axis)))]
    m = cycle.index(apex)
    ring = cycle[m:] + cycle[:m]
    return [(ring[0], ring[n], ring[n + 1]) for n in range(1, len(ring) - 1)]


def _triangulate(cycle: list[int], case: int = -1) -> list[tuple[int, int, int]]:
    """Triangles of one cycle, keeping the cycle's orientation.

    * A diagonal must not join two vertices on the same cube face: the neighbouring cube may
      hold the same segment, and the surface would pinch there (an edge of four triangles).
    * Among the remaining triangulations, the one of largest area; on ties, the flattest (the
      least volume between the triangles and the centroid of the polygon), then the first
      in a fixed order. For every polygon of up to six vertices this is also the choice of the
      classic marching-cubes table that VTK uses, so meshes agree with VTK's in area and
      volume; the two differ only in some heptagons (the tests measure the difference).
    """
    if len(cycle) == 7:
        return _heptagon_fan(case, cycle)
    best, best_area, best_bulge = None, -1.0, 0.0
    for tris in _triangulations(cycle):
        diagonals = {frozenset(p) for t in tris for p in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))}
        n = len(cycle)
        diagonals -= {frozenset((cycle[m], cycle[(m + 1) % n])) for m in range(n)}
        if any(_coplanar_on_face(*sorted(d)) for d in diagonals):
            continue
        area = _area(tris)
        bulge = abs(_bulge(cycle, tris))
        if area > best_area or (area == best_area and bulge < best_bulge):
            best, best_area, best_bulge = tris, area, bulge
    if best is None:  # pragma: no cover - the tests build every case
        raise AssertionError(f"no valid triangulation of cycle {cycle}")
    return best


@lru_cache(maxsize=None)
def triangle_table() -> tuple[np.ndarray, np.ndarray]:
    """``(counts, table)``: triangles per case (uint8, 256) and their edges (uint8, 256 x 12 x 3)."""
    counts = np.zeros(256, np.uint8)
    table = np.zeros((256, 12, 3), np.uint8)
    for case in range(256):
        tris = []
        for cycle in _cycles(case):
            tris.extend(_triangulate(cycle, case))
        counts[case] = len(tris)
        if tris:
            table[case, : len(tris)] = tris
    return counts, table
