"""Offsets between an input text and its redacted form.

Redaction replaces disjoint input ranges with new strings. :class:`OffsetMap` applies them and maps any input
span onto the redacted text, so exported entities still point at their own characters: a span clear of PHI keeps
its text exactly, and a span that touches a replaced range grows to cover that range's replacement.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Replacement:
    """Input characters ``[start, end)`` become ``text``."""

    start: int
    end: int
    text: str


class OffsetMap:
    """The redacted text and the offset mapping of one note.

    Args:
        original: The input text.
        replacements: Disjoint replacements (any order).

    Raises:
        ValueError: Replacements overlap or fall outside the text.
    """

    def __init__(self, original: str, replacements: Sequence[Replacement]) -> None:
        reps = sorted(replacements, key=lambda r: r.start)
        parts: list[str] = []
        self._old_starts: list[int] = []
        self._old_ends: list[int] = []
        self._new_starts: list[int] = []
        self._new_ends: list[int] = []
        pos = new_len = 0
        for rep in reps:
            if rep.start < pos or rep.end < rep.start or rep.end > len(original):
                raise ValueError(f"replacement {rep.start}-{rep.end} overlaps another or leaves the text")
            parts.append(original[pos:rep.start])
            new_len += rep.start - pos
            self._old_starts.append(rep.start)
            self._old_ends.append(rep.end)
            self._new_starts.append(new_len)
            parts.append(rep.text)
            new_len += len(rep.text)
            self._new_ends.append(new_len)
            pos = rep.end
        parts.append(original[pos:])
        self.text = "".join(parts)
        self.replacements = reps

    def _point(self, offset: int, side: str) -> int:
        """Map one input offset; inside a replaced range it snaps to the range's start (or, for an end, its end)."""
        i = bisect_right(self._old_starts, offset) - 1
        if i < 0:
            return offset
        if offset < self._old_ends[i]:
            if side == "start" or offset == self._old_starts[i]:
                return self._new_starts[i]
            return self._new_ends[i]
        return self._new_ends[i] + (offset - self._old_ends[i])

    def map_span(self, start: int, end: int) -> tuple[int, int]:
        """The redacted-text span for input span ``[start, end)``.

        A boundary that falls inside a replaced range moves outward to cover the whole replacement, so the mapped
        span never cuts a surrogate in half.
        """
        new_start = self._point(start, "start")
        if end <= start:
            return new_start, new_start
        i = bisect_right(self._old_starts, end - 1) - 1
        new_end = self._new_ends[i] if i >= 0 and end - 1 < self._old_ends[i] else self._point(end, "end")
        return new_start, max(new_start, new_end)

    def touches(self, start: int, end: int) -> bool:
        """True when input span ``[start, end)`` overlaps a replaced range."""
        if end <= start:
            return False
        i = bisect_left(self._old_starts, end) - 1
        return i >= 0 and self._old_ends[i] > start


def map_entities(omap: OffsetMap, entities: Sequence[dict]) -> list[dict]:
    """Copies of contract entities (``start``, ``end``, ``text``...) re-pointed at the redacted text.

    Every returned entity satisfies ``omap.text[start:end] == text``; an entity that touched PHI gets the
    redacted characters as its text and ``"phi_overlap": True``, so an export can drop or flag it.
    """
    out = []
    for ent in entities:
        start, end = omap.map_span(int(ent["start"]), int(ent["end"]))
        new = {**ent, "start": start, "end": end, "text": omap.text[start:end]}
        if omap.touches(int(ent["start"]), int(ent["end"])):
            new["phi_overlap"] = True
        out.append(new)
    return out
