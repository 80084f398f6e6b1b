"""Pattern finders for structured identifiers (dates, ages over 89, phones, IDs, e-mail, URLs, addresses).

The patterns, their context words and vetoes are rows of ``assets/rules/deid_patterns.tsv``; this module only
compiles and applies them. Checksums (Luhn, SSN rules) come from :mod:`engine.deid.checksums`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.deid.checksums import luhn_valid, ssn_valid
from engine.deid.spans import LABELS, PhiSpan
from engine.errors import EngineError, ErrorCode

VALIDATORS: dict[str, Callable[[str], bool]] = {"luhn": luhn_valid, "ssn": ssn_valid}
_BEFORE, _VETO_BEFORE, _AFTER = 40, 25, 20


@dataclass(frozen=True)
class PatternRule:
    """One row of ``deid_patterns.tsv``, compiled."""

    label: str
    name: str
    group: int
    validator: Callable[[str], bool] | None
    context: re.Pattern[str] | None
    veto_before: re.Pattern[str] | None
    veto_after: re.Pattern[str] | None
    pattern: re.Pattern[str]

    def find(self, text: str) -> list[PhiSpan]:
        """All spans of this rule in ``text``."""
        out = []
        for match in self.pattern.finditer(text):
            start, end = match.span(self.group)
            if start < 0 or (self.validator is not None and not self.validator(match.group(self.group))):
                continue
            if self.context is not None and not self.context.search(text[max(0, start - _BEFORE):start]):
                continue
            if self.veto_before is not None and self.veto_before.search(text[max(0, start - _VETO_BEFORE):start]):
                continue
            if self.veto_after is not None and self.veto_after.search(text[end:end + _AFTER]):
                continue
            out.append(PhiSpan(start, end, self.label, self.name))
        return out


def _compile(source: str, where: str) -> re.Pattern[str]:
    flags = re.IGNORECASE
    if source.startswith("(?-i)"):
        source, flags = source[5:], 0
    try:
        return re.compile(source, flags)
    except re.error as exc:
        raise EngineError(ErrorCode.MODEL_INVALID, f"{where}: bad pattern ({exc})") from exc


def _optional(source: str, where: str) -> re.Pattern[str] | None:
    return None if source == "-" else _compile(source, where)


@lru_cache(maxsize=4)
def load_patterns(path: Path) -> tuple[PatternRule, ...]:
    """Compile the rows of a ``deid_patterns.tsv`` file.

    Raises:
        EngineError: ``MODEL_INVALID`` for a row with a bad label, validator or regular expression.
    """
    rules = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{path.name}:{lineno}"
        cols = line.split("\t")
        if len(cols) != 8 or cols[0] not in LABELS or (cols[3] != "-" and cols[3] not in VALIDATORS):
            raise EngineError(ErrorCode.MODEL_INVALID, f"{where}: expected 8 columns, a PHI label and a validator")
        label, name, group, validator, context, veto_before, veto_after, pattern = cols
        rules.append(PatternRule(
            label=label, name=name, group=int(group),
            validator=None if validator == "-" else VALIDATORS[validator],
            context=_optional(context, where), veto_before=_optional(veto_before, where),
            veto_after=_optional(veto_after, where), pattern=_compile(pattern, where),
        ))
    return tuple(rules)


def find_patterns(text: str, rules: tuple[PatternRule, ...]) -> list[PhiSpan]:
    """Apply every rule to ``text``; spans may overlap (the caller merges)."""
    out: list[PhiSpan] = []
    for rule in rules:
        out += rule.find(text)
    return out
