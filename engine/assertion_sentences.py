"""Where the sentence around a finding ends, for the assertion stage's scopes.

A sentence ends at a newline or at ``.`` ``!`` ``?`` before a space or a capital (MTSamples glues "pain.He"), but
not inside "1.5 mg", after "Dr." or "p.r.n.", nor at a line break that only wraps prose in a hard-wrapped note.
"""

from __future__ import annotations

import re

from engine.sentences import _line_break_is_boundary

__all__ = ["SENTENCE_END", "is_sentence_end", "line_width"]

# Sentence ends: a newline, or . ! ? followed by space or a capital (MTSamples glues "pain.He"), not inside a number.
SENTENCE_END = re.compile(r"[\n.!?]")
_ABBREVIATIONS = frozenset(
    {
        *("dr", "mr", "mrs", "ms", "st", "vs", "fig", "figs", "no", "approx", "e", "g", "i", "eg", "ie", "etc"),
        *("pt", "pts", "sr", "jr", "mg", "ml", "dl", "cm", "mm", "inc", "resp", "temp", "wt", "ht"),
    }
)

_MAX_WRAP = 100  # widest fixed-width export we treat as hard-wrapped


def line_width(text: str) -> int:
    """The width a hard-wrapped note was wrapped at (its longest line), or 0 when it does not look hard-wrapped.

    Wrapped prose fills most of its long lines to within a word of the width (fixed-width exports use 60 to 100
    columns); a list with one item a line (trial criteria, a problem list) has one longest line and the others
    anywhere below it.
    """
    if "\n" not in text:
        return 0
    lengths = [len(line.rstrip()) for line in text.split("\n")]
    width = max(lengths)
    long = [n for n in lengths if n > width // 2]
    full = sum(1 for n in long if n >= width - 12)
    return width if width <= _MAX_WRAP and full >= 3 and full >= 0.6 * len(long) else 0


def is_sentence_end(text: str, j: int, width: int) -> bool:
    """Whether the newline, ``.``, ``!`` or ``?`` at ``j`` ends a sentence (not "1.5 mg", "Dr.", "p.r.n. pain",
    not a line break that wraps prose in a note ``width`` characters wide)."""
    char = text[j]
    if char == "\n":
        return _line_end_is_sentence_end(text, j, width)
    nxt = text[j + 1] if j + 1 < len(text) else " "
    if not (nxt.isspace() or nxt.isupper()):
        return False
    if char == ".":
        k = j
        while k > 0 and text[k - 1].isalpha():
            k -= 1
        if j > k and text[k:j].lower() in _ABBREVIATIONS:
            return False
        # A dotted abbreviation before a lower-case word ("q.6h. p.r.n. pain", "b.i.d. with meals") goes on.
        if k > 1 and text[k - 1] == "." and text[k - 2].isalnum() and nxt == " ":
            after = text[j + 1 : j + 3].lstrip(" ")
            if after[:1].islower():
                return False
    return True


def _line_end_is_sentence_end(text: str, j: int, width: int) -> bool:
    """Whether the newline at ``j`` ends a sentence: not when it only wraps a line of prose.

    EHR exports hard-wrap notes at a fixed width ("return to the emergency room if you\\ndevelop chest pain"); a
    cue and its finding on two lines of one sentence must stay in one scope. A line was wrapped when the next
    line's first word would not have fitted on it within the note's width (``width``; 0 for a note that is not
    hard-wrapped, see :func:`line_width`), the greedy wrap's own criterion, so a list with one item a line keeps
    its breaks; and the sentence splitter (:mod:`engine.sentences`) sees no other reason for a break there
    (terminal punctuation, a list item or header, a capitalised line after a short one).
    """
    nxt_end = text.find("\n", j + 1)
    nxt = text[j + 1 : nxt_end if nxt_end != -1 else len(text)]
    prev = text[text.rfind("\n", 0, j) + 1 : j].rstrip()
    first = nxt.split(None, 1)
    if not width or not first or not prev or len(prev) + 1 + len(first[0]) <= width - 2:
        return True
    return _line_break_is_boundary(prev, nxt)
