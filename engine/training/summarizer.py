"""Train the extractive summariser: ``python -m engine train summarizer``.

Labels come from a greedy ROUGE oracle: sentences of the note (as segmented by :mod:`engine.sentences`, exactly as
at prediction time) are added one at a time while they raise ROUGE-1 + ROUGE-2 F1 against the abstract. The
embeddings and lower encoder layers are frozen, so their output is computed once per note and cached; only the top
layers and the head are trained, and only they are stored (fp16, via :func:`engine.backbone.save_delta`).

Early stopping uses a held-out slice of the training articles (never the validation split, which stays the
reported development figure). :func:`train` also takes extra ``(text, sentence labels)`` examples, which is how
retraining from kept/dropped sentences feeds in.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from engine import backbone as bb
from engine.corpora.pubmed import read_pubmed, split_path
from engine.errors import EngineError, ErrorCode
from engine.evaluation.rouge import greedy_oracle, rouge_tokens
from engine.settings import DEFAULT_MODEL_DIR, PACKAGED_BACKBONE, Settings
from engine.summarizer import FEATURES, WEIGHTS_FILE, SentenceScorer, build_scorer
from engine.training.summarizer_cache import (
    Cached,
    cache_examples,
    cache_key,
    cached_items,
    logits_for,
    rouge1_at_k,
)
from engine.training.summarizer_card import model_card
from engine.training.summarizer_config import SummarizerTrainConfig
from engine.training.summarizer_data import Example, labelled_example, oracle_example

__all__ = [
    "Cached",
    "Example",
    "SummarizerTrainConfig",
    "build_parser",
    "cache_examples",
    "cache_key",
    "greedy_oracle",
    "labelled_example",
    "logits_for",
    "main",
    "model_card",
    "oracle_example",
    "rouge1_at_k",
    "rouge_tokens",
    "train",
]
"""Importable from here as before the split (retraining and the tests import ``train`` and the example helpers)."""


def fit(
    model: SentenceScorer,
    train_items: Sequence[Cached],
    dev_items: Sequence[Cached],
    config: dict[str, Any],
    cfg: SummarizerTrainConfig,
    rng: random.Random,
    device: torch.device,
) -> tuple[list[dict[str, float]], float, int]:
    """Train the upper layers and head, keeping the epoch with the best dev ROUGE-1 (the last without dev notes).

    Returns:
        The per-epoch history, the best score and the best epoch (whose parameters ``model`` then holds).
    """
    enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
    head_params = list(model.head.parameters()) + list(model.feature_head.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": enc_params, "lr": cfg.lr}, {"params": head_params, "lr": cfg.head_lr}],
        weight_decay=cfg.weight_decay,
    )
    epochs = cfg.epochs
    total_steps = max(1, epochs * len(train_items))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(1, total_steps // 10)) * max(0.0, 1 - step / total_steps)
    )
    loss_fn = nn.BCEWithLogitsLoss()
    history: list[dict[str, float]] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_score, best_epoch = -1.0, 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = list(range(len(train_items)))
        rng.shuffle(order)
        losses = []
        for i in tqdm(order, desc=f"epoch {epoch}/{epochs}", file=sys.stderr, leave=False):
            item = train_items[i]
            with bb.autocast(device):
                logits = logits_for(model, item)
            loss = loss_fn(logits.float(), item.labels)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(enc_params + head_params, 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        record = {"epoch": epoch, "loss": sum(losses) / len(losses)}
        if dev_items:
            record["dev_rouge1"] = rouge1_at_k(
                model, dev_items, cfg.k, bool(config["trigram_blocking"]), float(config["max_trigram_overlap"])
            )
        history.append(record)
        sys.stderr.write(json.dumps(record) + "\n")
        score = record.get("dev_rouge1", float(epoch))
        if score > best_score:
            best_score, best_epoch = score, epoch
            best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    if best_state is not None:
        with torch.no_grad():
            own = dict(model.named_parameters())
            for name, tensor in best_state.items():
                own[name].copy_(tensor)
    return history, best_score, best_epoch


def train(
    examples: Sequence[Example],
    output_dir: str | Path,
    cfg: SummarizerTrainConfig | None = None,
    *,
    dev_examples: Sequence[Example] = (),
    extra_examples: Sequence[tuple[str, Sequence[Any]]] = (),
    **overrides: Any,
) -> dict[str, Any]:
    """Train a summariser and write its model folder.

    Args:
        examples: Oracle-labelled training notes (see :func:`oracle_example`).
        output_dir: The model folder to write (``config.json``, ``weights.safetensors``, ``metrics.json``).
        cfg: Hyper-parameters (default: :class:`SummarizerTrainConfig`'s defaults).
        dev_examples: Held-out notes with references for early stopping (ROUGE-1 of the top ``k``); without them the
            last epoch is kept.
        extra_examples: ``(text, labels)`` pairs, labels as in :func:`labelled_example` (kept/dropped sentences).
        **overrides: Fields of :class:`SummarizerTrainConfig` to change, e.g. ``epochs=1, init_dir=folder``.

    Returns:
        The metrics written to ``metrics.json``.

    Raises:
        TypeError: An override that is not a field of :class:`SummarizerTrainConfig`.
        EngineError: ``DATA_NOT_FOUND`` when no training note has a sentence.
    """
    c = replace(cfg or SummarizerTrainConfig(), **overrides)
    torch.manual_seed(c.seed)
    rng = random.Random(c.seed)
    dev = bb.resolve_device(c.device)
    config = c.scorer_config()
    tokenizer, model = build_scorer(config)
    if c.init_dir is not None:
        bb.load_delta(model, Path(c.init_dir) / WEIGHTS_FILE)
    model.to(dev)

    all_train = list(examples) + [labelled_example(t, lab, f"extra-{i}") for i, (t, lab) in enumerate(extra_examples)]
    all_train = [ex for ex in all_train if ex.spans]
    if not all_train:
        raise EngineError(ErrorCode.DATA_NOT_FOUND, "no training examples with sentences")
    t0 = time.perf_counter()
    train_items, dev_items = cached_items(model, tokenizer, all_train, dev_examples, config, dev, c.cache_file)
    history, best_score, best_epoch = fit(model, train_items, dev_items, config, c, rng, dev)
    return _write_folder(Path(output_dir), model, c, config, history, best_score, best_epoch, len(dev_items),
                         len(train_items), len(extra_examples), time.perf_counter() - t0)


def _write_folder(
    out: Path,
    model: SentenceScorer,
    c: SummarizerTrainConfig,
    config: dict[str, Any],
    history: list[dict[str, float]],
    best_score: float,
    best_epoch: int,
    dev_notes: int,
    train_notes: int,
    extra_examples: int,
    seconds: float,
) -> dict[str, Any]:
    """Write the trained weights, ``config.json``, ``metrics.json`` and ``MODEL_CARD.md``; return the metrics."""
    out.mkdir(parents=True, exist_ok=True)
    size = bb.save_delta(model, out / WEIGHTS_FILE)
    version = c.version or "summarizer-" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    training_config = {
        "epochs": c.epochs,
        "best_epoch": best_epoch,
        "lr": c.lr,
        "head_lr": c.head_lr,
        "weight_decay": c.weight_decay,
        "seed": c.seed,
        "train_notes": train_notes,
        "dev_notes": dev_notes,
        "extra_examples": extra_examples,
        "init_dir": str(c.init_dir) if c.init_dir else None,
        "labels": "greedy ROUGE-1+ROUGE-2 oracle over engine.sentences segments",
        "loss": "binary cross-entropy per sentence",
        "frozen": "embeddings and lower encoder layers",
    }
    if c.command:
        training_config["command"] = c.command
    config_out = {"version": version, **config, "training": training_config, **(c.extra_config or {})}
    (out / "config.json").write_text(json.dumps(config_out, indent=2) + "\n", encoding="utf-8")
    metrics = {
        "version": version,
        "history": history,
        "best_epoch": best_epoch,
        "early_stopping_rouge1_at_k": best_score if dev_notes else None,
        "k": c.k,
        "weights_bytes": size,
        "train_seconds": round(seconds, 1),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (out / "MODEL_CARD.md").write_text(model_card(config_out, metrics), encoding="utf-8")
    return metrics


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m engine train summarizer``."""
    parser = argparse.ArgumentParser(prog="python -m engine train summarizer", description=__doc__)
    parser.add_argument("--data", default=None, help="folder with train.jsonl (default: DATA_DIR/pubmed-summarization)")
    parser.add_argument("--output", default=str(DEFAULT_MODEL_DIR / "summarizer"), help="model folder to write")
    parser.add_argument("--backbone", default=PACKAGED_BACKBONE, help="all-MiniLM-L6-v2 or a local encoder folder")
    parser.add_argument("--trainable-layers", type=int, default=2)
    parser.add_argument("--freeze-top-kv", action="store_true", help="train the top layer but its keys/values")
    parser.add_argument("--encoder-layers", type=int, default=None, help="keep only the first N encoder layers")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--head-lr", type=float, default=2e-3)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--max-sentence-tokens", type=int, default=80)
    parser.add_argument(
        "--max-trigram-overlap",
        type=float,
        default=None,
        help="share of a sentence's trigrams that may repeat chosen ones before it is skipped (default 0 = any)",
    )
    parser.add_argument(
        "--features",
        default=",".join(FEATURES),
        help=f"comma-separated document features for the head (default: all of {','.join(FEATURES)})",
    )
    parser.add_argument("--holdout", type=int, default=10, help="training articles held out for early stopping")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training articles")
    parser.add_argument("--joiner", default="newline", choices=["newline", "space"], help="how sentences are joined")
    parser.add_argument("--init-from", default=None, help="continue from a trained summarizer folder")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--cache", default=None, help="file keeping frozen-layer states between runs")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--version", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine train summarizer``: train on the PubMed JSON lines and write the model folder."""
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = build_parser().parse_args(argv)

    data = Path(args.data) if args.data else Settings().data_dir
    articles = list(read_pubmed(split_path(data, "train"), args.limit))
    if not articles:
        raise EngineError(ErrorCode.DATA_NOT_FOUND, f"no articles in {split_path(data, 'train')}")
    joiner = "\n" if args.joiner == "newline" else " "
    examples = [oracle_example(a, joiner) for a in tqdm(articles, desc="oracle labels", file=sys.stderr)]
    rng = random.Random(args.seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    holdout = min(args.holdout, max(0, len(examples) - 1))
    dev_idx = set(order[:holdout])
    train_ex = [e for i, e in enumerate(examples) if i not in dev_idx]
    dev_ex = [e for i, e in enumerate(examples) if i in dev_idx]
    metrics = train(
        train_ex,
        args.output,
        dev_examples=dev_ex,
        backbone=args.backbone,
        trainable_layers=args.trainable_layers,
        freeze_top_kv=args.freeze_top_kv,
        encoder_layers=args.encoder_layers,
        epochs=args.epochs,
        lr=args.lr,
        head_lr=args.head_lr,
        max_length=args.max_length,
        max_sentence_tokens=args.max_sentence_tokens,
        max_trigram_overlap=args.max_trigram_overlap,
        features=[f.strip() for f in args.features.split(",") if f.strip()],
        seed=args.seed,
        init_dir=args.init_from,
        device=args.device,
        version=args.version,
        cache_file=args.cache,
        command=shlex.join(["python", "-m", "engine", "train", "summarizer", *argv]),
        extra_config={
            "data": {
                "name": "PubMed article/abstract pairs (Cohan et al. 2018)",
                "train_file": "pubmed-summarization/train.jsonl",
                "articles": len(articles),
                "holdout_for_early_stopping": sorted(e.id for e in dev_ex),
                "joiner": args.joiner,
            }
        },
    )
    print(json.dumps(metrics))
    return 0
