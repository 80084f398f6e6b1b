"""Lexical scoring: every index entry is scored by an IDF-weighted F-measure against the mention.

How much of the mention an entry covers (recall) and how little essential wording it adds (precision).
Nonessential words (parenthesised, "NOS", "unspecified", "initial encounter for closed fracture") cost almost
nothing, so the unspecified code wins when the note says no more, and "left", "acute", "type 1" pick the specific
code when it does. A category that matches stands for its default (or sided) billable code just below it. Context
from the mention is applied as score factors (:mod:`engine.icd.attributes`): side, acuity, dominance, perinatal,
injury codes for a disease named without an injury word, sequelae.
"""

from __future__ import annotations

import difflib
import threading

import numpy as np

from engine.icd.attributes import DOMINANCE_DEFAULT, SIDES, CodeTables
from engine.icd.query import QueryReader
from engine.icd.rules import LinkerRules
from engine.icd.tabular import KIND_FACTOR, IndexData

BETA = 1.0
"""F-measure balance between covering the mention (recall) and adding no unasked wording (precision)."""
ALT_SIMILARITY = 0.9
"""Credit for a word matched through a one-word synonym rule instead of the word itself."""
CATEGORY_FACTOR = 0.98
"""A billable code reached through its category's match ranks just below a direct match."""
UNKNOWN_WORD_WEIGHT = 1.0
"""Weight of a mention word found nowhere in the index (lowers every score alike)."""
PERINATAL_FACTOR = 0.7
"""Codes of the perinatal chapter (P00-P96) rank below their adult twins unless the mention speaks of a newborn."""
PERINATAL_CUES = frozenset({"newborn", "neonat", "perinat", "fetus", "fetal", "birth", "infant", "prematur", "preterm"})
UNSIDED_FACTOR = 0.9
"""When the mention names a side, codes for an unspecified side whose siblings have sides rank below them."""
OTHER_ACUITY_FACTOR = 0.9
"""When the mention names an acuity, codes naming another one ("Acute ..." for "chronic DVT") rank below."""
UNSTATED_ACUITY_FACTOR = 0.95
"""When the mention names an acuity, codes naming none whose siblings name it rank below them."""
INJURY_FACTOR = 0.8
"""Injury codes (S00-T34) rank below other codes when the mention names a disease and no injury."""
SEQUELA_FACTOR = 0.8
"""When the mention says a deficit is residual, codes that are not sequelae rank below those that are."""
WRONG_DOMINANCE_FACTOR = 0.97
REGION_FACTOR = 0.98
"""A match through a site rule's wider region ranks just below the same match on the mention's own words."""

Ranked = list[tuple[int, float, str]]
"""``[(code index, score, evidence)]``, best first."""


