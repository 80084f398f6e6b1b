"""The stages a retraining run trains and scores: NER fine-tuning and the summarizer (:mod:`engine.training.retrain`).

Each function takes the parent's model folder and the prepared data and writes (or scores) one model folder; the
run orchestration, the lock and the registry live in :mod:`engine.training.retrain`.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.corpora.document import Document
from engine.errors import EngineError, ErrorCode
from engine.monitoring.reference import write_training_profile
from engine.settings import Settings
from engine.training.feedback_data import SentenceExample
from engine.training.retrain_gate import RetrainConfig
from engine.training.schedule import linear_warmup_decay

Progress = Callable[[float, str], None]
"""``progress(fraction in [0, 1], message)``: called as the run advances (CLI: a tqdm bar; app: a progress bar)."""


# ----- NER fine-tuning ----------------------------------------------------------------------------------------------
def fine_tune_ner(
    init_folder: Path,
    train_docs: Sequence[Document],
    out: Path,
    cfg: RetrainConfig,
    version: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fine-tune the NER model in ``init_folder`` on ``train_docs`` and write the result to ``out``.

    The same parameters as in the parent are trained (the backbone's word embeddings stay frozen), so the new
    delta has the parent's size. A fixed number of epochs is run: no checkpoint is chosen on the gate's sets.

    Returns:
        Training facts for the registry (device, steps, losses, minutes).
    """
    import numpy as np
    import torch

    from engine.backbone import load_delta, load_tokenizer, resolve_backbone, resolve_device, save_delta
    from engine.ner import WEIGHTS_FILE, build_model, read_config
    from engine.training.ner import make_examples

    started = time.monotonic()
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    device = resolve_device(cfg.device)
    parent_config = read_config(init_folder)
    id2label = [str(parent_config["id2label"][str(i)]) for i in range(len(parent_config["id2label"]))]
    backbone = resolve_backbone(parent_config.get("backbone"))
    tokenizer = load_tokenizer(backbone)
    model = build_model(backbone, id2label)
    load_delta(model, init_folder / parent_config.get("weights", WEIGHTS_FILE))
    model.get_input_embeddings().weight.requires_grad_(False)
    model.to(device)

    window = min(cfg.train_window, int(parent_config.get("training", {}).get("train_window", cfg.train_window)))
    examples = make_examples(tokenizer, train_docs, window, window // 4)
    if not examples:
        raise EngineError(ErrorCode.DATA_NOT_FOUND, "retraining: the training notes hold no tokens")
    step, history = _train_epochs(model, tokenizer, examples, cfg, device, rng, progress)

    out.mkdir(parents=True, exist_ok=True)
    weights_bytes = save_delta(model, out / WEIGHTS_FILE)
    facts = {
        "device": str(device),
        "steps": step,
        "examples": len(examples),
        "history": history,
        "weights_bytes": weights_bytes,
        "minutes": round((time.monotonic() - started) / 60, 2),
        "torch": torch.__version__,
    }
    _write_ner_folder(init_folder, out, parent_config, cfg, facts, version, len(train_docs), str(device))
    write_training_profile(out, [d.text for d in train_docs], cfg.device)  # the reference monitoring compares with
    return facts


def _train_epochs(
    model: Any, tokenizer: Any, examples: Sequence[Any], cfg: RetrainConfig, device: Any, rng: random.Random,
    progress: Progress | None,
) -> tuple[int, list[dict[str, Any]]]:
    """Run ``cfg.epochs`` passes of AdamW with linear warm-up then decay; returns ``(steps, per-epoch losses)``."""
    import numpy as np
    import torch

    from engine.training.ner import batches, train_step

    head_lr = cfg.head_lr or cfg.lr
    body = [p for n, p in model.named_parameters() if p.requires_grad and "classifier" not in n]
    head = [p for n, p in model.named_parameters() if p.requires_grad and "classifier" in n]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": cfg.lr}, {"params": head, "lr": head_lr}], weight_decay=0.01
    )
    total = max(1, math.ceil(len(examples) / cfg.batch_size) * cfg.epochs)
    warmup = max(1, int(0.1 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(total, warmup))
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id or 0
    step, history = 0, []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        losses = []
        for batch in batches(examples, cfg.batch_size, rng):
            losses.append(train_step(model, batch, optimizer, scheduler, loss_fn, device, (cls_id, sep_id, pad_id)))
            step += 1
            if progress:
                progress(step / total, f"NER epoch {epoch}/{cfg.epochs}, step {step}/{total}, loss {losses[-1]:.3f}")
        history.append({"epoch": epoch, "loss": round(float(np.mean(losses)), 4)})
    return step, history


def _write_ner_folder(
    init_folder: Path, out: Path, parent_config: dict[str, Any], cfg: RetrainConfig, facts: dict[str, Any],
    version: str, n_train_docs: int, device: str,
) -> None:
    """Write the candidate's ``config.json`` (with its retraining facts) and a model card pointing at its parent."""
    from engine.ner import WEIGHTS_FILE

    config = dict(parent_config)
    config["version"] = version
    config["weights"] = WEIGHTS_FILE
    config["parent_version"] = str(parent_config.get("version", "unknown"))
    config["retraining"] = {**asdict(cfg), **facts, "n_train_docs": n_train_docs}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    card = init_folder / "MODEL_CARD.md"
    parent_card = card.read_text(encoding="utf-8") if card.is_file() else ""
    (out / "MODEL_CARD.md").write_text(
        f"# NER model {version}\n\nFine-tuned from `{config['parent_version']}` on reviewer feedback "
        f"({n_train_docs} training notes: base training data plus reviewed notes) for {cfg.epochs} epochs, "
        f"lr {cfg.lr}, on {device}. Promotion is decided by the retraining gate; see the version's REPORT.txt.\n\n"
        f"## Parent model card\n\n{parent_card}",
        encoding="utf-8",
    )


def evaluate_ner(folder: Path, sets: dict[str, Sequence[Document]], settings: Settings) -> dict[str, Any]:
    """Strict scores of the NER model in ``folder`` on each named document set (empty sets are skipped)."""
    from engine.evaluation.ner import evaluate_model
    from engine.ner import load_folder

    stage = load_folder(folder, settings)
    return {name: evaluate_model(stage, docs) for name, docs in sets.items() if docs}


# ----- summarizer ---------------------------------------------------------------------------------------------------
def _sentence_examples(examples: Sequence[SentenceExample]) -> tuple[list[SentenceExample], int]:
    """Examples whose labelled spans are still sentences of the current segmenter (others cannot be trained on)."""
    from engine.sentences import split_sentences

    usable, dropped = [], 0
    for ex in examples:
        spans = set(split_sentences(ex.text))
        labels = [lab for lab in ex.labels if (lab[0], lab[1]) in spans]
        dropped += len(ex.labels) - len(labels)
        if labels:
            usable.append(SentenceExample(ex.note_hash, ex.id, ex.text, labels))
    return usable, dropped


def retrain_summarizer(
    parent: Path, examples: Sequence[SentenceExample], out: Path, cfg: RetrainConfig, version: str, parent_name: str
) -> dict[str, Any]:
    """Fine-tune the parent's summarizer on reviewer keep/drop labels (kept = 1, dropped = 0).

    Returns:
        The trainer's metrics.
    """
    from engine.training.summarizer import train

    extra = [(ex.text, [(s, e, float(keep)) for s, e, keep in ex.labels]) for ex in examples]
    return train(
        [], out, extra_examples=extra, init_dir=parent, epochs=cfg.epochs, device=cfg.device, seed=cfg.seed,
        version=version, extra_config={"parent_version": parent_name, "retraining": "reviewer keep/drop labels"},
    )


def evaluate_summarizer(folder: Path, examples: Sequence[SentenceExample], settings: Settings) -> dict[str, Any]:
    """How often the summarizer scores a kept sentence above a dropped one of the same note (pairwise AUC).

    Returns:
        ``{"auc": float, "pairs": int, "notes": int}`` (``auc`` 0 when there are no pairs).
    """
    from engine.backbone import resolve_device
    from engine.summarizer import Summarizer

    stage = Summarizer(folder, resolve_device(settings.device), max_length=settings.window_tokens)
    pairs, wins = 0, 0.0
    for ex in examples:
        scores = stage.score_sentences([ex.text[s:e] for s, e, _ in ex.labels])
        kept = [sc for sc, (_, _, keep) in zip(scores, ex.labels, strict=True) if keep]
        dropped = [sc for sc, (_, _, keep) in zip(scores, ex.labels, strict=True) if not keep]
        for a in kept:
            for b in dropped:
                pairs += 1
                wins += 1.0 if a > b else 0.5 if a == b else 0.0
    return {"auc": round(wins / pairs, 4) if pairs else 0.0, "pairs": pairs, "notes": len(examples)}
