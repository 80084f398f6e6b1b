"""Typed result objects that serialise exactly to the public contract (../shared/CONTRACT.md).

Every stage returns these objects; ``to_dict`` gives the contract's JSON shape. Optional extension fields
(such as ``Code.evidence``) are written only when set, so the contract's required fields never change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LABELS: tuple[str, ...] = ("DIAG", "PROC", "MED", "TEST", "ANAT")
"""The five entity labels of the contract."""

TRAITS: tuple[str, ...] = ("negated", "family", "hypothetical", "possible", "historical")
"""Assertion traits in the contract's priority order (first present one names the assertion)."""


def assertion_from_traits(traits: list[str] | tuple[str, ...]) -> str:
    """Return the one-word assertion for a set of traits, per the contract's priority order.

    Args:
        traits: Any subset of :data:`TRAITS`.

    Returns:
        The first of ``negated, family, hypothetical, possible, historical`` found in ``traits``, else ``present``.
    """
    for trait in TRAITS:
        if trait in traits:
            return trait
    return "present"


def sort_traits(traits: set[str] | list[str] | tuple[str, ...]) -> list[str]:
    """Return traits de-duplicated and in the contract's priority order."""
    return [t for t in TRAITS if t in set(traits)]


@dataclass(slots=True)
class Span:
    """A predicted entity span before assertion and coding (NER stage output)."""

    start: int
    end: int
    label: str
    score: float


@dataclass(slots=True)
class Section:
    """A note section: ``[start, end)`` character range and its lower-case canonical name."""

    start: int
    end: int
    name: str


@dataclass(slots=True)
class Judgement:
    """An assertion stage decision for one span."""

    traits: list[str] = field(default_factory=list)
    trigger: str | None = None

    @property
    def assertion(self) -> str:
        """The one-word assertion derived from :attr:`traits`."""
        return assertion_from_traits(self.traits)


@dataclass(slots=True)
class Code:
    """One ICD-10-CM suggestion."""

    code: str
    description: str
    score: float
    billable: bool
    evidence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Serialise to the contract's code object (``evidence`` only when set)."""
        out: dict[str, Any] = {
            "code": self.code,
            "description": self.description,
            "score": round(float(self.score), 4),
            "billable": bool(self.billable),
        }
        if self.evidence is not None:
            out["evidence"] = self.evidence
        return out


@dataclass(slots=True)
class Entity:
    """A fully annotated entity of the analysis result."""

    start: int
    end: int
    text: str
    label: str
    score: float
    traits: list[str] = field(default_factory=list)
    trigger: str | None = None
    section: str | None = None
    codes: list[Code] = field(default_factory=list)
    note: str | None = None
    """Why there are no codes (for example ``"negated: not coded"``); an optional extension field."""
    coding: Any = None
    """The coding mention the codes come from (:class:`engine.coding_mention.CodingMention`) when it is more than
    the entity's own text ("urinary tract infection" for the entity "infection"); an optional extension field."""
    candidates: list[Code] = field(default_factory=list)
    """Suggestions folded away when the linker abstains (``note`` "no confident code"); optional extension."""

    @property
    def assertion(self) -> str:
        """The one-word assertion derived from :attr:`traits`."""
        return assertion_from_traits(self.traits)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to the contract's entity object."""
        out: dict[str, Any] = {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "label": self.label,
            "score": round(float(self.score), 4),
            "assertion": self.assertion,
            "traits": sort_traits(self.traits),
            "trigger": self.trigger,
            "section": self.section,
            "codes": [c.to_dict() for c in self.codes],
        }
        if self.note is not None:
            out["note"] = self.note
        if self.coding is not None:
            out["coding"] = self.coding.to_dict()
        if self.candidates:
            out["candidates"] = [c.to_dict() for c in self.candidates]
        return out


@dataclass(slots=True)
class AnalysisResult:
    """The contract's analysis result for one note."""

    id: str | None
    entities: list[Entity]
    models: dict[str, str]
    timings_ms: dict[str, float]
    token_stats: dict[str, float] | None = None
    """NER token statistics for monitoring (``engine.monitoring.profile.token_summary``); not serialised."""

    def to_dict(self) -> dict[str, Any]:
        """Serialise to the contract's analysis object."""
        return {
            "id": self.id,
            "entities": [e.to_dict() for e in self.entities],
            "models": dict(self.models),
            "timings_ms": {k: round(float(v), 3) for k, v in self.timings_ms.items()},
        }


@dataclass(slots=True)
class SummarySentence:
    """One extracted sentence: verbatim ``text == note[start:end]``, ``rank`` 1 is most salient."""

    start: int
    end: int
    text: str
    score: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        """Serialise to the contract's sentence object."""
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "score": round(float(self.score), 4),
            "rank": self.rank,
        }


@dataclass(slots=True)
class SummaryResult:
    """The contract's summary result: sentences in note order."""

    id: str | None
    sentences: list[SummarySentence]

    def to_dict(self) -> dict[str, Any]:
        """Serialise to the contract's summary object."""
        return {"id": self.id, "sentences": [s.to_dict() for s in sorted(self.sentences, key=lambda s: s.start)]}
