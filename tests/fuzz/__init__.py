"""Fuzz suite of gpuseg's readers, writers and edit-script runner (see tests/fuzz/__main__.py)."""
