"""The summariser's document features and sentence selection (no model weights involved).

Features are cheap per-sentence signals the scorer's head reads beside each sentence's ``[CLS]`` state (position,
length, centrality, TextRank); selection takes the top sentences with trigram blocking. Split from
:mod:`engine.summarizer`, which re-exports these names.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from engine.errors import EngineError, ErrorCode
from engine.rules import rule_rows
from engine.settings import RULES_DIR

FEATURES: tuple[str, ...] = (
    "position",
    "position_sq",
    "first_three",
    "last_tenth",
    "log_words",
    "short",
    "centrality",
    "centrality_rank",
    "textrank",
    "textrank_rank",
)
"""Document features the head can read beside the ``[CLS]`` state (see :func:`sentence_features`); a model's
``config.json`` lists the ones it was trained with, in order."""
STOPWORDS_FILE = "summary_stopwords.txt"
_WORD = re.compile(r"\w+")


@functools.cache
def stopwords() -> frozenset[str]:
    """The words left out of the TextRank features (``assets/rules/summary_stopwords.txt``)."""
    return frozenset(row[0].strip() for _, row in rule_rows(RULES_DIR / STOPWORDS_FILE, what="stop word file"))


def textrank_scores(texts: Sequence[str], damping: float = 0.85, iterations: int = 100) -> torch.Tensor:
    """TextRank of each sentence: PageRank over the TF-IDF cosine similarity graph of the note's sentences.

    Words are lower-cased runs of two or more word characters without stop words; TF-IDF uses raw counts and the
    smoothed idf ``ln((1 + n) / (1 + df)) + 1``, rows L2-normalised. A sentence with no link gets the uniform share.

    Returns:
        ``[n]`` scores summing to 1.
    """
    n = len(texts)
    if n == 0:
        return torch.zeros(0)
    # numpy, not torch: a hundred tiny matrix-vector steps cost far less without torch's per-op threading overhead.
    stop = stopwords()
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        for w in _WORD.findall(text.lower()):
            if len(w) > 1 and w not in stop:
                rows.append(i)
                cols.append(vocab.setdefault(w, len(vocab)))
    if not vocab:
        return torch.full((n,), 1.0 / n)
    tf = np.zeros((n, len(vocab)))
    np.add.at(tf, (np.array(rows), np.array(cols)), 1.0)
    df = (tf > 0).sum(0)
    tfidf = tf * (np.log((1 + n) / (1 + df)) + 1)
    tfidf /= np.linalg.norm(tfidf, axis=1, keepdims=True).clip(min=1e-12)
    sim = tfidf @ tfidf.T
    np.fill_diagonal(sim, 0.0)
    out_weight = sim.sum(1, keepdims=True)
    trans_t = np.ascontiguousarray(
        np.divide(sim, out_weight, out=np.full_like(sim, 1.0 / n), where=out_weight > 0).T
    )
    rank = np.full(n, 1.0 / n)
    for _ in range(iterations):
        new = (1 - damping) / n + damping * (trans_t @ rank)
        done = np.abs(new - rank).sum() < 1e-8
        rank = new
        if done:
            break
    return torch.from_numpy(rank).float()


def sentence_features(
    word_counts: Sequence[int],
    sentence_vectors: torch.Tensor,
    texts: Sequence[str] | None = None,
    names: Sequence[str] = FEATURES[:8],
) -> torch.Tensor:
    """Document features per sentence, ``[n, len(names)]``.

    Args:
        word_counts: Words per sentence.
        sentence_vectors: ``[n, hidden]`` mean-pooled token states of each sentence (from the frozen lower layers),
            used for centrality: cosine to the note's mean sentence vector, and its rank within the note.
        texts: The sentences; needed only for the ``textrank`` features.
        names: Which features, in order (a model's ``config.json`` ``features``); the default is the original
            eight, without TextRank.

    Raises:
        EngineError: ``MODEL_INVALID`` for a feature name this version does not know.
    """
    unknown = [f for f in names if f not in FEATURES]
    if unknown:
        raise EngineError(ErrorCode.MODEL_INVALID, f"unknown summariser features {unknown}")
    n = len(word_counts)
    if n == 0:
        return torch.zeros((0, len(names)))
    pos = torch.arange(n, dtype=torch.float32) / max(n - 1, 1)
    words = torch.tensor(word_counts, dtype=torch.float32)
    vecs = nn.functional.normalize(sentence_vectors.float(), dim=-1)
    centre = nn.functional.normalize(vecs.mean(0, keepdim=True), dim=-1)
    cent = (vecs @ centre.T).squeeze(-1)
    columns = {
        "position": lambda: pos,
        "position_sq": lambda: pos**2,
        "first_three": lambda: (torch.arange(n) < 3).float(),
        "last_tenth": lambda: (pos > 0.9).float(),
        "log_words": lambda: torch.log1p(words) / 4.0,
        "short": lambda: (words < 8).float(),
        "centrality": lambda: (cent - cent.mean()) * 5.0,
        "centrality_rank": lambda: torch.argsort(torch.argsort(-cent)).float() / max(n - 1, 1),
    }
    if any(f.startswith("textrank") for f in names):
        if texts is None or len(texts) != n:
            raise ValueError("the textrank features need the sentences' texts")
        tr = textrank_scores(texts)
        # n * score is 1 for an average sentence; its log is centred on 0 and tames the long upper tail.
        columns["textrank"] = lambda: torch.log(tr * n).clamp(-3.0, 3.0)
        columns["textrank_rank"] = lambda: torch.argsort(torch.argsort(-tr)).float() / max(n - 1, 1)
    return torch.stack([columns[f]() for f in names], dim=-1)


def trigrams(text: str) -> set[tuple[str, ...]]:
    """Lower-cased word trigrams of a sentence (for redundancy blocking)."""
    words = [w.lower() for w in _WORD.findall(text)]
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def select(
    scores: Sequence[float], texts: Sequence[str], k: int, trigram_blocking: bool = True, max_overlap: float = 0.0
) -> list[int]:
    """Indices of the chosen sentences, most salient first.

    Sentences are taken by descending score; with ``trigram_blocking`` one repeating chosen trigrams is skipped while
    unblocked ones remain (then the skipped ones fill up to ``k``).

    Args:
        scores: Salience per sentence.
        texts: The sentences.
        k: How many to choose.
        trigram_blocking: Redundancy control on or off.
        max_overlap: Share of a sentence's trigrams that may already be chosen; ``0`` blocks on any shared trigram
            (classic BERTSum blocking), ``0.5`` only when half of them repeat.
    """
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    k = min(k, len(order))
    if not trigram_blocking:
        return order[:k]
    chosen: list[int] = []
    skipped: list[int] = []
    seen: set[tuple[str, ...]] = set()
    for i in order:
        if len(chosen) >= k:
            break
        grams = trigrams(texts[i])
        shared = len(grams & seen)
        if shared and shared > max_overlap * len(grams):
            skipped.append(i)
            continue
        chosen.append(i)
        seen |= grams
    chosen.extend(skipped[: k - len(chosen)])
    return chosen


def default_k(n_sentences: int, ratio: float = 0.15, minimum: int = 3, maximum: int = 12) -> int:
    """Summary length for a note of ``n_sentences``: ``ratio`` of it, within ``[minimum, maximum]``."""
    return min(n_sentences, max(minimum, min(maximum, math.ceil(ratio * n_sentences))))
