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
from tqdm import tqdm

from engine.backbone import autocast, load_tokenizer, resolve_backbone, resolve_device, save_delta
from engine.corpora.document import Document, split_documents
from engine.corpora.iob import read_iob
from engine.corpora.specs import load_data_specs, parse_data_spec
from engine.errors import EngineError, ErrorCode
from engine.evaluation.ner import Gazetteer, evaluate_model, fit_temperature
from engine.monitoring.reference import write_training_profile
from engine.ner import BIO_LABELS, WEIGHTS_FILE, NerStage, build_model, encode, make_windows
from engine.settings import PACKAGED_BACKBONE

SOURCES: dict[str, str] = {
    "maccrobat": "MACCROBAT2020 clinical case reports, CC BY 4.0 (Caufield 2019/2020, "
    "figshare doi:10.6084/m9.figshare.9764942)",
    "chia": "Chia clinical-trial eligibility criteria, CC BY 4.0 (Kury et al. 2020, "
    "figshare doi:10.6084/m9.figshare.11855817)",
    "bc5cdr": "BioCreative V CDR (via cambridgeltl/MTL-Bioinformatics-2016), redistributable for research",
    "ncbi-disease": "NCBI disease corpus (via cambridgeltl/MTL-Bioinformatics-2016), redistributable for research",
    "anatem": "AnatEM anatomy corpus (via cambridgeltl/MTL-Bioinformatics-2016), redistributable for research",
    "pubmed-summarization": "PubMed articles of the arXiv/PubMed summarisation dataset (Cohan et al. 2018), "
    "research use; unlabelled text for masked-LM adaptation only",
}


CARD_LIMITS = [
    "## Limits",
    "",
    "Trained on published case reports, not real EHR notes; expect lower accuracy on terse, abbreviated notes. "
    "Not a medical device.",
    "",
]
"""The closing section of every NER model card (teacher and distilled student)."""


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (all written to the model's ``config.json``)."""

    backbone: str = PACKAGED_BACKBONE
    backbone_name: str | None = None
    """Backbone name recorded in the model folder (default: ``backbone``), e.g. the packaged name when training
    ran on a copy of it."""
    epochs: int = 30
    lr: float = 1e-4
    head_lr: float | None = None
    batch_size: int = 16
    train_window: int = 256
    train_overlap: int = 64
    weight_decay: float = 0.01
    warmup: float = 0.1
    label_smoothing: float = 0.0
    dropout: float | None = None
    patience: int = 6
    seed: int = 13
    device: str = "auto"
    max_minutes: float | None = None
    pretrain_epochs: int = 0
    mlm_steps: int = 0
    mlm_lr: float = 1e-4
    mlm_text: list[str] = field(default_factory=list)
    experiments: str | None = None
    """A JSON file listing earlier runs (``name``, ``what``, ``dev_f1``) to record in metrics and the card."""
    dev_count: int | None = 20
    dev_fraction: float = 0.14
    decoder: str = "viterbi"
    version: str | None = None
    data: list[str] = field(default_factory=list)
    pretrain_data: list[str] = field(default_factory=list)


def _corpus_names(specs: Sequence[str], plain_paths: Sequence[str] = ()) -> list[str]:
    names = []
    parsed = [parse_data_spec(spec)[1:] for spec in specs] + [(Path(p), None) for p in plain_paths]
    for path, label_map in parsed:
        for name in SOURCES:
            if name in {label_map, path.name, path.parent.name}:
                names.append(name)
                break
    return sorted(set(names))


def token_labels(offsets: np.ndarray, spans: Sequence[tuple[int, int, str]]) -> np.ndarray:
    """BIO label id per token: a token overlapping a span is inside it, the first such token is ``B``."""
    label2id = {label: i for i, label in enumerate(BIO_LABELS)}
    labels = np.zeros(len(offsets), dtype=np.int64)
    if not len(offsets):
        return labels
    starts, ends = offsets[:, 0], offsets[:, 1]
    for s, e, lab in spans:
        idx = np.nonzero((starts < e) & (ends > s))[0]
        if idx.size:
            labels[idx] = label2id[f"I-{lab}"]
            labels[idx[0]] = label2id[f"B-{lab}"]
    return labels


def make_examples(tokenizer: Any, documents: Sequence[Document], window: int, overlap: int) -> list[tuple]:
    """Training windows ``(token ids, label ids)`` of all documents."""
    examples = []
    for doc in documents:
        enc = encode(tokenizer, doc.text)
        labels = token_labels(enc.offsets, doc.spans)
        for w in make_windows(0, len(enc), window - 2, overlap):
            examples.append((enc.ids[w.start : w.end], labels[w.start : w.end]))
    return examples


def batches(examples: list[tuple], batch_size: int, rng: random.Random) -> list[list[tuple]]:
    """Length-bucketed batches in random order: similar lengths together so padding stays small."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i][0]), rng.random()))
    groups = [[examples[i] for i in order[j : j + batch_size]] for j in range(0, len(order), batch_size)]
    rng.shuffle(groups)
    return groups


def collate(batch: list[tuple], cls_id: int, sep_id: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch dynamically to its longest window, adding ``[CLS]``/``[SEP]`` (labelled -100, ignored)."""
    width = max(len(ids) for ids, _ in batch) + 2
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for row, (ids, labs) in enumerate(batch):
        n = len(ids)
        input_ids[row, 0], input_ids[row, n + 1] = cls_id, sep_id
        input_ids[row, 1 : n + 1] = torch.from_numpy(np.asarray(ids))
        labels[row, 1 : n + 1] = torch.from_numpy(np.asarray(labs))
        mask[row, : n + 2] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def _trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}


