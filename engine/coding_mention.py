"""The coding mention: what a coder reads to code a finding, assembled from the finding and the words that specify it.

The NER model follows MACCROBAT, where the anatomy is a span of its own ("urinary tract" ANAT + "infection" DIAG),
so the finding alone is often uncodable ("infection" is not a urinary tract infection). A coding mention is the
finding plus, when they touch it:

- anatomy spans directly before it ("urinary tract infection", "abdominal pain", "right lower quadrant pain");
- anatomy after it through a linking word ("carcinoma of the thyroid", "pain in the left knee"), with side and
  determiner words in between;
- modifier words directly before it (acuity, side, type: "chronic DVT", "left knee pain", "type 2 diabetes").

The words are data: ``assets/rules/coding_modifiers.txt`` (words before) and ``coding_links.tsv`` (linking and
determiner words after). The mention is always one stretch of the note, so its text and offsets show the coder
exactly what was coded; :class:`CodingMention` lists which parts formed it.

The coding decision is also here (:class:`Coder`): which traits block a code, and the coder's rule that a chronic
condition written as history ("PMH: hypertension", "history of COPD") is coded as current
(``coding_chronic.tsv``), unless the sentence says it is over (``coding_past_words.txt``: resolved, as a child).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.errors import EngineError, ErrorCode
from engine.icd.linker import EXAM_DESCRIPTOR_NOTE, NO_CONFIDENT_CODE
from engine.rules import rule_rows
from engine.types import Code

MODIFIERS_FILE = "coding_modifiers.txt"
LINKS_FILE = "coding_links.tsv"
CHRONIC_FILE = "coding_chronic.tsv"
PAST_WORDS_FILE = "coding_past_words.txt"
ANATOMY_FILE = "coding_anatomy.txt"
COMBINATIONS_FILE = "coding_combinations.txt"
GENERIC_FILE = "coding_generic_findings.txt"
REACTION_SECTIONS_FILE = "coding_reaction_sections.txt"
RESIDUAL_FILE = "coding_residual_codes.txt"
REACTION_NOTE = "allergic reaction: not coded"
GENERIC_NOTE = "no confident code: the finding names no site or type"
ANATOMY_NOTE = "anatomy only: not coded"
MIN_COMBINED_SCORE = 0.9
UNCODED_TRAITS = ("negated", "hypothetical", "possible")
"""Findings with any of these traits are never coded (the coder sees why in ``Entity.note``)."""
MAX_MODIFIERS = 3
MAX_BETWEEN = 3
"""Side and determiner words allowed between a linking word and the anatomy after it ("of the left")."""
MIN_ASSEMBLED_SCORE = 0.6
"""The assembled mention's codes replace the finding's own unless its best code scores under this. Scores of two
different mentions do not compare (bare "carcinoma" matches an index term exactly, 0.96, and means nothing
specific), so the assembled mention wins whenever it links at all well."""
_GAP_BEFORE = re.compile(r"[ \t]*-?[ \t]*")
_WORD = re.compile(r"[ \t]+([A-Za-z][A-Za-z0-9'-]*)")
_SPACES = re.compile(r"[ \t]+")
_JOINED = re.compile(r"[ \t]*,?[ \t]*(?:and|with|&)[ \t]+", re.IGNORECASE)
_CLAUSE = re.compile(r"[.;\n]")


@dataclass(slots=True)
class CodingMention:
    """The stretch of the note that is coded, and the parts that formed it.

    Attributes:
        start: Offset of the first part.
        end: End of the last part.
        text: ``note[start:end]``.
        parts: ``(start, end, role)`` per part, in note order; roles ``finding``, ``anatomy``, ``modifier``.
    """

    start: int
    end: int
    text: str
    parts: list[tuple[int, int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The optional ``coding`` object of an entity: the coded text, its offsets and its parts."""
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "parts": [
                {"start": a, "end": b, "role": r, "text": self.text[a - self.start : b - self.start]}
                for a, b, r in self.parts
            ],
        }


@dataclass(frozen=True, slots=True)
class CodingRules:
    """The rule data of the coding mention and the coding decision."""

    modifiers: frozenset[str]
    links: frozenset[str]
    determiners: frozenset[str]
    chronic: tuple[str, ...]
    past_words: re.Pattern[str] | None
    anatomy: frozenset[str] = frozenset()
    combinations: tuple[str, ...] = ()
    generic: frozenset[str] = frozenset()
    """Findings that need a site or a type to be coded ("pain", "bleeding"): alone, they get no code."""
    residual: frozenset[str] = frozenset()
    """Codes of an unnamed site or kind (R52, R58, B99.9, Z85.9): never submitted for a finding, only suggested."""
    reaction_sections: frozenset[str] = frozenset()
    """Sections whose findings are reactions to an allergen ("ALLERGIES: hives"), not the patient's conditions."""


