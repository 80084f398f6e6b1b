"""Text normalisation shared by the index and the queries: words, a light medical stemmer, term flags.

Both the index entries and the mentions go through the same functions, so matching only needs them to be
consistent. Nothing here knows about codes beyond their written shape (:func:`is_code`, :func:`normalize_code`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from engine.rules import rule_rows

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "of",
        "on",
        "or",
        "than",
        "that",
        "the",
        "this",
        "to",
        "with",
        "w",
    ]
)
DEFAULT_WORDS = frozenset(
    [
        "unspecified",
        "nos",
        "unilateral",
        "initial",
        "encounter",
        "primary",
        "essential",
        "mellitus",
        "site",
        "elsewhere",
        "classified",
        "nec",
        "specified",
    ]
)
"""Qualifiers a coder assumes when the note is silent; they never count much against an entry."""
DEFAULT_PHRASES = (
    "without complications",
    "without complication",
    "initial encounter for closed fracture",
    "not elsewhere classified",
    "site not specified",
    "unspecified site",
    "without mention of complication",
    "uncomplicated",
    "not intractable",
    "without status migrainosus",
)

SITED_ABSENT = ("foreign body", "intraarticular extension", "intracondylar extension", "intercondylar fracture",
                "complications")
"""What a "without" clause names before the site of the whole term: in "Laceration without foreign body of right
forearm" only "foreign body" is absent, "right forearm" is the site (unlike "without loss of material")."""

_WORD_RE = re.compile(r"[a-z0-9]+")
_CODE_RE = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?$")

_BRITISH = (
    ("haem", "hem"),
    ("anaem", "anem"),
    ("aemia", "emia"),
    ("paed", "ped"),
    ("oedema", "edema"),
    ("oesophag", "esophag"),
    ("hoea", "hea"),
    ("tumour", "tumor"),
    ("coeliac", "celiac"),
    ("foetal", "fetal"),
    ("ischaem", "ischem"),
    ("orthopaed", "orthoped"),
    ("oestr", "estr"),
)
_SUFFIXES = (
    ("ational", "at"),
    ("ations", "at"),
    ("ation", "at"),
    ("isms", ""),
    ("ism", ""),
    ("ities", ""),
    ("ity", ""),
    ("ically", ""),
    ("ical", ""),
    ("ions", ""),
    ("ion", ""),
    ("ives", ""),
    ("ive", ""),
    ("ies", "y"),
    ("sses", "ss"),
    ("ings", ""),
    ("ing", ""),
    ("ed", ""),
    ("ic", ""),
    ("al", ""),
    ("es", ""),
    ("ia", ""),
    ("us", ""),
    ("s", ""),
    ("i", ""),
)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light, deterministic stemmer for medical English (inflections and the usual -ic/-ion/-ive forms).

    Both the index and the mentions go through it, so it only has to be consistent, not linguistically exact:
    ``diabetes``/``diabetic`` -> ``diabet``, ``hypertension``/``hypertensive`` -> ``hypertens``,
    ``fractures``/``fractured`` -> ``fractur``. British spellings are folded to American first.
    """
    w = word
    for old, new in _BRITISH:
        if old in w:
            w = w.replace(old, new)
    if len(w) <= 3 or w.isdigit():
        return w
    for suffix, repl in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) + len(repl) >= (3 if suffix == "s" else 4):
            if suffix == "s" and w[-2] in "sui":
                continue
            w = w[: len(w) - len(suffix)] + repl
            break
    if len(w) > 4 and w[-1] in "ey":
        w = w[:-1]
    return w


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words of ``text`` (possessive ``'s`` dropped)."""
    text = text.lower().replace("'s ", " ").replace("’s ", " ")
    if text.endswith(("'s", "’s")):
        text = text[:-2]
    return _WORD_RE.findall(text)


PAREN_RE = re.compile(r"[\(\[]([^\)\]]*)[\)\]]")
DEFAULT_RE = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in DEFAULT_PHRASES) + r")\b")


