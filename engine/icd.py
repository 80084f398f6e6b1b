"""ICD-10-CM code suggestions for diagnosis mentions (the ``icd`` stage and the ``link`` verb).

How a mention is matched (every step is data in ``assets/rules/`` or the tabular list, see
:mod:`engine.icd_index`):

1. The mention is truncated to ``settings.max_mention_chars``, lower-cased, and clinical abbreviations are
   expanded (``assets/rules/abbreviations.tsv``: ``CHF`` -> congestive heart failure).
2. Words are stemmed (plurals, inflections, ``-ic``/``-ion`` forms), so word order, inverted index forms
   ("infarct, myocardial, acute") and inflections do not matter. Lay terms and eponyms
   (``assets/rules/icd_synonyms.tsv``) add a rewritten reading of the mention; one-word rules add alternative
   words; unknown words are corrected to the closest word of the tabular list (misspellings).
3. Every index entry (descriptions, inclusion terms, includes notes, excludes cross references, synonyms) is
   scored by an IDF-weighted F-measure: how much of the mention it covers and how little essential wording it
   adds. Nonessential words (parenthesised, "NOS", "unspecified", "initial encounter for closed fracture")
   cost almost nothing, so the unspecified code wins when the note says no more, and "left", "acute",
   "type 1" pick the specific code when it does.
4. A category that matches stands for its default billable code (the ``.9``/unspecified child, the initial
   encounter extension). Billable codes are ranked first.
5. Context from the mention (word lists in ``assets/rules/icd_context.tsv``), applied as score factors the way the
   side a mention names is: an acuity ("chronic", "acute on chronic") ranks codes naming another acuity, or none
   where siblings name it, lower, and reaches the same wording's twin of that acuity ("DVT NOS" is filed under
   the acute I82.40; "chronic DVT" is I82.50-); parts of the colon are also read as "large intestine" (``site``
   rules: "sigmoid diverticulitis" is K57.32); a disease named without an injury word ranks injury codes
   (S00-T34) lower; "residual"/"late effect"/"sequela" codes the deficit as a sequela (I69.35x for
   "h/o CVA with residual hemiparesis", not Z86.73), with the guideline's default dominance (right dominant,
   left non-dominant).

Semantic re-ranking with the backbone encoder was measured (``python -m engine evaluate icd --semantic``) and
is off by default: see ``engine/evaluation/icd.py`` for the figures and why.

Assertions: negated, possible and hypothetical findings get no codes; family findings get the family-history
code (Z80-Z84) and historical ones the personal-history code (Z85-Z87; an old myocardial infarction is I25.2),
from the tabular list's "conditions classifiable to" notes and ``assets/rules/icd_history.tsv``.
"""

from __future__ import annotations

import bisect
import difflib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import icd_index as ix
from engine.rules import rule_rows
from engine.settings import Settings
from engine.types import Code

BETA = 1.0
"""F-measure balance between covering the mention (recall) and adding no unasked wording (precision)."""
ALT_SIMILARITY = 0.9
"""Credit for a word matched through a one-word synonym rule instead of the word itself."""
CATEGORY_FACTOR = 0.98
"""A billable code reached through its category's match ranks just below a direct match."""
MIN_SCORE = 0.2
"""Suggestions scoring below this are dropped (the mention matched almost nothing)."""
UNKNOWN_WORD_WEIGHT = 1.0
"""Weight of a mention word found nowhere in the tabular list (lowers every score alike)."""
PERINATAL_FACTOR = 0.7
"""Codes of the perinatal chapter (P00-P96, "... of newborn") rank below their adult twins unless the mention
speaks of a newborn: "low sodium" is E87.1, not P74.22 "Hyponatremia of newborn"."""
PERINATAL_CUES = frozenset({"newborn", "neonat", "perinat", "fetus", "fetal", "birth", "infant", "prematur", "preterm"})
"""Stems of mention words that keep perinatal codes at full score."""
SIDES = {"left": "left", "right": "right", "bilater": "bilateral"}
"""Mention stems that name a side, and the word the tabular list uses for it."""
SIDE_RE = re.compile(r"\b(left|right|bilateral)\b")
UNSIDED_FACTOR = 0.9
"""When the mention names a side, codes for an unspecified side whose siblings have sides rank below them."""
ACUITY_WORDS = {"acute": "acute", "chronic": "chronic", "subacute": "subacute"}
"""Mention words that name an acuity (as SIDES names a side)."""
ACUITY_RE = re.compile(r"\b(subacute|acute|chronic)\b")
ACUTE_ON_CHRONIC_RE = re.compile(r"\bacute(?:\s*-\s*|\s+)(?:on|and|/)?(?:\s*-\s*|\s*)chronic\b")
""""acute on chronic", "acute-on-chronic", "acute and chronic", "acute/chronic": the tabular list's "Acute and
chronic ..." (I50.23, J96.21)."""
OTHER_ACUITY_FACTOR = 0.9
"""When the mention names an acuity, codes naming another one ("Acute ..." for "chronic DVT") rank below."""
UNSTATED_ACUITY_FACTOR = 0.95
"""When the mention names an acuity, codes naming none whose siblings name it rank below them ("Unspecified
systolic heart failure" for "chronic systolic HF")."""
INJURY_FACTOR = 0.8
"""Injury codes (S00-T34) rank below other codes when the mention names a disease and no injury
(``assets/rules/icd_context.tsv``)."""
INJURY_RANGE = ("S00", "T34")
SEQUELA_FACTOR = 0.8
"""When the mention says a deficit is residual (a late effect), codes that are not sequelae rank below those that
are (I69.x "... following cerebral infarction", "Sequelae of ...", the "S" encounter of injuries)."""
SEQUELA_NEGATION_RE = re.compile(r"\b(?:no|without|w/o|denies)\s+(?:\w+\s+)?$")
DOMINANCE_DEFAULT = {"right": "dominant", "left": "nondominant"}
"""ICD-10-CM guideline I.C.6.a: when the note does not say which side is dominant, the right side is taken as
dominant and the left as non-dominant (hemiplegia, monoplegia and their sequelae)."""
WRONG_DOMINANCE_FACTOR = 0.97
REGION_FACTOR = 0.98
"""A match through a site rule's wider region ("sigmoid" read as "large intestine") ranks just below the same
match on the mention's own words."""
UNCODED_TRAITS = ("negated", "hypothetical", "possible")
HISTORY_CUES = (
    (re.compile(r"^\s*(?:family history|family hx|fhx|fh)\s*(?:of|:|-)?\s+", re.IGNORECASE), "family"),
    (
        re.compile(r"^\s*(?:personal history|past history|history|hx|h/o|pmh)\s*(?:of|:|-)?\s+", re.IGNORECASE),
        "historical",
    ),
)
"""A mention that itself says "family history of X" / "history of X" is coded like a family/historical X."""
FAMILY_RANGE = ("Z80", "Z84")
PERSONAL_RANGE = ("Z85", "Z87")


