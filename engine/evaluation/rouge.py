"""ROUGE helpers shared by training (oracle labels) and evaluation (the oracle's upper bound).

:func:`rouge_tokens` tokenises as ``rouge-score`` does; :func:`greedy_oracle` picks the sentences that together
maximise ROUGE-1 + ROUGE-2 F1 against a reference.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

_TOKENIZER: Any = None


def rouge_tokens(text: str) -> list[str]:
    """Tokens as ``rouge-score`` sees them (lower-cased, alphanumeric, Porter-stemmed)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        from rouge_score import tokenizers

        _TOKENIZER = tokenizers.DefaultTokenizer(use_stemmer=True)
    return _TOKENIZER.tokenize(text)


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _f1(overlap: int, cand_total: int, ref_total: int) -> float:
    if not overlap:
        return 0.0
    p, r = overlap / max(cand_total, 1), overlap / max(ref_total, 1)
    return 2 * p * r / (p + r)


def _gain(cur: Counter[tuple[str, ...]], add: Counter[tuple[str, ...]], ref: Counter[tuple[str, ...]]) -> int:
    """How much the clipped overlap with ``ref`` grows when ``add`` joins ``cur`` (touches only ``add``'s n-grams)."""
    gain = 0
    for gram, count in add.items():
        limit = ref.get(gram, 0)
        if limit:
            have = cur.get(gram, 0)
            gain += min(have + count, limit) - min(have, limit)
    return gain


def greedy_oracle(sentences: Sequence[Sequence[str]], reference: Sequence[str], max_sentences: int = 10) -> list[int]:
    """Greedy ROUGE oracle: sentence indices that together maximise ROUGE-1 + ROUGE-2 F1 against ``reference``.

    Args:
        sentences: Tokens of each candidate sentence (see :func:`rouge_tokens`).
        reference: Tokens of the reference summary.
        max_sentences: Upper bound on the oracle's size.

    Returns:
        Chosen indices in the order they were added (stops when no sentence improves the score).
    """
    ref1, ref2 = _ngrams(reference, 1), _ngrams(reference, 2)
    r1_total, r2_total = sum(ref1.values()), sum(ref2.values())
    s1 = [_ngrams(s, 1) for s in sentences]
    s2 = [_ngrams(s, 2) for s in sentences]
    chosen: list[int] = []
    cur1: Counter[tuple[str, ...]] = Counter()
    cur2: Counter[tuple[str, ...]] = Counter()
    o1 = o2 = t1 = t2 = 0
    best = 0.0
    while len(chosen) < max_sentences:
        pick, pick_score = -1, best
        for i in range(len(sentences)):
            if i in chosen or not sentences[i]:
                continue
            score = _f1(o1 + _gain(cur1, s1[i], ref1), t1 + len(sentences[i]), r1_total) + _f1(
                o2 + _gain(cur2, s2[i], ref2), t2 + max(len(sentences[i]) - 1, 0), r2_total
            )
            if score > pick_score:
                pick, pick_score = i, score
        if pick < 0:
            break
        chosen.append(pick)
        o1, o2 = o1 + _gain(cur1, s1[pick], ref1), o2 + _gain(cur2, s2[pick], ref2)
        t1, t2 = t1 + len(sentences[pick]), t2 + max(len(sentences[pick]) - 1, 0)
        cur1.update(s1[pick])
        cur2.update(s2[pick])
        best = pick_score
    return chosen