def _words(path: Path, what: str, required: bool = True) -> list[str]:
    return [" ".join(f[0].lower().split()) for _, f in rule_rows(path, what=what, required=required) if f[0].strip()]


def load_rules(rules_dir: Path) -> CodingRules:
    """Read the coding rule files of ``rules_dir`` (``coding_generic_findings.txt`` may be absent).

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` for a missing file, ``MODEL_INVALID`` for a bad ``coding_links.tsv`` row.
    """
    rules_dir = Path(rules_dir)
    links: set[str] = set()
    determiners: set[str] = set()
    for lineno, fields in rule_rows(rules_dir / LINKS_FILE, what="coding link file"):
        if len(fields) != 2 or fields[0].strip() not in {"link", "determiner"}:
            where = f"{rules_dir / LINKS_FILE}:{lineno}"
            raise EngineError(ErrorCode.MODEL_INVALID, f"{where}: expected 'link|determiner<TAB>word'")
        (links if fields[0].strip() == "link" else determiners).add(fields[1].strip().lower())
    past = _words(rules_dir / PAST_WORDS_FILE, "coding past-words file")
    return CodingRules(
        modifiers=frozenset(_words(rules_dir / MODIFIERS_FILE, "coding modifier file")),
        links=frozenset(links),
        determiners=frozenset(determiners),
        chronic=tuple(w.upper() for w in _words(rules_dir / CHRONIC_FILE, "chronic condition file")),
        past_words=re.compile(r"\b(?:" + "|".join(re.escape(w) for w in past) + r")\b", re.I) if past else None,
        anatomy=frozenset(_words(rules_dir / ANATOMY_FILE, "coding anatomy file")),
        combinations=tuple(w.upper() for w in _words(rules_dir / COMBINATIONS_FILE, "combination code file")),
        generic=frozenset(_words(rules_dir / GENERIC_FILE, "generic finding file", required=False)),
        residual=frozenset(w.upper() for w in _words(rules_dir / RESIDUAL_FILE, "residual code file", False)),
        reaction_sections=frozenset(_words(rules_dir / REACTION_SECTIONS_FILE, "reaction section file", False)),
    )


@dataclass(slots=True)
class NoteSpans:
    """A note's spans, indexed once for :meth:`MentionBuilder.build` (spans: ``start``, ``end``, ``label``)."""

    spans: list[Any]
    starts: list[int]
    anatomy: list[Any]
    """``ANAT`` spans and ``DIAG`` spans that are only an anatomy word ("urinary" tagged as a diagnosis)."""
    anatomy_ends: list[int]
    anat_by_start: dict[int, Any]

    def covered(self, start: int, end: int) -> bool:
        """Whether any span overlaps ``[start, end)`` (spans do not overlap one another)."""
        i = bisect.bisect_left(self.starts, end)
        return i > 0 and self.spans[i - 1].end > start