def _freeze_word_embeddings(model: torch.nn.Module) -> None:
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


def _run_epochs(
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
                best_f1, best_state, since_best = record["dev_f1"], _trainable(model), 0
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


def read_mlm_texts(paths: Sequence[str]) -> list[str]:
    """Unlabelled texts for continued pre-training: ``.txt`` files, Cohan-style ``.jsonl`` articles
    (``article_text``), IOB ``.tsv`` files (tokens joined), or folders of these."""
    texts: list[str] = []
    for raw in paths:
        root = Path(raw).expanduser()
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for file in files:
            if file.suffix == ".txt":
                texts.append(file.read_text(encoding="utf-8", errors="replace"))
            elif file.suffix in {".jsonl", ".json"}:
                for line in file.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        texts.append(" ".join(json.loads(line).get("article_text", [])))
            elif file.suffix == ".tsv":
                texts += [d.text for d in read_iob(file, "identity")]
    return [t for t in texts if t.strip()]


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
    _freeze_word_embeddings(model)
    version = cfg.version or f"ner-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    stage_config = {
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
    history: list[dict[str, Any]] = []
    mlm_losses: list[float] = []
    if cfg.mlm_steps > 0 and cfg.mlm_text:
        mlm_texts = read_mlm_texts(cfg.mlm_text) + [d.text for d in train_docs]
        mlm_losses = continue_pretraining(model, backbone, tokenizer, mlm_texts, cfg, device)
    if pretrain_docs and cfg.pretrain_epochs > 0:
        examples = make_examples(tokenizer, pretrain_docs, cfg.train_window, cfg.train_overlap)
        hist, _, _ = _run_epochs(model, examples, cfg, cfg.pretrain_epochs, device, tokenizer, rng, [],
                                 stage_config, deadline, "pretrain")
        history += hist
    examples = make_examples(tokenizer, train_docs, cfg.train_window, cfg.train_overlap)
    hist, best_state, _ = _run_epochs(model, examples, cfg, cfg.epochs, device, tokenizer, rng, dev_docs,
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
        metrics["calibration"] = fit_temperature(stage, dev_docs)
        stage_config["temperature"] = stage.temperature = metrics["calibration"]["temperature"]
        metrics["dev"] = evaluate_model(stage, dev_docs)
        metrics["dev_baseline_dictionary"] = evaluate_model(Gazetteer(train_docs), dev_docs)
    if cfg.experiments:
        metrics["experiments"] = json.loads(Path(cfg.experiments).read_text(encoding="utf-8"))
    metrics["train_minutes"] = round((time.monotonic() - started) / 60, 2)
    metrics["device"] = str(device)
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
    config = {**stage_config, "training": training}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (folder / "MODEL_CARD.md").write_text(model_card(config, metrics), encoding="utf-8")
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
    metrics["calibration"] = fit_temperature(stage, dev_docs)
    config["temperature"] = stage.temperature = metrics["calibration"]["temperature"]
    config["score_aggregate"] = stage.aggregate
    metrics["dev"] = evaluate_model(stage, dev_docs)
    if train_docs:
        metrics["dev_baseline_dictionary"] = evaluate_model(Gazetteer(train_docs), dev_docs)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (folder / "MODEL_CARD.md").write_text(model_card(config, metrics), encoding="utf-8")
    return metrics


def model_card(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The model folder's ``MODEL_CARD.md``: what it is, data and licences, configuration and dev scores."""
    training = config["training"]
    corpora = _corpus_names([*training.get("data", []), *training.get("pretrain_data", [])],
                            training.get("mlm_text", []))
    lines = [
        f"# NER model {config['version']}",
        "",
        "Token classifier (BIO over DIAG, PROC, MED, TEST, ANAT) on the backbone "
        f"`{config['backbone']}`; this folder holds only the trained parameters (fp16), the backbone's word "
        "embeddings stay frozen. Decoding: BIO-constrained "
        f"{config.get('decoder', 'viterbi')} over merged overlapping windows; the entity score is the "
        f"{config.get('score_aggregate', 'min')} probability of its decoded token labels at softmax temperature "
        f"{config.get('temperature', 1.0)} (fitted on the dev notes to minimise calibration error).",
        "",
        "## Data and licences",
        "",
        *(f"- {SOURCES[c]}" for c in corpora),
        *(["- (unrecognised corpora: " + ", ".join(training.get("data", [])) + ")"] if not corpora else []),
        "",
        "MACCROBAT types map to product labels as in the data README (Disease_disorder and Sign_symptom -> DIAG, "
        "Therapeutic_procedure -> PROC, Medication -> MED, Diagnostic_procedure -> TEST, Biological_structure -> "
        "ANAT); discontinuous spans are skipped; overlapping spans keep the longer.",
        "",
        "## Training",
        "",
        f"- train documents: {training['n_train_docs']}, dev documents (held out, early stopping and scores): "
        f"{training['n_dev_docs']}, warm-up documents: {training['n_pretrain_docs']}",
        f"- epochs (max) {training['epochs']}, lr {training['lr']}, batch {training['batch_size']}, "
        f"train window {training['train_window']} tokens, label smoothing {training['label_smoothing']}, "
        f"seed {training['seed']}, device {metrics.get('device')}, {metrics.get('train_minutes')} min",
        f"- continued masked-LM pre-training: {training.get('mlm_steps', 0)} steps (lr {training.get('mlm_lr')}) on "
        f"{', '.join(training.get('mlm_text', [])) or 'nothing'} plus the training texts",
        f"- multi-corpus warm-up: {training.get('pretrain_epochs', 0)} epochs on "
        f"{', '.join(training.get('pretrain_data', [])) or 'nothing'}",
        "",
    ]
    experiments = metrics.get("experiments") or []
    if experiments:
        lines += [
            "## What was tried (dev strict F1, same dev split; the chosen run is this model)",
            "",
            "| run | what | dev F1 |",
            "|---|---|---|",
            *(f"| {e.get('name')} | {e.get('what', '')} | {e.get('dev_f1')} |" for e in experiments),
            "",
        ]
    if "dev" in metrics:
        dev, base = metrics["dev"], metrics["dev_baseline_dictionary"]
        lines += [
            "## Dev scores (strict character-span match)",
            "",
            "| | model P | model R | model F1 | dictionary F1 |",
            "|---|---|---|---|---|",
            f"| overall | {dev['overall']['precision']} | {dev['overall']['recall']} | {dev['overall']['f1']} | "
            f"{base['overall']['f1']} |",
            *(
                f"| {lab} | {dev['per_type'][lab]['precision']} | {dev['per_type'][lab]['recall']} | "
                f"{dev['per_type'][lab]['f1']} | {base['per_type'][lab]['f1']} |"
                for lab in dev["per_type"]
            ),
            "",
            f"Expected calibration error (ECE) of entity scores: {dev['ece']} at the fitted temperature "
            f"{config.get('temperature', 1.0)} (before fitting: {metrics.get('calibration', {}).get('ece_before')}; "
            f"two-fold estimate on unseen dev notes: {metrics.get('calibration', {}).get('ece_two_fold')}). "
            f"Errors: {dev['errors']}.",
            "",
        ]
    lines += [*(str(note) for note in metrics.get("notes", [])), ""] if metrics.get("notes") else []
    lines += CARD_LIMITS
    return "\n".join(lines)


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
