"""A coder's decisions on an encounter's code set (issue 19 item 6): record them, read them back, check them.

The engine (:func:`engine.encounter.record_decisions`) applies a decision to the code set and gives the code set it
leaves; this module stores that step with who made it, when, and the versions that made the code set. Input is
validated completely before anything is added, so a :class:`~db.errors.FeedbackError` means nothing was written;
each decision gets its audit row in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.models import Analysis, CodesetDecision
from db.repository.validation import add_audit, check_code, check_comment, check_reviewer, signed

CODESET_ACTIONS = ("accept", "remove", "move", "add")
"""The engine's decision actions (:data:`engine.encounter.decisions.ACTIONS`)."""
SETTINGS = ("outpatient", "inpatient")


@lru_cache(maxsize=65536)
def is_icd10cm(code: str) -> bool:
    """Whether ``code`` (with its dot) is a code of the ICD-10-CM Tabular List (``simple-icd-10-cm``)."""
    import simple_icd_10_cm as cm

    return bool(cm.is_valid_item(code))


def check_known_code(code: object, where: str = "code") -> str:
    """The code, upper-cased, when it is an ICD-10-CM code; refused naming it otherwise."""
    value = check_code(code, where)
    if not is_icd10cm(value):
        raise FeedbackError(FeedbackCode.BAD_CODE, f"{where} {value!r} is not in ICD-10-CM (unknown code)")
    return value


def _codes(values: Sequence[object], what: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"{what} must be a list of codes, got {values!r}")
    return [check_known_code(v, f"{what} code") for v in values]


def codeset_decisions(session: Session, analysis_id: int) -> list[CodesetDecision]:
    """The code-set decisions of one analysis, in the order they were made."""
    stmt = select(CodesetDecision).where(CodesetDecision.analysis_id == analysis_id).order_by(CodesetDecision.id)
    return list(session.scalars(stmt))


def current_codes(session: Session, analysis_id: int) -> list[str] | None:
    """The analysis's code set after its last decision, or ``None`` when no decision was made."""
    last = session.scalar(select(CodesetDecision).where(CodesetDecision.analysis_id == analysis_id)
                          .order_by(CodesetDecision.id.desc()).limit(1))
    return None if last is None else list(last.final or [])


def record_codeset_decision(
    session: Session,
    *,
    analysis_id: int,
    reviewer: str,
    action: str,
    code: str,
    setting: str,
    suggested: Sequence[str],
    final: Sequence[str],
    to: int | None = None,
    comment: str | None = None,
    conventions: str | None = None,
) -> CodesetDecision:
    """Record one decision on an analysis's code set, with its audit row, atomically.

    Args:
        session: An open session.
        analysis_id: The analysis whose code set was decided on.
        reviewer: Who decided (non-empty).
        action: ``accept``, ``remove``, ``move`` or ``add``.
        code: The line's code (for ``add``: the code added); it must be an ICD-10-CM code and, except for
            ``add``, a line of the code set the decision started from.
        setting: ``outpatient`` or ``inpatient``, as the code set was built.
        suggested: The engine's codes, in its order.
        final: The codes after the decision (``DecisionRecord.final``), in order.
        to: For ``move`` (required) and ``add`` (optional): the new 1-based sequence number.
        comment: The coder's own words.
        conventions: The code-set builder and ICD-10-CM package versions.

    Returns:
        The stored row (flushed: it has its id); ``model_version`` is the analysis's ICD version.

    Raises:
        FeedbackError: For an unknown analysis or action, an unknown or malformed code (named), a code that is not
            a line of the current code set, a bad ``to`` or setting, or an empty reviewer. Nothing is written then.
    """
    reviewer = check_reviewer(reviewer)
    comment = check_comment(comment)
    if action not in CODESET_ACTIONS:
        raise FeedbackError(FeedbackCode.BAD_DECISION,
                            f"code-set action {action!r} is not one of {', '.join(CODESET_ACTIONS)}")
    if setting not in SETTINGS:
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"setting {setting!r} is not one of {', '.join(SETTINGS)}")
    if to is not None and (isinstance(to, bool) or not isinstance(to, int) or to < 1):
        raise FeedbackError(FeedbackCode.BAD_INPUT, f"'to' must be a sequence number from 1, got {to!r}")
    if action == "move" and to is None:
        raise FeedbackError(FeedbackCode.BAD_INPUT, "'move' needs 'to'")
    analysis = session.get(Analysis, analysis_id) if isinstance(analysis_id, int) else None
    if analysis is None:
        raise FeedbackError(FeedbackCode.UNKNOWN_ANALYSIS, f"no analysis with id {analysis_id!r}")
    code = check_known_code(code, f"{action} code")
    suggested_codes, final_codes = _codes(suggested, "suggested"), _codes(final, "final")
    before = current_codes(session, analysis.id)
    before = suggested_codes if before is None else before
    if action != "add" and code not in before:
        raise FeedbackError(FeedbackCode.BAD_CODE, f"{action} code {code!r} is not a line of analysis "
                                                   f"{analysis.id}'s code set (lines: {', '.join(before) or 'none'})")
    row = CodesetDecision(analysis_id=analysis.id, action=action, code=code, to_sequence=to, setting=setting,
                          suggested=suggested_codes, final=final_codes, conventions=conventions,
                          **signed(reviewer, comment, analysis.icd_version))
    session.add(row)
    session.flush()
    payload = row.to_dict()
    payload.update(analysis_id=analysis.id, setting=setting, suggested=suggested_codes)
    add_audit(session, "codeset_decision", row.id, reviewer, payload, row.created_at)
    session.flush()
    return row


def stored_code_problems(rows: Sequence[CodesetDecision]) -> list[str]:
    """Each stored decision code (and final code) that is not ICD-10-CM, named with the decision it is in.

    Rows written through :func:`record_codeset_decision` have none; a row written another way, or by a
    version whose code list had a code this one lacks, is reported here rather than exported silently.
    """
    problems: dict[str, None] = {}
    for row in rows:
        for code in [row.code, *(row.final or [])]:
            if not isinstance(code, str) or not is_icd10cm(code):
                problems[f"code-set decision {row.id} ({row.action}): unknown code {code!r}"] = None
    return list(problems)
