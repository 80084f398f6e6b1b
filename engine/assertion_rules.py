"""Assertion rule files: the trigger lexicon and the section traits, read into :class:`Rule` objects.

``assertion_triggers.tsv`` rows are ``phrase<TAB>category<TAB>direction<TAB>max_scope`` (see the file's header);
``{a|b}`` in a phrase expands to one rule per choice. ``assertion_sections.tsv`` rows are ``section<TAB>trait``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError, ErrorCode
from engine.rules import rule_rows
from engine.types import TRAITS

TRIGGERS_FILE = "assertion_triggers.tsv"
SECTIONS_FILE = "assertion_sections.tsv"
PROCEDURES_FILE = "assertion_procedures.tsv"
RULES_VERSION = "1.0"

DIRECTIONS = ("forward", "backward", "bidirectional", "terminate", "pseudo")
# Time cues: categories that set no trait themselves. A ``date`` cue ("in March", "in 2019", "on 3/12") is historical
# unless the clause speaks of the future: a ``future`` cue ("will", "planned", "due") or a hypothetical trigger
# nearer the span than any ``past`` cue ("showed", "underwent", "was done"), or, with no past cue at all, a
# ``future-weak`` cue ("repeat", "follow-up": also said of tests already done) or a plan section, makes it hypothetical.
# A ``current`` cue ("controlled on", "currently on") after a historical finding makes it current, and a ``recent`` cue
# ("today", "2 days ago") within its clause makes it recent: no historical ("s/p fall this morning"). A
# ``current-weak`` cue (a bare ", on levothyroxine") drops a history trigger's historical but not a history
# section's: "MEDICAL HISTORY: Seizure disorder, on levetiracetam" stays a past-history item. A ``procedure`` cue
# ("she has had a", "he had") makes an operation historical ("She has had a [hysterectomy]") and nothing else
# (the words that make a finding an operation are in ``assertion_procedures.tsv``). An ``actual`` cue ("you were seen
# for", "for your", "you have") says the finding is the patient's now, so a hypothetical section (discharge
# instructions) does not make it hypothetical: "INSTRUCTIONS: You were seen today for [cellulitis]"; triggers still do.
CUES = ("date", "future", "future-weak", "past", "current", "current-weak", "recent", "procedure", "actual")
# A section trait that is no trait: findings there are not hypothetical, but a date there is a plan's date.
PLAN_SECTION = "future"

# Words are split at hyphens and apostrophes so "non-tender" and "mother's" expose their parts to the rules.
TOKEN = re.compile(r"\w+|[^\w\s]")
_BRACES = re.compile(r"\{([^{}]*)\}")


def expand(phrase: str) -> list[str]:
    """Expand ``{a|b}`` choices in a rule phrase into every plain phrase (an empty choice drops the word)."""
    match = _BRACES.search(phrase)
    if match is None:
        return [" ".join(phrase.split())]
    out: list[str] = []
    for choice in match.group(1).split("|"):
        out.extend(expand(phrase[: match.start()] + choice + phrase[match.end() :]))
    return [p for p in dict.fromkeys(out) if p]


@dataclass(frozen=True, slots=True)
class Rule:
    """One trigger rule: a trait (or the traits a terminator/pseudo applies to), a direction and a scope."""

    traits: tuple[str, ...]
    direction: str
    max_scope: int
    source: str = ""


def _tokens_of(phrase: str) -> list[str]:
    words: list[str] = []
    for word in phrase.lower().split():
        if word in {"#year", "#num"}:
            words.append(word)
        else:
            words.extend(TOKEN.findall(word))
    return words


def read_triggers(path: Path) -> list[tuple[list[str], Rule]]:
    """Read a trigger file into ``(tokens, rule)`` pairs, one per expanded phrase.

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` for a missing file, ``MODEL_INVALID`` for a malformed line.
    """
    rules: list[tuple[list[str], Rule]] = []
    for lineno, parts in rule_rows(path, what="assertion rule file"):
        where = f"{path.name}:{lineno}"
        if len(parts) != 4:
            raise EngineError(ErrorCode.MODEL_INVALID, f"{where}: expected phrase<TAB>category<TAB>direction<TAB>scope")
        phrase, category, direction, scope = (p.strip() for p in parts)
        if direction not in DIRECTIONS:
            raise EngineError(ErrorCode.MODEL_INVALID, f"{where}: unknown direction {direction!r}")
        traits = TRAITS if category == "all" else tuple(c.strip() for c in category.split(","))
        if category in CUES and direction in {"forward", "backward", "bidirectional"}:
            pass
        elif any(t not in TRAITS for t in traits):
            raise EngineError(ErrorCode.MODEL_INVALID, f"{where}: unknown category {category!r}")
        if direction not in {"terminate", "pseudo"} and len(traits) != 1:
            raise EngineError(ErrorCode.MODEL_INVALID, f"{where}: a trigger sets exactly one trait")
        try:
            max_scope = int(scope)
        except ValueError as exc:
            raise EngineError(ErrorCode.MODEL_INVALID, f"{where}: max_scope must be an integer") from exc
        rule = Rule(traits=traits, direction=direction, max_scope=max_scope, source=where)
        for variant in expand(phrase):
            tokens = _tokens_of(variant)
            if tokens:
                rules.append((tokens, rule))
    return rules


def read_section_traits(path: Path) -> dict[str, str]:
    """Read ``section name -> trait`` from a section trait file."""
    out: dict[str, str] = {}
    for lineno, fields in rule_rows(path, what="assertion rule file"):
        parts = [p.strip() for p in fields]
        if len(parts) != 2 or (parts[1] not in TRAITS and parts[1] != PLAN_SECTION):
            raise EngineError(ErrorCode.MODEL_INVALID, f"{path.name}:{lineno}: expected section<TAB>trait")
        out[parts[0].lower()] = parts[1]
    return out


def read_procedure_words(path: Path) -> tuple[frozenset[str], tuple[str, ...]]:
    """Read the operation words and ``-suffix`` endings of a procedure word file (none when it is absent, as in a
    rule folder from before the file existed)."""
    if not path.is_file():
        return frozenset(), ()
    words: set[str] = set()
    suffixes: list[str] = []
    for _, fields in rule_rows(path, what="assertion rule file"):
        entry = fields[0].strip().lower()
        if entry.startswith("-"):
            suffixes.append(entry[1:])
        elif entry:
            words.add(entry)
    return frozenset(words), tuple(suffixes)


def names_operation(span: str, procedures: tuple[frozenset[str], tuple[str, ...]]) -> bool:
    """Whether the span's last word names an operation ("hysterectomy", "gallbladder surgery", "A&P repair")."""
    words = TOKEN.findall(span.lower())
    last = words[-1] if words else ""
    return last in procedures[0] or (len(last) > 6 and last.endswith(procedures[1]))
