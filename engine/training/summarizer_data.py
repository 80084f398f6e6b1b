"""Summariser training examples: a note's sentences with salience labels, from the ROUGE oracle or from reviewers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.corpora.pubmed import PubMedArticle
from engine.errors import EngineError, ErrorCode
from engine.evaluation.rouge import greedy_oracle, rouge_tokens
from engine.sentences import split_sentences


@dataclass
class Example:
    """One training note: its sentences and a 0/1 (or soft) salience label per sentence."""

    id: str
    text: str
    spans: list[tuple[int, int]]
    labels: list[float]
    reference: str | None = None

    @property
    def sentences(self) -> list[str]:
        """The sentences, verbatim."""
        return [self.text[s:e] for s, e in self.spans]


def oracle_example(article: PubMedArticle, joiner: str = "\n", max_sentences: int = 10) -> Example:
    """Segment the joined article with our segmenter and label it with the greedy oracle."""
    text = article.text(joiner)
    spans = split_sentences(text)
    toks = [rouge_tokens(text[s:e]) for s, e in spans]
    chosen = set(greedy_oracle(toks, rouge_tokens(" ".join(article.abstract)), max_sentences))
    labels = [1.0 if i in chosen else 0.0 for i in range(len(spans))]
    return Example(article.id, text, spans, labels, article.reference)


def labelled_example(text: str, labels: Sequence[Any], example_id: str = "extra") -> Example:
    """An example from a note and its sentence labels.

    Args:
        text: The note.
        labels: Either one label per sentence of ``split_sentences(text)`` (1 kept, 0 dropped), or
            ``(start, end, label)`` triples for the sentences that were judged (others count as 0).

    Raises:
        EngineError: ``BAD_INPUT`` when the labels do not fit the note's sentences.
    """
    spans = split_sentences(text)
    if labels and isinstance(labels[0], list | tuple):
        by_span = {(int(s), int(e)): float(v) for s, e, v in labels}
        unknown = set(by_span) - set(spans)
        if unknown:
            bad = sorted(unknown)[:2]
            raise EngineError(ErrorCode.BAD_INPUT, f"{example_id}: labelled spans {bad} are not sentences")
        values = [by_span.get(sp, 0.0) for sp in spans]
    else:
        if len(labels) != len(spans):
            raise EngineError(ErrorCode.BAD_INPUT, f"{example_id}: {len(labels)} labels for {len(spans)} sentences")
        values = [float(v) for v in labels]
    return Example(example_id, text, spans, values)
