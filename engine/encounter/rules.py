"""The encounter rules that are not in the Tabular notes, read from ``assets/rules/encounter_*.tsv``.

Each file's header says what its columns mean; this module only parses them into typed rows, checking that every
code pattern reads as codes (a typo in a rule file is an error naming the file and line, not a silent no-op).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.encounter.notes import CodeRef, matches_any, parse_patterns
from engine.errors import EngineError, ErrorCode
from engine.rules import rule_rows

TEMPLATE_RE = re.compile(r"\{(\d+):(\d+)\}")


@dataclass(frozen=True, slots=True)
class Patterns:
    """A comma list of code patterns (``keep``) with ``!`` exclusions (``leave``)."""

    keep: tuple[CodeRef, ...]
    leave: tuple[CodeRef, ...]
    text: str

    def matches(self, code: str) -> bool:
        """Whether ``code`` is covered."""
        return matches_any(code, list(self.keep), list(self.leave))


@dataclass(frozen=True, slots=True)
class Combination:
    """One row of ``encounter_combinations.tsv``."""

    name: str
    conditions: tuple[Patterns, ...]
    add: tuple[str, ...]
    drop: frozenset[int]
    guideline: str
    reason: str


@dataclass(frozen=True, slots=True)
class Supersede:
    """One row of ``encounter_supersede.tsv``; ``by is None`` means any other code of the same category."""

    codes: Patterns
    by: Patterns | None
    guideline: str
    reason: str


@dataclass(frozen=True, slots=True)
class Integral:
    """One row of ``encounter_integral.tsv``."""

    symptoms: Patterns
    diagnoses: Patterns
    reason: str


@dataclass(frozen=True, slots=True)
class Default:
    """One row of ``encounter_defaults.tsv``."""

    source: str
    target: str
    keep_words: re.Pattern[str]
    guideline: str
    reason: str


@dataclass(frozen=True, slots=True)
class SectionRule:
    """One row of ``encounter_sections.tsv``."""

    rank: int
    final: bool


def _patterns(text: str, where: str) -> Patterns:
    keep, leave = parse_patterns(text)
    if not keep:
        raise EngineError(ErrorCode.MODEL_INVALID, f"{where}: no code pattern in {text!r}")
    return Patterns(tuple(keep), tuple(leave), text)


def _fields(path: Path, n: int, what: str) -> list[tuple[str, list[str]]]:
    rows = []
    for lineno, fields in rule_rows(path, what=what):
        if len(fields) < n:
            raise EngineError(ErrorCode.MODEL_INVALID, f"{path}:{lineno}: expected {n} TAB-separated fields")
        rows.append((f"{path.name}:{lineno}", [f.strip() for f in fields]))
    return rows


class EncounterRules:
    """All ``encounter_*.tsv`` rule files of a rules folder.

    Args:
        rules_dir: The folder (``settings.rules_dir``).

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` for a missing file, ``MODEL_INVALID`` for a row that does not parse.
    """

    def __init__(self, rules_dir: Path) -> None:
        rules_dir = Path(rules_dir)
        self.combinations = [self._combination(w, f) for w, f in
                             _fields(rules_dir / "encounter_combinations.tsv", 6, "encounter combination file")]
        self.supersede = [
            Supersede(_patterns(f[0], w), None if f[1] == "{category}" else _patterns(f[1], w), f[2], f[3])
            for w, f in _fields(rules_dir / "encounter_supersede.tsv", 4, "encounter supersede file")
        ]
        self.integral = [
            Integral(_patterns(f[0], w), _patterns(f[1], w), f[2])
            for w, f in _fields(rules_dir / "encounter_integral.tsv", 3, "encounter integral-symptom file")
        ]
        self.defaults = [
            Default(f[0], f[1], re.compile(f[2], re.IGNORECASE), f[3], f[4])
            for _, f in _fields(rules_dir / "encounter_defaults.tsv", 5, "encounter defaults file")
        ]
        context: dict[str, list[tuple[re.Pattern[str], str]]] = {}
        for w, f in _fields(rules_dir / "encounter_context.tsv", 3, "encounter context file"):
            try:
                context.setdefault(f[0], []).append((re.compile(f[1], re.IGNORECASE), f[2]))
            except re.error as exc:
                raise EngineError(ErrorCode.MODEL_INVALID, f"{w}: bad regular expression ({exc})") from exc
        self.context = context
        self.sections = {
            f[0]: SectionRule(int(f[1]), f[2].lower() == "yes")
            for _, f in _fields(rules_dir / "encounter_sections.tsv", 3, "encounter section file")
        }

    @staticmethod
    def _combination(where: str, f: list[str]) -> Combination:
        conditions = tuple(_patterns(part, where) for part in f[1].split(" + "))
        add = tuple(f[2].split())
        drop = frozenset(int(x) for x in f[3].split() if x != "-")
        for template in add:
            for n, _ in TEMPLATE_RE.findall(template):
                if not 1 <= int(n) <= len(conditions):
                    raise EngineError(ErrorCode.MODEL_INVALID, f"{where}: {template} names no condition")
        if any(not 1 <= d <= len(conditions) for d in drop):
            raise EngineError(ErrorCode.MODEL_INVALID, f"{where}: drop names no condition")
        return Combination(f[0], conditions, add, drop, f[4], f[5])

    def section(self, name: str | None) -> SectionRule:
        """How a section is read (``None``: a note without sections)."""
        key = "(none)" if name is None else name
        return self.sections.get(key) or self.sections.get("*") or SectionRule(5, False)

    def words(self, kind: str, text: str) -> list[str]:
        """The values of the ``kind`` context rules whose expression occurs in ``text``."""
        return [value for regex, value in self.context.get(kind, ()) if regex.search(text)]

    def first_match(self, kind: str, text: str) -> re.Match[str] | None:
        """The first ``kind`` context expression matching ``text`` (``re.match`` semantics for qualifiers)."""
        for regex, _ in self.context.get(kind, ()):
            m = regex.search(text)
            if m:
                return m
        return None