class LexicalScorer:
    """Scores index entries and codes for a mention (see the module docstring).

    Args:
        data: A loaded index.
        tables: Its per-code attribute tables.
        rules: The compiled rule data.
    """

    def __init__(self, data: IndexData, tables: CodeTables, rules: LinkerRules) -> None:
        self.data = data
        self.tables = tables
        self.rules = rules
        self.reader = QueryReader(rules)
        self._vocab_pos = {s: i for i, s in enumerate(data.vocab)}
        self._n_docs = data.n_docs
        self._doc_code = np.asarray(data.doc_code)
        self._post_ptr = np.asarray(data.post_ptr)
        self._post_doc = np.asarray(data.post_doc)
        self._post_w = np.asarray(data.post_w)
        self._idf = np.asarray(data.idf)
        self._doc_den = np.asarray(data.doc_den, dtype=np.float32)
        self._doc_factor = KIND_FACTOR[np.asarray(data.doc_kind)]
        self._lock = threading.Lock()
        self._trigram_index: dict[str, list[int]] | None = None

    def known(self, word_stem: str) -> bool:
        """Whether a stem occurs in the index."""
        return word_stem in self._vocab_pos

    def correct(self, word_stem: str) -> list[tuple[str, float]]:
        """Closest stems of the index for an unknown word (spelling correction)."""
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
            for a in self.rules.word_alts.get(s, ()):
                if a in self._vocab_pos:
                    alts.setdefault(self._vocab_pos[a], ALT_SIMILARITY)
            if not alts:
                for cand, ratio in self.correct(s):
                    alts.setdefault(self._vocab_pos[cand], ratio * ALT_SIMILARITY)
            if s in self._vocab_pos:
                weight = float(self._idf[self._vocab_pos[s]])
            elif alts:
                weight = max(float(self._idf[i]) for i in alts)
            else:
                weight = UNKNOWN_WORD_WEIGHT
            slots.append((weight, list(alts.items())))
        return slots

    def score_docs(
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

    def offer(
        self, best: dict[int, tuple[float, str]], ci: int, s: float, evidence: str, side: str | None, resolve: bool
    ) -> None:
        """Record a code's score, and for a category its default (or sided) billable code just below it."""
        t = self.tables
        if s > best.get(ci, (-1.0, ""))[0]:
            best[ci] = (s, evidence)
        if resolve and not t.billable[ci]:
            leaf = t.sided.get((ci, side), t.default_leaf[ci]) if side else t.default_leaf[ci]
            if leaf != ci and t.billable[leaf]:
                s2 = s * CATEGORY_FACTOR
                if s2 > best.get(leaf, (-1.0, ""))[0]:
                    best[leaf] = (s2, evidence)

    def context_factor(self, ci: int, acuity: frozenset[str], dominance: str | None) -> float:
        """Score factor of a code for the mention's acuity and side dominance (1.0 when neither applies)."""
        t = self.tables
        f = 1.0
        if acuity:
            have = t.acuity[ci]
            if have:
                if not acuity <= have:
                    f *= OTHER_ACUITY_FACTOR
            elif acuity <= t.sibling_acuity.get(t.parent[ci], frozenset()):
                f *= UNSTATED_ACUITY_FACTOR
        if dominance and t.dominance[ci] and t.dominance[ci] != dominance:
            f *= WRONG_DOMINANCE_FACTOR
        return f

    def factor(self, ci: int, newborn: bool, side: str | None, no_injury: bool, sequela: bool) -> float:
        """Score factor of a code for what the mention says beyond its words (perinatal, side, injury, sequela)."""
        t = self.tables
        f = 1.0
        if t.perinatal[ci] and not newborn:
            f *= PERINATAL_FACTOR
        if side and t.unsided[ci]:
            f *= UNSIDED_FACTOR
        if no_injury and t.injury[ci]:
            f *= INJURY_FACTOR
        if sequela and not t.sequela[ci]:
            f *= SEQUELA_FACTOR
        return f

    def rank(
        self,
        mention: str,
        mask: np.ndarray | None = None,
        resolve_categories: bool = True,
        top_docs: int = 80,
        sequela: bool = False,
        sites: bool = True,
    ) -> Ranked:
        """Codes for a mention, best first (billable and not), with the matched entry as evidence.

        ``sequela``: the mention names a residual deficit; sequela codes rank first. ``sites``: also read the
        mention with parts of the body widened to their region (``site`` rules).
        """
        best: dict[int, tuple[float, str]] = {}
        billable = self.tables.billable
        q = self.reader.read(mention, sites)
        newborn = any(PERINATAL_CUES.intersection(stems) for stems in q.variants)
        sides = {SIDES[w] for stems in q.variants for w in stems if w in SIDES}
        side = sides.pop() if len(sides) == 1 else None
        acuity = self.reader.wanted_acuity(q.expanded)
        named_dominance = any("dominant" in stems for stems in q.variants)
        dominance = DOMINANCE_DEFAULT.get(side) if side and not named_dominance else None
        no_injury = self.reader.disease_without_injury(q.expanded)
        for k, stems in enumerate(q.variants):
            docs, scores = self.score_docs(stems, q.absent, mask)
            if k >= q.n_own:
                # A reading through a wider region ranks just below the same match on the mention's own words.
                scores = scores * REGION_FACTOR
            if docs.size == 0:
                continue
            if docs.size > top_docs:
                keep = np.argpartition(-scores, top_docs)[:top_docs]
                docs, scores = docs[keep], scores[keep]
            for d, ci, s in zip(docs.tolist(), self._doc_code[docs].tolist(), scores.tolist(), strict=True):
                s *= self.factor(ci, newborn, side, no_injury, sequela)
                evidence = self.data.doc_text[d]
                if acuity or dominance:
                    if acuity and (twin := self.tables.acuity_twins.get((ci, acuity))) is not None:
                        # The same wording with the mention's acuity ("Deep vein thrombosis NOS" is filed under the
                        # acute I82.40; "chronic DVT" is its chronic twin I82.50), ranked as this entry would be.
                        tw = s * self.context_factor(twin, acuity, dominance)
                        self.offer(best, twin, tw, evidence, side, resolve_categories)
                    s *= self.context_factor(ci, acuity, dominance)
                if s > best.get(ci, (-1.0, ""))[0]:
                    best[ci] = (s, evidence)
                if resolve_categories and not billable[ci]:
                    self.offer(best, ci, s, evidence, side, resolve_categories)
        desc_len = self.tables.desc_len
        ranked = sorted(best.items(), key=lambda kv: (-round(kv[1][0], 6), not billable[kv[0]], desc_len[kv[0]]))
        return [(ci, s, ev) for ci, (s, ev) in ranked]
