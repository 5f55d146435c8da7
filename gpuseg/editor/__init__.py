"""The Segment Editor engine: paint and erase with Slicer's masking rules, preview, undo.

One concern per module (docs/editor.md): :mod:`.facade` (the :class:`Editor`), :mod:`.masking`,
:mod:`.brush`, :mod:`.scissors`, :mod:`.previews`, :mod:`.grow` and :mod:`.undo`.
"""

from .brush import MAX_DIAMETER_MM, StrokeLimits
from .facade import Editor
from .masking import EDITABLE_AREAS, OVERWRITE_MODES, Masking
from .previews import GrowPreview, StrokePreview

__all__ = ["Editor", "Masking", "StrokePreview", "GrowPreview", "StrokeLimits", "EDITABLE_AREAS",
           "OVERWRITE_MODES", "MAX_DIAMETER_MM"]
