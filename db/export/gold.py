"""What one exported entity becomes after review: gold (a reviewer's, the reviewers' agreed or the adjudicator's
decision, or the note's "fully reviewed" mark) or silver (the model's, nobody decided), and its open conflicts.

Per entity, its entity item and each code item resolve as :mod:`db.repository.conflicts` says (the adjudicator's
newest decision, else the reviewers' agreed one; a conflict counts its newest decision, flagged):

- an entity decision: ``accept`` keeps the model's span, ``correct``/``add`` give the corrected span and label,
  ``reject`` drops it;
- only code decisions: the entity stands while it keeps a code (a lone code rejection makes nothing gold);
- no decision in a note marked *fully reviewed*: the model's span and codes stand as given (the reviewer went
  through the note and left them), so a reviewed note exports no false negatives for spans nobody clicked;
- no decision otherwise: the model's span is *silver*, exported only when silver is asked for.

Codes: ``accept`` keeps a code, ``reject`` removes it, ``correct`` replaces it; in a fully reviewed note (and on a
silver span) the model's undecided codes stay, elsewhere only decided codes are gold.
"""

from __future__ import annotations

from typing import Any

from db.repository.conflicts import describe, resolve_entity

CONFLICT_OPTIONS = ("exclude", "flag")
"""What an export does with a note whose reviewers disagree on an item no adjudicator resolved."""


def _apply_code_decision(d: dict[str, Any], kept_codes: list[str]) -> None:
    if d["decision"] == "accept" and d["code"] not in kept_codes:
        kept_codes.append(d["code"])
    elif d["decision"] == "reject" and d["code"] in kept_codes:
        kept_codes.remove(d["code"])
    elif d["decision"] == "correct":
        if d["code"] in kept_codes:
            kept_codes.remove(d["code"])
        if d["corrected_code"] not in kept_codes:
            kept_codes.append(d["corrected_code"])


def entity_gold(
    entity: dict[str, Any], text: str, *, reviewed: bool, silver: bool
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The entity after review (``None``: not exported as an entity) and its unresolved conflicts.

    Args:
        entity: An export entity with its selected ``decisions``.
        text: The note text the spans point into.
        reviewed: The note is marked fully reviewed.
        silver: Undecided model spans of notes not fully reviewed are wanted (as ``source='silver'``).

    Returns:
        ``(span, conflicts)``: the span dict has ``start``, ``end``, ``text``, ``label``, ``codes``,
        ``suggestion_id``, ``source`` (``gold``/``silver``) and ``resolution`` (``single``, ``agreed``,
        ``adjudicated``, ``conflict``, ``reviewed`` or ``model``).
    """
    items = resolve_entity(entity["decisions"])
    conflicts = [
        {"suggestion_id": entity["suggestion_id"], "target": target, "code": code,
         "decisions": {r: describe(d) for r, d in sorted(res.by_reviewer.items())}}
        for (target, code), res in items.items() if res.status == "conflict"
    ]
    model_span = (entity["start"], entity["end"], entity["label"])
    model_codes = [str(c.get("code")) for c in entity.get("codes") or [] if isinstance(c, dict) and c.get("code")]
    entity_item = items.get(("entity", None))
    code_items = [res for (target, _), res in items.items() if target == "code"]
    kept = list(model_codes) if reviewed else []
    for res in code_items:
        _apply_code_decision(res.decision, kept)
    source, span = "gold", None
    if entity_item is not None:
        d = entity_item.decision
        resolution = entity_item.status
        if d["decision"] == "accept":
            span = model_span
        elif d["decision"] in ("correct", "add"):
            span = (d["corrected_start"], d["corrected_end"], d["corrected_label"])
    elif kept and code_items:
        span, resolution = model_span, "conflict" if conflicts else code_items[0].status
    elif reviewed:
        span, resolution = model_span, "reviewed"
    elif silver:
        kept = list(model_codes)
        for res in code_items:
            _apply_code_decision(res.decision, kept)
        span, source, resolution = model_span, "silver", "model"
    if span is None:
        return None, conflicts
    if conflicts:
        resolution = "conflict"
    start, end, label = span
    return {"start": start, "end": end, "text": text[start:end], "label": label, "codes": kept,
            "suggestion_id": entity["suggestion_id"], "source": source, "resolution": resolution}, conflicts
