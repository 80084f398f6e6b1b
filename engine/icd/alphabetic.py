"""The ICD-10-CM Alphabetic Index: every path from a main term down to a code, as a coder reads it.

Input: the CMS/CDC FY2025 Index as CSV (``RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code``; ``Level`` 0
is a main term, each deeper level a subterm of the nearest shallower row above it; public domain, shipped in
``assets/icd10cm_index/``). Each row with a code gives one :class:`AlphaEntry` whose ``term`` is the whole path
("Glioblastoma (multiforme), unspecified site") with the nonessential modifiers of every level in parentheses,
so the lexical index treats them as optional words, and whose ``phrase`` is the same path in natural order
("glioblastoma unspecified site", "type 2 diabetes with nephropathy") for the dense encoder.

Resolution, as a coder works:
- ``See X``: the row takes the code(s) that the path ``X`` leads to (its own code, else its default subterm).
- a row without a code and no ``See`` takes the code of its default subterm ("unspecified site", "NOS",
  "unspecified"), so "Neuroblastoma" alone is C74.90.
- incomplete codes (``C64-``, ``H93.29-``) are kept as their stem; the tabular list decides the billable child
  (the default child, or the one the mention's words or side support), see :mod:`engine.icd.tabular`.
Rows pointing to the Neoplasm Table or the Table of Drugs ("See Neoplasm, malignant, by site") are dropped: the
tables are not in this file.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path

from engine.icd.text import normalize_code

COLUMNS = ("RowID", "Letter", "Level", "Term", "See", "SeeAlso", "NonEssModif", "Code")
DEFAULT_SUBTERMS = frozenset({"unspecified site", "unspecified", "nos", "site unspecified", "unspecified type"})
"""Subterms whose code a term without its own code stands for."""
CONNECTORS = ("with", "without", "due to", "in ", "of ", "following", "complicating", "from", "after", "during",
              "by ", "affecting", "involving", "associated", "and ", "on ", "as ", "at ", "not ", "for ")
"""Subterms that read after the main term in natural order ("diabetes with nephropathy"), not before it."""
_NEC_RE = re.compile(r"\b(specified(?: \w+)?) NEC\b|\bNEC\b", re.IGNORECASE)
_CODE_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{0,4})?[-.]?$")
MAX_SEE_DEPTH = 3


class AlphaIndexError(ValueError):
    """The Index file is missing or malformed (the linker then runs on the tabular list alone)."""


@dataclass(frozen=True, slots=True)
class AlphaEntry:
    """One Index path that leads to a code.

    Attributes:
        code: The code with its dot, without the incomplete mark (``C64``, ``H93.29``, ``I21.9``).
        incomplete: The Index marked the code incomplete (``-``): a child is to be picked in the tabular list.
        term: The path in Index order, nonessential modifiers in parentheses ("Infarct, myocardium (acute)").
        phrase: The path in natural reading order, without modifiers ("acute myocardium infarct").
        path: The path's own words, level by level, for ``evidence`` ("Index: Infarct > myocardium").
    """

    code: str
    incomplete: bool
    term: str
    phrase: str
    path: tuple[str, ...]

    @property
    def evidence(self) -> str:
        """How the entry is shown to a coder: ``Index: Main term > subterm > ...``."""
        return "Index: " + " > ".join(self.path)


@dataclass(slots=True)
class _Row:
    level: int
    term: str
    see: str
    modifiers: str
    code: str
    parent: int


def essential_nec(term: str) -> str:
    """"specified type NEC" -> "other specified type": in the Index, NEC marks the residual "other" code, which a
    mention that names nothing more must not reach ("type II diabetes" is not "Diabetes, specified type NEC")."""
    return _NEC_RE.sub(lambda m: f"other {m.group(1)}" if m.group(1) else "other", term)


def natural_phrase(path: list[str]) -> str:
    """The path read as a clinician writes it: adjectives and sites before the main term, clauses after."""
    head = path[0].split(", ")[0]
    before: list[str] = []
    after: list[str] = []
    for sub in path[1:]:
        low = sub.lower()
        if after or low.startswith(CONNECTORS) or low in {"with", "without"}:
            after.append(sub)
        else:
            before.insert(0, sub)
    return " ".join([*before, head, *after]).lower()


def _parse_rows(text: str) -> list[_Row]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip().lstrip("\ufeff") for h in header[: len(COLUMNS)]) != COLUMNS:
        raise AlphaIndexError(f"unexpected header {header!r}; expected {','.join(COLUMNS)}")
    rows: list[_Row] = []
    stack: list[int] = []  # row ids of the current path, one per level
    for lineno, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) < len(COLUMNS):
            raise AlphaIndexError(f"line {lineno}: {len(fields)} fields, expected {len(COLUMNS)}")
        try:
            level = int(fields[2])
        except ValueError as exc:
            raise AlphaIndexError(f"line {lineno}: level {fields[2]!r} is not a number") from exc
        if level < 0 or level > len(stack):
            raise AlphaIndexError(f"line {lineno}: level {level} under a level {len(stack) - 1} row")
        code = fields[7].strip()
        if code and not _CODE_SHAPE.match(code):
            raise AlphaIndexError(f"line {lineno}: {code!r} is not an ICD-10-CM code")
        del stack[level:]
        rows.append(_Row(level, fields[3].strip(), fields[4].strip(), fields[6].strip(), code,
                         stack[-1] if stack else -1))
        stack.append(len(rows) - 1)
    if not rows:
        raise AlphaIndexError("no rows")
    return rows


def _path(rows: list[_Row], i: int) -> list[int]:
    out = []
    while i >= 0:
        out.append(i)
        i = rows[i].parent
    return out[::-1]


class _Resolver:
    """Codes of rows, following ``See`` references and default subterms."""

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows
        self.children: dict[int, list[int]] = {}
        self.mains: dict[str, int] = {}
        for i, r in enumerate(rows):
            if r.parent >= 0:
                self.children.setdefault(r.parent, []).append(i)
            else:
                self.mains.setdefault(r.term.lower(), i)
                # "Infarct, infarction" is also reached as "Infarct" and "infarction".
                for part in r.term.lower().split(", "):
                    self.mains.setdefault(part, i)

    def find(self, reference: str) -> int | None:
        """The row a ``See`` reference names ("Infarct, myocardium"), or ``None``."""
        parts = [p.strip().lower() for p in reference.split(",") if p.strip()]
        for k in range(len(parts), 0, -1):
            main = self.mains.get(", ".join(parts[:k]))
            if main is None:
                continue
            node: int | None = main
            for part in parts[k:]:
                kids = {self.rows[c].term.lower(): c for c in self.children.get(node, ())}
                # A reference names the subterm without its modifiers; a walk that loses its way leads nowhere
                # (stopping half-way would give the generic code of "Disease" for "Disease, heart, ischemic").
                node = kids.get(part)
                if node is None:
                    break
            if node is not None:
                return node
        return None

    def codes(self, i: int, depth: int = 0) -> list[str]:
        """The codes row ``i`` stands for (its own, else through ``See``, else its default subterm)."""
        r = self.rows[i]
        if r.code:
            return [r.code]
        if depth >= MAX_SEE_DEPTH:
            return []
        if r.see:
            target = self.find(r.see)
            return self.codes(target, depth + 1) if target is not None and target != i else []
        for c in self.children.get(i, ()):
            if self.rows[c].term.lower().strip(" ()") in DEFAULT_SUBTERMS and self.rows[c].code:
                return [self.rows[c].code]
        return []


def parse(text: str) -> list[AlphaEntry]:
    """Every Index path with a code (see the module docstring).

    Raises:
        AlphaIndexError: The text is not an Index in the expected CSV format.
    """
    rows = _parse_rows(text)
    resolver = _Resolver(rows)
    out: list[AlphaEntry] = []
    seen: set[tuple[str, str]] = set()
    for i in range(len(rows)):
        codes = resolver.codes(i)
        if not codes:
            continue
        ids = _path(rows, i)
        parts = [rows[j].term for j in ids]
        term = essential_nec(", ".join(f"{rows[j].term} {rows[j].modifiers}".strip() for j in ids))
        phrase = natural_phrase(parts)
        for raw in codes:
            incomplete = raw.endswith(("-", "."))
            code = normalize_code(raw.rstrip("-.").rstrip("."))
            key = (code, term.lower())
            if key in seen:
                continue
            seen.add(key)
            out.append(AlphaEntry(code, incomplete, term, phrase, tuple(parts)))
    return out


def read_index(path: Path) -> list[AlphaEntry]:
    """Read and parse the Index file at ``path``.

    Raises:
        AlphaIndexError: The file is absent, unreadable or malformed.
    """
    try:
        raw = Path(path).read_bytes()
        text = (gzip.decompress(raw) if str(path).endswith(".gz") else raw).decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise AlphaIndexError(f"cannot read {path}: {exc}") from exc
    entries = parse(text)
    if len(entries) < 10:
        raise AlphaIndexError(f"{path}: only {len(entries)} coded paths")
    return entries
