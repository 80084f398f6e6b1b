"""Word tokens with offsets, the unit the tagger and the name rules work on."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?|\d+|[^\w\s]|_")


@dataclass(frozen=True, slots=True)
class Token:
    """A word, number or punctuation mark.

    Attributes:
        start: Offset into the text.
        end: Exclusive end.
        text: The token's characters.
        line_start: True when only spaces separate it from the previous line break (or the text start).
    """

    start: int
    end: int
    text: str
    line_start: bool


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; linear in its length."""
    out: list[Token] = []
    prev_end = 0
    for match in _TOKEN.finditer(text):
        start = match.start()
        gap = text[prev_end:start]
        line_start = not out or "\n" in gap
        out.append(Token(start, match.end(), match.group(), line_start))
        prev_end = match.end()
    return out


def sequences(tokens: list[Token], text: str, max_len: int = 200) -> list[tuple[int, int]]:
    """Cut the token list into tagger sequences ``(first, last + 1)``: at blank lines, and at most ``max_len``.

    Short sequences keep the tagger's memory flat on a 5 MB note; a blank line ends a section anyway.
    """
    out: list[tuple[int, int]] = []
    first = 0
    for i in range(1, len(tokens)):
        blank = text.count("\n", tokens[i - 1].end, tokens[i].start) >= 2
        if blank or i - first >= max_len:
            out.append((first, i))
            first = i
    if tokens:
        out.append((first, len(tokens)))
    return out


def chunk_bounds(text: str, size: int) -> list[tuple[int, int]]:
    """Cut ``text`` into pieces of at most ``size`` characters ``(start, end)``, at a blank line where possible.

    A piece ends at the last blank line of its second half, else at its last line break, else at its last space,
    so PHI (which does not cross a blank line, and rarely a line break) is not cut; a 5 MB note is then found
    piece by piece in bounded memory.
    """
    out: list[tuple[int, int]] = []
    start = 0
    while len(text) - start > size:
        lo, hi = start + size // 2, start + size
        cut = text.rfind("\n\n", lo, hi)
        cut = cut + 2 if cut >= 0 else text.rfind("\n", lo, hi) + 1
        if cut <= lo:
            space = max(text.rfind(" ", lo, hi), text.rfind("\t", lo, hi))
            cut = space + 1 if space >= lo else hi
        out.append((start, cut))
        start = cut
    out.append((start, len(text)))
    return out
