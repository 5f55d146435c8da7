"""Engrave / emboss (Slicer's SegmentEditorExtraEffects): text extruded to a depth at a
segment's surface.

Slicer builds the letters with ``vtkVectorText``, extrudes them with
``vtkLinearExtrusionFilter`` and stencils them into the segment. Here (documented deviation:
another font) the letters are Pillow's default scalable font (``ImageFont.load_default``)
rendered into a bitmap of the font's line box (ascent + descent, :data:`GLYPH_PIXELS` pixels
tall, so capital letters are about 70% of it); the bitmap lies in
the plane through ``point`` with normal ``normal`` (the surface's outward direction), its
rows along ``up`` and columns along ``right = up x normal`` (so the text reads left to right
seen from outside), its line box centred on ``point`` and ``height_mm`` tall. A voxel centre ``x`` is in the
text prism when the bitmap pixel under its projection is set and its signed height
``w = (x - point) . normal`` is in ``[-depth, 0]`` (engrave: removed from the segment) or in
``(0, depth]`` (emboss: added). Host-side numpy over the prism's voxel box only.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError
from ..geometry import Extent

__all__ = ["GLYPH_PIXELS", "MODES", "text_bitmap", "text_region"]

#: bitmap pixels per letter height
GLYPH_PIXELS = 64
#: Slicer's Mode choices (ENGRAVE is the default)
MODES = ("engrave", "emboss")
MAX_TEXT = 256


def text_bitmap(text: str) -> np.ndarray:
    """The bool bitmap (rows top to bottom) of ``text`` in Pillow's default font: the
    font's line box, :data:`GLYPH_PIXELS` pixels tall, by the text's ink width."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT or "\n" in text:
        raise InvalidInputError(f"text must be one line of 1 to {MAX_TEXT} characters, got {text!r}")
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=GLYPH_PIXELS)
    left, _, right, _ = font.getbbox(text)
    ascent, descent = font.getmetrics()
    img = Image.new("L", (max(int(right - left), 1), ascent + descent), 0)
    ImageDraw.Draw(img).text((-left, 0), text, fill=255, font=font)
    bits = np.asarray(img) >= 128
    if not bits.any():
        raise InvalidInputError(f"text {text!r} has no visible glyphs")
    return bits


def _unit(v, what: str) -> np.ndarray:
    a = np.asarray(v, np.float64).reshape(-1)
    n = float(np.linalg.norm(a)) if a.shape == (3,) and np.all(np.isfinite(a)) else 0.0
    if n == 0.0:
        raise InvalidInputError(f"{what} must be a non-zero finite 3-vector, got {v!r}")
    return a / n


def text_frame(normal, up) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal ``(right, up, normal)``: ``up`` made perpendicular to ``normal``."""
    n = _unit(normal, "normal")
    u = _unit(up, "up")
    u = u - (u @ n) * n
    if np.linalg.norm(u) < 1e-9:
        raise InvalidInputError("up must not be parallel to normal")
    u /= np.linalg.norm(u)
    return np.cross(u, n), u, n


def text_region(geometry, text: str, point, normal, up, height_mm: float, depth_mm: float,
                mode: str = "engrave") -> tuple[Extent, np.ndarray] | None:
    """The text prism's voxels as ``(extent, dense bool)`` clipped to the grid (see the module
    docstring); None when it misses the grid."""
    if mode not in MODES:
        raise InvalidInputError(f"unknown engrave mode {mode!r}; choose engrave or emboss")
    for name, v in (("height_mm", height_mm), ("depth_mm", depth_mm)):
        if not (np.isfinite(float(v)) and float(v) > 0):
            raise InvalidInputError(f"{name} must be a positive number, got {v!r}")
    bits = text_bitmap(text)
    rows, cols = bits.shape
    px = float(height_mm) / rows  # mm per bitmap pixel
    right, u, n = text_frame(normal, up)
    c = np.asarray(point, np.float64).reshape(3)
    half_w, half_h = cols * px / 2.0, rows * px / 2.0
    lo_w, hi_w = (-float(depth_mm), 0.0) if mode == "engrave" else (0.0, float(depth_mm))
    corners = np.array([c + a * half_w * right + b * half_h * u + w * n
                        for a in (-1, 1) for b in (-1, 1) for w in (lo_w, hi_w)])
    ijk = geometry.world_to_ijk_points(corners)
    lo = np.maximum(np.floor(ijk.min(0)).astype(np.int64) - 1, 0)
    hi = np.minimum(np.ceil(ijk.max(0)).astype(np.int64) + 2, np.array(geometry.shape[::-1]))
    if np.any(hi <= lo):
        return None
    if float(np.prod((hi - lo).astype(np.float64))) > 2.0 ** 28:
        raise InvalidInputError("the text prism covers more than 2^28 voxels: use a smaller height or depth")
    ext = Extent(int(lo[2]), int(hi[2]), int(lo[1]), int(hi[1]), int(lo[0]), int(hi[0]))
    kk, jj, ii = np.meshgrid(*(np.arange(a, b, dtype=np.float64) for a, b in
                               ((ext.k0, ext.k1), (ext.j0, ext.j1), (ext.i0, ext.i1))), indexing="ij")
    m = np.asarray(geometry.ijk_to_world, np.float64)
    d = [m[r, 0] * ii + m[r, 1] * jj + m[r, 2] * kk + m[r, 3] - c[r] for r in range(3)]
    x_u = d[0] * right[0] + d[1] * right[1] + d[2] * right[2]
    x_v = d[0] * u[0] + d[1] * u[1] + d[2] * u[2]
    x_w = d[0] * n[0] + d[1] * n[1] + d[2] * n[2]
    col = np.floor((x_u + half_w) / px)
    row = np.floor((half_h - x_v) / px)
    inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
    inside &= (x_w >= lo_w) & (x_w <= hi_w) & ((x_w != 0.0) if mode == "emboss" else True)
    hit = np.zeros(ext.shape, bool)
    hit[inside] = bits[row[inside].astype(np.int64), col[inside].astype(np.int64)]
    if not hit.any():
        return None
    return ext, hit