def _nodot(code: str) -> str:
    return code.replace(".", "").upper()


def normalize_code(text: str) -> str:
    """``"i219"``, ``"I21.9"`` or ``" I21.9 "`` -> ``"I21.9"`` (no validation)."""
    c = _nodot(text.strip())
    return c if len(c) <= 3 else c[:3] + "." + c[3:]


@dataclass(frozen=True, slots=True)
class _Range:
    lo: str
    hi: str
    codes: tuple[str, ...]
    authoritative: bool

    def covers(self, code: str) -> bool:
        c = _nodot(code)
        return c[: len(self.lo)] >= self.lo and c[: len(self.hi)] <= self.hi

    @property
    def narrowness(self) -> tuple[int, int, int]:
        # Fewer codes covered first ("I21-I22" beats "I00-I99"), then the tabular list's own notes.
        span = int(self.hi.ljust(7, "Z"), 36) - int(self.lo.ljust(7, "0"), 36)
        return (-span, len(self.lo), int(self.authoritative))


def _parse_range(text: str) -> tuple[str, str] | None:
    text = text.strip().rstrip(".-").rstrip(".")
    if not text:
        return None
    lo, _, hi = text.partition("-")
    lo, hi = _nodot(lo.rstrip(".")), _nodot((hi or lo).rstrip("."))
    if not lo or not hi:
        return None
    return lo, hi


