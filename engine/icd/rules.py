"""The linker's rule data, read once from ``assets/rules/``: abbreviations, lay-term and eponym rewrites, context.

- ``abbreviations.tsv``: ``CHF`` -> congestive heart failure (upper-case ones also with a plural "s": "PEs").
- ``icd_synonyms.tsv``: lay terms and eponyms; a code-targeted term is also an index entry (see
  :mod:`engine.icd.tabular`), a multi-word term rewrites the mention to the code's own wording, a one-word term
  gives an alternative word.
- ``icd_context.tsv``: word lists by kind (``injury``, ``disease``, ``disease_suffix``, ``sequela``, ``site``).
- ``icd_exam_descriptors.txt``: exam descriptors that name no codable condition ("tender", "soft"): no code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.icd.tabular import IndexData
from engine.icd.text import DEFAULT_RE, DEFAULT_WORDS, PAREN_RE, STOPWORDS, is_code, read_rules, stem, words
from engine.rules import rule_rows


def stems_of(text: str) -> list[str]:
    """Stems of the words of ``text`` without stopwords."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


@dataclass
class LinkerRules:
    """Compiled rule data (see the module docstring)."""

    abbrev: dict[str, str] = field(default_factory=dict)
    abbrev_re: re.Pattern[str] | None = None
    word_alts: dict[str, list[str]] = field(default_factory=dict)
    phrases: dict[tuple[str, ...], list[tuple[str, ...]]] = field(default_factory=dict)
    phrase_order: list[tuple[str, ...]] = field(default_factory=list)
    injury_stems: frozenset[str] = frozenset()
    injury_phrase_re: re.Pattern[str] | None = None
    disease_stems: frozenset[str] = frozenset()
    disease_suffixes: tuple[str, ...] = ()
    sites: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    site_order: list[tuple[str, ...]] = field(default_factory=list)
    site_words: frozenset[str] = frozenset()
    sequela_re: re.Pattern[str] | None = None
    exam_descriptors: frozenset[str] = frozenset()


def context_rows(rules_dir: Path) -> dict[str, list[Any]]:
    """Words per kind of ``icd_context.tsv``, lower-cased; ``site`` rows also as (part, region) pairs under
    ``site_pairs``."""
    out: dict[str, list[Any]] = {}
    for _, parts in rule_rows(rules_dir / "icd_context.tsv", required=False):
        if len(parts) >= 2 and parts[0].strip() and parts[1].strip():
            out.setdefault(parts[0].strip(), []).append(parts[1].strip().lower())
        if len(parts) >= 3 and parts[0].strip() == "site":
            out.setdefault("site_pairs", []).append((parts[1], parts[2]))
    return out


def _abbreviations(rules: LinkerRules, rules_dir: Path) -> None:
    rules.abbrev = {a.lower(): e.lower() for a, e in read_rules(rules_dir / "abbreviations.tsv")}
    keys = sorted(rules.abbrev, key=len, reverse=True)
    # Matched on the original text so that a plural "s" after an upper-case abbreviation ("PEs", "DVTs") can be
    # told apart from a word that merely starts like one ("pes planus" is no pulmonary embolism).
    rules.abbrev_re = (
        re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(k) for k in keys) + r")(s?)(?![a-z0-9/])", re.IGNORECASE)
        if keys
        else None
    )


def _code_wording(data: IndexData, code_pos: dict[str, int], target: str) -> tuple[str, ...]:
    desc = data.descriptions[code_pos[target]].lower()
    desc = DEFAULT_RE.sub(" ", PAREN_RE.sub(" ", desc)).partition(" without ")[0]
    dst = tuple(dict.fromkeys(stem(w) for w in words(desc) if w not in DEFAULT_WORDS))
    return tuple(w for w in dst if w not in STOPWORDS)


def _synonyms(rules: LinkerRules, rules_dir: Path, data: IndexData, code_pos: dict[str, int]) -> None:
    for term, target in read_rules(rules_dir / "icd_synonyms.tsv"):
        src = tuple(stems_of(term))
        if is_code(target):
            # The term is an index entry of the code; a multi-word term also rewrites the mention to the code's
            # own wording, so extra words ("right", "open") still pick the sibling.
            if len(src) < 2 or target not in code_pos:
                continue
            dst = _code_wording(data, code_pos, target)
        else:
            dst = tuple(stems_of(target))
        if not src or not dst or src == dst:
            continue
        if len(src) == 1 and len(dst) == 1:
            rules.word_alts.setdefault(src[0], []).append(dst[0])
        else:
            targets = rules.phrases.setdefault(src, [])
            if dst not in targets:
                targets.append(dst)
    # A phrase also matches through one-word alternatives: "fractured ankle" meets the rule "broken ankle".
    for key in list(rules.phrases):
        for k, w in enumerate(key):
            for alt in rules.word_alts.get(w, ()):
                rules.phrases.setdefault((*key[:k], alt, *key[k + 1 :]), rules.phrases[key])
        inverse = [k for k, w in enumerate(key) if any(w in alts for alts in rules.word_alts.values())]
        for k in inverse:
            for src, alts in rules.word_alts.items():
                if key[k] in alts:
                    rules.phrases.setdefault((*key[:k], src, *key[k + 1 :]), rules.phrases[key])
    # Longest phrases first, so "broken wrist" wins over "broken".
    rules.phrase_order = sorted(rules.phrases, key=lambda k: (-len(k), k))


def _context(rules: LinkerRules, rules_dir: Path) -> None:
    context = context_rows(rules_dir)
    rules.injury_stems = frozenset(stem(w) for w in context.get("injury", ()) if " " not in w)
    phrases = [w for w in context.get("injury", ()) if " " in w]
    rules.injury_phrase_re = (
        re.compile(r"\b(?:" + "|".join(re.escape(p) for p in phrases) + r")\b") if phrases else None
    )
    rules.disease_stems = frozenset(stem(w) for w in context.get("disease", ()))
    rules.disease_suffixes = tuple(context.get("disease_suffix", ()))
    sites: dict[tuple[str, ...], tuple[str, ...]] = {}
    for part_words, region_words in context.get("site_pairs", ()):
        part, region = tuple(stems_of(part_words)), tuple(stems_of(region_words))
        if part and region:
            sites.setdefault(part, region)
    rules.sites = sites
    rules.site_order = sorted(sites, key=lambda k: (-len(k), k))
    rules.site_words = frozenset(w for k in sites for w in k)
    cues = sorted(context.get("sequela", ()), key=len, reverse=True)
    rules.sequela_re = (
        re.compile(r"\b(?:" + "|".join(re.escape(c) for c in cues) + r")\b", re.IGNORECASE) if cues else None
    )


def load_rules(rules_dir: Path, data: IndexData, code_pos: dict[str, int]) -> LinkerRules:
    """Read every rule file the linker uses (missing files give empty rules)."""
    rules = LinkerRules()
    _abbreviations(rules, rules_dir)
    _synonyms(rules, rules_dir, data, code_pos)
    _context(rules, rules_dir)
    rules.exam_descriptors = frozenset(
        " ".join(words(parts[0])) for _, parts in rule_rows(rules_dir / "icd_exam_descriptors.txt", required=False)
    )
    return rules
