"""Sentence segmentation for clinical notes (and lower-cased, tokenised article text).

Returns character offsets into the text exactly as given, so every sentence is ``text[start:end]`` verbatim.

What it takes care of, beyond "split after . ! ?":

- Abbreviations never end a sentence (``Dr.``, ``e.g.``, ``et al.``); dosing abbreviations (``b.i.d.``, ``p.o.``,
  ``mg.``) end one only when the next word is capitalised (or the note is all lower case). Both lists are data:
  ``assets/rules/sentence_abbreviations.txt`` and ``sentence_abbreviations_final.txt``.
- Numbered lists: ``1.`` at the start of an item is a marker, not a sentence end; items glued together by
  transcription (``size.2. Normal``) are split.
- Section headers: a header on its own line (``HISTORY OF PRESENT ILLNESS:``, ``PLAN``) is never merged into the next
  sentence; headers glued after a period (``masses.DOPPLER:``) are split off.
- Vitals lines (``T 98.6. P 72. BP 120/80.``) stay one sentence; labels are in ``assets/rules/sentence_vitals.txt``.
- Line breaks: a blank line always ends a sentence; a single line break ends one after terminal punctuation, before
  a list item or header, or after a short line, and is otherwise a wrapped line inside the sentence.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.settings import RULES_DIR

_CLOSERS = "\"'”’)]}"
_TERMINAL = re.compile(r"(?:\.{3}|[.!?])[.!?]*[\"'”’)\]}]*(?=\s|$)")
_GLUED_ITEM = re.compile(r"(?<=[a-z%)\]])\.(?=(?:\d{1,2}\.\s)|(?:[A-Z][A-Z/&]+(?: [A-Z/&]+)*:))")
_LIST_START = re.compile(r"^\s*(?:[-*•▪◦·]\s|\d{1,2}[.)]\s|\(\w\)\s|[a-z][.)]\s|#\s?\d)")
_HEADER_START = re.compile(r"^\s*(?:[A-Z][A-Z0-9/&,\- ]{1,50}|[A-Z][a-z]+(?: [A-Za-z]+){0,4}):")
_NUMBER = re.compile(r"^[<>~]?\d[\d,./%]*[a-zA-Z%°]{0,4}$")
_SHORT_LINE = 50


@dataclass(frozen=True)
class SentenceRules:
    """Rule data for :func:`split_sentences` (loaded from plain-text files)."""

    never_final: frozenset[str]
    maybe_final: frozenset[str]
    vitals_next: re.Pattern[str]
    vitals_tail: re.Pattern[str]
    starters: frozenset[str] = frozenset()
    """Words that start a sentence and are no surname: after "Dr. Y." or "hepatitis C." they mark a boundary."""


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip().lower()
        if line and not line.startswith("#"):
            out.append(line)
    return out


@lru_cache(maxsize=8)
def load_rules(rules_dir: str | Path = RULES_DIR) -> SentenceRules:
    """Load the abbreviation and vitals lists from ``rules_dir`` (cached)."""
    rules_dir = Path(rules_dir)
    vitals = sorted(_read_list(rules_dir / "sentence_vitals.txt"), key=len, reverse=True) or ["bp"]
    alt = "|".join(re.escape(v).replace(r"\ ", r"\s+") for v in vitals)
    return SentenceRules(
        never_final=frozenset(_read_list(rules_dir / "sentence_abbreviations.txt")),
        maybe_final=frozenset(_read_list(rules_dir / "sentence_abbreviations_final.txt")),
        vitals_next=re.compile(r"(?i)\s*(?:" + alt + r")\b\s*:?\s*[<>~]?\d"),
        vitals_tail=re.compile(r"(?i)(?<!\w)(?:" + alt + r")\s*:?\s*\S+\s*$"),
        starters=frozenset(_read_list(rules_dir / "sentence_starters.txt")),
    )


def _is_lowercase_note(text: str) -> bool:
    letters = [c for c in text[:20000] if c.isalpha()]
    if not letters:
        return False
    upper = sum(1 for c in letters if c.isupper())
    return upper / len(letters) < 0.01


def _is_header_line(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    if stripped.endswith(":"):
        return True
    letters = [c for c in stripped if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters) and len(stripped) <= 60


def _line_break_is_boundary(prev: str, nxt: str) -> bool:
    """Whether a single line break between ``prev`` and ``nxt`` (both non-blank) ends a sentence."""
    p = prev.rstrip().rstrip(_CLOSERS)
    if not p or p[-1] in ".!?:;":
        return True
    if _LIST_START.match(nxt) or _HEADER_START.match(nxt) or _is_header_line(prev) or _is_header_line(nxt):
        return True
    first = nxt.lstrip()[:1]
    # A capitalised line after a short one is a new line of a form (vitals, headings, labels), not wrapped prose.
    return bool(first.isupper() and len(prev.strip()) < _SHORT_LINE)


def _previous_token(text: str, end: int) -> tuple[str, bool, int]:
    """The token ending at ``end`` (period excluded), whether the period stood apart, and the token's start."""
    i = end
    standalone = False
    if i > 0 and text[i - 1].isspace():
        standalone = True
        while i > 0 and text[i - 1].isspace():
            i -= 1
    j = i
    while j > 0 and not text[j - 1].isspace():
        j -= 1
    return text[j:i], standalone, j


