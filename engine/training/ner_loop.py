"""The NER training loop: one optimisation step, epochs with early stopping on dev F1, masked-LM adaptation."""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from engine.backbone import autocast
from engine.corpora.document import Document
from engine.errors import EngineError, ErrorCode
from engine.evaluation.ner import evaluate_model
from engine.ner import NerStage, encode
from engine.training.ner_config import TrainConfig
from engine.training.ner_data import batches, collate


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the parameters that are trained (the best-epoch snapshot)."""
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}


def freeze_word_embeddings(model: torch.nn.Module) -> None:
    """Keep the backbone's word embeddings as they are (not trained, not stored)."""
    # The word embeddings are most of MiniLM's size; keeping them as the backbone has them keeps the delta small.
    model.get_input_embeddings().weight.requires_grad_(False)


def train_step(
    model: torch.nn.Module,
    batch: list[tuple],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: torch.nn.Module,
    device: torch.device,
    special_ids: tuple[int, int, int],
) -> float:
    """One optimisation step on a batch of windows (shared by training and retraining); returns the loss.

    Args:
        special_ids: The tokenizer's ``(cls, sep, pad)`` token ids used to collate the windows.
    """
    tensors = {k: v.to(device) for k, v in collate(batch, *special_ids).items()}
    with autocast(device):
        logits = model(input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"]).logits
    # The loss in fp32 whatever autocast chose for the logits: bf16 cross-entropy is too coarse for small losses.
    loss = loss_fn(logits.float().reshape(-1, logits.shape[-1]), tensors["labels"].reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def run_epochs(
    model: torch.nn.Module,
    examples: list[tuple],
    cfg: TrainConfig,
    epochs: int,
    device: torch.device,
    tokenizer: Any,
    rng: random.Random,
    dev_docs: Sequence[Document],
    stage_config: dict[str, Any],
    deadline: float | None,
    phase: str,
) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor] | None, float]:
    """Train for up to ``epochs``; with dev documents keep the best state by dev F1 and stop early."""
    head_lr = cfg.head_lr or cfg.lr
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1 and "classifier" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1 and "classifier" not in n]
    head = [p for n, p in model.named_parameters() if p.requires_grad and "classifier" in n]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay, "lr": cfg.lr},
            {"params": no_decay, "weight_decay": 0.0, "lr": cfg.lr},
            {"params": head, "weight_decay": 0.0, "lr": head_lr},
        ],
        fused=device.type == "cuda",
    )
    steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
    total = max(1, steps_per_epoch * epochs)
    warmup = int(total * cfg.warmup)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100, label_smoothing=cfg.label_smoothing)
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id or 0
    history: list[dict[str, Any]] = []
    best_f1, best_state, since_best = -1.0, None, 0
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        bar = tqdm(batches(examples, cfg.batch_size, rng), desc=f"{phase} epoch {epoch}/{epochs}", file=sys.stderr,
                   leave=False)
        for batch in bar:
            losses.append(train_step(model, batch, optimizer, scheduler, loss_fn, device, (cls_id, sep_id, pad_id)))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        record: dict[str, Any] = {"phase": phase, "epoch": epoch, "loss": round(float(np.mean(losses)), 4)}
        if dev_docs:
            stage = NerStage(model, tokenizer, stage_config, device, batch_size=max(cfg.batch_size, 16))
            record["dev_f1"] = evaluate_model(stage, dev_docs)["overall"]["f1"]
            model.train()
            if record["dev_f1"] > best_f1:
                best_f1, best_state, since_best = record["dev_f1"], trainable_state(model), 0
            else:
                since_best += 1
        history.append(record)
        sys.stderr.write(json.dumps(record) + "\n")
        if dev_docs and since_best >= cfg.patience:
            break
        if deadline is not None and time.monotonic() > deadline:
            sys.stderr.write(f"stopping: --max-minutes {cfg.max_minutes} reached\n")
            break
    return history, best_state, best_f1


def continue_pretraining(
    model: torch.nn.Module, backbone: Path, tokenizer: Any, texts: Sequence[str], cfg: TrainConfig,
    device: torch.device,
) -> list[float]:
    """Domain-adaptive masked-LM steps on ``texts``; the adapted encoder replaces ``model``'s encoder.

    The word embeddings (tied to the MLM decoder) stay frozen, as in fine-tuning, so the stored delta stays small.

    Returns:
        The loss every 100 steps.
    """
    import transformers
    from transformers import AutoModelForMaskedLM

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the MLM head is new for a sentence-embedding checkpoint
    try:
        mlm = AutoModelForMaskedLM.from_pretrained(str(backbone), local_files_only=True).float().to(device)
    finally:
        transformers.logging.set_verbosity(verbosity)
    mlm.get_input_embeddings().weight.requires_grad_(False)
    block = cfg.train_window - 2
    ids = np.concatenate([encode(tokenizer, t).ids for t in texts])
    blocks = torch.from_numpy(ids[: len(ids) // block * block].reshape(-1, block))
    gen = torch.Generator().manual_seed(cfg.seed)
    params = [p for p in mlm.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.mlm_lr, weight_decay=0.01)
    warm = max(1, cfg.mlm_steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (cfg.mlm_steps - s) / (cfg.mlm_steps - warm + 1)))
    )
    special = torch.tensor([tokenizer.cls_token_id, tokenizer.sep_token_id])
    losses: list[float] = []
    mlm.train()
    batch_size = max(cfg.batch_size, 32)
    for step in tqdm(range(cfg.mlm_steps), desc="masked-LM", file=sys.stderr, leave=False):
        rows = torch.randint(0, blocks.shape[0], (batch_size,), generator=gen)
        body = blocks[rows]
        input_ids = torch.cat([special[0].expand(batch_size, 1), body, special[1].expand(batch_size, 1)], dim=1)
        labels = torch.full_like(input_ids, -100)
        chosen = torch.rand(body.shape, generator=gen) < 0.15
        labels[:, 1:-1][chosen] = body[chosen]
        roll = torch.rand(body.shape, generator=gen)
        masked = body.clone()
        masked[chosen & (roll < 0.8)] = tokenizer.mask_token_id
        swap = chosen & (roll >= 0.8) & (roll < 0.9)
        masked[swap] = torch.randint(0, len(tokenizer), (int(swap.sum()),), generator=gen)
        input_ids[:, 1:-1] = masked
        with autocast(device):
            out = mlm(input_ids=input_ids.to(device), labels=labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        if step % 100 == 0:
            losses.append(round(float(out.loss.detach()), 4))
            sys.stderr.write(json.dumps({"phase": "mlm", "step": step, "loss": losses[-1]}) + "\n")
    missing = model.base_model.load_state_dict(mlm.base_model.state_dict(), strict=False)
    if missing.missing_keys:
        raise EngineError(ErrorCode.MODEL_INVALID, f"MLM encoder does not fit: {missing.missing_keys[:3]}")
    del mlm
    return losses
