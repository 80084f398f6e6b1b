"""The ICD-10-CM Tabular List conventions, read from the notes shipped in ``simple-icd-10-cm``.

Kinds of note used: ``excludes1`` (never reported together), ``excludes2`` (may be reported together),
``use_additional`` (this code first, the named one after it), ``code_first`` (the named code first: etiology before
manifestation), ``code_also`` (both, no order), and the 7th-character definitions. A note written on a category, a
block or a chapter holds for every code under it, so a code's notes are found by walking its ancestors.

Reading the package takes a few seconds (parsing its XML), so the parsed notes (about 6,000 codes) are written
once to a JSON file in ``settings.cache_dir`` keyed by the package version, and loaded from there afterwards.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from engine.encounter.notes import CodeRef, dot, parse_refs, undot
from engine.errors import EngineError, ErrorCode
from engine.settings import Settings

FORMAT = 1
"""Bump when the cached layout or the note parsing changes (part of the cache file name)."""
KINDS: dict[str, str] = {
    "excludes1": "get_excludes1",
    "excludes2": "get_excludes2",
    "use_additional": "get_use_additional_code",
    "code_first": "get_code_first",
    "code_also": "get_code_also",
}
"""Note kind -> the ``simple_icd_10_cm`` function that returns it."""


@dataclass(frozen=True, slots=True)
class Note:
    """One Tabular note item.

    Attributes:
        kind: One of :data:`KINDS`.
        source: The code, block or chapter the note is written on (``"E11"``, ``"I10-I1A"``).
        text: The note's own words (``"type 1 diabetes mellitus (E10.-)"``).
        refs: The code references in it.
    """

    kind: str
    source: str
    text: str
    refs: tuple[CodeRef, ...]

    def names(self, code: str) -> bool:
        """Whether the note names ``code`` (or a range or category holding it)."""
        return any(r.matches(code) for r in self.refs)

    def quote(self) -> str:
        """``E11 Excludes1: "type 1 diabetes mellitus (E10.-)"``, as the reasons cite it."""
        label = {"excludes1": "Excludes1", "excludes2": "Excludes2", "use_additional": "Use additional code",
                 "code_first": "Code first", "code_also": "Code also"}[self.kind]
        return f'{self.source} {label}: "{self.text}"'


def _items(kind: str, value: object) -> list[str]:
    """A note's items: excludes notes come as lists; the others as one text whose lines are items, the first line
    often a lead-in ("code to identify control using:") that is kept in front of each item it introduces."""
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    lines = [ln.strip() for ln in str(value or "").splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lead = lines[0][:-1]
        return [f"{lead}: {ln}" for ln in lines[1:]]
    return lines


def build_table(progress: bool = False) -> dict:
    """Read every note of the Tabular List from the package (slow: seconds) into a JSON-friendly table.

    Returns:
        ``{"package": version, "notes": {code: [[kind, text, [ref...]], ...]}, "seven": {code: {letter: text}},
        "ancestors": {category: [block, ..., chapter]}}``.
    """
    import simple_icd_10_cm as cm

    def valid(code: str) -> bool:
        return bool(cm.is_valid_item(code))

    notes: dict[str, list] = {}
    seven: dict[str, dict[str, str]] = {}
    ancestors: dict[str, list[str]] = {}
    for code in cm.get_all_codes(True):
        rows = []
        for kind, getter in KINDS.items():
            for text in _items(kind, getattr(cm, getter)(code)):
                refs = parse_refs(text, valid)
                if refs:
                    rows.append([kind, text, [r.to_list() for r in refs]])
        if rows:
            notes[code] = rows
        definition = cm.get_seven_chr_def(code)
        if definition:
            seven[code] = {k: " ".join(str(v).split()) for k, v in definition.items()}
        if cm.is_category(code):
            ancestors[code] = [a for a in cm.get_ancestors(code) if cm.is_chapter_or_block(a) and a != code]
    if progress:
        print(f"encounter conventions: {len(notes)} codes with notes, {len(seven)} 7th-character definitions")
    return {"package": package_version(), "format": FORMAT, "notes": notes, "seven": seven, "ancestors": ancestors}


def package_version() -> str:
    """The installed ``simple-icd-10-cm`` version (the cache key)."""
    try:
        return metadata.version("simple-icd-10-cm")
    except metadata.PackageNotFoundError as exc:
        raise EngineError(ErrorCode.INDEX_ERROR, "simple-icd-10-cm is not installed (pip install -r requirements.txt)"
                          ) from exc


def cache_path(settings: Settings) -> Path:
    """Where the parsed notes are cached for this package version."""
    return Path(settings.cache_dir) / "encounter" / f"conventions-{package_version()}-f{FORMAT}.json"


def load_table(settings: Settings) -> dict:
    """The parsed notes: from the cache when there, else built and cached (a read-only cache is not an error)."""
    path = cache_path(settings)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    table = build_table()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as tmp:
            json.dump(table, tmp, separators=(",", ":"))
        os.replace(tmp.name, path)
    except OSError:
        pass  # the table still works from memory; the next process builds it again
    return table


def _frozen(value: object) -> object:
    """``value`` with every list turned into a tuple, recursively.

    A tuple (and a dict) holding only strings and numbers is untracked by the garbage collector, so the ~70,000
    lists of the JSON table stop being traversed by every full collection of the process (about 10-20 ms each,
    which fell on whichever code allocated next, the builder's p95 and max included)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


class Conventions:
    """Look-ups over the Tabular notes.

    Args:
        table: What :func:`build_table` returns.
    """

    def __init__(self, table: dict) -> None:
        self.package = str(table.get("package", "?"))
        self._raw: dict[str, tuple] = _frozen(table["notes"])  # type: ignore[assignment]
        self._seven: dict[str, dict[str, str]] = table["seven"]
        self._ancestors: dict[str, tuple[str, ...]] = _frozen(table["ancestors"])  # type: ignore[assignment]
        self._parsed: dict[str, tuple[Note, ...]] = {}
        """Source -> its notes, parsed once per process (a category's notes hold for every code under it)."""
        self._notes = lru_cache(maxsize=65536)(self._notes_uncached)
        # Pairs of codes come back in every note (I10 with E11.9...): the look-up is cached, not re-matched.
        self.note_naming = lru_cache(maxsize=65536)(self._note_naming_uncached)  # type: ignore[method-assign]

    @classmethod
    def load(cls, settings: Settings) -> Conventions:
        """The conventions of the installed ICD-10-CM version (cached, see :func:`load_table`)."""
        return cls(load_table(settings))

    def lineage(self, code: str) -> list[str]:
        """``code`` and its ancestors, nearest first: ``S72.001A`` -> ``S72.001, S72.00, S72.0, S72, S70-S79, 19``
        (prefixes that are not codes, such as ``T14.8X`` of ``T14.8XXA``, are simply never found in the tables)."""
        c = undot(code)
        chain = [dot(c[:k]) for k in range(len(c), 2, -1)]
        return chain + list(self._ancestors.get(c[:3], ()))

    def _source_notes(self, source: str) -> tuple[Note, ...]:
        """Every note written on ``source``, parsed (once)."""
        parsed = self._parsed.get(source)
        if parsed is None:
            parsed = tuple(Note(row_kind, source, text, tuple(CodeRef.from_list(r) for r in refs))
                           for row_kind, text, refs in self._raw.get(source, ()))
            self._parsed[source] = parsed
        return parsed

    def _notes_uncached(self, code: str, kind: str) -> tuple[Note, ...]:
        return tuple(note for source in self.lineage(code) if source in self._raw
                     for note in self._source_notes(source) if note.kind == kind)

    def notes(self, code: str, kind: str) -> tuple[Note, ...]:
        """The notes of ``kind`` that hold for ``code``: its own and its ancestors'."""
        return self._notes(dot(code), kind)

    def note_naming(self, code: str, kind: str, other: str) -> Note | None:
        """The first note of ``kind`` holding for ``code`` that names ``other``, or ``None``."""
        return self._note_naming_uncached(code, kind, other)

    def _note_naming_uncached(self, code: str, kind: str, other: str) -> Note | None:
        for note in self.notes(code, kind):
            if note.names(other):
                return note
        return None

    def excludes1(self, a: str, b: str) -> Note | None:
        """The Excludes1 note that forbids reporting ``a`` with ``b`` (written on either side), or ``None``."""
        if undot(a) == undot(b):
            return None
        return self.note_naming(a, "excludes1", b) or self.note_naming(b, "excludes1", a)

    def excludes2(self, a: str, b: str) -> Note | None:
        """The Excludes2 note between ``a`` and ``b`` (either side), or ``None``."""
        if undot(a) == undot(b):
            return None
        return self.note_naming(a, "excludes2", b) or self.note_naming(b, "excludes2", a)

    def first_of(self, a: str, b: str) -> tuple[str, Note] | None:
        """Which of ``a``/``b`` a note sequences first, with the note: ``a``'s "use additional code" naming ``b`` or
        ``b``'s "code first" naming ``a`` put ``a`` first (and the other way round); ``None`` when no note says."""
        for first, second in ((a, b), (b, a)):
            note = self.note_naming(first, "use_additional", second) or self.note_naming(second, "code_first", first)
            if note is not None:
                return first, note
        return None

    def sources(self, kind: str) -> list[str]:
        """The codes, blocks and chapters that carry notes of ``kind``, in table order."""
        return [code for code, rows in self._raw.items() if any(r[0] == kind for r in rows)]

    def seven_chr(self, code: str) -> dict[str, str] | None:
        """The 7th-character definitions that hold for ``code`` (letter -> meaning), or ``None``."""
        for source in self.lineage(code):
            if source in self._seven:
                return self._seven[source]
        return None
