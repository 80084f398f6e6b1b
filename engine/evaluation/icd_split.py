"""The ICD dev protocol: codes split by category hash, so nothing a held-out code is called can leak.

Every 3-character category falls, by a hash of its name, into one of three groups: ``build`` (70%: its Index
wording and inclusion terms are in the index, the encoder's training pairs), ``ranker`` (10%: held out of the
index and the encoder, its wording trains the hybrid ranker and the calibration) and ``test`` (20%: held out of
everything, its wording is scored). Held-out codes keep only their tabular description in the dev linker: what a
code is *named* in the Index and its inclusion terms is what must be found from other wording.

Queries are the held-out codes' Index paths (natural order, at most :data:`MAX_QUERY_LEVELS` levels) and inclusion
terms, minus any string that is verbatim a tabular description; gold is the code the entry leads to (its default
billable child when the Index code is incomplete). A hit "at category level" is a code under the gold category.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass

from engine.icd.alphabetic import AlphaEntry
from engine.icd.tabular import Tabular, code_position

GROUPS = ("build", "ranker", "test")
MAX_QUERY_LEVELS = 3


def group_of(code: str) -> str:
    """``build``, ``ranker`` or ``test`` for a code, by a hash of its 3-character category."""
    h = int(hashlib.sha1(code[:3].upper().encode()).hexdigest()[:8], 16) % 10
    return "test" if h < 2 else "ranker" if h == 2 else "build"


def held_out(code: str) -> bool:
    """Whether a code's wording is kept out of the dev linker (``ranker`` and ``test`` groups)."""
    return group_of(code) != "build"


@dataclass(frozen=True, slots=True)
class DevQuery:
    """One query of the protocol: ``text``, gold ``code`` (billable), its ``source`` (index or inclusion)."""

    text: str
    code: str
    source: str


def inclusion_terms(tab: Tabular) -> list[tuple[str, str]]:
    """``(code, inclusion term)`` of every non-extension code of the tabular list."""
    import simple_icd_10_cm as cm

    out = []
    for i, c in enumerate(tab.codes):
        if not tab.extension[i]:
            out.extend((c, t) for t in cm.get_inclusion_term(c))
    return out


def _leaf(tab: Tabular, code: str) -> str | None:
    ci = code_position(tab.pos, code)
    return None if ci is None else tab.codes[int(tab.default_leaf[ci])]


def queries(
    tab: Tabular,
    alpha: Iterable[AlphaEntry],
    inclusions: Iterable[tuple[str, str]],
    group: str,
    limit: int | None = None,
    seed: int = 13,
) -> list[DevQuery]:
    """The protocol's queries of one group (deduplicated by text, shuffled with ``seed``, at most ``limit``)."""
    descriptions = {d.lower() for d in tab.descriptions}
    seen: set[str] = set()
    out: list[DevQuery] = []

    def offer(text: str, code: str, source: str) -> None:
        low = text.lower().strip()
        if not low or low in seen or low in descriptions or group_of(code) != group:
            return
        leaf = _leaf(tab, code)
        if leaf is None:
            return
        seen.add(low)
        out.append(DevQuery(text.strip(), leaf, source))

    for e in alpha:
        if len(e.path) <= MAX_QUERY_LEVELS and "specified nec" not in e.phrase and " nec" not in e.phrase:
            offer(e.phrase, e.code, "index")
    for code, term in inclusions:
        offer(term, code, "inclusion")
    random.Random(seed).shuffle(out)
    return out[:limit] if limit else out


def synonym_sets(
    tab: Tabular, alpha: Iterable[AlphaEntry], inclusions: Iterable[tuple[str, str]], groups: tuple[str, ...]
) -> dict[str, list[str]]:
    """Strings naming each billable code of ``groups``: description, inclusion terms, Index paths (both orders).

    Index entries and inclusion terms of a non-billable code go to its default billable child, the code a coder
    picks when the wording says no more.
    """
    sets: dict[str, list[str]] = {}

    def add(code: str, text: str) -> None:
        leaf = _leaf(tab, code)
        if leaf is None or group_of(leaf) not in groups:
            return
        bucket = sets.setdefault(leaf, [])
        text = text.strip()
        if text and text.lower() not in {t.lower() for t in bucket}:
            bucket.append(text)

    for i, c in enumerate(tab.codes):
        if tab.billable[i] and not tab.extension[i]:
            add(c, tab.descriptions[i])
    for code, term in inclusions:
        add(code, term)
    for e in alpha:
        add(e.code, e.phrase)
        add(e.code, ", ".join(e.path))
    return sets
