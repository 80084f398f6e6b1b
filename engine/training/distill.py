"""Distil the NER tagger into a shallower student: ``python -m engine train ner-student``.

The student is the teacher cut to a few of its layers (``--layers 0,2,4``: the teacher's embeddings, those
layers in that order, the teacher's token head), trained in two phases:

1. *distillation*: on the teacher's soft targets (:mod:`engine.training.distill_targets`) over unlabelled and
   labelled text (the MACCROBAT training reports, the MTSamples reports, PubMed articles), a KL divergence to the
   teacher's token distributions, plus cross-entropy on the gold labels where a text has them;
2. *fine-tuning*: on the MACCROBAT training reports' gold labels, keeping a share of the distillation loss.

The MACCROBAT dev split (the last ``--dev-count`` reports by id, the teacher's own dev split) is never trained
on; it picks the best checkpoint over both phases (strict entity F1), as for the teacher. The result is a model
folder like the teacher's: ``config.json`` (with ``num_hidden_layers``, the inference windows and
``cpu_quantization``), fp16 ``weights.safetensors``, ``metrics.json``, ``MODEL_CARD.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from engine.backbone import autocast, load_delta, resolve_device, save_delta
from engine.corpora.document import Document, split_documents
from engine.monitoring.reference import write_training_profile
from engine.ner import INT8, WEIGHTS_FILE, NerStage, encode, load_folder, make_windows
from engine.settings import Settings
from engine.training.distill_targets import SoftTargets, text_sha


@dataclass
class DistillConfig:
    """Hyper-parameters of one student run (all written to the student's ``config.json``)."""

    teacher: str = "assets/models/ner_accurate"
    layers: list[int] = field(default_factory=lambda: [0, 2, 4])
    targets: list[str] = field(default_factory=list)
    data: str = "brat:<data_dir>/maccrobat:maccrobat"
    dev_count: int = 20
    epochs: int = 2
    finetune_epochs: int = 8
    lr: float = 2e-4
    head_lr: float = 1e-3
    finetune_lr: float = 1e-4
    batch_size: int = 16
    train_window: int = 256
    train_overlap: int = 32
    kd_temperature: float = 1.0
    gold_weight: float = 1.0
    finetune_kd_weight: float = 0.5
    weight_decay: float = 0.01
    warmup: float = 0.06
    patience: int = 4
    eval_every: int = 0
    """Also evaluate on dev every this many distillation steps (0: once per epoch)."""
    window_tokens: int = 256
    window_overlap: int = 32
    cpu_quantization: str | None = INT8
    seed: int = 13
    device: str = "auto"
    threads: int | None = None
    max_minutes: float | None = None
    version: str | None = None


@dataclass(slots=True)
class Example:
    """One training window: token ids, the teacher's probabilities (or ``None``), gold label ids (or ``None``)."""

    ids: np.ndarray
    soft: np.ndarray | None
    gold: np.ndarray | None


def make_student(teacher: torch.nn.Module, layers: Sequence[int]) -> torch.nn.Module:
    """A copy of ``teacher`` that keeps only the encoder ``layers`` (in that order); fp32, same head.

    Raises:
        ValueError: No layers, or a layer index the teacher does not have.
    """
    encoder_layers = teacher.base_model.encoder.layer
    if not layers or any(not 0 <= i < len(encoder_layers) for i in layers):
        raise ValueError(f"layers {list(layers)} do not fit a teacher of {len(encoder_layers)} layers")
    student = copy.deepcopy(teacher).float()
    student.base_model.encoder.layer = torch.nn.ModuleList([copy.deepcopy(encoder_layers[i]) for i in layers])
    student.config = copy.deepcopy(teacher.config)
    student.config.num_hidden_layers = len(layers)
    student.base_model.config = student.config
    return student


def gold_labels(tokenizer: Any, documents: Sequence[Document]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{text sha: (token ids, BIO label ids)}`` of labelled documents."""
    from engine.training.ner_data import token_labels

    out = {}
    for doc in documents:
        enc = encode(tokenizer, doc.text)
        out[text_sha(doc.text)] = (enc.ids, token_labels(enc.offsets, doc.spans))
    return out


def make_examples(
    targets: Sequence[SoftTargets],
    gold: dict[str, tuple[np.ndarray, np.ndarray]],
    window: int,
    overlap: int,
    soft_only_gold: bool = False,
) -> list[Example]:
    """Training windows of every cached text (with the gold labels of those that have them), plus windows of
    gold texts that no cache holds.

    Args:
        soft_only_gold: Keep only texts with gold labels (the fine-tuning phase).

    Raises:
        ValueError: A cached text's token ids differ from its gold text's (another tokenizer or changed text).
    """
    seen: set[str] = set()
    rows: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = []
    for cache in targets:
        for sha, ids, probs in zip(cache.sha, cache.ids, cache.probs, strict=True):
            labels = None
            if sha in gold:
                gold_ids, labels = gold[sha]
                if not np.array_equal(gold_ids, ids):
                    raise ValueError(f"soft targets of text {sha} were made with other token ids")
                seen.add(sha)
            elif soft_only_gold:
                continue
            rows.append((ids, probs, labels))
    rows += [(ids, None, labels) for sha, (ids, labels) in gold.items() if sha not in seen]
    examples = []
    for ids, probs, labels in rows:
        for w in make_windows(0, len(ids), window - 2, overlap):
            examples.append(Example(
                ids[w.start : w.end],
                None if probs is None else probs[w.start : w.end],
                None if labels is None else labels[w.start : w.end],
            ))
    return examples


def collate(batch: Sequence[Example], special: tuple[int, int, int], n_labels: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest window with ``[CLS]``/``[SEP]``; soft targets and gold where given."""
    cls_id, sep_id, pad_id = special
    width = max(len(e.ids) for e in batch) + 2
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    soft = torch.zeros((len(batch), width, n_labels), dtype=torch.float32)
    soft_mask = torch.zeros((len(batch), width), dtype=torch.bool)
    gold = torch.full((len(batch), width), -100, dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.ids)
        input_ids[row, 0], input_ids[row, n + 1] = cls_id, sep_id
        input_ids[row, 1 : n + 1] = torch.from_numpy(e.ids.astype(np.int64))
        mask[row, : n + 2] = 1
        if e.soft is not None:
            soft[row, 1 : n + 1] = torch.from_numpy(e.soft.astype(np.float32))
            soft_mask[row, 1 : n + 1] = True
        if e.gold is not None:
            gold[row, 1 : n + 1] = torch.from_numpy(e.gold.astype(np.int64))
    return {"input_ids": input_ids, "attention_mask": mask, "soft": soft, "soft_mask": soft_mask, "gold": gold}


def distillation_loss(
    logits: torch.Tensor, batch: dict[str, torch.Tensor], temperature: float, kd_weight: float, gold_weight: float
) -> torch.Tensor:
    """``kd_weight * T^2 * KL(teacher_T || student_T)`` over tokens with soft targets, plus ``gold_weight *``
    cross-entropy over tokens with gold labels (each a mean over its own tokens)."""
    logits = logits.float()
    loss = logits.new_zeros(())
    sel = batch["soft_mask"]
    if kd_weight and bool(sel.any()):
        teacher_log = torch.log(batch["soft"][sel].clamp_min(1e-7))
        if temperature != 1.0:
            teacher_log = F.log_softmax(teacher_log / temperature, dim=-1)
        student_log = F.log_softmax(logits[sel] / temperature, dim=-1)
        kl = F.kl_div(student_log, teacher_log, log_target=True, reduction="batchmean")
        loss = loss + kd_weight * temperature**2 * kl
    if gold_weight and bool((batch["gold"] != -100).any()):
        loss = loss + gold_weight * F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["gold"].reshape(-1))
    return loss


def _batches(examples: Sequence[Example], size: int, rng: random.Random) -> list[list[Example]]:
    """Length-bucketed batches in random order (similar lengths together: little padding)."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].ids), rng.random()))
    groups = [[examples[i] for i in order[j : j + size]] for j in range(0, len(order), size)]
    rng.shuffle(groups)
    return groups


def _optimizer(model: torch.nn.Module, lr: float, head_lr: float, cfg: DistillConfig, steps: int):
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if "classifier" not in n and p.ndim > 1], "weight_decay": cfg.weight_decay,
         "lr": lr},
        {"params": [p for n, p in named if "classifier" not in n and p.ndim <= 1], "weight_decay": 0.0, "lr": lr},
        {"params": [p for n, p in named if "classifier" in n], "weight_decay": 0.0, "lr": head_lr},
    ]
    optimizer = torch.optim.AdamW(groups)
    warm = max(1, int(steps * cfg.warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / max(1, steps - warm))
    )
    return optimizer, scheduler


class Trainer:
    """Runs the phases on one student, evaluates on dev and keeps the best state (strict F1)."""

    def __init__(self, student: torch.nn.Module, stage_config: dict[str, Any], tokenizer: Any,
                 dev_docs: Sequence[Document], cfg: DistillConfig, device: torch.device) -> None:
        self.model, self.cfg, self.device, self.tokenizer = student.to(device), cfg, device, tokenizer
        self.stage_config, self.dev_docs = stage_config, dev_docs
        self.special = (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id or 0)
        self.history: list[dict[str, Any]] = []
        self.best_f1, self.best_state, self.since_best = -1.0, None, 0
        self.rng = random.Random(cfg.seed)
        self.started = time.monotonic()

    def evaluate(self, record: dict[str, Any]) -> None:
        """Dev F1 of the current weights (fp32, the inference windows) into ``record``; keep the best state."""
        from engine.evaluation.ner import evaluate_model

        stage = NerStage(self.model, self.tokenizer, self.stage_config, self.device,
                         window_tokens=self.cfg.window_tokens, window_overlap=self.cfg.window_overlap)
        record["dev_f1"] = evaluate_model(stage, self.dev_docs)["overall"]["f1"]
        record["minutes"] = round((time.monotonic() - self.started) / 60, 2)
        self.model.train()
        if record["dev_f1"] > self.best_f1:
            self.best_f1, self.since_best = record["dev_f1"], 0
            self.best_state = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
        else:
            self.since_best += 1
        self.history.append(record)
        sys.stderr.write(json.dumps(record) + "\n")

    def out_of_time(self) -> bool:
        limit = self.cfg.max_minutes
        return limit is not None and time.monotonic() - self.started > limit * 60

    def run_phase(self, phase: str, examples: Sequence[Example], epochs: int, lr: float,
                  kd_weight: float, gold_weight: float) -> None:
        """Train ``epochs`` over ``examples``; evaluate after each epoch (and every ``eval_every`` steps)."""
        if not examples or epochs <= 0:
            return
        steps = math.ceil(len(examples) / self.cfg.batch_size) * epochs
        optimizer, scheduler = _optimizer(self.model, lr, max(lr, self.cfg.head_lr * lr / self.cfg.lr), self.cfg,
                                          steps)
        n_labels = len(self.stage_config["id2label"])
        self.since_best = 0
        step = 0
        for epoch in range(1, epochs + 1):
            self.model.train()
            losses: list[float] = []
            for group in _batches(examples, self.cfg.batch_size, self.rng):
                batch = {k: v.to(self.device) for k, v in collate(group, self.special, n_labels).items()}
                with autocast(self.device):
                    logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                loss = distillation_loss(logits, batch, self.cfg.kd_temperature, kd_weight, gold_weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                step += 1
                if self.cfg.eval_every and step % self.cfg.eval_every == 0 and phase == "distill":
                    self.evaluate({"phase": phase, "epoch": epoch, "step": step,
                                   "loss": round(float(np.mean(losses[-self.cfg.eval_every:])), 4)})
                if step % 50 == 0:
                    sys.stderr.write(f"{phase} epoch {epoch} step {step}/{steps} loss {np.mean(losses[-50:]):.4f}\n")
            self.evaluate({"phase": phase, "epoch": epoch, "step": step, "loss": round(float(np.mean(losses)), 4)})
            if self.since_best >= self.cfg.patience or self.out_of_time():
                break

    def restore_best(self) -> None:
        if self.best_state is not None:
            own = dict(self.model.named_parameters())
            with torch.no_grad():
                for name, tensor in self.best_state.items():
                    own[name].copy_(tensor)


def student_config(teacher: NerStage, cfg: DistillConfig, version: str) -> dict[str, Any]:
    """The student folder's ``config.json`` (without the training record)."""
    base = {k: v for k, v in teacher.config.items() if k in {"backbone", "id2label", "label2id", "labels"}}
    return {
        "version": version,
        **base,
        "decoder": teacher.decoder,
        "score_aggregate": teacher.aggregate,
        "temperature": 1.0,
        "weights": WEIGHTS_FILE,
        "num_hidden_layers": len(cfg.layers),
        "window_tokens": cfg.window_tokens,
        "window_overlap": cfg.window_overlap,
        **({"cpu_quantization": cfg.cpu_quantization} if cfg.cpu_quantization else {}),
        "teacher": {"version": teacher.version, "layers": list(cfg.layers)},
    }


def distill(cfg: DistillConfig, train_docs: Sequence[Document], dev_docs: Sequence[Document], out: str | Path,
            settings: Settings | None = None) -> Path:
    """Train a student of ``cfg.teacher`` and write its model folder (see the module docstring).

    Returns:
        The model folder.
    """
    from engine.training.distill_card import finish_folder

    settings = settings or Settings()
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    teacher = load_folder(Path(cfg.teacher), settings, device="cpu", quantize=False)
    student = make_student(teacher.hf_model, cfg.layers)
    student.get_input_embeddings().weight.requires_grad_(False)  # the backbone's: keeps the delta small
    version = cfg.version or f"ner-student-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    config = student_config(teacher, cfg, version)
    trainer = Trainer(student, config, teacher.tokenizer, dev_docs, cfg, device)
    targets = [SoftTargets.load(Path(p)) for p in cfg.targets]
    gold = gold_labels(teacher.tokenizer, train_docs)
    dev_shas = {text_sha(d.text) for d in dev_docs}
    if any(sha in dev_shas for cache in targets for sha in cache.sha):
        raise ValueError("soft targets include dev documents: rebuild them without the dev split")
    examples = make_examples(targets, gold, cfg.train_window, cfg.train_overlap)
    sys.stderr.write(f"distillation: {len(examples)} windows, {sum(len(e.ids) for e in examples)} tokens\n")
    trainer.run_phase("distill", examples, cfg.epochs, cfg.lr, 1.0, cfg.gold_weight)
    if not trainer.out_of_time():
        tuned = make_examples(targets, gold, cfg.train_window, cfg.train_overlap, soft_only_gold=True)
        trainer.run_phase("finetune", tuned, cfg.finetune_epochs, cfg.finetune_lr, cfg.finetune_kd_weight, 1.0)
    trainer.restore_best()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    weights_bytes = save_delta(trainer.model.cpu(), folder / WEIGHTS_FILE)
    load_delta(trainer.model, folder / WEIGHTS_FILE)  # report what the stored fp16 weights do
    training = {**asdict(cfg), "n_train_docs": len(train_docs), "n_dev_docs": len(dev_docs),
                "dev_ids": [d.id for d in dev_docs], "n_examples": len(examples),
                "trained_at": datetime.now(UTC).isoformat(timespec="seconds"), "torch": torch.__version__}
    metrics = {"history": trainer.history, "weights_bytes": weights_bytes,
               "train_minutes": round((time.monotonic() - trainer.started) / 60, 2), "device": str(device)}
    finish_folder(folder, {**config, "training": training}, metrics, train_docs, dev_docs, settings)
    write_training_profile(folder, [d.text for d in (*train_docs, *dev_docs)], cfg.device)  # for monitoring drift
    return folder


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m engine train ner-student``."""
    d = DistillConfig()
    p = argparse.ArgumentParser(prog="python -m engine train ner-student", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--teacher", default=d.teacher, help="teacher NER model folder")
    p.add_argument("--targets", action="append", required=True, help="soft-target .npz files (repeatable; "
                   "build them with `python -m engine.training.distill_targets`)")
    p.add_argument("--layers", default=",".join(map(str, d.layers)), help="teacher layers the student keeps")
    p.add_argument("--data", help="labelled target corpus (default: brat:<data_dir>/maccrobat:maccrobat)")
    p.add_argument("--out", required=True, help="student model folder to write")
    for name in ("epochs", "finetune_epochs", "batch_size", "train_window", "train_overlap", "patience",
                 "eval_every", "window_tokens", "window_overlap", "seed", "dev_count"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name))
    for name in ("lr", "head_lr", "finetune_lr", "kd_temperature", "gold_weight", "finetune_kd_weight"):
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name))
    p.add_argument("--no-quantization", action="store_true", help="record fp32 CPU inference, not int8")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--max-minutes", type=float, help="stop after the epoch that passes this time")
    p.add_argument("--version", help="model version (default: ner-student-<UTC timestamp>)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m engine train ner-student``."""
    from engine.corpora.specs import load_data_specs

    args = build_parser().parse_args(argv)
    settings = Settings()
    if args.threads:
        torch.set_num_threads(args.threads)
    values = {k: v for k, v in vars(args).items() if k in DistillConfig.__dataclass_fields__}
    values["layers"] = [int(x) for x in args.layers.split(",") if x.strip()]
    values["cpu_quantization"] = None if args.no_quantization else INT8
    values["data"] = args.data or f"brat:{settings.data_dir / 'maccrobat'}:maccrobat"
    cfg = DistillConfig(**values)
    documents = load_data_specs([cfg.data])
    train_docs, dev_docs = split_documents(documents, dev_count=cfg.dev_count)
    folder = distill(cfg, train_docs, dev_docs, args.out, settings)
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    print(json.dumps({"out": str(folder), "dev_f1": metrics["dev"]["overall"]["f1"],
                      "dev_f1_fp32": metrics.get("dev_fp32", {}).get("overall", {}).get("f1"),
                      "minutes": metrics["train_minutes"]}))
    return 0