class MentionBuilder:
    """Assembles coding mentions from a note's spans (anything with ``start``, ``end`` and ``label``)."""

    def __init__(self, rules: CodingRules) -> None:
        self.rules = rules
        longest = max((len(m.split()) for m in rules.modifiers), default=1)
        # The last n words before a place, longest first: "acute on chronic" before "chronic".
        self._tails = [
            re.compile(r"((?:[A-Za-z0-9][A-Za-z0-9-]*[ \t]+){" + str(n) + r"})$") for n in range(longest, 0, -1)
        ]

    def index(self, text: str, spans: Sequence[Any]) -> NoteSpans:
        """Index a note's spans (sorted by start) for :meth:`build`."""
        ordered = sorted(spans, key=lambda s: s.start)
        anatomy = [s for s in ordered if s.label == "ANAT" or (s.label == "DIAG" and self.is_anatomy(text, s))]
        return NoteSpans(
            spans=ordered,
            starts=[s.start for s in ordered],
            anatomy=anatomy,
            anatomy_ends=[s.end for s in anatomy],
            anat_by_start={s.start: s for s in ordered if s.label == "ANAT"},
        )

    def build(self, text: str, finding: Any, note: NoteSpans) -> CodingMention:
        """The coding mention of ``finding`` among the note's indexed spans."""
        parts = [(finding.start, finding.end, "finding")]
        lo = finding.start
        while True:  # anatomy directly before, possibly a chain ("right lower quadrant abdominal pain")
            i = bisect.bisect_right(note.anatomy_ends, lo) - 1
            before = note.anatomy[i] if i >= 0 else None
            if before is not None and before is not finding and _GAP_BEFORE.fullmatch(text, before.end, lo):
                parts.insert(0, (before.start, before.end, "anatomy"))
                lo = before.start
                continue
            word = self._anatomy_word_before(text, lo, note)
            if word is None:
                break
            parts.insert(0, (*word, "anatomy"))
            lo = word[0]
        lo = self._modifiers_before(text, lo, parts)
        hi = self._anatomy_after(text, finding.end, note.anat_by_start, parts)
        return CodingMention(start=lo, end=hi, text=text[lo:hi], parts=parts)

    def is_anatomy(self, text: str, span: Any) -> bool:
        """Whether the span's text is only an anatomy word of ``coding_anatomy.txt``."""
        return " ".join(text[span.start : span.end].lower().split()) in self.rules.anatomy

    def _anatomy_word_before(self, text: str, lo: int, note: NoteSpans) -> tuple[int, int] | None:
        """An untagged anatomy word (``coding_anatomy.txt``) directly before ``lo`` ("urinary tract [infection]")."""
        before = text[max(0, lo - 40) : lo]
        for tail in self._tails[-2:]:  # two words, then one
            m = tail.search(before)
            if m and " ".join(m.group(1).lower().split()) in self.rules.anatomy:
                start = lo - len(before) + m.start(1)
                end = start + len(m.group(1).rstrip())
                if not note.covered(start, end):
                    return start, end
        return None

    def _modifiers_before(self, text: str, lo: int, parts: list[tuple[int, int, str]]) -> int:
        for _ in range(MAX_MODIFIERS):
            before = text[max(0, lo - 40) : lo]
            for tail in self._tails:
                m = tail.search(before)
                if m and " ".join(m.group(1).lower().split()) in self.rules.modifiers:
                    start = lo - len(before) + m.start(1)
                    parts.insert(0, (start, start + len(m.group(1).rstrip()), "modifier"))
                    lo = start
                    break
            else:
                return lo
        return lo

    def _anatomy_after(self, text: str, pos: int, by_start: dict[int, Any], parts: list[tuple[int, int, str]]) -> int:
        m = _WORD.match(text, pos)
        if m is None or m.group(1).lower() not in self.rules.links:
            return pos
        at = m.start(1) + len(m.group(1))
        for _ in range(MAX_BETWEEN + 1):
            gap = _SPACES.match(text, at)
            nxt = gap.end() if gap else at
            if nxt in by_start:
                span = by_start[nxt]
                parts.append((span.start, span.end, "anatomy"))
                return span.end
            w = _WORD.match(text, at)
            if w is None or w.group(1).lower() not in self.rules.determiners | self.rules.modifiers:
                return pos
            at = w.end()
        return pos


