"""What every step of one encounter build shares: the analysis, the note text, the setting, the rules, the
conventions, the ICD linker, and the findings left out so far."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.encounter.conventions import Conventions
from engine.encounter.model import CodeLine, Dropped
from engine.encounter.rules import EncounterRules
from engine.types import AnalysisResult, Code, Entity

CLAUSE_END = re.compile(r"[.;\n]")
CLAUSE_LIMIT = 200
"""Characters read on each side of a mention for its sentence (7th-character words, unrelated words)."""
WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z-]*)[ \t]+$")
"""A word written directly before a mention (for the modifier words of ``coding_modifiers.txt``)."""
MAX_MODIFIERS = 3
SYMPTOM_CHAPTER = "R"


def is_symptom(code: str) -> bool:
    """Signs, symptoms and abnormal findings (chapter 18, R00-R99)."""
    return code.startswith(SYMPTOM_CHAPTER)


@dataclass(slots=True)
class BuildContext:
    """State of one build.

    Attributes:
        analysis: The note's analysis.
        text: The note text (``None`` when only the analysis is known: no context words are read then).
        setting: ``outpatient`` or ``inpatient``.
        rules: The ``encounter_*.tsv`` rules.
        conventions: The Tabular notes.
        icd: The ICD stage (``link``, ``describe``).
        link_cache: Shared ``(mention, traits) -> codes`` cache of the builder.
        modifiers: Words before a diagnosis read with it (``coding_modifiers.txt``), as the pipeline does.
        dropped: What was left out so far.
    """

    analysis: AnalysisResult
    text: str | None
    setting: str
    rules: EncounterRules
    conventions: Conventions
    icd: Any
    link_cache: Any
    modifiers: frozenset[str] = frozenset()
    dropped: list[Dropped] = field(default_factory=list)
    _descriptions: dict[str, Code | None] = field(default_factory=dict)

    @property
    def entities(self) -> list[Entity]:
        """The analysis's entities (evidence indexes point into this list)."""
        return self.analysis.entities

    def clause(self, entity: Entity) -> str:
        """The mention's sentence (up to :data:`CLAUSE_LIMIT` characters each side), or the mention alone."""
        if self.text is None or not (0 <= entity.start <= entity.end <= len(self.text)):
            return entity.text
        lo = max(0, entity.start - CLAUSE_LIMIT)
        before = [m.end() for m in CLAUSE_END.finditer(self.text, lo, entity.start)]
        start = before[-1] if before else lo
        after = CLAUSE_END.search(self.text, entity.end, min(len(self.text), entity.end + CLAUSE_LIMIT))
        end = after.start() if after else min(len(self.text), entity.end + CLAUSE_LIMIT)
        return self.text[start:end]

    def mention(self, entity: Entity) -> str:
        """The words to code for ``entity``: with the acuity/side words written directly before it."""
        if self.text is None or self.text[entity.start : entity.end] != entity.text:
            return entity.text
        lo = entity.start
        for _ in range(MAX_MODIFIERS):  # as the pipeline reads them: "Chronic DVT" when the entity is "DVT"
            match = WORD_BEFORE.search(self.text, max(0, lo - 40), lo)
            if not match or match.group(1).lower() not in self.modifiers:
                break
            lo = match.start(1)
        return self.text[lo : entity.end]

    def link(self, mention: str, traits: Sequence[str] = ()) -> list[Code]:
        """The linker's codes for ``mention`` (cached for the builder's life)."""
        key = (mention, tuple(traits))
        codes = self.link_cache.get(key)
        if codes is None:
            codes = list(self.icd.link(mention, "DIAG", list(traits)))
            self.link_cache.put(key, codes)
        return codes

    def describe(self, code: str) -> Code | None:
        """``code``'s description and billability from the linker's tabular list, or ``None`` when unknown."""
        if code not in self._descriptions:
            self._descriptions[code] = self.icd.describe(code)
        return self._descriptions[code]

    def title_words(self, code: str) -> set[str]:
        """The words of ``code``'s description and of its category's title."""
        words: set[str] = set()
        for c in {code, code[:3]}:
            known = self.describe(c)
            if known is not None:
                words |= set(re.findall(r"[a-z0-9]+", known.description.lower()))
        return words

    def drop(self, code: str | None, evidence: Sequence[int], rule: str, reason: str) -> None:
        """Record a finding or code left out."""
        self.dropped.append(Dropped(code, sorted(set(evidence)), rule, reason))

    def quote(self, line: CodeLine, limit: int = 3) -> str:
        """``'CKD' (entity 4, assessment) and 'chronic kidney disease' (entity 9, history of present illness)``."""
        parts = [f"'{text}' (entity {i}{', ' + section if section else ''})" for i, text, section in line.mentions]
        if len(parts) > limit:
            parts = [*parts[:limit], f"{len(parts) - limit} more"]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


class LinkCache:
    """A bounded ``(mention, traits) -> codes`` map (oldest entries go first)."""

    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._data: dict[tuple, list[Code]] = {}

    def get(self, key: tuple) -> list[Code] | None:
        """The cached codes, or ``None``."""
        return self._data.get(key)

    def put(self, key: tuple, codes: list[Code]) -> None:
        """Cache ``codes`` under ``key``."""
        if len(self._data) >= self._size:
            self._data.pop(next(iter(self._data)))
        self._data[key] = codes
