"""The de-identification stage: find PHI (patterns, cue rules, tagger) and redact it.

Registered in :mod:`engine.registry` as ``deid``; ``python -m engine deidentify`` and the product's store and
exports use it. Finding is linear in the note's length: every finder is a regular-expression scan or a pass over
the tokens, and the tagger works on sequences of at most 200 tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.deid.context import find_context
from engine.deid.cues import find_names, find_orgs, find_places
from engine.deid.lexicon import Lexicon, load_lexicon
from engine.deid.offsets import OffsetMap
from engine.deid.patterns import find_patterns, load_patterns
from engine.deid.spans import PhiSpan, merge_spans
from engine.deid.surrogate import redact
from engine.deid.tagger import PhiTagger
from engine.deid.tokens import Token, chunk_bounds, tokenize
from engine.settings import Settings

RULES_VERSION = "deid-rules-1"
CHUNK_CHARS = 50_000
"""Longest piece of a note found at once (memory: about 150 bytes a character while a piece is found)."""


@dataclass
class DeidResult:
    """One de-identified note.

    Attributes:
        id: The note id given, or None.
        text: The redacted note.
        phi: PHI spans with offsets into the input text.
        mode: ``surrogate`` or ``mask``.
        offsets: Maps input spans onto ``text`` (for exports).
    """

    id: str | None
    text: str
    phi: list[PhiSpan]
    mode: str
    offsets: OffsetMap = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        """The contract's ``deidentify`` output object."""
        return {"id": self.id, "text": self.text, "phi": [s.to_dict() for s in self.phi]}


class Deidentifier:
    """Finds and redacts PHI.

    Args:
        settings: Rules folder, model folder, ``deid_mode`` and ``deid_seed``.
        use_tagger: False runs the patterns and cue rules alone (training and ablations).
        model_dir: The tagger's folder (default ``settings.model_dir / "deid"``).
    """

    def __init__(self, settings: Settings, use_tagger: bool = True, model_dir: Path | None = None) -> None:
        self.settings = settings
        self.lex: Lexicon = load_lexicon(settings.rules_dir)
        self.patterns = load_patterns(settings.rules_dir / "deid_patterns.tsv")
        self.tagger = PhiTagger(model_dir or settings.model_dir / "deid", self.lex) if use_tagger else None
        self.version = f"{RULES_VERSION}+{self.tagger.version}" if self.tagger else RULES_VERSION

    def find(self, text: str) -> list[PhiSpan]:
        """Disjoint PHI spans of ``text``, sorted by start.

        A long note is found in pieces of :data:`CHUNK_CHARS` (cut at blank lines), so memory stays bounded; the
        names found anywhere are then looked for again in every piece (:meth:`_repeat_names`).
        """
        bounds = chunk_bounds(text, CHUNK_CHARS)
        found: list[PhiSpan] = []
        words: set[str] = set()
        pieces: list[list[Token]] = []
        for start, end in bounds:
            part = text[start:end]
            tokens = tokenize(part)
            spans = self._find_piece(part, tokens)
            words |= self._name_words(tokens, spans)
            found += _shift(spans, start)
            if len(bounds) == 1:
                pieces.append(tokens)
        if words:
            for i, (start, end) in enumerate(bounds):
                tokens = pieces[i] if pieces else tokenize(text[start:end])
                found += _shift(self._repeat_names(tokens, words), start)
        return merge_spans(found)

    def _find_piece(self, text: str, tokens: list[Token]) -> list[PhiSpan]:
        spans = find_patterns(text, self.patterns)
        spans += find_names(tokens, text, self.lex)
        spans += find_orgs(tokens, self.lex)
        spans += find_places(tokens, self.lex)
        spans += find_context(tokens, self.lex)
        if self.tagger is not None:
            spans += self.tagger.find(tokens, text)
        return spans

    def _name_words(self, tokens: list[Token], spans: list[PhiSpan]) -> set[str]:
        """Lower-cased words of the NAME spans that are distinctive enough to be names wherever they recur."""
        starts = {t.start: t for t in tokens}
        words: set[str] = set()
        for span in spans:
            if span.label != "NAME":
                continue
            for tok in tokenize_span(tokens, starts, span):
                if len(tok.text) > 2 and tok.text.isalpha() and not self.lex.is_common(tok.text, 20) \
                        and tok.text.lower() not in self.lex.cues:
                    words.add(tok.text.lower())
        return words

    def _repeat_names(self, tokens: list[Token], words: set[str]) -> list[PhiSpan]:
        """A word found as a name once is a name everywhere in the note ("Whitcombe" after "Mr. Whitcombe")."""
        return [PhiSpan(t.start, t.end, "NAME", "repeat") for t in tokens
                if t.text.lower() in words and (t.text[:1].isupper() or t.text.lower() in self.lex.first_names)]

    def deidentify(self, text: str, note_id: str | None = None, mode: str | None = None) -> DeidResult:
        """Find and redact the PHI of one note.

        Args:
            text: The input note.
            note_id: Its id; with ``deid_seed`` it keys the surrogates (the text keys them when there is no id).
            mode: ``surrogate`` or ``mask``; default ``settings.deid_mode``.
        """
        mode = mode or self.settings.deid_mode
        phi = self.find(text)
        offsets = redact(text, phi, self.lex, mode, key=note_id if note_id is not None else text,
                         seed=self.settings.deid_seed)
        return DeidResult(note_id, offsets.text, phi, mode, offsets)


def tokenize_span(tokens: list[Token], starts: dict[int, Token], span: PhiSpan) -> list[Token]:
    """The tokens inside ``span`` (found through their start offsets; spans are short)."""
    return [starts[i] for i in range(span.start, span.end) if i in starts]


def _shift(spans: list[PhiSpan], offset: int) -> list[PhiSpan]:
    if not offset:
        return spans
    return [PhiSpan(s.start + offset, s.end + offset, s.label, s.source) for s in spans]


def load(settings: Settings) -> Deidentifier:
    """Registry factory (``engine.registry.STAGES["deid"]``)."""
    return Deidentifier(settings)