def _next_word(text: str, pos: int) -> str:
    m = re.compile(r"\s*(\S+)").match(text, pos)
    return m.group(1) if m else ""


def split_sentences(text: str, rules_dir: str | Path | None = None) -> list[tuple[int, int]]:
    """Split a note into sentences.

    Args:
        text: The note, exactly as given.
        rules_dir: Folder with the ``sentence_*.txt`` rule files (default ``assets/rules``).

    Returns:
        ``(start, end)`` character offsets of each sentence in order, stripped of surrounding whitespace; empty
        for an empty or blank note.
    """
    if not text or not text.strip():
        return []
    rules = load_rules(rules_dir or RULES_DIR)
    lowercase_note = _is_lowercase_note(text)

    cuts: list[int] = [0]
    # Line breaks first: blank lines always cut, single breaks by layout.
    line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
    line_ends = [s - 1 for s in line_starts[1:]] + [len(text)]
    lines = list(zip(line_starts, line_ends, strict=True))
    prev: tuple[int, int] | None = None
    blank_since = False
    for start, end in lines:
        if not text[start:end].strip():
            blank_since = True
            continue
        if prev is not None and (blank_since or _line_break_is_boundary(text[prev[0] : prev[1]], text[start:end])):
            cuts.append(start)
        prev, blank_since = (start, end), False
    cuts.sort()

    for m in _GLUED_ITEM.finditer(text):
        bisect.insort(cuts, m.end())

    for m in _TERMINAL.finditer(text):
        p_start, pos = m.start(), m.end()
        if _punct_is_boundary(text, p_start, pos, cuts, rules, lowercase_note):
            bisect.insort(cuts, pos)

    cuts.append(len(text))
    out: list[tuple[int, int]] = []
    for a, b in itertools.pairwise(cuts):
        if b <= a:
            continue
        seg = text[a:b]
        stripped = seg.strip()
        if not stripped:
            continue
        s = a + (len(seg) - len(seg.lstrip()))
        out.append((s, s + len(stripped)))
    return out


def _punct_is_boundary(
    text: str, p_start: int, pos: int, cuts: list[int], rules: SentenceRules, lowercase_note: bool
) -> bool:
    punct = text[p_start:pos].rstrip(_CLOSERS)
    nxt = _next_word(text, pos)
    if not nxt:
        return True
    if "." not in punct or punct.startswith("..."):
        # ! and ? end a sentence; an ellipsis only before a capital.
        return not punct.startswith("...") or nxt[:1].isupper()
    word, standalone, word_start = _previous_token(text, p_start)
    seg_start = cuts[bisect.bisect_right(cuts, p_start - 1) - 1]
    if word_start < seg_start:  # the token was glued to the previous sentence ("size.2.")
        word, word_start = word[seg_start - word_start :], seg_start
    if ":" in word:  # "DESCRIPTION:1." - the header colon opens the item
        colon = word.rfind(":")
        word, word_start = word[colon + 1 :], word_start + colon + 1
    key = word.lower().lstrip("([{\"'").rstrip(".")
    if not key:
        return True
    before = text[seg_start:word_start].strip()
    # "1." / "a." opening an item (after a cut or a header colon) is a list marker.
    if re.fullmatch(r"\d{1,2}|[a-zA-Z]", key) and (not before or before.endswith(":")) and not standalone:
        return False
    if key in rules.never_final:
        return False
    next_upper = nxt[:1].isupper() or bool(re.match(r"\d{1,2}[.)]$", nxt))
    if key in rules.maybe_final:
        return standalone or next_upper or lowercase_note
    # An initial ("J. Smith") in mixed-case text, unless a sentence starter follows: "Dr. Y. She ...",
    # "hepatitis C. The ...".
    initials = len(key) == 1 or re.fullmatch(r"(?:[a-z]\.)+[a-z]", key) is not None  # "J." or "J.K."
    if not standalone and initials and word[-1:].isupper() and nxt[:1].isupper():
        return nxt.lower().strip(",;:.\"'") in rules.starters
    # A capital letter before a lower-case word in mixed-case text names something ("vitamin D. deficiency").
    if not standalone and len(key) == 1 and word[-1:].isupper() and nxt[:1].islower() and not lowercase_note:
        return False
    # Unknown abbreviation with inner periods ("E.R. and") before a lower-case word.
    if not standalone and "." in key and nxt[:1].islower() and not lowercase_note:
        return False
    # Vitals: "T 98.6. P 72." stays together while a vital label follows a vital value.
    in_vitals = bool(
        _NUMBER.match(key) and rules.vitals_next.match(text, pos) and rules.vitals_tail.search(text, seg_start, p_start)
    )
    return not in_vitals
