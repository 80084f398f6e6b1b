"""The ICD stage: a thin linker over the index, the lexical scorer, history codes and the learned ranker.

``link`` ranks codes for one mention (the ``link`` verb and the ``icd`` stage); ``link_entity`` adds the
calibrated abstention that ``analyze`` shows ("no confident code", candidates folded away); ``search`` and
``describe`` serve the app's correction box.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from engine.icd.attributes import CodeTables
from engine.icd.history import HISTORY_CUES, HistoryCoder
from engine.icd.rules import load_rules
from engine.icd.scoring import LexicalScorer, Ranked
from engine.icd.tabular import IndexData
from engine.icd.text import is_code, normalize_code, words
from engine.settings import Settings
from engine.types import Code

MIN_SCORE = 0.2
"""Suggestions scoring below this are dropped (the mention matched almost nothing)."""
UNCODED_TRAITS = ("negated", "hypothetical", "possible")
NO_CONFIDENT_CODE = "no confident code"
EXAM_DESCRIPTOR_NOTE = "exam descriptor: not coded"
_CODE_QUERY = re.compile(r"[A-Za-z][0-9][0-9A-Za-z]?\.?[0-9A-Za-z]{0,4}")


class IcdLinker:
    """Links diagnosis mentions to ranked ICD-10-CM codes.

    Args:
        settings: Engine settings (``rules_dir``, ``max_mention_chars``, ``max_codes``, ``icd_min_score``).
        data: A loaded index (see :func:`engine.icd.store.load_or_build`).
        notice: A one-line note for the app and CLI when the Alphabetic Index could not be used, else ``None``.
        hybrid: The learned dense + lexical ranker (:class:`engine.icd.ranker.HybridRanker`); ``None``: lexical.
        calibration: Maps a lexical top score to P(right category) for abstention (``None``: scores as they are).
    """

    def __init__(
        self,
        settings: Settings,
        data: IndexData,
        notice: str | None = None,
        hybrid: Any | None = None,
        calibration: Any | None = None,
    ) -> None:
        self.settings = settings
        self.data = data
        self.notice = notice
        self.hybrid = hybrid
        self.calibration = calibration
        year = data.meta.get("year") or "unknown"
        self.version = f"ICD-10-CM {year}" + ("" if data.meta.get("alphabetic_index", True) else " (tabular only)")
        self._code_pos = {c: i for i, c in enumerate(data.codes)}
        self.tables = CodeTables(data)
        self.rules = load_rules(settings.rules_dir, data, self._code_pos)
        self.scorer = LexicalScorer(data, self.tables, self.rules)
        self.history = HistoryCoder(data, self.tables, self.rules, self.scorer, settings.rules_dir)

    # ----------------------------------------------------------------- output
    def _code(self, ci: int, score: float, evidence: str | None) -> Code:
        return Code(
            code=self.data.codes[ci],
            description=self.data.descriptions[ci],
            score=float(min(max(score, 0.0), 1.0)),
            billable=bool(self.tables.billable[ci]),
            evidence=evidence,
        )

    def finish(self, ranked: Ranked, limit: int, calibrated: bool = False) -> list[Code]:
        """The first ``limit`` codes of a ranking: billable first, one encounter variant per code.

        Lexical scores under :data:`MIN_SCORE` or half the best are dropped (the mention matched little);
        ``calibrated`` scores (the hybrid ranker's probabilities) are kept whatever their value, the ranking
        having already decided.
        """
        if not ranked:
            return []
        t = self.tables
        top = ranked[0][1]
        keep = []
        seen_parents: set[int] = set()
        for r in ranked:
            if not calibrated and (r[1] < MIN_SCORE or r[1] < 0.5 * top):
                continue
            if t.extension[r[0]]:
                # One encounter/sequela variant per code: the list shows different conditions, not the same
                # fracture as initial, subsequent and sequela encounters.
                if t.parent[r[0]] in seen_parents:
                    continue
                seen_parents.add(t.parent[r[0]])
            keep.append(r)
        billable = [r for r in keep if t.billable[r[0]]]
        others = [r for r in keep if not t.billable[r[0]]]
        return [self._code(ci, s, ev) for ci, s, ev in (billable + others)[:limit]]

    # ----------------------------------------------------------------- public API
    def clean(self, mention: Any) -> str:
        """The mention as linked: truncated to ``settings.max_mention_chars`` and stripped ("" for non-text)."""
        if not isinstance(mention, str):
            return ""
        return mention[: self.settings.max_mention_chars].strip()

    def rank_plain(self, text: str) -> Ranked:
        """The ranking of a present-tense mention: the learned hybrid ranker when loaded, else lexical."""
        if self.hybrid is not None:
            return self.hybrid.rank(text, self)
        return self.scorer.rank(text)

    def link(self, mention: str, label: str = "DIAG", traits: Sequence[str] = ()) -> list[Code]:
        """Ranked ICD-10-CM suggestions for one mention.

        Args:
            mention: The mention text; empty or whitespace gives no codes, and text longer than
                ``settings.max_mention_chars`` (256) is truncated to that many characters.
            label: Entity label; only ``DIAG`` mentions are coded (ICD-10-CM codes diagnoses).
            traits: Assertion traits. ``negated``/``possible``/``hypothetical`` give no codes; ``family`` gives
                family-history codes (Z80-Z84) and ``historical`` personal-history codes (Z85-Z87, I25.2).

        Returns:
            At most ``settings.max_codes`` codes, billable first, each with a score in [0, 1] and the matched
            term (or Index path, "Index: Main > sub") as ``evidence``.
        """
        text = self.clean(mention)
        if label != "DIAG" or not text or any(t in UNCODED_TRAITS for t in traits):
            return []
        limit = self.settings.max_codes
        if "family" in traits:
            return self.finish(self.history.history(text, "family"), limit)
        residual = self.history.sequela_cue(text)
        if residual is not None:
            # A residual deficit is a current condition, coded as the sequela, even when the stroke is history.
            return self.finish(self.scorer.rank(residual, sequela=True), limit)
        if "historical" in traits:
            return self.finish(self.history.history(text, "historical"), limit)
        for cue, kind in HISTORY_CUES:
            m = cue.match(text)
            if m and text[m.end() :].strip():
                return self.finish(self.history.history(text[m.end() :].strip(), kind), limit)
        direct = normalize_code(text)
        if is_code(direct) and direct in self._code_pos:
            return [self._code(self._code_pos[direct], 1.0, text)]
        return self.finish(self.rank_plain(text), limit, calibrated=self.hybrid is not None)

    def is_exam_descriptor(self, mention: str) -> bool:
        """Whether the mention is only an exam descriptor ("tender", "soft", "mass") with no codable condition."""
        return " ".join(words(self.clean(mention))) in self.rules.exam_descriptors

    def link_entity(
        self, mention: str, label: str = "DIAG", traits: Sequence[str] = ()
    ) -> tuple[list[Code], list[Code], str | None]:
        """Codes for an ``analyze`` entity with calibrated abstention.

        Returns:
            ``(codes, candidates, note)``: when the best code's calibrated score is under
            ``settings.icd_min_score``, or the mention is an exam descriptor, ``codes`` is empty, the ranked
            suggestions move to ``candidates`` and ``note`` says why; otherwise ``(codes, [], None)``.
        """
        if label == "DIAG" and self.is_exam_descriptor(mention):
            return [], [], EXAM_DESCRIPTOR_NOTE
        codes = self.link(mention, label, traits)
        if codes and self.confidence(codes[0].score) < self.settings.icd_min_score:
            return [], codes, NO_CONFIDENT_CODE
        return codes, [], None

    def confidence(self, score: float) -> float:
        """P(the top code is under the right category) for a top score (hybrid scores are calibrated already)."""
        if self.hybrid is not None or self.calibration is None:
            return score
        import numpy as np

        return float(self.calibration(np.asarray([score]))[0])

    def search(self, query: str, limit: int = 20) -> list[Code]:
        """Codes for the app's correction box: by code prefix (``"I21"``, ``"i21.9"``) or by words.

        Args:
            query: A code prefix or free words.
            limit: Most codes returned.

        Returns:
            For a prefix, matching codes in tabular order; for words, ranked matches (billable or not).
        """
        q = self.clean(query or "")
        if not q or limit <= 0:
            return []
        if _CODE_QUERY.fullmatch(q):
            prefix = normalize_code(q).rstrip(".")
            hits = [i for i, c in enumerate(self.data.codes) if c.startswith(prefix)][:limit]
            if hits:
                return [self._code(i, 1.0, None) for i in hits]
        ranked = self.scorer.rank(q, resolve_categories=False)
        return [self._code(ci, s, ev) for ci, s, ev in ranked[:limit] if s >= MIN_SCORE]

    def describe(self, code: str) -> Code | None:
        """The code's description and billability, or ``None`` for an unknown code (dot optional)."""
        ci = self._code_pos.get(normalize_code(code or ""))
        return None if ci is None else self._code(ci, 1.0, None)
