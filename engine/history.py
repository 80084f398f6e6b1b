"""Backfill: diagnoses in history phrases and problem lists that the NER model left untagged.

The NER model follows MACCROBAT's convention, where "history of pulmonary tuberculosis" is one History span and the
disease inside it is not tagged; the model therefore leaves "Mother had breast cancer" or "history of stroke"
without an entity, and the family- and personal-history codes (Z80-Z87) are never offered. This stage reads the
text right after a history phrase (``assets/rules/history_phrases.tsv``), splits it into list items and keeps an
item as a ``DIAG`` span when the ICD-10-CM index links it confidently to a disease code (chapters A-R). The
assertion stage then judges these spans like any other (family, historical, negated).

Problem-list statements are read the same way: in the sections named in ``assets/rules/history_sections.txt``
(diagnoses, assessment, impression, problem list), each numbered item, line or sentence is an item list. The
model, trained on case reports, leaves "ASSESSMENT: Type 2 diabetes mellitus." untagged (it tags no entity in that
line alone nor inside a longer note, docs/coding.md), and a coder codes those lines first.

Predicting and annotating are one step here: :meth:`HistoryBackfill.find` returns new spans and changes nothing.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.rules import rule_rows
from engine.settings import Settings
from engine.types import Span

RULES_FILE = "history_phrases.tsv"
SECTIONS_FILE = "history_sections.txt"
TERMS_FILE = "history_terms.tsv"
MIN_TERM_SCORE = 0.7
"""Lowest link score for a status term (``history_terms.tsv``): "DNR" links to Z66 at 0.75."""
MIN_LINK_SCORE = 0.9
"""Lowest ICD link score for an item to become an entity: "breast cancer" 0.96, "stroke" 1.0, "travel" 0.69."""
DISEASE_CHAPTERS = tuple("ABCDEFGHIJKLMNOPQR")
"""First letters of ICD-10-CM codes for diseases, findings and symptoms (S-Z are injuries, external causes and
factors influencing health status)."""
MAX_ITEM_WORDS = 6
# Where the list of diagnoses after a history phrase ends: the clause ends, or a time, place or person follows.
_STOP = re.compile(
    r"[.;:\n(\[]|\bin \d|\b(?:in (?:his|her|their|the|a|an)|at (?:age|the age)|since|who|which|that|when|until|from|"
    r"for (?:\d|the past|many|several)|diagnosed|status post|s/p|treated|on|were|was|is|are|but|without|no|not)\b",
    re.IGNORECASE,
)
_ITEM_SPLIT = re.compile(r",|\band\b|\bas well as\b|&", re.IGNORECASE)
_LEADING = re.compile(
    r"^(?:(?:(?:pertinent|positive|strong|significant|notable|remarkable) for|a|an|the|some|known|remote|prior|"
    r"previous|recent|significant|possible|probable|early|late|his|her|both|also|mild|severe)\s+)+",
    re.IGNORECASE,
)
_WINDOW = 200  # characters after a phrase that may hold its list
# Where a problem list's items end: a line, a numbered item ("1." glued or not), a semicolon or a sentence end.
_PROBLEM_SPLIT = re.compile(r"\n|;|(?<![0-9])\d{1,2}[.)](?=\s*[A-Za-z])|\.(?=\s|[A-Z0-9]|$)")
# A line that is one short statement ("Type 2 diabetes mellitus.", "2. COPD"): a problem-list item wherever it is.
_STATEMENT_LINE = re.compile(r"^[ \t]*(?:\d{1,2}[.)][ \t]*)?([A-Za-z][^\n:]*?)[ \t]*\.?[ \t]*$", re.MULTILINE)
WEAK_SPAN_SCORE = 0.5
"""NER spans under this confidence lying wholly inside a confidently linked item give way to it: on the one-line
note "Assessment: Type 2 diabetes mellitus, controlled." the model tags "Type" as a test at 0.33, which blocked the
item the same line inside a longer note (no such fragment) was coded from."""
_PROBLEM_STOP = re.compile(r"[(\[:]|\b(?:secondary to|due to|with|without|status post|s/p|on|was|is|are|but)\b", re.I)


class HistoryBackfill:
    """Finds history-phrase diagnoses that no NER span covers.

    Attributes:
        version: Names the rule set (how many phrases), as every stage has a version.
    """

    def __init__(
        self,
        patterns: Sequence[re.Pattern[str]],
        min_score: float = MIN_LINK_SCORE,
        sections: Sequence[str] = (),
        terms: Sequence[re.Pattern[str]] = (),
    ) -> None:
        self.patterns = list(patterns)
        self.min_score = min_score
        self.sections = frozenset(sections)
        self.terms = list(terms)
        self.version = f"history-rules-{len(self.patterns)}-{len(self.sections)}-{len(self.terms)}"

    @staticmethod
    def _items(text: str, lo: int, hi: int, split: re.Pattern[str] = _ITEM_SPLIT) -> list[tuple[int, int]]:
        """The list items of ``text[lo:hi]``: pieces between separators, leading qualifiers off, short ones kept."""
        found = []
        pos = lo
        for piece in split.split(text[lo:hi]):
            start = text.index(piece, pos)
            pos = start + len(piece)
            stripped = piece.strip()
            if not stripped:
                continue
            start += piece.index(stripped)
            lead = _LEADING.match(stripped)
            if lead:
                start += lead.end()
                stripped = stripped[lead.end() :]
            words = stripped.split()
            if 0 < len(words) <= MAX_ITEM_WORDS and any(c.isalpha() for c in stripped):
                found.append((start, start + len(stripped)))
        return found

    def candidates(self, text: str, regions: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
        """Character ranges of the list items written after each history phrase and in each problem-list
        ``region`` (``(start, end)`` of a section body), in note order, deduplicated."""
        found: set[tuple[int, int]] = set()
        phrases: list[int] = []
        for pattern in self.patterns:
            for match in pattern.finditer(text):
                lo = match.end()
                phrases.append(match.start())
                tail = text[lo : lo + _WINDOW]
                stop = _STOP.search(tail)
                found.update(self._items(text, lo, lo + (stop.start() if stop else len(tail))))
        # Short lines that hold a history phrase are read by the phrase path above; a line with a verb or a
        # qualifier ("The patient is stable.") is a sentence, not a problem-list statement.
        phrases.sort()
        lines = [(m.start(1), m.end(1)) for m in _STATEMENT_LINE.finditer(text)
                 if len(m.group(1).split()) <= MAX_ITEM_WORDS and not _PROBLEM_STOP.search(m.group(1))
                 and not _any_in(phrases, m.start(1), m.end(1))]
        found.update(self.list_items(text, [*regions, *lines]))
        return sorted(found)

    def list_items(self, text: str, regions: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        """The items of problem-list ``regions``: each numbered item, line or sentence, cut where a qualifier
        clause starts ("secondary to", "with", a colon), split into its list items."""
        found: set[tuple[int, int]] = set()
        for lo, hi in regions:
            pos = lo
            for piece in _PROBLEM_SPLIT.split(text[lo:hi]):
                start = text.index(piece, pos)
                pos = start + len(piece)
                stop = _PROBLEM_STOP.search(piece)
                found.update(self._items(text, start, start + (stop.start() if stop else len(piece))))
        return found

    def regions(self, sections: Sequence[Any], headers: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """The bodies of the problem-list sections among ``sections``, without their headers: a header inside a
        body ("DISCHARGE DIAGNOSES: AXIS I: ... AXIS III: Hepatitis C.") splits it, so the item after it is read
        (the colon would otherwise end the item before it starts)."""
        out = []
        for s in sections:
            if s.name not in self.sections:
                continue
            pos = s.start
            for lo, hi in sorted(headers):
                if s.start <= lo < s.end:
                    if lo > pos:
                        out.append((pos, lo))
                    pos = max(pos, min(hi, s.end))
            if pos < s.end:
                out.append((pos, s.end))
        return out

    def find(
        self, text: str, spans: Sequence[Span], icd: Any, regions: Sequence[tuple[int, int]] = ()
    ) -> list[Span]:
        """New ``DIAG`` spans for confidently linked items that overlap none of ``spans``.

        Args:
            text: The note.
            spans: The entities found so far (NER), which win wherever they overlap an item.
            icd: The ICD stage (its ``link(mention, label, traits)``).
            regions: Problem-list section bodies (:meth:`regions`) whose items are read too.
        """
        out: list[Span] = []
        # Sorted, non-overlapping (start, end) ranges taken so far; a bisection keeps a 5 MB note's check cheap.
        taken = sorted((s.start, s.end) for s in spans if s.score >= WEAK_SPAN_SCORE)
        weak = sorted((s.start, s.end) for s in spans if s.score < WEAK_SPAN_SCORE)
        # In a diagnosis list only a DIAG entity is in an item's way: the model tags "AXIS III: Hepatitis C." a
        # TEST and "Acute on chronic renal failure." part anatomy; other spans inside such an item give way to it.
        diag = sorted((s.start, s.end) for s in spans if s.score >= WEAK_SPAN_SCORE and s.label == "DIAG")
        other = sorted((s.start, s.end) for s in spans if s.score >= WEAK_SPAN_SCORE and s.label != "DIAG")
        # ... unless the item's last word, its head, is anatomy ("rib cage and spine" gives the item "spine").
        anatomy_ends = {s.end for s in spans if s.label == "ANAT"}
        listed = self.list_items(text, regions)
        terms = {(m.start(), m.end()) for p in self.terms for m in p.finditer(text)}
        # Shortest first: where phrases overlap ("Family history: mother had breast cancer"), the item closest to
        # the diagnosis itself is the one to link.
        ranges = set(self.candidates(text, regions)) | terms
        for start, end in sorted(ranges, key=lambda r: (r[1] - r[0], r[0])):
            if (start, end) in listed:
                if _overlaps(diag, start, end) or _straddles(other, start, end) or end in anatomy_ends:
                    continue
            elif _overlaps(taken, start, end):
                continue
            if _straddles(weak, start, end):
                continue
            codes = icd.link(text[start:end], "DIAG", [])
            if not codes:
                continue
            if (start, end) in terms:
                keep = codes[0].score >= MIN_TERM_SCORE
            else:
                keep = codes[0].score >= self.min_score and codes[0].code.startswith(DISEASE_CHAPTERS)
            if keep:
                out.append(Span(start=start, end=end, label="DIAG", score=round(float(codes[0].score) * 0.9, 4)))
                # Spans inside the new one give way to it; the lists stay sorted and non-overlapping.
                taken = [r for r in taken if not start <= r[0] < r[1] <= end]
                bisect.insort(taken, (start, end))
                bisect.insort(diag, (start, end))
        return sorted(out, key=lambda s: s.start)

    def add(
        self, text: str, spans: Sequence[Span], icd: Any, regions: Sequence[tuple[int, int]] = ()
    ) -> list[Span]:
        """``spans`` with :meth:`find`'s new spans merged in, sorted by start (what the pipeline passes on); weak
        NER spans (:data:`WEAK_SPAN_SCORE`) and, in diagnosis lists, non-DIAG spans lying inside a new span are
        dropped."""
        new = self.find(text, spans, icd, regions)
        ranges = [(n.start, n.end) for n in new]
        kept = [s for s in spans if (s.score >= WEAK_SPAN_SCORE and s.label == "DIAG")
                or not _inside(ranges, s.start, s.end)]
        return sorted([*kept, *new], key=lambda s: s.start)


def _overlaps(ranges: Sequence[tuple[int, int]], start: int, end: int) -> bool:
    """Whether one of the sorted, non-overlapping ``ranges`` overlaps ``[start, end)``."""
    i = bisect.bisect_left(ranges, (end,))
    return i > 0 and ranges[i - 1][1] > start


def _any_in(points: Sequence[int], start: int, end: int) -> bool:
    """Whether one of the sorted ``points`` lies in ``[start, end)``."""
    i = bisect.bisect_left(points, start)
    return i < len(points) and points[i] < end


def _inside(ranges: Sequence[tuple[int, int]], start: int, end: int) -> bool:
    """Whether ``[start, end)`` lies inside one of the sorted, non-overlapping ``ranges``."""
    i = bisect.bisect_right(ranges, (start, float("inf")))
    return i > 0 and ranges[i - 1][0] <= start and end <= ranges[i - 1][1]


def _straddles(ranges: Sequence[tuple[int, int]], start: int, end: int) -> bool:
    """Whether one of the sorted ``ranges`` overlaps ``[start, end)`` without lying inside it."""
    i = bisect.bisect_left(ranges, (end,))
    while i > 0 and ranges[i - 1][1] > start:
        lo, hi = ranges[i - 1]
        if lo < start or hi > end:
            return True
        i -= 1
    return False


def load_patterns(path: Path) -> list[re.Pattern[str]]:
    """The compiled phrase patterns of a rule file."""
    return [re.compile(fields[0], re.IGNORECASE) for _, fields in rule_rows(path, what="history phrase file")]


def load(settings: Settings) -> HistoryBackfill:
    """Stage factory (see :mod:`engine.registry`)."""
    rules = Path(settings.rules_dir)
    sections = [f[0].strip().lower() for _, f in rule_rows(rules / SECTIONS_FILE, required=False, what="section list")]
    terms = load_patterns(rules / TERMS_FILE) if (rules / TERMS_FILE).is_file() else []
    return HistoryBackfill(load_patterns(rules / RULES_FILE), sections=sections, terms=terms)
