"""The one definition of which decisions a query selects: the History page, the exports and the retraining data.

The six filters (``since``, ``until``, ``reviewer``, ``model_version``, ``decision``, ``label``) are the fields of
:class:`ExportFilters`; functions that take them as keywords pass them through :meth:`ExportFilters.from_keywords`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func

from db.errors import FeedbackCode, FeedbackError
from db.models import Decision, SentenceDecision, Suggestion
from db.repository.validation import ALL_DECISIONS, SENTENCE_DECISIONS, check_label, to_utc_naive


@dataclass(frozen=True, slots=True)
class ExportFilters:
    """Which decisions a query selects (``since`` inclusive, ``until`` exclusive; naive times are UTC).

    Times may be given as ISO 8601 strings or aware datetimes; they are stored as naive UTC.

    Raises:
        FeedbackError: ``bad_input`` for a time that does not read.
    """

    since: datetime | None = None
    until: datetime | None = None
    reviewer: str | None = None
    model_version: str | None = None
    decision: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", to_utc_naive(self.since))
        object.__setattr__(self, "until", to_utc_naive(self.until))

    @classmethod
    def from_keywords(cls, filters: ExportFilters | None, keywords: dict[str, Any]) -> ExportFilters:
        """``filters`` itself, or filters made of the keywords a caller passed (one or the other).

        Raises:
            TypeError: For both, or for a keyword that is not a filter.
        """
        if filters is not None and keywords:
            raise TypeError("give filters or filter keywords, not both")
        return filters if filters is not None else cls(**keywords)

    @property
    def joins_suggestion(self) -> bool:
        """Whether :meth:`decision_conditions` needs :class:`Suggestion` joined (the label filter reads it)."""
        return self.label is not None

    def decision_conditions(self) -> list[Any]:
        """SQL conditions on :class:`Decision` (joined with :class:`Suggestion` when :attr:`joins_suggestion`).

        Raises:
            FeedbackError: ``bad_decision`` or ``bad_label`` for a value outside the contract.
        """
        conditions: list[Any] = self.common_conditions(Decision)
        if self.decision is not None:
            conditions.append(self._decision_is(Decision.decision, ALL_DECISIONS,
                                                f"decision filter {self.decision!r} not in {ALL_DECISIONS}"))
        if self.label is not None:
            check_label(self.label)
            conditions.append(func.coalesce(Decision.corrected_label, Suggestion.label) == self.label)
        return conditions

    def sentence_conditions(self) -> list[Any]:
        """SQL conditions on :class:`SentenceDecision` (summaries have no label; ``decision`` is keep/drop).

        Raises:
            FeedbackError: ``bad_decision`` for a decision other than keep/drop.
        """
        conditions: list[Any] = self.common_conditions(SentenceDecision)
        if self.decision is not None:
            conditions.append(self._decision_is(SentenceDecision.decision, SENTENCE_DECISIONS,
                                                f"summary decision filter {self.decision!r}: keep/drop"))
        return conditions

    def _decision_is(self, column: Any, allowed: tuple[str, ...], problem: str) -> Any:
        """``column == decision``, once the decision is known to be one of ``allowed`` (else ``problem``)."""
        if self.decision not in allowed:
            raise FeedbackError(FeedbackCode.BAD_DECISION, problem)
        return column == self.decision

    def common_conditions(self, table: Any) -> list[Any]:
        """SQL conditions of the four filters every decision table has (``since``, ``until``, ``reviewer``,
        ``model_version``) on ``table``: :class:`Decision`, :class:`SentenceDecision` or a code-set decision."""
        conditions: list[Any] = []
        if self.since is not None:
            conditions.append(table.created_at >= self.since)
        if self.until is not None:
            conditions.append(table.created_at < self.until)
        if self.reviewer is not None:
            conditions.append(table.reviewer == self.reviewer)
        if self.model_version is not None:
            conditions.append(table.model_version == self.model_version)
        return conditions

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times in ISO 8601)."""
        out = asdict(self)
        for key in ("since", "until"):
            if out[key] is not None:
                out[key] = out[key].isoformat()
        return out
