"""Family and personal history codes (Z80-Z87), and residual deficits coded as sequelae.

A family finding gets the family-history code (Z80-Z84), a historical one the personal-history code (Z85-Z87;
an old myocardial infarction is I25.2): the disease's own code is mapped through the tabular list's "conditions
classifiable to" notes and ``assets/rules/icd_history.tsv``, and the Z codes' own wording is matched as well.
"residual"/"late effect"/"sequela" (not cancelled by "no"/"without") codes the deficit as a current sequela
(I69.35x for "h/o CVA with residual hemiparesis", not Z86.73).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.icd.attributes import CodeTables
from engine.icd.rules import LinkerRules
from engine.icd.scoring import LexicalScorer, Ranked
from engine.icd.tabular import IndexData
from engine.icd.text import nodot, term_tokens, words
from engine.rules import rule_rows

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
SEQUELA_NEGATION_RE = re.compile(r"\b(?:no|without|w/o|denies)\s+(?:\w+\s+)?$")


@dataclass(frozen=True, slots=True)
class CodeRange:
    """Codes ``lo``-``hi`` (no dots) whose history is coded as ``codes``."""

    lo: str
    hi: str
    codes: tuple[str, ...]
    authoritative: bool

    def covers(self, code: str) -> bool:
        """Whether ``code`` lies in the range."""
        c = nodot(code)
        return c[: len(self.lo)] >= self.lo and c[: len(self.hi)] <= self.hi

    @property
    def narrowness(self) -> tuple[int, int, int]:
        """Sort key: fewer codes covered first ("I21-I22" beats "I00-I99"), then the tabular list's own notes."""
        span = int(self.hi.ljust(7, "Z"), 36) - int(self.lo.ljust(7, "0"), 36)
        return (-span, len(self.lo), int(self.authoritative))


def parse_range(text: str) -> tuple[str, str] | None:
    """``"C50.-"`` -> ``("C50", "C50")``; ``"I21-I22"`` -> ``("I21", "I22")``; ``None`` when empty."""
    text = text.strip().rstrip(".-").rstrip(".")
    if not text:
        return None
    lo, _, hi = text.partition("-")
    lo, hi = nodot(lo.rstrip(".")), nodot((hi or lo).rstrip("."))
    if not lo or not hi:
        return None
    return lo, hi


