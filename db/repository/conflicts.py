"""Two or more reviewers on one item: agreement, conflict and adjudication, decided the same way everywhere.

An *item* is one thing a decision is about: an entity (``target='entity'``) or one of its codes
(``target='code'``, by ``code``). Per item, each reviewer's newest decision counts. Their *outcomes* are compared
(``accept`` keeps the span; ``reject`` drops it; ``correct``/``add`` give a corrected span and label; for a code:
keep, drop or replace by another code): equal outcomes agree, different ones conflict. The newest decision made in
the ``adjudicator`` role resolves the item whatever the reviewers said. Plain functions over decision dicts (the
export's rows or :meth:`db.models.Decision.to_dict`), so the Review page and the exports cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ADJUDICATOR = "adjudicator"
REVIEWER = "reviewer"
ROLES = (REVIEWER, ADJUDICATOR)
STATUSES = ("single", "agreed", "conflict", "adjudicated")
"""``single``: one reviewer decided; ``agreed``: several, same outcome; ``conflict``: several, different outcomes
and no adjudication; ``adjudicated``: an adjudicator decided (that decision counts)."""


def item_key(d: dict[str, Any]) -> tuple[str, str | None]:
    """The item a decision is about within its entity: ``(target, code)`` (``code`` is ``None`` for entities;
    a code correction that adds a missed code is about that corrected code)."""
    if d["target"] == "entity":
        return ("entity", None)
    return ("code", d.get("code") or d.get("corrected_code"))


def outcome(d: dict[str, Any]) -> tuple[Any, ...]:
    """What a decision does to its item, comparable between reviewers (see the module doc)."""
    if d["target"] == "entity":
        if d["decision"] in ("correct", "add"):
            return ("span", d.get("corrected_start"), d.get("corrected_end"), d.get("corrected_label"))
        return (d["decision"],)
    if d["decision"] == "correct":
        return ("replace", d.get("corrected_code"))
    return (d["decision"],)


def describe(d: dict[str, Any], text: str | None = None) -> str:
    """A decision's outcome in a few words, as the Review page's table shows it."""
    kind = outcome(d)
    if kind[0] == "span":
        where = f"[{kind[1]}, {kind[2]})" if text is None else repr(text[kind[1]:kind[2]])
        return f"{d['decision']} → {kind[3]} {where}"
    if kind[0] == "replace":
        return f"correct → {kind[1]}"
    return str(d["decision"])


def _order(d: dict[str, Any]) -> tuple[str, int]:
    return (str(d.get("created_at") or ""), int(d.get("id") or 0))


@dataclass(slots=True)
class Resolution:
    """How an item's decisions resolve.

    Attributes:
        status: One of :data:`STATUSES`.
        decision: The decision that counts (for a conflict: the newest, shown but disputed).
        by_reviewer: Each reviewer's newest decision (reviewer role only).
        adjudication: The adjudicator's newest decision, if any.
    """

    status: str
    decision: dict[str, Any]
    by_reviewer: dict[str, dict[str, Any]] = field(default_factory=dict)
    adjudication: dict[str, Any] | None = None


def resolve(decisions: Iterable[dict[str, Any]]) -> Resolution | None:
    """The resolution of one item's decisions (any order), or ``None`` when there are none."""
    ordered = sorted(decisions, key=_order)
    if not ordered:
        return None
    by_reviewer: dict[str, dict[str, Any]] = {}
    adjudication = None
    for d in ordered:
        if d.get("role") == ADJUDICATOR:
            adjudication = d
        else:
            by_reviewer[d["reviewer"]] = d
    if adjudication is not None:
        return Resolution("adjudicated", adjudication, by_reviewer, adjudication)
    newest = max(by_reviewer.values(), key=_order)
    if len(by_reviewer) == 1:
        return Resolution("single", newest, by_reviewer)
    agreed = len({outcome(d) for d in by_reviewer.values()}) == 1
    return Resolution("agreed" if agreed else "conflict", newest, by_reviewer)


def resolve_entity(decisions: Iterable[dict[str, Any]]) -> dict[tuple[str, str | None], Resolution]:
    """Every item of one entity (the entity itself and each code decided on) with its resolution."""
    items: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for d in decisions:
        items.setdefault(item_key(d), []).append(d)
    return {key: res for key, ds in items.items() if (res := resolve(ds)) is not None}
