"""A note's review as a whole, for the Review page: who decided what, the "fully reviewed" mark, adjudication.

Thin wrappers over :mod:`db.repository` with the app's rules (a name is required; one short transaction per
write); plain Python, usable without Streamlit. Which names may adjudicate is the ``$CLINICAL_NLP_ADJUDICATORS``
setting (:func:`db.settings.adjudicators`); an adjudicator's decision is stored like any other, with its role.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from db import repository
from db.repository import NoteReview
from db.session import session_scope
from db.settings import ENV_ADJUDICATORS, adjudicators
from ui.review import ReviewError, require_reviewer

STATUS_TEXT = {"single": "one reviewer", "agreed": "agreed", "conflict": "CONFLICT", "adjudicated": "adjudicated"}


def load_note_review(engine: Any, analysis_id: int) -> NoteReview:
    """Who decided what on the analysis (see :func:`db.repository.note_review`)."""
    with session_scope(engine, write=False) as session:
        return repository.note_review(session, analysis_id)


def mark_fully_reviewed(engine: Any, *, reviewer: str | None, analysis_id: int, reviewed: bool = True) -> None:
    """Set or clear the note's "fully reviewed" mark under the reviewer's name.

    Raises:
        ReviewError: No reviewer name.
    """
    name = require_reviewer(reviewer)
    with session_scope(engine) as session:
        repository.set_fully_reviewed(session, analysis_id=analysis_id, reviewer=name, reviewed=reviewed)


def is_adjudicator(name: str | None) -> bool:
    """Whether this reviewer name may resolve conflicts."""
    return bool(name and name.strip() in adjudicators())


def adjudicate(engine: Any, *, reviewer: str | None, option: dict[str, Any]) -> int:
    """Resolve a conflict by taking one reviewer's outcome as the adjudicator's own decision; its id.

    Args:
        engine: The feedback store.
        reviewer: The adjudicator's name.
        option: One of :attr:`db.repository.ReviewItem.options` (a reviewer's decision on the item).

    Raises:
        ReviewError: No name, or a name that is not an adjudicator.
    """
    name = require_reviewer(reviewer)
    if not is_adjudicator(name):
        raise ReviewError(f"{name} is not an adjudicator: conflicts are resolved by the names in {ENV_ADJUDICATORS}.")
    fields = {k: option.get(k) for k in ("corrected_start", "corrected_end", "corrected_label")
              if option["target"] == "entity" and option.get(k) is not None}
    if option["target"] == "code":
        fields = {"code": option.get("code")}
        if option.get("corrected_code"):
            fields["corrected_code"] = option["corrected_code"]
    if option["decision"] == "add":  # a missed entity one reviewer added: the adjudicator keeps it
        decision, fields = "accept", {}
    else:
        decision = option["decision"]
    with session_scope(engine) as session:
        row = repository.record_decision(session, suggestion_id=option["suggestion_id"], reviewer=name,
                                         decision=decision, target=option["target"], role="adjudicator", **fields)
        session.flush()
        return int(row.id)


def review_frame(view: NoteReview) -> pd.DataFrame:
    """One row per decided entity or code: what it is, its status, each reviewer's decision, the adjudication."""
    rows = []
    for item in view.items:
        row = {"#": item.position, "entity": item.text, "type": item.label,
               "item": "entity" if item.target == "entity" else f"code {item.code}",
               "status": STATUS_TEXT.get(item.status, item.status)}
        row.update({name: item.by_reviewer.get(name, "") for name in view.reviewers})
        row["adjudicator"] = item.adjudication or ""
        rows.append(row)
    columns = ["#", "entity", "type", "item", "status", *view.reviewers, "adjudicator"]
    return pd.DataFrame(rows, columns=columns)