class HistoryCoder:
    """History codes and sequela readings for the linker.

    Args:
        data: A loaded index.
        tables: Its attribute tables.
        rules: The compiled rule data.
        scorer: The lexical scorer.
        rules_dir: Where ``icd_history.tsv`` lives.
    """

    def __init__(
        self, data: IndexData, tables: CodeTables, rules: LinkerRules, scorer: LexicalScorer, rules_dir: Path
    ) -> None:
        self.data = data
        self.tables = tables
        self.rules = rules
        self.scorer = scorer
        self._code_pos = {c: i for i, c in enumerate(data.codes)}
        self._sorted_codes = sorted(data.codes)
        self.ranges = self._read_ranges(rules_dir)
        self._masks = {"family": self._zone_mask(*FAMILY_RANGE), "historical": self._zone_mask(*PERSONAL_RANGE)}

    def _read_ranges(self, rules_dir: Path) -> dict[str, list[CodeRange]]:
        ranges: dict[str, list[CodeRange]] = {"family": [], "historical": []}
        rows = [(p[0], p[1], p[2]) for _, p in rule_rows(rules_dir / "icd_history.tsv", required=False) if len(p) >= 3]
        for line_range, fam, hist in rows:
            parsed = parse_range(line_range)
            if not parsed:
                continue
            for kind, codes in (("family", fam), ("historical", hist)):
                codes_t = tuple(c for c in codes.split() if c != "-" and c in self._code_pos)
                if codes_t:
                    ranges[kind].append(CodeRange(parsed[0], parsed[1], codes_t, False))
        # The tabular list's own "Conditions classifiable to C50.-" notes of the Z80-Z87 codes.
        for code, notes in self.data.classifiable.items():
            ci = self._code_pos.get(code)
            if ci is None or not ("Z80" <= code[:3] <= "Z87") or not self.tables.billable[ci]:
                continue
            kind = "family" if code[:3] <= FAMILY_RANGE[1] else "historical"
            for doc_text in notes:
                m = re.match(r"(?:personal history of )?conditions classifiable to (.+)$", doc_text.lower())
                if not m or "elsewhere" in m.group(1):
                    continue
                for part in m.group(1).split(","):
                    parsed = parse_range(part.upper())
                    if parsed:
                        ranges[kind].append(CodeRange(parsed[0], parsed[1], (code,), True))
        return ranges

    def _zone_mask(self, lo: str, hi: str) -> np.ndarray:
        lo_i = bisect.bisect_left(self._sorted_codes, lo)
        hi_i = bisect.bisect_left(self._sorted_codes, hi + "\uffff")
        in_zone = np.zeros(len(self.data.codes), dtype=bool)
        in_zone[[self._code_pos[c] for c in self._sorted_codes[lo_i:hi_i]]] = True
        return in_zone[np.asarray(self.data.doc_code)]

    def history(self, mention: str, kind: str) -> Ranked:
        """History codes (``kind`` ``family`` or ``historical``) for a mention, best first."""
        prefix = "family history of " if kind == "family" else "personal history of "
        found: dict[int, tuple[float, str]] = {}
        # 1. the disease's own code, mapped through the classifiable ranges
        for rank, (ci, score, evidence) in enumerate(self.scorer.rank(mention)[:3]):
            if not self.tables.billable[ci] and rank > 0:
                continue
            code = self.data.codes[ci]
            covering = [r for r in self.ranges[kind] if r.covers(code)]
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
        variants = self.scorer.reader.read(mention).variants
        mention_stems = {s for v in variants for s in v}
        mention_stems |= {a for s in list(mention_stems) for a in self.rules.word_alts.get(s, ())}
        # The Z codes name parts of the body as the mention does ("... of large intestine" is Z85.03, whose
        # default child is the carcinoid tumor), so no site readings here.
        for ci, score, evidence in self.scorer.rank(prefix + mention, mask=self._masks[kind], sites=False)[:5]:
            if not mention_stems & {s for s, _ in term_tokens(evidence)}:
                continue
            if score > found.get(ci, (-1.0, ""))[0]:
                found[ci] = (score, evidence)
        ranked = sorted(found.items(), key=lambda kv: (-kv[1][0], not self.tables.billable[kv[0]]))
        return [(ci, s, ev) for ci, (s, ev) in ranked]

    def sequela_cue(self, text: str) -> str | None:
        """The mention without its history cue and sequela words when it names a residual deficit, else ``None``.

        "h/o CVA with residual hemiparesis" -> "CVA with hemiparesis" (coded I69.359, not Z86.73); "late effects
        of polio" -> "of polio" (B91). "No residual deficits" and "without residual" are no sequela.
        """
        if not self.names_sequela(text) or self.rules.sequela_re is None:
            return None
        for cue, _ in HISTORY_CUES:
            m = cue.match(text)
            if m:
                text = text[m.end() :]
        rest = self.rules.sequela_re.sub(" ", text)
        if not words(rest):
            return None
        # "Residual schizophrenia" (F20.5) and the like are conditions named with the word itself.
        plain = self.scorer.rank(text)
        if plain and self.names_sequela(plain[0][2]):
            return None
        return rest

    def names_sequela(self, text: str) -> bool:
        """Whether ``text`` has a sequela word that no "no"/"without" cancels."""
        if self.rules.sequela_re is None:
            return False
        low = text.lower()
        return any(not SEQUELA_NEGATION_RE.search(low[: m.start()]) for m in self.rules.sequela_re.finditer(low))
