"""Train the PHI tagger: ``python -m engine train deid [--data-dir DIR] [--out DIR] [--seed N]``.

Builds the synthetic data (:mod:`engine.training.deid_data`, :mod:`engine.training.deid_mtsamples`), trains a
linear-chain CRF (python-crfsuite, L-BFGS with L1+L2) on NAME / LOCATION / HOSPITAL BIO tags, scores it on the
synthetic dev split and the hand-written dev set, and writes a self-describing model folder.

Gazetteer dropout: the training features see name lists with a seeded fifth of the names removed, so the tagger
learns the contexts of names too, not only list membership (at run time the full lists are used).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from pathlib import Path

from engine.deid.features import token_features
from engine.deid.lexicon import Lexicon, load_lexicon
from engine.deid.tagger import FEATURE_SET
from engine.deid.tokens import Token, sequences, tokenize
from engine.settings import DEFAULT_MODEL_DIR, RULES_DIR, Settings
from engine.training.deid_data import (
    Surrogates,
    doc_split,
    iter_mtsamples,
    load_templates,
    split_templates,
    template_note,
)
from engine.training.deid_mtsamples import mtsamples_note

TAGGER_LABELS = ("NAME", "LOCATION", "HOSPITAL")
VERSION = "deid-crf-3"


def build_examples(data_dir: Path, seed: int = 13, n_train: int = 3000, n_dev: int = 600) -> dict[str, list[dict]]:
    """The synthetic train and dev examples (deterministic for a seed; MTSamples part skipped when absent)."""
    train_t, dev_t = split_templates(load_templates())
    out: dict[str, list[dict]] = {"train": [], "dev": []}
    for split, templates, n, offset in (("train", train_t, n_train, 0), ("dev", dev_t, n_dev, 1)):
        sur = Surrogates(seed * 2 + offset)
        out[split] += [template_note(templates, sur, f"template:{split}:{i}") for i in range(n)]
    if (data_dir / "mtsamples").is_dir():
        surs = {"train": Surrogates(seed * 2 + 100), "dev": Surrogates(seed * 2 + 101)}
        for name, body in iter_mtsamples(data_dir):
            split = doc_split(name)
            out[split].append(mtsamples_note(name, body, surs[split], train_t if split == "train" else dev_t))
    return out


def bio_tags(tokens: list[Token], spans: list[list[object]], labels: tuple[str, ...] = TAGGER_LABELS) -> list[str]:
    """BIO tags: a token inside a span of a tagger label gets it (B on the span's first token)."""
    tags = ["O"] * len(tokens)
    starts = [t.start for t in tokens]
    import bisect

    for start, end, label in sorted(spans):  # type: ignore[type-var]
        if label not in labels:
            continue
        i = bisect.bisect_left(starts, start)
        if i > 0 and tokens[i - 1].end > start:
            i -= 1
        first = True
        while i < len(tokens) and tokens[i].start < end:  # type: ignore[operator]
            tags[i] = f"{'B' if first else 'I'}-{label}"
            first = False
            i += 1
    return tags


def dropout_lexicon(lex: Lexicon, seed: int, fraction: float = 0.2) -> Lexicon:
    """``lex`` with a seeded ``fraction`` of its first names and surnames removed."""
    rng = random.Random(seed)
    drop_first = {w for w in sorted(lex.first_names) if rng.random() < fraction}
    drop_last = {w for w in sorted(lex.last_names) if rng.random() < fraction}
    return dataclasses.replace(
        lex, first_names={w: r for w, r in lex.first_names.items() if w not in drop_first},
        last_names={w: r for w, r in lex.last_names.items() if w not in drop_last})


def train(examples: list[dict], lex: Lexicon, out_file: Path, max_iterations: int = 120,
          c1: float = 0.05, c2: float = 0.01) -> dict[str, float]:
    """Fit the CRF and save it to ``out_file``; returns timing and size figures."""
    import pycrfsuite

    trainer = pycrfsuite.Trainer(verbose=False)
    tokens_seen = 0
    t0 = time.time()
    for ex in examples:
        text = ex["text"]
        tokens = tokenize(text)
        feats = token_features(tokens, text, lex)
        tags = bio_tags(tokens, ex["spans"])
        for first, last in sequences(tokens, text):
            trainer.append(feats[first:last], tags[first:last])
        tokens_seen += len(tokens)
    featurize_s = time.time() - t0
    trainer.set_params({"c1": c1, "c2": c2, "max_iterations": max_iterations,
                        "feature.possible_transitions": True})
    t0 = time.time()
    trainer.train(str(out_file))
    return {"train_tokens": tokens_seen, "featurize_s": round(featurize_s, 1), "train_s": round(time.time() - t0, 1)}


def write_folder(out_dir: Path, stats: dict, metrics: dict, n_examples: dict[str, int], seed: int) -> None:
    """config.json, metrics.json and MODEL_CARD.md beside model.crfsuite."""
    config = {"version": VERSION, "labels": list(TAGGER_LABELS), "tagging": "BIO", "feature_set": FEATURE_SET,
              "model": "linear-chain CRF (python-crfsuite, L-BFGS)", "seed": seed, "examples": n_examples,
              **stats}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    from engine.training.deid_card import model_card

    (out_dir / "MODEL_CARD.md").write_text(model_card(config, metrics), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``python -m engine train deid``)."""
    parser = argparse.ArgumentParser(prog="python -m engine train deid", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Settings().data_dir)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR / "deid")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--train-notes", type=int, default=3000, help="template notes in train")
    parser.add_argument("--iterations", type=int, default=120)
    args = parser.parse_args(argv)
    data = build_examples(args.data_dir, args.seed, n_train=args.train_notes)
    print(f"examples: train {len(data['train']):,}, dev {len(data['dev']):,}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    lex = load_lexicon(RULES_DIR)
    stats = train(data["train"], dropout_lexicon(lex, args.seed), args.out / "model.crfsuite", args.iterations)
    print(f"trained: {stats}", file=sys.stderr)
    (args.out / "config.json").write_text(json.dumps({"version": VERSION, "labels": list(TAGGER_LABELS),
                                                      "feature_set": FEATURE_SET}) + "\n", encoding="utf-8")
    from engine.evaluation.deid import evaluate_model

    metrics = evaluate_model(data["dev"], Settings(), args.out)
    write_folder(args.out, stats, metrics, {k: len(v) for k, v in data.items()}, args.seed)
    print(json.dumps(metrics["summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