ESSENTIAL, NONESSENTIAL, ABSENT = 1, 0, -1
"""Word flags in an entry: counts fully; optional; named as absent ("without perforation")."""


def term_tokens(term: str) -> list[tuple[str, int]]:
    """Stems of a tabular term with their flag (:data:`ESSENTIAL`, :data:`NONESSENTIAL`, :data:`ABSENT`).

    Stopwords are removed and stems de-duplicated (the strongest flag wins). Nonessential: words inside
    parentheses or brackets, ``NOS``, :data:`DEFAULT_WORDS`, :data:`DEFAULT_PHRASES`, and the word an
    "unspecified" qualifies ("unspecified part", "site unspecified"). Absent: what a "without" clause names;
    a coder assumes those absent when the note is silent, and a mention that names them contradicts the entry.
    Comma-separated segments are processed (and cached) one by one, since the 7th-character descriptions repeat
    the same tails thousands of times.
    """
    lowered = term.lower()
    parts = lowered.split(", ")
    if any(p.count("(") != p.count(")") or p.count("[") != p.count("]") for p in parts):
        parts = [lowered]
    out: dict[str, int] = {}
    for part in parts:
        for s, flag in _segment_tokens(part):
            out[s] = max(out.get(s, ABSENT), flag)
    return list(out.items())


@lru_cache(maxsize=100_000)
def _segment_tokens(lowered: str) -> tuple[tuple[str, int], ...]:
    main = " " + PAREN_RE.sub(" ", lowered) + " "
    head, _, absent_part = main.partition(" without ")
    # A "with" after the "without" clause starts a positive clause again ("without perforation with bleeding").
    absent_part, _, tail = absent_part.partition(" with ")
    for obj in SITED_ABSENT:
        if absent_part.startswith(obj + " of "):
            tail = absent_part[len(obj) + 4 :] + " " + tail
            absent_part = obj
            break
    head = DEFAULT_RE.sub(" ", head + " " + tail)
    head_words = words(head)
    optional = set(DEFAULT_WORDS)
    for k, w in enumerate(head_words):
        # "part unspecified", "of unspecified part": the qualified word is optional; but not in "Unspecified
        # fracture of ...", where it is the head noun.
        if w == "unspecified" and k > 0 and head_words[k - 1] != "with":
            if k + 1 < len(head_words):
                optional.add(head_words[k + 1])
            if k > 0 and k == len(head_words) - 1:
                optional.add(head_words[k - 1])
    essential = {stem(w) for w in head_words if w not in optional and w not in STOPWORDS}
    absent = {stem(w) for w in words(absent_part) if w not in STOPWORDS} - essential
    out: dict[str, int] = {}
    for w in words(lowered):
        if w in STOPWORDS:
            continue
        s = stem(w)
        if s not in out:
            out[s] = ESSENTIAL if s in essential else ABSENT if s in absent else NONESSENTIAL
    return tuple(out.items())


def read_rules(path: Path) -> list[tuple[str, str]]:
    """``term<TAB>target`` lines of a rules file (comments and blank lines skipped)."""
    rows: list[tuple[str, str]] = []
    for _, parts in rule_rows(path, required=False):
        if len(parts) >= 2 and parts[0].strip() and parts[1].strip():
            rows.append((parts[0].strip(), parts[1].strip()))
    return rows


def is_code(text: str) -> bool:
    """Whether ``text`` looks like an ICD-10-CM code written with its dot (``I21.9``, ``E11``)."""
    return bool(_CODE_RE.match(text))


def nodot(code: str) -> str:
    """``"I21.9"`` -> ``"I219"`` (upper-case, no dot)."""
    return code.replace(".", "").upper()


def normalize_code(text: str) -> str:
    """``"i219"``, ``"I21.9"`` or ``" I21.9 "`` -> ``"I21.9"`` (no validation)."""
    c = nodot(text.strip())
    return c if len(c) <= 3 else c[:3] + "." + c[3:]
