"""The encounter builder (the ``encounter`` stage): one analysis in, the encounter's code set out.

Steps, each in its own module: :mod:`~engine.encounter.gather` (mentions -> one line per condition, assertion and
setting rules, specificity, 7th character), :mod:`~engine.encounter.combine` (combination codes, superseded
codes), :mod:`~engine.encounter.conflicts` (integral symptoms, Excludes1, notes that ask for another code),
:mod:`~engine.encounter.sequence` (order and its reasons).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from engine.encounter.combine import apply_combinations, apply_supersede
from engine.encounter.conflicts import (
    drop_integral,
    explain_pairs,
    explain_uncertain,
    flag_missing,
    resolve_excludes1,
)
from engine.encounter.context import BuildContext, LinkCache
from engine.encounter.conventions import Conventions
from engine.encounter.gather import gather
from engine.encounter.model import SETTINGS, CodeLine, Encounter
from engine.encounter.rules import EncounterRules
from engine.errors import EngineError, ErrorCode
from engine.rules import rule_rows
from engine.settings import Settings
from engine.types import AnalysisResult

VERSION = "encounter-1"
SETTING_CHOICES = ("auto", *SETTINGS)
MODIFIERS_FILE = "coding_modifiers.txt"


def check_setting(setting: str | None) -> str:
    """``setting`` lower-cased when it is one of :data:`SETTING_CHOICES` (``None`` is ``auto``).

    Raises:
        EngineError: ``BAD_INPUT`` for any other value.
    """
    value = (setting or "auto").strip().lower()
    if value not in SETTING_CHOICES:
        raise EngineError(ErrorCode.BAD_INPUT, f"setting {setting!r} is not one of {', '.join(SETTING_CHOICES)}")
    return value


class EncounterBuilder:
    """Builds the encounter's code set from an analysis.

    Args:
        settings: Engine settings (``rules_dir`` for the rule files, ``cache_dir`` for the parsed Tabular notes).
        conventions: Tabular notes to use instead of loading them (tests).
        rules: Rule files to use instead of reading ``settings.rules_dir``.
    """

    version = VERSION

    def __init__(self, settings: Settings | None = None, conventions: Conventions | None = None,
                 rules: EncounterRules | None = None) -> None:
        self.settings = settings or Settings()
        self.conventions = conventions or Conventions.load(self.settings)
        self.rules = rules or EncounterRules(self.settings.rules_dir)
        path = Path(self.settings.rules_dir) / MODIFIERS_FILE
        self.modifiers = frozenset(f[0].strip().lower() for _, f in rule_rows(path, required=False))
        self._cache = LinkCache()
        self._lock = threading.Lock()

    def clear_cache(self) -> None:
        """Forget the re-linked mentions (benchmarks time a note as if it were the process's first)."""
        self._cache = LinkCache()

    def choose_setting(self, analysis: AnalysisResult, text: str | None, setting: str | None) -> tuple[str, str]:
        """``(setting, why)``: the one asked for, or (``auto``) inpatient when the note reads as an inpatient record
        (a discharge heading, a hospital course, an admission date: ``encounter_context.tsv``), else outpatient."""
        asked = check_setting(setting)
        if asked != "auto":
            return asked, f"{asked}: as asked"
        if text is not None:
            found = self.rules.words("inpatient", text)
            if found:
                return "inpatient", f"inpatient: the note has {found[0]}"
        if any(e.section == "hospital course" for e in analysis.entities):
            return "inpatient", "inpatient: the note has a hospital course"
        return "outpatient", "outpatient: no discharge, admission or hospital course words (the default)"

    def build(self, analysis: AnalysisResult, text: str | None = None, setting: str | None = "auto",
              icd: Any = None) -> Encounter:
        """The encounter's code set.

        Args:
            analysis: The note's analysis (``Pipeline.analyze``); evidence indexes point into its entities.
            text: The note text the analysis was made from; ``None`` reads no words around the mentions (no
                7th character from context, no unrelated-conditions words, no setting from the note's words).
            setting: ``auto``, ``outpatient`` or ``inpatient``.
            icd: The ICD stage (``pipeline.stage("icd")``): codes uncertain findings (inpatient) and describes
                combination codes.

        Returns:
            The :class:`Encounter`; a note without diagnoses gives an empty code set.

        Raises:
            EngineError: ``BAD_INPUT`` for an unknown setting.
        """
        if icd is None:
            raise EngineError(ErrorCode.BAD_INPUT, "the encounter builder needs the ICD stage (icd=...)")
        chosen, why = self.choose_setting(analysis, text, setting)
        ctx = BuildContext(analysis=analysis, text=text, setting=chosen, rules=self.rules,
                           conventions=self.conventions, icd=icd, link_cache=self._cache, modifiers=self.modifiers)
        lines = gather(ctx)
        lines = apply_combinations(ctx, lines)
        lines = apply_supersede(ctx, lines)
        lines = drop_integral(ctx, lines)
        lines, conflicts = resolve_excludes1(ctx, lines)
        explain_pairs(ctx, lines)
        flag_missing(self.conventions, lines)
        explain_uncertain(ctx, lines)
        from engine.encounter.sequence import order

        lines = order(ctx, lines)
        for line in lines:
            line.reason = compose_reason(ctx, line)
        return Encounter(id=analysis.id, setting=chosen, codes=lines, conflicts=conflicts, dropped=ctx.dropped,
                         setting_reason=why)


def compose_reason(ctx: BuildContext, line: CodeLine) -> str:
    """The line's reason in plain words: what was documented, the conventions applied, its place in the order."""
    head = f"{line.code} {line.description}: documented as {ctx.quote(line)}" if line.mentions else \
        f"{line.code} {line.description}"
    seen: set[str] = set()
    facts = []
    for fact in line.facts:
        if fact and fact.lower() not in seen:  # "Chest pain" and "chest pain" say one thing
            seen.add(fact.lower())
            facts.append(fact[0].upper() + fact[1:])
    return ". ".join([head, *facts]) + "."


def load(settings: Settings) -> EncounterBuilder:
    """The ``encounter`` stage (registered in :mod:`engine.registry`)."""
    return EncounterBuilder(settings)