class Coder:
    """Codes ``DIAG`` entities from their coding mentions.

    Args:
        rules: The coding rule data.
        icd: The ICD stage (``link(mention, label, traits)``; with ``is_exam_descriptor(mention)`` and
            ``confidence(score)`` when it abstains, as :class:`engine.icd.IcdLinker` does).
        min_score: Calibrated confidence under which the entity gets no code, its suggestions folded into
            ``candidates`` (``settings.icd_min_score``).
    """

    def __init__(self, rules: CodingRules, icd: Any, min_score: float = 0.0) -> None:
        self.rules = rules
        self.icd = icd
        self.min_score = min_score
        self.builder = MentionBuilder(rules)
        self._linked: dict[tuple[str, str, tuple[str, ...]], list[Code]] = {}

    def _link(self, mention: str, label: str, traits: Sequence[str]) -> list[Code]:
        # The same mention with the same traits gets the same codes: notes repeat their findings, and linking is
        # the costliest step after NER. The cache lives as long as the coder (one analyze_many call).
        key = (mention, label, tuple(traits))
        if key not in self._linked:
            self._linked[key] = self.icd.link(mention, label, list(traits))
        return self._linked[key]

    def _is_chronic(self, codes: Sequence[Code]) -> bool:
        return bool(codes) and codes[0].code.upper().startswith(self.rules.chronic)

    def _over(self, text: str, start: int, end: int) -> bool:
        """Whether the clause around ``[start, end)`` says the condition is over ("resolved", "as a child")."""
        if self.rules.past_words is None:
            return False
        lo = max((m.end() for m in _CLAUSE.finditer(text, max(0, start - 160), start)), default=max(0, start - 160))
        nxt = _CLAUSE.search(text, end)
        return self.rules.past_words.search(text, lo, nxt.start() if nxt else len(text)) is not None

    def codes(self, text: str, mention: CodingMention, finding: Any, traits: Sequence[str]) -> list[Code]:
        """The codes of a finding with these traits: from its coding mention (its own text when the mention links
        poorly); a chronic condition written as history is coded as current."""
        label = finding.label
        current = [t for t in traits if t != "historical"]
        chosen = self._best(mention, text[finding.start : finding.end], label, traits)
        if "historical" in traits and "family" not in traits and not self._over(text, mention.start, mention.end):
            now = self._best(mention, text[finding.start : finding.end], label, current)
            if self._is_chronic(now):
                chosen = now
        return [replace(code) for code in chosen]

    def _best(self, mention: CodingMention, own: str, label: str, traits: Sequence[str]) -> list[Code]:
        assembled = self._link(mention.text, label, traits)
        if mention.text == own:
            return assembled
        if assembled and assembled[0].score >= MIN_ASSEMBLED_SCORE:
            return assembled
        bare = self._link(own, label, traits)
        return bare if bare and (not assembled or bare[0].score > assembled[0].score) else assembled

    def code_all(self, text: str, entities: Sequence[Any], spans: Sequence[Any]) -> None:
        """Fill ``codes`` (and ``coding``, ``note``) of the ``DIAG`` entities of one note in place.

        A diagnosis-tagged anatomy word that another finding's mention takes in ("urinary" before "tract
        infection") is coded with that finding, not alone; two findings joined by "and"/"with" whose joined text
        links confidently to a combination code (``coding_combinations.txt``: nausea with vomiting, R11.2) are
        both coded with it.
        """
        note = self.builder.index(text, spans)
        diags = [e for e in entities if e.label == "DIAG"]
        mentions = {id(e): self.builder.build(text, e, note) for e in diags}
        absorbed: dict[int, CodingMention] = {}
        for e in diags:
            for a, _, role in mentions[id(e)].parts:
                if role == "anatomy":
                    absorbed[a] = mentions[id(e)]
        for first, second in itertools.pairwise(diags):
            combined = self._combination(text, first, second, mentions)
            if combined is not None:
                mentions[id(first)] = mentions[id(second)] = combined
        for e in diags:
            if e.start in absorbed and absorbed[e.start] is not mentions[id(e)]:
                e.note = f"coded with {absorbed[e.start].text!r}"
                continue
            self.code_entity(text, e, mentions[id(e)])

    def _combination(
        self, text: str, first: Any, second: Any, mentions: dict[int, CodingMention]
    ) -> CodingMention | None:
        """The joined mention of two findings when it links to a combination code neither links to alone."""
        if not self.rules.combinations or not _JOINED.fullmatch(text, first.end, second.start):
            return None
        if any(t in UNCODED_TRAITS for t in (*first.traits, *second.traits)) or first.traits != second.traits:
            return None
        a, b = mentions[id(first)], mentions[id(second)]
        codes = self._link(text[a.start : b.end], first.label, first.traits)
        if not codes or codes[0].score < MIN_COMBINED_SCORE:
            return None
        if not codes[0].code.upper().startswith(self.rules.combinations):
            return None
        alone = (self._link(a.text, first.label, first.traits), self._link(b.text, second.label, second.traits))
        if codes[0].code in {c[0].code for c in alone if c}:
            return None
        return CodingMention(start=a.start, end=b.end, text=text[a.start : b.end], parts=[*a.parts, *b.parts])

    def code_entity(self, text: str, entity: Any, mention: CodingMention) -> None:
        """Fill ``entity.codes`` (and ``entity.coding``, ``entity.note``) of a ``DIAG`` entity from its mention."""
        blocked = [t for t in UNCODED_TRAITS if t in entity.traits]
        if blocked:
            entity.note = f"{entity.assertion}: not coded"
            return
        if (mention.start, mention.end) != (entity.start, entity.end):
            entity.coding = mention
        if (getattr(entity, "section", None) or "") in self.rules.reaction_sections:
            entity.note = REACTION_NOTE
            return
        if self._is_exam_descriptor(mention.text):
            entity.note = EXAM_DESCRIPTOR_NOTE
            return
        if mention.text == entity.text and self.builder.is_anatomy(text, entity):
            # A part of the body tagged as a diagnosis ("sclerae", "bowel") that no finding took in.
            entity.note = ANATOMY_NOTE
            return
        codes = self.codes(text, mention, entity, entity.traits)
        if codes and (" ".join(mention.text.lower().split()) in self.rules.generic
                      or codes[0].code.upper() in self.rules.residual):
            # "pain", "bleeding", "infection" alone, or a mention the linker could only give a residual code (R52,
            # R58, B99.9) although it names more: the residual code is no coder's choice.
            entity.candidates, entity.note = codes, GENERIC_NOTE
            return
        if codes and self._confidence(codes[0].score) < self.min_score:
            # Calibrated abstention (issue 15, class 4): the suggestions stay visible, folded away.
            entity.candidates, entity.note = codes, NO_CONFIDENT_CODE
            return
        entity.codes = codes

    def _is_exam_descriptor(self, mention: str) -> bool:
        check = getattr(self.icd, "is_exam_descriptor", None)
        return bool(check(mention)) if check is not None else False

    def _confidence(self, score: float) -> float:
        calibrate = getattr(self.icd, "confidence", None)
        return float(calibrate(score)) if calibrate is not None else score
