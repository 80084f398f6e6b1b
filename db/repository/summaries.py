"""Summaries and the keep/drop decisions on their sentences."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import Note, SentenceDecision, Summary, SummarySentenceRow
from db.repository.validation import (
    SENTENCE_DECISIONS,
    add_audit,
    check_comment,
    check_reviewer,
    check_span,
    signed,
)


def save_summary(
    session: Session, note: Note, summary: dict[str, Any], *, model_version: str | None = None
) -> list[SummarySentenceRow]:
    """Store a summary result (the contract's summary object) and return its sentences in note order.

    Raises:
        FeedbackError: When a sentence's span does not fit the note or its text differs from the note's.
    """
    if not isinstance(summary, dict) or not isinstance(summary.get("sentences"), list):
        raise FeedbackError(FeedbackCode.BAD_INPUT, "a summary result needs a 'sentences' list")
    rows = []
    for i, raw in enumerate(summary["sentences"]):
        if not isinstance(raw, dict) or "start" not in raw or "end" not in raw:
            raise FeedbackError(FeedbackCode.BAD_INPUT, f"sentence {i} lacks start/end")
        end_raw = raw["end"]  # a note kept without text (store_text=none): offsets into the unkept note
        unkept = "x" * end_raw if isinstance(end_raw, int) and not isinstance(end_raw, bool) and end_raw > 0 else ""
        start, end = check_span(raw["start"], end_raw, note.text or unkept)
        if raw.get("text") is not None and raw["text"] != note.text[start:end]:
            raise FeedbackError(FeedbackCode.BAD_SPAN, f"sentence {i}: text differs from note[{start}:{end}]")
        rows.append((start, end, raw.get("score"), raw.get("rank")))
    row = Summary(
        note=note,
        external_id=None if summary.get("id") is None else str(summary["id"]),
        model_version=model_version,
    )
    session.add(row)
    sentences = [
        SummarySentenceRow(
            summary=row, start=s, end=e, text=note.text[s:e], score=None if sc is None else float(sc), rank=rk
        )
        for s, e, sc, rk in sorted(rows)
    ]
    session.add_all(sentences)
    session.flush()
    return sentences


def record_sentence_decision(
    session: Session, *, sentence_id: int, reviewer: str, decision: str, comment: str | None = None
) -> SentenceDecision:
    """Record ``keep`` or ``drop`` on a summary sentence, with its audit row, atomically.

    Raises:
        FeedbackError: For an unknown sentence, a decision other than keep/drop, or an empty reviewer.
    """
    reviewer = check_reviewer(reviewer)
    comment = check_comment(comment)
    if decision not in SENTENCE_DECISIONS:
        raise FeedbackError(FeedbackCode.BAD_DECISION, f"sentence decision {decision!r} is not keep or drop")
    sentence = session.get(SummarySentenceRow, sentence_id) if isinstance(sentence_id, int) else None
    if sentence is None:
        raise FeedbackError(FeedbackCode.UNKNOWN_SENTENCE, f"no summary sentence with id {sentence_id!r}")
    row = SentenceDecision(
        sentence_id=sentence.id,
        summary_id=sentence.summary_id,
        decision=decision,
        **signed(reviewer, comment, sentence.summary.model_version),
    )
    session.add(row)
    session.flush()
    payload = {
        "sentence_id": sentence.id,
        "summary_id": sentence.summary_id,
        "span": [sentence.start, sentence.end],
        "decision": decision,
        "reviewer": reviewer,
        "comment": comment,
        "model_version": row.model_version,
        "created_at": row.created_at.isoformat(),
    }
    add_audit(session, "sentence_decision", row.id, reviewer, payload, row.created_at)
    session.flush()
    return row


