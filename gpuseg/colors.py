"""Colours for new segments, as 3D Slicer picks them.

Slicer gives a segment added without a colour the next entry of its ``GenericAnatomyColors``
colour table (skipping the background): tissue, bone, skin, connective tissue, blood, organ,
mass, muscle, foreign object, ... This module ships the first nine entries of that table, the
ones a user meets first; past them (a deviation: Slicer continues through its ~300-entry table)
it uses well-spread golden-angle hues, so that e.g. the islands of a split stay distinguishable.
Label tables with colours, and TotalSegmentator's classes (``gpuseg.data``), override this.
"""

from __future__ import annotations

import colorsys

__all__ = ["GENERIC_ANATOMY_COLORS", "segment_color"]

#: GenericAnatomyColors entries 1..9: (name, (r, g, b) in 0..255).
GENERIC_ANATOMY_COLORS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("tissue", (128, 174, 128)),
    ("bone", (241, 214, 145)),
    ("skin", (177, 122, 101)),
    ("connective tissue", (111, 184, 210)),
    ("blood", (216, 101, 79)),
    ("organ", (221, 130, 101)),
    ("mass", (144, 238, 144)),
    ("muscle", (192, 104, 88)),
    ("foreign object", (220, 245, 20)),
)


def segment_color(n: int) -> tuple[float, float, float]:
    """The colour (0..1) of the ``n``-th new segment (0-based) of a segmentation."""
    n = int(n)
    if n < 0:
        raise ValueError(f"segment number must not be negative, got {n}")
    if n < len(GENERIC_ANATOMY_COLORS):
        return tuple(round(c / 255.0, 6) for c in GENERIC_ANATOMY_COLORS[n][1])  # type: ignore[return-value]
    h = ((n - len(GENERIC_ANATOMY_COLORS)) * 0.618033988749895 + 0.05) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.6, 0.9)
    return (round(r, 6), round(g, 6), round(b, 6))
