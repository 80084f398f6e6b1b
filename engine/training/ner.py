"""Train the NER token classifier: ``python -m engine train ner``.

Data are given as repeatable ``--data FORMAT:PATH[:LABELMAP]``:

- ``FORMAT`` is ``brat`` (a folder of ``.txt``/``.ann``) or ``iob`` (a ``token<TAB>tag`` file or a folder of them);
- ``LABELMAP`` is a named map (``maccrobat``, ``chia``, ``bc5cdr``, ``ncbi-disease``, ``anatem``, ``identity``) or
  inline ``Type=LABEL,Type=LABEL``; default ``maccrobat`` for BRAT and the folder's name for IOB.

The first ``--data`` is the target corpus: its deterministic dev split (the last ``--dev-count`` documents by sorted
id) drives early stopping on strict entity F1 and is never trained on. Further ``--data`` are trained on whole.
``--pretrain-data`` (same syntax) are trained on first for ``--pretrain-epochs`` (a multi-corpus warm-up).

The result is a self-describing model folder: ``config.json`` (version, backbone, id2label, training configuration,
dev split), ``weights.safetensors`` (trained parameters only, fp16; the backbone's word embeddings stay frozen),
``metrics.json`` (dev scores of the model and of the dictionary baseline, per-epoch history) and ``MODEL_CARD.md``.
"""


from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.backbone import load_tokenizer, resolve_backbone, resolve_device, save_delta
from engine.corpora.document import Document, split_documents
from engine.corpora.specs import load_data_specs
from engine.errors import EngineError, ErrorCode
from engine.evaluation.ner import Gazetteer, evaluate_model, fit_temperature
from engine.monitoring.reference import write_training_profile
from engine.ner import BIO_LABELS, WEIGHTS_FILE, NerStage, build_model
from engine.training.ner_card import CARD_LIMITS, SOURCES, model_card
from engine.training.ner_config import TrainConfig
from engine.training.ner_data import batches, collate, make_examples, read_mlm_texts, token_labels
from engine.training.ner_loop import continue_pretraining, freeze_word_embeddings, run_epochs, train_step

__all__ = [
    "CARD_LIMITS", "SOURCES", "TrainConfig", "batches", "build_parser", "calibrate", "collate", "main",
    "make_examples", "model_card", "read_mlm_texts", "token_labels", "train", "train_step",
]
"""Importable from here as before the split: retraining uses ``batches``, ``make_examples`` and ``train_step``."""


def _stage_config(cfg: TrainConfig) -> dict[str, Any]:
    """The inference part of the model's ``config.json`` (the temperature is fitted later)."""
    version = cfg.version or f"ner-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    return {
        "version": version,
        "backbone": cfg.backbone_name or cfg.backbone,
        "id2label": {str(i): label for i, label in enumerate(BIO_LABELS)},
        "label2id": {label: i for i, label in enumerate(BIO_LABELS)},
        "labels": [label for label in BIO_LABELS if label.startswith("B-")],
        "decoder": cfg.decoder,
        "score_aggregate": "min",
        "temperature": 1.0,
        "weights": WEIGHTS_FILE,
    }


def _dev_scores(stage: NerStage, stage_config: dict[str, Any], train_docs: Sequence[Document],
                dev_docs: Sequence[Document]) -> dict[str, Any]:
    """Fit the temperature on the dev notes (set on ``stage`` and ``stage_config``), then score the model there and,
    given training notes, the dictionary baseline."""
    scores: dict[str, Any] = {"calibration": fit_temperature(stage, dev_docs)}
    stage_config["temperature"] = stage.temperature = scores["calibration"]["temperature"]
    scores["dev"] = evaluate_model(stage, dev_docs)
    if train_docs:
        scores["dev_baseline_dictionary"] = evaluate_model(Gazetteer(train_docs), dev_docs)
    return scores


