"""The encounter with a pipeline: the ``code`` verb, ``analyze --encounter``, and decisions for the app.

These functions are the only place that ties the builder to :class:`~engine.pipeline.Pipeline`: they take the
``encounter`` and ``icd`` stages from it, so a process loads the Tabular notes once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.encounter.builder import check_setting
from engine.encounter.decisions import Decision, apply_decisions
from engine.encounter.model import Encounter
from engine.types import AnalysisResult, Code, Entity


def build_encounter(pipeline: Any, analysis: AnalysisResult, text: str | None, setting: str | None = "auto"
                    ) -> Encounter:
    """The encounter of an analysis already made (the app has it), with the pipeline's stages."""
    return pipeline.stage("encounter").build(analysis, text, setting, icd=pipeline.stage("icd"))


def analysis_from_dict(result: dict[str, Any]) -> AnalysisResult:
    """An analysis from its contract JSON form (what the app and the feedback store keep), for the builder.

    The builder reads each entity's span, text, label, score, traits, trigger, section and codes, all of which the
    JSON form carries, so the code set of ``analysis_from_dict(a.to_dict())`` is the code set of ``a``.
    """
    entities = [
        Entity(start=int(e["start"]), end=int(e["end"]), text=e["text"], label=e["label"],
               score=float(e.get("score") or 0.0), traits=list(e.get("traits") or []), trigger=e.get("trigger"),
               section=e.get("section"), note=e.get("note"),
               codes=[Code(c["code"], c.get("description", ""), float(c.get("score") or 0.0), bool(c.get("billable")),
                           c.get("evidence")) for c in e.get("codes") or []])
        for e in result.get("entities") or []
    ]
    return AnalysisResult(result.get("id"), entities, dict(result.get("models") or {}),
                          dict(result.get("timings_ms") or {}))


def code_note(pipeline: Any, text: str, note_id: str | None = None, setting: str | None = "auto") -> dict[str, Any]:
    """The ``code`` verb's output for one note: the contract's ``{"id", "setting", "codes", "conflicts"}``.

    Raises:
        EngineError: ``BAD_INPUT`` for an unknown setting (checked before the note is analysed).
    """
    check_setting(setting)
    analysis = pipeline.analyze(text, note_id)
    return build_encounter(pipeline, analysis, text, setting).to_dict()


def wants_encounter(args: Any) -> bool:
    """Whether ``analyze`` was asked for the ``encounter`` object (``--encounter`` or ``--setting``)."""
    return bool(getattr(args, "encounter", False) or getattr(args, "setting", None))


def encounter_verb(verb: str, pipeline: Any, item: dict[str, Any], args: Any) -> dict[str, Any]:
    """``code`` (the encounter object) or ``analyze`` with the encounter object, for one input object.

    An input object's own ``"setting"`` field, when given, wins over ``--setting``.

    Raises:
        EngineError: ``BAD_INPUT`` for an unknown setting.
    """
    setting = check_setting(item.get("setting") or getattr(args, "setting", None))
    if verb == "code":
        return code_note(pipeline, item["text"], item.get("id"), setting)
    analysis = pipeline.analyze(item["text"], item.get("id"))
    out = analysis.to_dict()
    out["encounter"] = build_encounter(pipeline, analysis, item["text"], setting).to_dict()
    return out


def apply_coder_decisions(pipeline: Any, encounter: Encounter | dict[str, Any],
                          decisions: Sequence[Decision | dict[str, Any]]) -> Encounter:
    """:func:`~engine.encounter.decisions.apply_decisions` with the pipeline's Tabular notes and ICD list."""
    builder = pipeline.stage("encounter")
    return apply_decisions(encounter, decisions, builder.conventions, pipeline.stage("icd").describe)
