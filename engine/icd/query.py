"""Query normalisation: a mention becomes the stem lists the lexical scorer matches.

1. Clinical abbreviations are expanded (``CHF`` -> congestive heart failure); the note's own acuity word replaces
   the one an expansion assumes ("chronic DVT").
2. Words are stemmed (:func:`engine.icd.text.stem`), so word order, inverted index forms ("infarct, myocardial,
   acute") and inflections do not matter; "without X"/"no X" name X as absent.
3. Lay-term and eponym phrase rules add rewritten readings; ``site`` rules add a reading with a part of the body
   widened to the region the tabular list names ("sigmoid" -> "large intestine").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.icd.attributes import ACUITY_RE, ACUTE_ON_CHRONIC_RE
from engine.icd.rules import LinkerRules
from engine.icd.text import STOPWORDS, stem, words


@dataclass(frozen=True, slots=True)
class Query:
    """A mention read for scoring.

    Attributes:
        variants: Stem lists to score: the mention, its rule rewrites, then its site rewrites.
        absent: Stems the mention names as absent.
        expanded: The lower-cased text with abbreviations expanded.
        n_own: How many of ``variants`` come before the site rewrites.
    """

    variants: list[list[str]]
    absent: set[str]
    expanded: str
    n_own: int


class QueryReader:
    """Turns mentions into :class:`Query` objects with the linker's rules.

    Args:
        rules: The compiled rule data.
    """

    def __init__(self, rules: LinkerRules) -> None:
        self.rules = rules

    @staticmethod
    def split(text: str) -> tuple[list[str], set[str]]:
        """Stems of a mention and those it names as absent ("without obstruction", "no coma")."""
        stems: list[str] = []
        absent: set[str] = set()
        for clause in re.split(r"[,;]", text):
            negated = False
            for w in words(clause):
                if w in {"without", "no"}:
                    negated = True
                    continue
                if w in STOPWORDS:
                    continue
                s = stem(w)
                stems.append(s)
                if negated:
                    absent.add(s)
        return stems, absent

    def expand_abbreviations(self, text: str) -> str:
        """Lower-cased ``text`` with the abbreviations of ``abbreviations.tsv`` expanded."""
        rules = self.rules
        if rules.abbrev_re is None:
            return text.lower()

        def expand(m: re.Match[str]) -> str:
            abbreviation, plural = m.group(1), m.group(2)
            if plural and not (plural == "s" and abbreviation.isupper() and len(abbreviation) > 1):
                return m.group(0).lower()
            expansion = rules.abbrev[abbreviation.lower()]
            # The note's own acuity word replaces the one an expansion assumes: "chronic DVT" is a chronic deep
            # vein thrombosis, not a "chronic acute" one.
            own = ACUITY_RE.match(expansion)
            if own and re.search(r"\b(?:subacute|acute|chronic)\W*$", m.string[: m.start()].lower()):
                expansion = expansion[own.end() :].lstrip()
            return expansion

        return rules.abbrev_re.sub(expand, text).lower()

    def rewrite(self, stems: list[str], alternative: int = 0) -> list[str] | None:
        """Apply lay-term/eponym phrase rules; ``None`` when none applies.

        A phrase matches when all its words occur in the mention in any order (mentions are short; "broken left
        wrist" still contains "broken wrist"), longest phrases first. ``alternative`` picks the n-th target of
        rules that have several (falling back to the first).
        """
        remaining = list(stems)
        added: list[str] = []
        changed = False
        present = set(remaining)
        for key in self.rules.phrase_order:
            if not present.issuperset(key):
                continue
            targets = self.rules.phrases[key]
            dst = targets[alternative] if alternative < len(targets) else targets[0]
            for w in key:
                if w in remaining:
                    remaining.remove(w)
            present = set(remaining)
            added.extend(dst)
            changed = True
        return added + remaining if changed else None

    def site_rewrite(self, stems: list[str]) -> list[str] | None:
        """The stems with parts of the body replaced by the region the tabular list names (``site`` rules)."""
        remaining = list(stems)
        added: list[str] = []
        for key in self.rules.site_order:
            if not set(remaining).issuperset(key):
                continue
            for w in key:
                remaining.remove(w)
            added.extend(w for w in self.rules.sites[key] if w not in added)
        return added + remaining if added else None

    def read(self, mention: str, sites: bool = True) -> Query:
        """The :class:`Query` of a mention (``sites``: also the site rewrites)."""
        expanded = self.expand_abbreviations(mention)
        stems, absent = self.split(expanded)
        variants = [stems]
        for alternative in range(2):
            rewritten = self.rewrite(stems, alternative)
            if rewritten and rewritten not in variants:
                variants.append(rewritten)
        n_own = len(variants)
        if sites and self.rules.site_words.intersection(stems):
            for v in list(variants):
                regional = self.site_rewrite(v)
                if regional and regional not in variants:
                    variants.append(regional)
        return Query(variants, absent, expanded, n_own)

    @staticmethod
    def wanted_acuity(expanded: str) -> frozenset[str]:
        """The acuity the mention names: one word, or acute and chronic together ("acute on chronic")."""
        if ACUTE_ON_CHRONIC_RE.search(expanded):
            return frozenset({"acute", "chronic"})
        found = frozenset(ACUITY_RE.findall(expanded))
        # Two acuities apart ("AKI on CKD", "COPD w acute exacerbation") name two conditions: no preference.
        return found if len(found) == 1 else frozenset()

    def disease_without_injury(self, expanded: str) -> bool:
        """Whether the mention names a disease and no injury (injury codes then rank lower)."""
        rules = self.rules
        raw = words(expanded)
        stems = {stem(w) for w in raw}
        if stems & rules.injury_stems or (rules.injury_phrase_re and rules.injury_phrase_re.search(expanded)):
            return False
        return bool(stems & rules.disease_stems) or any(
            w.endswith(x) and len(w) > len(x) + 2 for w in raw for x in rules.disease_suffixes
        )
