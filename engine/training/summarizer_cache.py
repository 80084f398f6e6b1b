"""Frozen lower-layer states of the summariser, computed once per note, and the scores computed from them.

The embeddings and lower encoder layers do not train, so their output is cached (optionally in a file reused across
runs); the trained top layers and head run on the cache every step, and early stopping scores the cached dev notes.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from engine.summarizer import (
    NoteEncoding,
    SentenceScorer,
    encode_sentences,
    layer_kv,
    pad_windows,
    select,
    sentence_features,
    sentence_vectors,
)
from engine.training.summarizer_data import Example


@dataclass
class Cached:
    """An example with its frozen lower-layer states computed once."""

    example: Example
    enc: NoteEncoding
    lower: torch.Tensor
    mask: torch.Tensor
    features: torch.Tensor
    labels: torch.Tensor
    kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    """Top layer keys/values per window, when they are frozen."""


def cache_examples(
    model: SentenceScorer,
    tokenizer: Any,
    examples: Sequence[Example],
    config: dict[str, Any],
    device: torch.device,
    desc: str = "encoding",
    store: dict[str, Any] | None = None,
) -> list[Cached]:
    """Run the frozen lower part once over every example.

    Args:
        store: Optional ``{key: (encoding, lower states fp16, mask, ...)}`` reused across runs (see
            :func:`cache_key`); new entries are added to it. Document features are recomputed from the states
            every time, so one store serves models with different feature sets.
    """
    out: list[Cached] = []
    model.eval()
    for ex in tqdm(examples, desc=desc, file=sys.stderr, leave=False):
        if not ex.spans:
            continue
        key = cache_key(ex, config, model.frozen_layers)
        if store is not None and key in store:
            enc, lower16, mask = store[key][:3]
            lower = lower16.float()
        else:
            enc = encode_sentences(
                tokenizer, ex.sentences, int(config["max_length"]), int(config["max_sentence_tokens"])
            )
            ids, types, mask = pad_windows(enc.windows, tokenizer.pad_token_id)
            with torch.no_grad():  # not inference_mode: these states feed the trained layers' backward later
                lower = model.lower(ids.to(device), types.to(device), mask.to(device)).float().cpu()
            if store is not None:
                store[key] = (enc, lower.half(), mask)
        feats = sentence_features(
            enc.word_counts, sentence_vectors(enc.windows, lower), ex.sentences, model.feature_names
        )
        out.append(
            Cached(
                ex,
                enc,
                lower.to(device),
                mask.to(device),
                feats.to(device),
                torch.tensor(ex.labels, dtype=torch.float32, device=device),
            )
        )
    return out


def cache_key(ex: Example, config: dict[str, Any], frozen_layers: int) -> str:
    """Identifies a note's frozen-layer states: its text and everything in the config that changes them."""
    digest = hashlib.sha1(ex.text.encode("utf-8")).hexdigest()[:16]
    parts = [config["backbone"], config.get("encoder_layers"), frozen_layers]
    parts += [config["max_length"], config["max_sentence_tokens"]]
    return f"{ex.id}|{digest}|" + "|".join(str(p) for p in parts)


def logits_for(model: SentenceScorer, item: Cached) -> torch.Tensor:
    """Sentence logits from cached lower states (gradients flow through the upper layers and head)."""
    cls_states = torch.cat(model.upper_at(item.lower, item.mask, [w[2] for w in item.enc.windows], item.kv))
    return model.score(cls_states, item.features)


def rouge1_at_k(
    model: SentenceScorer,
    items: Sequence[Cached],
    k: int = 7,
    trigram_blocking: bool = True,
    max_overlap: float = 0.0,
) -> float:
    """Mean ROUGE-1 F1 of the top-``k`` selection against each item's reference (items without one are skipped)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    scores = []
    model.eval()
    with torch.inference_mode():
        for item in items:
            if item.example.reference is None:
                continue
            logits = logits_for(model, item).tolist()
            texts = item.example.sentences
            chosen = sorted(select(logits, texts, k, trigram_blocking, max_overlap))
            pred = "\n".join(texts[i] for i in chosen)
            scores.append(scorer.score(item.example.reference, pred)["rouge1"].fmeasure)
    return sum(scores) / max(len(scores), 1)


def cached_items(
    model: SentenceScorer,
    tokenizer: Any,
    train_examples: Sequence[Example],
    dev_examples: Sequence[Example],
    config: dict[str, Any],
    device: torch.device,
    cache_file: str | Path | None,
) -> tuple[list[Cached], list[Cached]]:
    """Training and dev notes with their frozen states (read from and added to ``cache_file`` when given), and the
    frozen top layer's keys/values when ``freeze_top_kv`` leaves only its ``[CLS]`` path to train."""
    store: dict[str, Any] | None = None
    if cache_file is not None:
        cache_path = Path(cache_file)
        store = torch.load(cache_path, weights_only=False) if cache_path.is_file() else {}
        known = len(store)
    train_items = cache_examples(model, tokenizer, train_examples, config, device, "encoding train", store)
    dev_items = cache_examples(model, tokenizer, dev_examples, config, device, "encoding dev", store)
    if config["freeze_top_kv"] and model.frozen_layers == len(model.layers) - 1:
        top = model.layers[-1]
        with torch.no_grad():
            for item in tqdm([*train_items, *dev_items], desc="top keys/values", file=sys.stderr, leave=False):
                item.kv = [layer_kv(top, item.lower[w]) for w in range(item.lower.shape[0])]
    if store is not None and len(store) > known:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(store, cache_path)
    return train_items, dev_items