class IcdLinker:
    """Links diagnosis mentions to ranked ICD-10-CM codes.

    Args:
        settings: Engine settings (``rules_dir``, ``max_mention_chars``, ``max_codes``).
        data: A loaded index (see :func:`engine.icd_index.load_or_build`).
        semantic: Optional backbone re-ranker of the lexical candidates (off by default, see
            :class:`SemanticReranker`).
    """

    def __init__(self, settings: Settings, data: ix.IndexData, semantic: SemanticReranker | None = None) -> None:
        self.settings = settings
        self.semantic = semantic
        self.data = data
        year = data.meta.get("year") or "unknown"
        self.version = f"ICD-10-CM {year}"
        self._code_pos = {c: i for i, c in enumerate(data.codes)}
        self._sorted_codes = sorted(data.codes)
        self._vocab_pos = {s: i for i, s in enumerate(data.vocab)}
        self._n_docs = data.n_docs
        # Plain arrays and lists: memmap indexing and numpy scalars cost microseconds per access in the hot loop.
        self._billable: list[bool] = np.asarray(data.billable).tolist()
        self._extension: list[bool] = np.asarray(data.extension).tolist()
        self._parent: list[int] = np.asarray(data.parent).tolist()
        self._default_leaf: list[int] = np.asarray(data.default_leaf).tolist()
        self._doc_code = np.asarray(data.doc_code)
        self._desc_len = [len(d) for d in data.descriptions]
        self._perinatal: list[bool] = [c.startswith("P") for c in data.codes]
        self._desc_lower = [d.lower() for d in data.descriptions]
        self._dominance = self._dominance_of_codes()
        self._sided = self._sided_leaves()
        self._unsided = self._unsided_codes()
        self._acuity, self._sibling_acuity = self._acuity_of_codes()
        self._acuity_twins = self._twins_by_acuity()
        self._sequela = self._sequela_codes()
        self._injury = [INJURY_RANGE[0] <= c[:3] <= INJURY_RANGE[1] for c in data.codes]
        self._post_ptr = np.asarray(data.post_ptr)
        self._post_doc = np.asarray(data.post_doc)
        self._post_w = np.asarray(data.post_w)
        self._idf = np.asarray(data.idf)
        self._doc_den = np.asarray(data.doc_den, dtype=np.float32)
        self._doc_factor = ix.KIND_FACTOR[np.asarray(data.doc_kind)]
        self._lock = threading.Lock()
        self._trigram_index: dict[str, list[int]] | None = None
        self._load_rules(settings)
        self._doc_family = self._zone_mask(*FAMILY_RANGE)
        self._doc_personal = self._zone_mask(*PERSONAL_RANGE)

    # ----------------------------------------------------------------- rules
    def _load_rules(self, settings: Settings) -> None:
        abbreviations = ix.read_rules(settings.rules_dir / "abbreviations.tsv")
        self._abbrev = {a.lower(): e.lower() for a, e in abbreviations}
        keys = sorted(self._abbrev, key=len, reverse=True)
        # Matched on the original text so that a plural "s" after an upper-case abbreviation ("PEs", "DVTs") can
        # be told apart from a word that merely starts like one ("pes planus" is no pulmonary embolism).
        self._abbrev_re = (
            re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(k) for k in keys) + r")(s?)(?![a-z0-9/])", re.IGNORECASE)
            if keys
            else None
        )
        self._word_alts: dict[str, list[str]] = {}
        self._phrases: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for term, target in ix.read_rules(settings.rules_dir / "icd_synonyms.tsv"):
            src = tuple(self._stems(term))
            if ix.is_code(target):
                # The term is an index entry of the code (see icd_index); a multi-word term also rewrites the
                # mention to the code's own wording, so extra words ("right", "open") still pick the sibling.
                if len(src) < 2 or target not in self._code_pos:
                    continue
                desc = self.data.descriptions[self._code_pos[target]].lower()
                desc = ix.DEFAULT_RE.sub(" ", ix.PAREN_RE.sub(" ", desc)).partition(" without ")[0]
                dst = tuple(dict.fromkeys(ix.stem(w) for w in ix.words(desc) if w not in ix.DEFAULT_WORDS))
                dst = tuple(w for w in dst if w not in ix.STOPWORDS)
            else:
                dst = tuple(self._stems(target))
            if not src or not dst or src == dst:
                continue
            if len(src) == 1 and len(dst) == 1:
                self._word_alts.setdefault(src[0], []).append(dst[0])
            else:
                targets = self._phrases.setdefault(src, [])
                if dst not in targets:
                    targets.append(dst)
        # A phrase also matches through one-word alternatives: "fractured ankle" meets the rule "broken ankle".
        for key in list(self._phrases):
            for k, w in enumerate(key):
                for alt in self._word_alts.get(w, ()):
                    variant = (*key[:k], alt, *key[k + 1 :])
                    self._phrases.setdefault(variant, self._phrases[key])
            inverse = [k for k, w in enumerate(key) if any(w in alts for alts in self._word_alts.values())]
            for k in inverse:
                for src, alts in self._word_alts.items():
                    if key[k] in alts:
                        self._phrases.setdefault((*key[:k], src, *key[k + 1 :]), self._phrases[key])
        # Longest phrases first, so "broken wrist" wins over "broken".
        self._phrase_order = sorted(self._phrases, key=lambda k: (-len(k), k))
        context = self._context_rows(settings)
        self._injury_stems = frozenset(ix.stem(w) for w in context.get("injury", ()) if " " not in w)
        phrases = [w for w in context.get("injury", ()) if " " in w]
        self._injury_phrase_re = (
            re.compile(r"\b(?:" + "|".join(re.escape(p) for p in phrases) + r")\b") if phrases else None
        )
        self._disease_stems = frozenset(ix.stem(w) for w in context.get("disease", ()))
        self._disease_suffixes = tuple(context.get("disease_suffix", ()))
        sites: dict[tuple[str, ...], tuple[str, ...]] = {}
        for part_words, region_words in context.get("site_pairs", ()):
            part, region = tuple(self._stems(part_words)), tuple(self._stems(region_words))
            if part and region:
                sites.setdefault(part, region)
        self._sites = sites
        self._site_order = sorted(sites, key=lambda k: (-len(k), k))
        self._site_words = frozenset(w for k in sites for w in k)
        cues = sorted(context.get("sequela", ()), key=len, reverse=True)
        self._sequela_re = (
            re.compile(r"\b(?:" + "|".join(re.escape(c) for c in cues) + r")\b", re.IGNORECASE) if cues else None
        )
        self._ranges: dict[str, list[_Range]] = {"family": [], "historical": []}
        for line_range, fam, hist in self._history_rows(settings):
            parsed = _parse_range(line_range)
            if not parsed:
                continue
            for kind, codes in (("family", fam), ("historical", hist)):
                codes_t = tuple(c for c in codes.split() if c != "-" and c in self._code_pos)
                if codes_t:
                    self._ranges[kind].append(_Range(parsed[0], parsed[1], codes_t, False))
        # The tabular list's own "Conditions classifiable to C50.-" notes of the Z80-Z87 codes.
        for ci, code in enumerate(self.data.codes):
            if not ("Z80" <= code[:3] <= "Z87"):
                continue
            kind = "family" if code[:3] <= FAMILY_RANGE[1] else "historical"
            if not self._billable[ci]:
                continue
            for doc_text in self._terms_of(ci):
                m = re.match(r"(?:personal history of )?conditions classifiable to (.+)$", doc_text.lower())
                if not m or "elsewhere" in m.group(1):
                    continue
                for part in m.group(1).split(","):
                    parsed = _parse_range(part.upper())
                    if parsed:
                        self._ranges[kind].append(_Range(parsed[0], parsed[1], (code,), True))

    def _sided_leaves(self) -> dict[tuple[int, str], int]:
        """``(code index, side) -> billable code`` of that side just below a code that names no side.

        A mention such as "left carpal tunnel" matches the category "Carpal tunnel syndrome" best (the children
        add "upper limb"); its default child is the unspecified side, so the side the note names is looked up
        here among the category's children and grandchildren ("..., left upper limb").
        """
        descriptions = self._desc_lower
        # Substring tests first: the regex over every description would double the load time.
        self._has_side = [
            ("left" in d or "right" in d or "bilateral" in d) and bool(SIDE_RE.search(d)) for d in descriptions
        ]
        side_re = SIDE_RE
        # -> (distance, against the default dominance, description length, leaf)
        best: dict[tuple[int, str], tuple[int, int, int, int]] = {}
        for ci, desc in enumerate(descriptions):
            if not self._has_side[ci]:
                continue
            found = set(side_re.findall(desc))
            if len(found) != 1:
                continue
            side = found.pop()
            leaf = self._default_leaf[ci]
            if not self._billable[leaf]:
                continue
            ancestor = ci
            for distance in (1, 2):
                below, ancestor = ancestor, self._parent[ancestor]
                if ancestor < 0 or ancestor == below or self._has_side[ancestor]:
                    break
                if distance == 2 and self._default_leaf[below] != self._default_leaf[ancestor]:
                    # Only through the category's default child: "right radius, unspecified fracture of the lower
                    # end", not the (shorter) "Colles' fracture of right radius".
                    break
                # "Hemiplegia ... affecting left non-dominant side", not the shorter "... left dominant side".
                wrong_dominance = int(bool(self._dominance[ci]) and self._dominance[ci] != DOMINANCE_DEFAULT.get(side))
                cand = (distance, wrong_dominance, len(descriptions[ci]), leaf)
                if cand < best.get((ancestor, side), (9, 0, 0, 0)):
                    best[(ancestor, side)] = cand
        return {key: leaf for key, (*_, leaf) in best.items()}

    def _unsided_codes(self) -> list[bool]:
        """Billable codes naming no side whose siblings do ("Unspecified ovarian cyst, unspecified side")."""
        with_sides = {ci for ci, _ in self._sided}
        out = [False] * len(self.data.codes)
        for ci in range(len(out)):
            if self._billable[ci] and self._parent[ci] in with_sides and not self._has_side[ci]:
                out[ci] = True
        return out

    def _acuity_of_codes(self) -> tuple[list[frozenset[str]], dict[int, frozenset[str]]]:
        """Acuity words of every code's description, and those its siblings name (per parent code).

        Words in parentheses count too: "Venous insufficiency (chronic) (peripheral)" is the chronic code.
        """
        none: frozenset[str] = frozenset()
        acuity = []
        for low in self._desc_lower:
            acuity.append(frozenset(ACUITY_RE.findall(low)) if "acute" in low or "chronic" in low else none)
        siblings: dict[int, set[str]] = {}
        for ci, a in enumerate(acuity):
            if a and self._parent[ci] >= 0:
                siblings.setdefault(self._parent[ci], set()).update(a)
        return acuity, {p: frozenset(a) for p, a in siblings.items()}

    def _twins_by_acuity(self) -> dict[tuple[int, frozenset[str]], int]:
        """``(code, acuity) -> code`` worded the same but for its acuity ("Acute embolism ... of lower extremity"
        -> "Chronic embolism ... of lower extremity"; "Acute ... heart failure" -> "Acute on chronic ...")."""
        by_key: dict[str, dict[frozenset[str], int]] = {}
        for ci, a in enumerate(self._acuity):
            if a:
                key = ACUITY_RE.sub("#", ACUTE_ON_CHRONIC_RE.sub("#", self._desc_lower[ci]))
                by_key.setdefault(key, {}).setdefault(a, ci)
        twins: dict[tuple[int, frozenset[str]], int] = {}
        for group in by_key.values():
            for a, ci in group.items():
                for b, other in group.items():
                    if a != b:
                        twins[(ci, b)] = other
        return twins

    def _sequela_codes(self) -> list[bool]:
        """Codes that are sequelae: "Sequelae of ..." and everything below it (I69.354), "..., sequela" (S)."""
        out = [False] * len(self.data.codes)
        parent = self._parent
        for ci, low in enumerate(self._desc_lower):
            p = parent[ci]
            # Parents come before their children in the tabular order, so one pass suffices.
            out[ci] = "sequela" in low or (0 <= p < ci and out[p])
        return out

    def _dominance_of_codes(self) -> list[str]:
        """``"dominant"``, ``"nondominant"`` or ``""`` per code (hemiplegia, monoplegia, their sequelae)."""
        out = []
        for low in self._desc_lower:
            if "dominant" not in low:
                out.append("")
            else:
                out.append("nondominant" if ("nondominant" in low or "non-dominant" in low) else "dominant")
        return out

    def _context_rows(self, settings: Settings) -> dict[str, list[Any]]:
        """Words per kind of ``icd_context.tsv``, lower-cased; ``site`` rows also as (part, region) pairs under
        ``site_pairs``."""
        out: dict[str, list[Any]] = {}
        for _, parts in rule_rows(settings.rules_dir / "icd_context.tsv", required=False):
            if len(parts) >= 2 and parts[0].strip() and parts[1].strip():
                out.setdefault(parts[0].strip(), []).append(parts[1].strip().lower())
            if len(parts) >= 3 and parts[0].strip() == "site":
                out.setdefault("site_pairs", []).append((parts[1], parts[2]))
        return out

    def _history_rows(self, settings: Settings) -> list[tuple[str, str, str]]:
        path = settings.rules_dir / "icd_history.tsv"
        return [(p[0], p[1], p[2]) for _, p in rule_rows(path, required=False) if len(p) >= 3]

    def _terms_of(self, ci: int) -> list[str]:
        # "Conditions classifiable to ..." notes carry no words worth indexing; the index keeps them apart.
        return list(self.data.classifiable.get(self.data.codes[ci], ()))

    # ----------------------------------------------------------------- text
    def _stems(self, text: str) -> list[str]:
        return [ix.stem(w) for w in ix.words(text) if w not in ix.STOPWORDS]

    def _query(self, text: str) -> tuple[list[str], set[str]]:
        """Stems of a mention and those it names as absent ("without obstruction", "no coma")."""
        stems: list[str] = []
        absent: set[str] = set()
        for clause in re.split(r"[,;]", text):
            negated = False
            for w in ix.words(clause):
                if w in {"without", "no"}:
                    negated = True
                    continue
                if w in ix.STOPWORDS:
                    continue
                s = ix.stem(w)
                stems.append(s)
                if negated:
                    absent.add(s)
        return stems, absent

    def _expand_abbreviations(self, text: str) -> str:
        if self._abbrev_re is None:
            return text.lower()

        def expand(m: re.Match[str]) -> str:
            abbreviation, plural = m.group(1), m.group(2)
            if plural and not (plural == "s" and abbreviation.isupper() and len(abbreviation) > 1):
                return m.group(0).lower()
            expansion = self._abbrev[abbreviation.lower()]
            # The note's own acuity word replaces the one an expansion assumes: "chronic DVT" is a chronic deep
            # vein thrombosis, not a "chronic acute" one.
            own = ACUITY_RE.match(expansion)
            if own and re.search(r"\b(?:subacute|acute|chronic)\W*$", m.string[: m.start()].lower()):
                expansion = expansion[own.end() :].lstrip()
            return expansion

        return self._abbrev_re.sub(expand, text).lower()

    def _rewrite(self, stems: list[str], alternative: int = 0) -> list[str] | None:
        """Apply lay-term/eponym phrase rules; ``None`` when none applies.

        A phrase matches when all its words occur in the mention in any order (mentions are short; "broken left
        wrist" still contains "broken wrist"), longest phrases first. ``alternative`` picks the n-th target of
        rules that have several (falling back to the first).
        """
        remaining = list(stems)
        added: list[str] = []
        changed = False
        present = set(remaining)
        for key in self._phrase_order:
            if not present.issuperset(key):
                continue
            targets = self._phrases[key]
            dst = targets[alternative] if alternative < len(targets) else targets[0]
            for w in key:
                if w in remaining:
                    remaining.remove(w)
            present = set(remaining)
            added.extend(dst)
            changed = True
        return added + remaining if changed else None

    def _correct(self, word_stem: str) -> list[tuple[str, float]]:
        """Closest stems of the tabular list for an unknown word (spelling correction)."""
        if len(word_stem) < 4 or word_stem.isdigit():
            return []
        with self._lock:
            if self._trigram_index is None:
                index: dict[str, list[int]] = {}
                for i, s in enumerate(self.data.vocab):
                    padded = f"#{s}#"
                    for k in range(len(padded) - 2):
                        index.setdefault(padded[k : k + 3], []).append(i)
                self._trigram_index = index
        padded = f"#{word_stem}#"
        counts: dict[int, int] = {}
        for k in range(len(padded) - 2):
            for i in self._trigram_index.get(padded[k : k + 3], ()):
                counts[i] = counts.get(i, 0) + 1
        best = sorted(counts.items(), key=lambda kv: -kv[1])[:30]
        scored = []
        for i, _ in best:
            cand = self.data.vocab[i]
            ratio = difflib.SequenceMatcher(None, word_stem, cand).ratio()
            if ratio >= 0.8:
                scored.append((cand, ratio))
        scored.sort(key=lambda t: -t[1])
        return scored[:2]

    # ----------------------------------------------------------------- scoring
    def _slots(self, stems: list[str]) -> list[tuple[float, list[tuple[int, float]]]]:
        """Query slots: ``(weight, [(stem id, similarity), ...])`` per distinct mention word."""
        slots = []
        seen = set()
        for s in stems:
            if s in seen:
                continue
            seen.add(s)
            alts: dict[int, float] = {}
            if s in self._vocab_pos:
                alts[self._vocab_pos[s]] = 1.0
            for a in self._word_alts.get(s, ()):
                if a in self._vocab_pos:
                    alts.setdefault(self._vocab_pos[a], ALT_SIMILARITY)
            if not alts:
                for cand, ratio in self._correct(s):
                    alts.setdefault(self._vocab_pos[cand], ratio * ALT_SIMILARITY)
            if s in self._vocab_pos:
                weight = float(self._idf[self._vocab_pos[s]])
            elif alts:
                weight = max(float(self._idf[i]) for i in alts)
            else:
                weight = UNKNOWN_WORD_WEIGHT
            slots.append((weight, list(alts.items())))
        return slots

    def _score_docs(
        self, stems: list[str], absent: set[str] | frozenset[str] = frozenset(), mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """F-measure of every matching entry: ``(entry ids, scores)``.

        A mention word matches an entry word of the same polarity only: "hernia with obstruction" does not
        match the "obstruction" of "hernia without obstruction", and "without obstruction" matches only it.
        """
        slots = self._slots(stems)
        negated = [s in absent for s in dict.fromkeys(stems)]
        q_total = sum(w for w, _ in slots)
        if not slots or q_total <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        acc_r = np.zeros(self._n_docs, dtype=np.float32)
        acc_p = np.zeros(self._n_docs, dtype=np.float32)
        ptr, pdoc, pw = self._post_ptr, self._post_doc, self._post_w
        for (weight, alts), neg in zip(slots, negated, strict=True):
            if not alts:
                continue
            if len(alts) == 1 and alts[0][1] == 1.0:
                sid = alts[0][0]
                docs = pdoc[ptr[sid] : ptr[sid + 1]]
                w = pw[ptr[sid] : ptr[sid + 1]]
                same = (w < 0) if neg else (w > 0)
                acc_r[docs] += weight * same
                acc_p[docs] += np.abs(w) * same
                continue
            tmp_r = np.zeros(self._n_docs, dtype=np.float32)
            tmp_p = np.zeros(self._n_docs, dtype=np.float32)
            for sid, sim in alts:
                docs = pdoc[ptr[sid] : ptr[sid + 1]]
                w = pw[ptr[sid] : ptr[sid + 1]]
                same = (w < 0) if neg else (w > 0)
                tmp_r[docs] = np.maximum(tmp_r[docs], sim * same)
                tmp_p[docs] = np.maximum(tmp_p[docs], sim * np.abs(w) * same)
            acc_r += weight * tmp_r
            acc_p += tmp_p
        cand = np.flatnonzero(acc_r)
        if mask is not None:
            cand = cand[mask[cand]]
        if cand.size == 0:
            return cand, np.zeros(0, dtype=np.float32)
        recall = acc_r[cand] / q_total
        precision = np.minimum(acc_p[cand] / np.maximum(self._doc_den[cand], 1e-6), 1.0)
        b2 = BETA * BETA
        f = (1 + b2) * precision * recall / np.maximum(b2 * precision + recall, 1e-9)
        return cand, (f * self._doc_factor[cand]).astype(np.float32)

    def _variants(self, mention: str, sites: bool = True) -> tuple[list[list[str]], set[str], str, int]:
        """Stem lists to score (the mention, its rule rewrites, then its site rewrites), absent stems, the
        expanded text, and how many of the stem lists come before the site rewrites."""
        expanded = self._expand_abbreviations(mention)
        stems, absent = self._query(expanded)
        variants = [stems]
        for alternative in range(2):
            rewritten = self._rewrite(stems, alternative)
            if rewritten and rewritten not in variants:
                variants.append(rewritten)
        n_own = len(variants)
        if sites and self._site_words.intersection(stems):
            for v in list(variants):
                regional = self._site_rewrite(v)
                if regional and regional not in variants:
                    variants.append(regional)
        return variants, absent, expanded, n_own

    def _site_rewrite(self, stems: list[str]) -> list[str] | None:
        """The stems with parts of the body replaced by the region the tabular list names (``site`` rules)."""
        remaining = list(stems)
        added: list[str] = []
        for key in self._site_order:
            if not set(remaining).issuperset(key):
                continue
            for w in key:
                remaining.remove(w)
            added.extend(w for w in self._sites[key] if w not in added)
        return added + remaining if added else None

    @staticmethod
    def _wanted_acuity(expanded: str) -> frozenset[str]:
        """The acuity the mention names: one word, or acute and chronic together ("acute on chronic")."""
        if ACUTE_ON_CHRONIC_RE.search(expanded):
            return frozenset({"acute", "chronic"})
        found = frozenset(ACUITY_RE.findall(expanded))
        # Two acuities apart ("AKI on CKD", "COPD w acute exacerbation") name two conditions: no preference.
        return found if len(found) == 1 else frozenset()

    def _disease_without_injury(self, expanded: str) -> bool:
        """Whether the mention names a disease and no injury (injury codes then rank lower)."""
        raw = ix.words(expanded)
        stems = {ix.stem(w) for w in raw}
        if stems & self._injury_stems or (self._injury_phrase_re and self._injury_phrase_re.search(expanded)):
            return False
        return bool(stems & self._disease_stems) or any(
            w.endswith(x) and len(w) > len(x) + 2 for w in raw for x in self._disease_suffixes
        )

    def _offer(
        self, best: dict[int, tuple[float, str]], ci: int, s: float, evidence: str, side: str | None, resolve: bool
    ) -> None:
        """Record a code's score, and for a category its default (or sided) billable code just below it."""
        if s > best.get(ci, (-1.0, ""))[0]:
            best[ci] = (s, evidence)
        if resolve and not self._billable[ci]:
            leaf = self._sided.get((ci, side), self._default_leaf[ci]) if side else self._default_leaf[ci]
            if leaf != ci and self._billable[leaf]:
                s2 = s * CATEGORY_FACTOR
                if s2 > best.get(leaf, (-1.0, ""))[0]:
                    best[leaf] = (s2, evidence)

    def _context_factor(self, ci: int, acuity: frozenset[str], dominance: str | None) -> float:
        """Score factor of a code for the mention's acuity and side dominance (1.0 when neither applies)."""
        f = 1.0
        if acuity:
            have = self._acuity[ci]
            if have:
                if not acuity <= have:
                    f *= OTHER_ACUITY_FACTOR
            elif acuity <= self._sibling_acuity.get(self._parent[ci], frozenset()):
                f *= UNSTATED_ACUITY_FACTOR
        if dominance and self._dominance[ci] and self._dominance[ci] != dominance:
            f *= WRONG_DOMINANCE_FACTOR
        return f

    def _rank(
        self,
        mention: str,
        mask: np.ndarray | None = None,
        resolve_categories: bool = True,
        top_docs: int = 80,
        sequela: bool = False,
        sites: bool = True,
    ) -> list[tuple[int, float, str]]:
        """Codes for a mention: ``[(code index, score, evidence)]`` best first (billable and not).

        ``sequela``: the mention names a residual deficit (see :meth:`_sequela_cue`); sequela codes rank first.
        ``sites``: also read the mention with parts of the body widened to their region (``site`` rules).
        """
        best: dict[int, tuple[float, str]] = {}
        billable = self._billable
        variants, absent, expanded, n_own = self._variants(mention, sites)
        newborn = any(PERINATAL_CUES.intersection(stems) for stems in variants)
        perinatal = self._perinatal
        sides = {SIDES[w] for stems in variants for w in stems if w in SIDES}
        side = sides.pop() if len(sides) == 1 else None
        unsided = self._unsided
        acuity = self._wanted_acuity(expanded)
        named_dominance = any("dominant" in stems for stems in variants)
        dominance = DOMINANCE_DEFAULT.get(side) if side and not named_dominance else None
        contextual = bool(acuity or dominance)
        no_injury = self._disease_without_injury(expanded)
        injury, is_sequela = self._injury, self._sequela
        for k, stems in enumerate(variants):
            docs, scores = self._score_docs(stems, absent, mask)
            if k >= n_own:
                # A reading through a wider region ranks just below the same match on the mention's own words.
                scores = scores * REGION_FACTOR
            if docs.size == 0:
                continue
            if docs.size > top_docs:
                keep = np.argpartition(-scores, top_docs)[:top_docs]
                docs, scores = docs[keep], scores[keep]
            for d, ci, s in zip(docs.tolist(), self._doc_code[docs].tolist(), scores.tolist(), strict=True):
                if perinatal[ci] and not newborn:
                    s *= PERINATAL_FACTOR
                if side and unsided[ci]:
                    s *= UNSIDED_FACTOR
                if no_injury and injury[ci]:
                    s *= INJURY_FACTOR
                if sequela and not is_sequela[ci]:
                    s *= SEQUELA_FACTOR
                evidence = self.data.doc_text[d]
                if contextual:
                    if acuity and (twin := self._acuity_twins.get((ci, acuity))) is not None:
                        # The same wording with the mention's acuity ("Deep vein thrombosis NOS" is filed under the
                        # acute I82.40; "chronic DVT" is its chronic twin I82.50), ranked as this entry would be.
                        self._offer(best, twin, s * self._context_factor(twin, acuity, dominance), evidence, side,
                                    resolve_categories)
                    s *= self._context_factor(ci, acuity, dominance)
                # Inline for the common case (a billable code): this loop runs for every matched entry.
                if s > best.get(ci, (-1.0, ""))[0]:
                    best[ci] = (s, evidence)
                if resolve_categories and not billable[ci]:
                    self._offer(best, ci, s, evidence, side, resolve_categories)
        ranked = sorted(
            best.items(),
            key=lambda kv: (-round(kv[1][0], 6), not billable[kv[0]], self._desc_len[kv[0]]),
        )
        return [(ci, s, ev) for ci, (s, ev) in ranked]

    def _code(self, ci: int, score: float, evidence: str | None) -> Code:
        return Code(
            code=self.data.codes[ci],
            description=self.data.descriptions[ci],
            score=float(min(max(score, 0.0), 1.0)),
            billable=bool(self._billable[ci]),
            evidence=evidence,
        )

    def _finish(self, ranked: list[tuple[int, float, str]], limit: int) -> list[Code]:
        if not ranked:
            return []
        top = ranked[0][1]
        keep = []
        seen_parents: set[int] = set()
        for r in ranked:
            if r[1] < MIN_SCORE or r[1] < 0.5 * top:
                continue
            if self._extension[r[0]]:
                # One encounter/sequela variant per code: the list shows different conditions, not the same
                # fracture as initial, subsequent and sequela encounters.
                if self._parent[r[0]] in seen_parents:
                    continue
                seen_parents.add(self._parent[r[0]])
            keep.append(r)
        billable = [r for r in keep if self._billable[r[0]]]
        others = [r for r in keep if not self._billable[r[0]]]
        return [self._code(ci, s, ev) for ci, s, ev in (billable + others)[:limit]]

    # ----------------------------------------------------------------- history codes
    def _zone_mask(self, lo: str, hi: str) -> np.ndarray:
        lo_i, hi_i = bisect.bisect_left(self._sorted_codes, lo), bisect.bisect_left(self._sorted_codes, hi + "\uffff")
        in_zone = np.zeros(len(self.data.codes), dtype=bool)
        in_zone[[self._code_pos[c] for c in self._sorted_codes[lo_i:hi_i]]] = True
        return in_zone[np.asarray(self.data.doc_code)]

    def _history(self, mention: str, kind: str) -> list[Code]:
        mask = self._doc_family if kind == "family" else self._doc_personal
        prefix = "family history of " if kind == "family" else "personal history of "
        found: dict[int, tuple[float, str]] = {}
        # 1. the disease's own code, mapped through the classifiable ranges
        for rank, (ci, score, evidence) in enumerate(self._rank(mention)[:3]):
            if not self._billable[ci] and rank > 0:
                continue
            code = self.data.codes[ci]
            covering = [r for r in self._ranges[kind] if r.covers(code)]
            if not covering:
                continue
            chosen = max(covering, key=lambda r: r.narrowness)
            for k, z in enumerate(chosen.codes):
                zi = self._code_pos[z]
                s = score * (0.95 - 0.05 * rank - 0.05 * k)
                if s > found.get(zi, (-1.0, ""))[0]:
                    found[zi] = (s, f"{evidence} ({code})")
        # 2. the Z codes' own wording ("Family history of diabetes mellitus"), when it shares a word with the
        # mention itself (every Z code shares "family history").
        variants = self._variants(mention)[0]
        mention_stems = {s for v in variants for s in v}
        mention_stems |= {a for s in list(mention_stems) for a in self._word_alts.get(s, ())}
        # The Z codes name parts of the body as the mention does ("... of large intestine" is Z85.03, whose
        # default child is the carcinoid tumor), so no site readings here.
        for ci, score, evidence in self._rank(prefix + mention, mask=mask, sites=False)[:5]:
            if not mention_stems & {s for s, _ in ix.term_tokens(evidence)}:
                continue
            if score > found.get(ci, (-1.0, ""))[0]:
                found[ci] = (score, evidence)
        ranked = sorted(found.items(), key=lambda kv: (-kv[1][0], not self._billable[kv[0]]))
        return self._finish([(ci, s, ev) for ci, (s, ev) in ranked], self.settings.max_codes)

    def _sequela_cue(self, text: str) -> str | None:
        """The mention without its history cue and sequela words when it names a residual deficit, else ``None``.

        "h/o CVA with residual hemiparesis" -> "CVA with hemiparesis" (coded I69.359, not Z86.73); "late effects
        of polio" -> "of polio" (B91). "No residual deficits" and "without residual" are no sequela.
        """
        if not self._names_sequela(text):
            return None
        for cue, _ in HISTORY_CUES:
            m = cue.match(text)
            if m:
                text = text[m.end() :]
        rest = self._sequela_re.sub(" ", text)
        if not ix.words(rest):
            return None
        # "Residual schizophrenia" (F20.5) and the like are conditions named with the word itself.
        plain = self._rank(text)
        if plain and self._names_sequela(plain[0][2]):
            return None
        return rest

    def _names_sequela(self, text: str) -> bool:
        """Whether ``text`` has a sequela word that no "no"/"without" cancels."""
        if self._sequela_re is None:
            return False
        low = text.lower()
        return any(not SEQUELA_NEGATION_RE.search(low[: m.start()]) for m in self._sequela_re.finditer(low))

    # ----------------------------------------------------------------- public API
    def link(self, mention: str, label: str = "DIAG", traits: Sequence[str] = ()) -> list[Code]:
        """Ranked ICD-10-CM suggestions for one mention.

        Args:
            mention: The mention text; empty or whitespace gives no codes, and text longer than
                ``settings.max_mention_chars`` is truncated to that many characters.
            label: Entity label; only ``DIAG`` mentions are coded (ICD-10-CM codes diagnoses).
            traits: Assertion traits. ``negated``/``possible``/``hypothetical`` give no codes; ``family`` gives
                family-history codes (Z80-Z84) and ``historical`` personal-history codes (Z85-Z87, I25.2).

        Returns:
            At most ``settings.max_codes`` codes, billable first, each with a score in [0, 1] and the matched
            term as ``evidence``.
        """
        if label != "DIAG" or not isinstance(mention, str):
            return []
        text = mention[: self.settings.max_mention_chars].strip()
        if not text or any(t in UNCODED_TRAITS for t in traits):
            return []
        if "family" in traits:
            return self._history(text, "family")
        residual = self._sequela_cue(text)
        if residual is not None:
            # A residual deficit is a current condition, coded as the sequela, even when the stroke is history.
            return self._finish(self._rank(residual, sequela=True), self.settings.max_codes)
        if "historical" in traits:
            return self._history(text, "historical")
        for cue, kind in HISTORY_CUES:
            m = cue.match(text)
            if m and text[m.end() :].strip():
                return self._history(text[m.end() :].strip(), kind)
        direct = normalize_code(text)
        if ix.is_code(direct) and direct in self._code_pos:
            return [self._code(self._code_pos[direct], 1.0, text)]
        ranked = self._rank(text)
        if self.semantic is not None:
            ranked = self.semantic.rerank(text, ranked[:20], self.data.descriptions)
        return self._finish(ranked, self.settings.max_codes)

    def search(self, query: str, limit: int = 20) -> list[Code]:
        """Codes for the app's correction box: by code prefix (``"I21"``, ``"i21.9"``) or by words.

        Args:
            query: A code prefix or free words.
            limit: Most codes returned.

        Returns:
            For a prefix, matching codes in tabular order; for words, ranked matches (billable or not).
        """
        q = (query or "").strip()[: self.settings.max_mention_chars]
        if not q or limit <= 0:
            return []
        if re.fullmatch(r"[A-Za-z][0-9][0-9A-Za-z]?\.?[0-9A-Za-z]{0,4}", q):
            prefix = normalize_code(q).rstrip(".")
            hits = [i for i, c in enumerate(self.data.codes) if c.startswith(prefix)][:limit]
            if hits:
                return [self._code(i, 1.0, None) for i in hits]
        ranked = self._rank(q, resolve_categories=False)
        return [self._code(ci, s, ev) for ci, s, ev in ranked[:limit] if s >= MIN_SCORE]

    def describe(self, code: str) -> Code | None:
        """The code's description and billability, or ``None`` for an unknown code (dot optional)."""
        ci = self._code_pos.get(normalize_code(code or ""))
        return None if ci is None else self._code(ci, 1.0, None)


class SemanticReranker:
    """Re-ranks lexical candidates by cosine similarity of backbone sentence embeddings (mean pooled MiniLM).

    Off by default: on the 2-core CPU it costs more than the whole lexical linker per mention and did not pay
    for itself on the dev set (``python -m engine evaluate icd --semantic`` prints both, side by side).
    Candidate descriptions are embedded lazily and kept in an LRU cache, so no 98k-entry embedding pass is needed.

    Args:
        settings: Engine settings (``device``).
        weight: Share of the final score given to the cosine similarity.
        cache_size: Description embeddings kept.
    """

    def __init__(self, settings: Settings, weight: float = 0.3, cache_size: int = 50_000) -> None:
        import torch

        from engine.backbone import load_encoder, load_tokenizer, resolve_backbone, resolve_device

        backbone = resolve_backbone(None)
        self.device = resolve_device(settings.device)
        self.tokenizer = load_tokenizer(backbone)
        self.encoder = load_encoder(backbone).to(self.device).eval()
        self.weight = weight
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._torch = torch

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised mean-pooled embeddings (rows) of ``texts``."""
        torch = self._torch
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=48, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.float().cpu().numpy()

    def _descriptions(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for t, v in zip(missing, self.embed(missing), strict=True):
                self._cache[t] = v
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        for t in texts:
            self._cache.move_to_end(t)
        return np.stack([self._cache[t] for t in texts])

    def rerank(self, mention: str, ranked: list[tuple[int, float, str]], descriptions: list[str]) -> list:
        """``ranked`` re-scored as ``(1 - weight) * lexical + weight * cosine`` and re-sorted."""
        if not ranked:
            return ranked
        q = self.embed([mention])[0]
        d = self._descriptions([descriptions[ci] for ci, _, _ in ranked])
        cos = np.clip(d @ q, 0.0, 1.0)
        out = [
            (ci, (1 - self.weight) * s + self.weight * float(c), ev) for (ci, s, ev), c in zip(ranked, cos, strict=True)
        ]
        return sorted(out, key=lambda r: -r[1])


def load(settings: Settings) -> IcdLinker:
    """Load the ICD stage, building and caching the index on first use (see :mod:`engine.icd_index`)."""
    data, _ = ix.load_or_build(settings)
    return IcdLinker(settings, data)
