"""Redaction: readable surrogates or ``[LABEL]`` masks, deterministic for a seed and a note key.

Surrogate mode keeps a note readable and internally consistent: every occurrence of a name word maps to the same
fake word (so "Whitcombe" and "Harold J. Whitcombe" stay one person), all dates of a note shift by one offset
(intervals survive) and keep their format, numbers keep their punctuation, and ages over 89 become "90+" as
Safe Harbor asks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
import string

from engine.deid.dates import shift_date
from engine.deid.lexicon import Lexicon
from engine.deid.offsets import OffsetMap, Replacement
from engine.deid.spans import PhiSpan

MODES = ("surrogate", "mask")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like.islower():
        return word.lower()
    return word[:1].upper() + word[1:].lower()


_POOLS: dict[int, tuple[list[str], list[str], list[str]]] = {}


def _pools(lex: Lexicon) -> tuple[list[str], list[str], list[str]]:
    """Surrogate first names, surnames and cities, built once per lexicon (not per note: that cost 10 ms)."""
    key = id(lex)
    if key not in _POOLS:
        _POOLS[key] = (
            [w for w, r in lex.first_names.items() if r < 2000 and w.isalpha()],
            [w for w, r in lex.last_names.items() if r < 5000 and w.isalpha()],
            sorted(c for c in lex.cities if c.replace(" ", "").isalpha() and len(c) > 3)[:5000],
        )
    return _POOLS[key]


class _NoteSurrogates:
    """The surrogate choices of one note (one random stream, one date shift, one name table)."""

    def __init__(self, lex: Lexicon, key: str, seed: int) -> None:
        digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
        self.rng = random.Random(int.from_bytes(digest[:8], "big"))
        self.shift = dt.timedelta(days=self.rng.choice([d for d in range(-365, 366) if d]))
        self.lex = lex
        self._firsts, self._lasts, self._cities = _pools(lex)
        self.table: dict[tuple[str, str], str] = {}

    def _pick(self, kind: str, original: str, pool: list[str]) -> str:
        key = (kind, original.lower())
        if key not in self.table:
            choice = self.rng.choice(pool)
            while choice == original.lower() and len(pool) > 1:
                choice = self.rng.choice(pool)
            self.table[key] = choice
        return self.table[key]

    def name(self, text: str) -> str:
        def word(m: re.Match[str]) -> str:
            w = m.group()
            if len(w) == 1:
                return self._pick("initial", w, list(string.ascii_uppercase))
            low = w.lower()
            is_first = low in self.lex.first_names and (low not in self.lex.last_names or
                                                         self.lex.first_names[low] < self.lex.last_names[low] / 10)
            return _match_case(self._pick("name", w, self._firsts if is_first else self._lasts), w)
        return _WORD.sub(word, text)

    def scramble(self, text: str) -> str:
        """Same punctuation, new digits and letters (phones, IDs, ZIP codes), the same for the same input."""
        key = ("scramble", text)
        if key not in self.table:
            out = []
            for c in text:
                if c.isdigit():
                    out.append(self.rng.choice(string.digits))
                elif c.isalpha():
                    out.append(_match_case(self.rng.choice(string.ascii_lowercase), c))
                else:
                    out.append(c)
            self.table[key] = "".join(out)
        return self.table[key]

    def location(self, text: str) -> str:
        if text[:1].isdigit() and any(c.isalpha() for c in text):
            number = self.scramble(re.match(r"\d+", text).group())  # type: ignore[union-attr]
            words = text.split()
            street = _match_case(self._pick("street", " ".join(words[1:-1]), self._lasts), words[1])
            return f"{number} {street} {words[-1]}" if len(words) > 2 else f"{number} {street}"
        if text.replace("-", "").isdigit():
            return self.scramble(text)
        return _match_case(self._pick("city", text, self._cities), text)

    def hospital(self, text: str) -> str:
        words = text.split()
        tail = [w for w in words[1:] if w.lower() in {"hospital", "medical", "center", "clinic", "health", "rehab",
                                                     "nursing", "home", "hospice", "manor", "associates",
                                                     "general", "memorial", "regional", "practice", "care"}]
        head = _match_case(self._pick("org", text, self._lasts), words[0])
        return " ".join([head, *tail]) if tail else f"{head} {_match_case('General', words[0])}"

    def replace(self, text: str, label: str) -> str:
        """The surrogate for one PHI span's text."""
        if label == "NAME":
            return self.name(text)
        if label == "DATE":
            return shift_date(text, self.shift) or "[DATE]"
        if label == "AGE":
            return "90+"
        if label in ("PHONE", "ID"):
            return self.scramble(text)
        if label == "EMAIL":
            return f"{self._pick('email', text, self._lasts)}@example.org"
        if label == "URL":
            return f"www.{self._pick('url', text, self._lasts)}.example.org"
        if label == "LOCATION":
            return self.location(text)
        return self.hospital(text)


def redact(text: str, spans: list[PhiSpan], lex: Lexicon, mode: str = "surrogate", key: str = "",
           seed: int = 0) -> OffsetMap:
    """Replace every PHI span of ``text``.

    Args:
        text: The input note.
        spans: Disjoint PHI spans (:func:`engine.deid.spans.merge_spans`).
        lex: Name and city pools for surrogates.
        mode: ``surrogate`` (readable fake PHI) or ``mask`` (``[NAME]``-style placeholders).
        key: The note key (its id, or its text when it has none): the same key and seed give the same output.
        seed: The deployment's secret-ish seed (``Settings.deid_seed``).

    Raises:
        ValueError: An unknown ``mode``.
    """
    if mode not in MODES:
        raise ValueError(f"deid mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "mask":
        reps = [Replacement(s.start, s.end, f"[{s.label}]") for s in spans]
    else:
        note = _NoteSurrogates(lex, key, seed)
        reps = [Replacement(s.start, s.end, note.replace(text[s.start:s.end], s.label)) for s in spans]
    return OffsetMap(text, reps)
