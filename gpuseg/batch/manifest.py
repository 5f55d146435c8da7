"""Batch manifests: the list of cases a batch runs over.

A case has an ``id`` (unique, used as its output folder's name), the input files a task needs
(``image``, ``segmentation``, ``reference`` for ``compare``) and optional per-case options
(any other column: ``script`` for ``edit``, ``min``/``max`` for ``threshold``, ...), which
override the task options given for the whole batch.

A manifest is a CSV file (a header row naming the columns), a JSON file (a list of objects, or
``{"cases": [...]}``), or a glob pattern with named fields, e.g. ``ts/{id}/seg.nii.gz``: every
file that matches is a case, ``{id}`` (and any other ``{field}``) is read from its path, and
other columns come from templates over the same fields (``image="ct/{id}.nii.gz"``).
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import FileFormatError, InvalidInputError

INPUT_COLUMNS = ("image", "segmentation", "reference")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class Case:
    """One case of a batch: an id, its input files and per-case options."""

    id: str
    image: str | None = None
    segmentation: str | None = None
    reference: str | None = None
    options: Mapping[str, object] = field(default_factory=dict)

    def inputs(self) -> dict[str, str]:
        """The input files given for this case, by column."""
        return {c: getattr(self, c) for c in INPUT_COLUMNS if getattr(self, c)}


def _resolve(value, base: Path | None) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    p = Path(os.path.expanduser(str(value).strip()))
    if base is not None and not p.is_absolute():
        p = base / p
    return str(p)


def make_case(row: Mapping[str, object], base: Path | None = None, where: str = "manifest") -> Case:
    """A Case from a mapping (a manifest row); relative paths are taken from ``base``."""
    if not isinstance(row, Mapping):
        raise FileFormatError(f"{where}: a case is an object with an \"id\", got {type(row).__name__}")
    row = {str(k).strip(): v for k, v in row.items() if k is not None}
    cid = str(row.get("id", "") or "").strip()
    if not cid:
        raise FileFormatError(f"{where}: a case has no \"id\"")
    if not _SAFE_ID.match(cid):
        raise FileFormatError(f"{where}: case id {cid!r} must be letters, digits and . _ + - "
                              "(it names the case's output folder)")
    opts = {k: v for k, v in row.items() if k != "id" and k not in INPUT_COLUMNS
            and not (isinstance(v, str) and not v.strip()) and v is not None}
    if "options" in opts and isinstance(opts["options"], Mapping):  # JSON: {"id": .., "options": {...}}
        opts.update(opts.pop("options"))
    return Case(cid, *(_resolve(row.get(c), base) for c in INPUT_COLUMNS), options=opts)


def check_unique(cases: Iterable[Case], where: str = "manifest") -> list[Case]:
    out, seen = [], set()
    for c in cases:
        if c.id in seen:
            raise FileFormatError(f"{where}: case id {c.id!r} appears more than once")
        seen.add(c.id)
        out.append(c)
    if not out:
        raise FileFormatError(f"{where}: no cases")
    return out


def _pattern_regex(pattern: str) -> tuple[str, re.Pattern]:
    fields = re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", pattern)
    if "id" not in fields:
        raise InvalidInputError(f"glob manifest {pattern!r} needs an {{id}} field")
    parts, pos = [], 0
    seen = set()
    for m in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", pattern):
        parts.append(re.escape(pattern[pos:m.start()]).replace(r"\*", "[^/]*").replace(r"\?", "[^/]"))
        name = m.group(1)
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>[^/]+?)")
        seen.add(name)
        pos = m.end()
    parts.append(re.escape(pattern[pos:]).replace(r"\*", "[^/]*").replace(r"\?", "[^/]"))
    return re.sub(r"\{[A-Za-z_][A-Za-z0-9_]*\}", "*", pattern), re.compile("^" + "".join(parts) + "$")


def cases_from_glob(pattern: str, column: str, templates: Mapping[str, str] | None = None) -> list[Case]:
    """Cases from the files matching ``pattern`` (named fields ``{id}``, ``{...}``); the file goes
    into ``column`` and each other column is its template with the fields filled in."""
    if column not in INPUT_COLUMNS:
        raise InvalidInputError(f"glob column must be one of {', '.join(INPUT_COLUMNS)}, got {column!r}")
    pat = os.path.expanduser(pattern)
    globpat, rx = _pattern_regex(pat)
    cases = []
    for path in sorted(glob.glob(globpat)):
        m = rx.match(path)
        if not m:
            continue
        fields = m.groupdict()
        row: dict[str, object] = {"id": fields["id"], column: path}
        for col, tmpl in (templates or {}).items():
            try:
                row[col] = tmpl.format(**fields)
            except KeyError as exc:
                raise InvalidInputError(f"template {tmpl!r} uses field {exc} that {pattern!r} does not have") from exc
        cases.append(make_case(row, None, where=pattern))
    if not cases:
        raise FileFormatError(f"glob manifest {pattern!r}: no file matches")
    return check_unique(cases, pattern)


def read_manifest(manifest: str | os.PathLike, *, column: str = "segmentation",
                  templates: Mapping[str, str] | None = None) -> list[Case]:
    """The cases of a manifest: a ``.csv`` or ``.json`` file (relative paths in it are relative
    to the manifest's folder), or a glob pattern with an ``{id}`` field (see the module doc)."""
    text = str(manifest)
    if "{" in text and not Path(text).is_file():
        return cases_from_glob(text, column, templates)
    p = Path(text)
    if not p.is_file():
        raise FileFormatError(f"{p}: manifest not found")
    if templates:
        raise InvalidInputError("column templates apply only to a glob manifest; put the columns in the file")
    base = p.parent
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{p}: not valid JSON ({exc})") from exc
        if isinstance(data, dict) and "cases" in data:
            data = data["cases"]
        if not isinstance(data, list):
            raise FileFormatError(f"{p}: a JSON manifest is a list of cases or {{\"cases\": [...]}}")
        return check_unique((make_case(r, base, f"{p}: case {n}") for n, r in enumerate(data, 1)), str(p))
    if p.suffix.lower() in (".csv", ".tsv"):
        try:
            with open(p, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f, delimiter="\t" if p.suffix.lower() == ".tsv" else ","))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise FileFormatError(f"{p}: not a readable CSV file ({exc})") from exc
        if rows and None in rows[0]:
            raise FileFormatError(f"{p}: a row has more cells than the header")
        return check_unique((make_case(r, base, f"{p}: row {n + 1}") for n, r in enumerate(rows, 1)), str(p))
    raise FileFormatError(f"{p}: a manifest is .csv, .tsv or .json (or a glob pattern with {{id}})")
