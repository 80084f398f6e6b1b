"""Offsets between an input text and its redacted form.

Redaction replaces disjoint input ranges with new strings. :class:`OffsetMap` applies them and maps any input
span onto the redacted text, so exported entities still point at their own characters: a span clear of PHI keeps
its text exactly, and a span that touches a replaced range grows to cover that range's replacement.
"""

from __future__ import annotations

import re
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
        self._original = original
        self._by_phrase: dict[str, str] | None = None

    def pairs(self) -> list[list[int]]:
        """The replaced ranges as ``[input start, input end, redacted start, redacted end]`` (no text).

        Enough to map spans again later (:meth:`from_pairs`) without keeping the original or its PHI.
        """
        return [list(p) for p in zip(self._old_starts, self._old_ends, self._new_starts, self._new_ends,
                                     strict=True)]

    @classmethod
    def from_pairs(cls, text: str, pairs: Sequence[Sequence[int]]) -> OffsetMap:
        """An offset map rebuilt from the redacted ``text`` and :meth:`pairs` (``replacements`` is empty).

        Raises:
            ValueError: The pairs are not ascending, disjoint ranges inside ``text``.
        """
        omap = cls.__new__(cls)
        omap.text, omap.replacements, omap._original, omap._by_phrase = text, [], "", {}
        omap._old_starts, omap._old_ends, omap._new_starts, omap._new_ends = [], [], [], []
        last_old = last_new = 0
        for pair in pairs:
            old_s, old_e, new_s, new_e = (int(v) for v in pair)
            if old_s < last_old or old_e < old_s or new_s < last_new or new_e < new_s or new_e > len(text):
                raise ValueError(f"offset pair {list(pair)} is out of order or outside the text")
            omap._old_starts.append(old_s)
            omap._old_ends.append(old_e)
            omap._new_starts.append(new_s)
            omap._new_ends.append(new_e)
            last_old, last_new = old_e, new_e
        return omap

    def redact_words(self, words: str) -> str:
        """``words`` (a string quoted from the input, such as an assertion trigger) with every replaced phrase
        in it replaced as in the text; a string inside one replaced phrase becomes that phrase's replacement.

        A map rebuilt by :meth:`from_pairs` knows no phrases and returns ``words`` unchanged.
        """
        if self._by_phrase is None:
            self._by_phrase = {}
            for rep in self.replacements:
                phrase = self._original[rep.start:rep.end]
                if phrase.strip():
                    self._by_phrase.setdefault(phrase, rep.text)
        out = words
        for phrase, new in self._by_phrase.items():
            if phrase in out:
                out = re.sub(rf"(?<!\w){re.escape(phrase)}(?!\w)", lambda _m, new=new: new, out)
            elif out.strip() and re.search(rf"(?<!\w){re.escape(out)}(?!\w)", phrase):
                return new
        return out

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
        if ent.get("trigger"):  # the assertion cue is quoted from the note: it may be PHI ("since 03/14/2023")
            new["trigger"] = omap.redact_words(str(ent["trigger"]))
        if omap.touches(int(ent["start"]), int(ent["end"])):
            new["phi_overlap"] = True
        out.append(new)
    return out