def _write_folder(folder: Path, config: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Write ``config.json``, ``metrics.json`` and ``MODEL_CARD.md`` (the weights are already there)."""
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (folder / "MODEL_CARD.md").write_text(model_card(config, metrics), encoding="utf-8")


def _training_record(cfg: TrainConfig, train_docs: Sequence[Document], dev_docs: Sequence[Document],
                     pretrain_docs: Sequence[Document]) -> dict[str, Any]:
    """The ``training`` section of ``config.json``: the configuration and what it was trained on."""
    training = asdict(cfg)
    training.update(
        {
            "n_train_docs": len(train_docs),
            "n_dev_docs": len(dev_docs),
            "n_pretrain_docs": len(pretrain_docs),
            "dev_ids": [d.id for d in dev_docs],
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "torch": torch.__version__,
        }
    )
    return training


def train(
    cfg: TrainConfig,
    train_docs: Sequence[Document],
    dev_docs: Sequence[Document],
    out: str | Path,
    pretrain_docs: Sequence[Document] = (),
) -> Path:
    """Train a NER model and write its self-describing folder.

    Args:
        cfg: Hyper-parameters.
        train_docs: Training documents.
        dev_docs: Held-out documents for early stopping and the reported metrics (may be empty: then the last
            epoch is kept).
        out: The model folder to write.
        pretrain_docs: Optional warm-up documents trained on first for ``cfg.pretrain_epochs``.

    Returns:
        The model folder.
    """
    if not train_docs:
        raise EngineError(ErrorCode.DATA_NOT_FOUND, "no training documents")
    started = time.monotonic()
    deadline = started + cfg.max_minutes * 60 if cfg.max_minutes else None
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    device = resolve_device(cfg.device)
    backbone = resolve_backbone(cfg.backbone)
    tokenizer = load_tokenizer(backbone)
    model = build_model(backbone, BIO_LABELS, cfg.dropout).to(device)
    freeze_word_embeddings(model)
    stage_config = _stage_config(cfg)
    history: list[dict[str, Any]] = []
    mlm_losses: list[float] = []
    if cfg.mlm_steps > 0 and cfg.mlm_text:
        mlm_texts = read_mlm_texts(cfg.mlm_text) + [d.text for d in train_docs]
        mlm_losses = continue_pretraining(model, backbone, tokenizer, mlm_texts, cfg, device)
    if pretrain_docs and cfg.pretrain_epochs > 0:
        examples = make_examples(tokenizer, pretrain_docs, cfg.train_window, cfg.train_overlap)
        hist, _, _ = run_epochs(model, examples, cfg, cfg.pretrain_epochs, device, tokenizer, rng, [],
                                 stage_config, deadline, "pretrain")
        history += hist
    examples = make_examples(tokenizer, train_docs, cfg.train_window, cfg.train_overlap)
    hist, best_state, _ = run_epochs(model, examples, cfg, cfg.epochs, device, tokenizer, rng, dev_docs,
                                      stage_config, deadline, "train")
    history += hist
    if best_state is not None:
        with torch.no_grad():
            own = dict(model.named_parameters())
            for name, tensor in best_state.items():
                own[name].copy_(tensor.to(own[name].device))

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    weights_bytes = save_delta(model, folder / WEIGHTS_FILE)
    # Report what the stored (fp16) weights do, not the fp32 training copy.
    from engine.backbone import load_delta

    load_delta(model, folder / WEIGHTS_FILE)
    metrics: dict[str, Any] = {"history": history, "weights_bytes": weights_bytes, "mlm_losses": mlm_losses}
    if dev_docs:
        stage = NerStage(model, tokenizer, stage_config, device, batch_size=max(cfg.batch_size, 16))
        metrics.update(_dev_scores(stage, stage_config, train_docs, dev_docs))
    if cfg.experiments:
        metrics["experiments"] = json.loads(Path(cfg.experiments).read_text(encoding="utf-8"))
    metrics["train_minutes"] = round((time.monotonic() - started) / 60, 2)
    metrics["device"] = str(device)
    training = _training_record(cfg, train_docs, dev_docs, pretrain_docs)
    config = {**stage_config, "training": training}
    _write_folder(folder, config, metrics)
    write_training_profile(folder, [d.text for d in (*train_docs, *dev_docs)], cfg.device)  # for monitoring drift
    return folder


def calibrate(folder: str | Path, dev_docs: Sequence[Document], train_docs: Sequence[Document] = (),
              device: str = "auto") -> dict[str, Any]:
    """Fit the confidence temperature of an existing model folder on ``dev_docs`` and rewrite its config,
    metrics (dev scores, dictionary baseline) and card.

    Returns:
        The new ``metrics.json`` content.
    """
    from engine.ner import load_folder
    from engine.settings import Settings

    folder = Path(folder)
    stage = load_folder(folder, Settings(), device=device)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    metrics.update(_dev_scores(stage, config, train_docs, dev_docs))
    config["score_aggregate"] = stage.aggregate
    _write_folder(folder, config, metrics)
    return metrics


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m engine train ner``."""
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m engine train ner", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--data", action="append", help="FORMAT:PATH[:LABELMAP], repeatable; the first is the target "
                   "corpus (default: brat:<data_dir>/maccrobat:maccrobat)")
    p.add_argument("--pretrain-data", action="append", default=[], help="warm-up corpora, same syntax")
    p.add_argument("--pretrain-epochs", type=int, default=d.pretrain_epochs)
    p.add_argument("--mlm-text", action="append", default=[], help="unlabelled text for continued masked-LM "
                   "pre-training (.txt/.jsonl/.tsv files or folders); the training documents' texts are added")
    p.add_argument("--mlm-steps", type=int, default=d.mlm_steps, help="masked-LM steps before fine-tuning (0: none)")
    p.add_argument("--mlm-lr", type=float, default=d.mlm_lr)
    p.add_argument("--backbone", default=d.backbone, help="packaged name or a local Hugging Face encoder folder")
    p.add_argument("--backbone-name", help="backbone recorded in the model config (default: --backbone)")
    p.add_argument("--out", required=True, help="model folder to write (with --calibrate-only: to update)")
    p.add_argument("--calibrate-only", action="store_true", help="do not train: fit the confidence temperature of "
                   "the existing --out folder on the dev split and rewrite its config, metrics and card")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--head-lr", type=float)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--train-window", type=int, default=d.train_window, help="tokens per training window")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--dropout", type=float, help="classifier dropout")
    p.add_argument("--warmup", type=float, default=d.warmup, help="share of steps with linear LR warm-up")
    p.add_argument("--patience", type=int, default=d.patience, help="epochs without dev F1 gain before stopping")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--dev-count", type=int, default=d.dev_count, help="dev documents held out from the first --data")
    p.add_argument("--dev-fraction", type=float, help="share held out instead of --dev-count")
    p.add_argument("--max-minutes", type=float, help="stop after the epoch that passes this time")
    p.add_argument("--decoder", choices=["viterbi", "greedy"], default=d.decoder)
    p.add_argument("--experiments", help="JSON list of earlier runs (name, what, dev_f1) to record in the card")
    p.add_argument("--version", help="model version string (default: ner-<UTC timestamp>)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m engine train ner``."""
    from engine.settings import Settings

    args = build_parser().parse_args(argv)
    data = args.data or [f"brat:{Settings().data_dir / 'maccrobat'}:maccrobat"]
    cfg = TrainConfig(
        backbone=args.backbone,
        backbone_name=args.backbone_name,
        epochs=args.epochs,
        lr=args.lr,
        head_lr=args.head_lr,
        batch_size=args.batch_size,
        train_window=args.train_window,
        label_smoothing=args.label_smoothing,
        dropout=args.dropout,
        warmup=args.warmup,
        patience=args.patience,
        seed=args.seed,
        device=args.device,
        max_minutes=args.max_minutes,
        pretrain_epochs=args.pretrain_epochs,
        mlm_steps=args.mlm_steps,
        mlm_lr=args.mlm_lr,
        mlm_text=list(args.mlm_text),
        experiments=args.experiments,
        dev_count=None if args.dev_fraction is not None else args.dev_count,
        dev_fraction=args.dev_fraction if args.dev_fraction is not None else TrainConfig.dev_fraction,
        decoder=args.decoder,
        version=args.version,
        data=list(data),
        pretrain_data=list(args.pretrain_data),
    )
    target = load_data_specs(data[:1])
    train_docs, dev_docs = split_documents(target, dev_count=cfg.dev_count, dev_fraction=cfg.dev_fraction)
    if args.calibrate_only:
        metrics = calibrate(args.out, dev_docs, train_docs, device=args.device)
        print(json.dumps({"out": args.out, **metrics["calibration"], "dev_f1": metrics["dev"]["overall"]["f1"]}))
        return 0
    train_docs += load_data_specs(data[1:])
    pretrain_docs = load_data_specs(cfg.pretrain_data) if cfg.pretrain_data else []
    folder = train(cfg, train_docs, dev_docs, args.out, pretrain_docs)
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    summary = {"out": str(folder), "dev_f1": metrics.get("dev", {}).get("overall", {}).get("f1"),
               "baseline_f1": metrics.get("dev_baseline_dictionary", {}).get("overall", {}).get("f1"),
               "weights_bytes": metrics["weights_bytes"], "minutes": metrics["train_minutes"]}
    print(json.dumps(summary))
    return 0
