"""Retraining from reviewer feedback, behind a promotion gate: ``python -m engine retrain``.

One run:

1. turns the feedback store's decisions export into gold notes (:mod:`engine.training.feedback_data`), splits off
   the frozen test notes (a fixed hash-based 20 %, never trained on), and merges the rest with the base training
   data, de-duplicated by note hash;
2. fine-tunes the NER model of the *active* version (not the committed default, unless that is active) on it, on the
   GPU when there is one, and retrains the summarizer when there are new sentence labels and a summarizer trainer;
   stages that were not retrained are hard-linked (or copied) from the parent, so every version is a full model set;
3. scores the active model and the candidate on the same held-out sets: the frozen feedback test split and the base
   dev set (strict span F1, overall and per type);
4. the gate: the candidate is promoted only if, on every set, its overall F1 and each per-type F1 (for types with at
   least ``min_support`` gold spans there) are at least the active model's minus ``margin``;
5. registers the candidate in the registry (:mod:`engine.versions`), ``promoted`` and active, or ``refused``, with
   its parent, data hash, metrics and training configuration; the gate report is written as ``report.json`` and
   ``REPORT.txt`` in the version folder (and to ``--report``).

The engine never imports ``db``: the app (or a person) exports decisions first, e.g. with ``db.export``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine import versions
from engine.audit.gate import retrain_activation
from engine.corpora.document import Document, split_documents
from engine.errors import EngineError, ErrorCode
from engine.monitoring.reference import write_training_profile
from engine.settings import Settings
from engine.training.feedback_data import (
    SentenceExample,
    build_retrain_data,
    data_hash,
    load_feedback,
    load_sentence_labels,
    note_hash,
)
from engine.training.schedule import linear_warmup_decay
from engine.types import LABELS

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None  # type: ignore[assignment]

Progress = Callable[[float, str], None]
"""``progress(fraction in [0, 1], message)``: called as the run advances (CLI: a tqdm bar; app: a progress bar)."""

RETRAIN_LOCK = "retrain.lock"


@dataclass
class RetrainConfig:
    """Settings of one retraining run (all recorded in the version's ``training_config``).

    Attributes:
        epochs: Passes over the merged training data (fixed: no checkpoint is picked on the gate's sets).
        lr: Peak learning rate of the encoder (linear warm-up then decay).
        head_lr: Learning rate of the classification head (default ``lr``).
        batch_size: Training windows per step.
        train_window: Tokens per training window.
        feedback_weight: Times each feedback training note is repeated per epoch (reviewer gold is scarce).
        max_base_docs: Train on at most this many base documents (a deterministic sample), ``None`` for all.
        base_dev_count: Documents of the base data held out as its dev set; ``None`` reuses the parent model's
            recorded dev split (its ``dev_ids``, else its ``dev_count``), so the dev set is one it never trained on.
        margin: How much lower than the active model's F1 the candidate may score and still be promoted.
        min_support: Per-type gate checks only for types with at least this many gold spans in a set.
        pending: What an undecided model span becomes: ``keep`` or ``drop`` (see feedback_data).
        device: ``auto`` (GPU when there is one), ``cpu`` or ``cuda``.
        seed: Random seed (data order, dropout).
        activate: Make a promoted candidate the active version.
    """

    epochs: int = 3
    lr: float = 5e-5
    head_lr: float | None = None
    batch_size: int = 16
    train_window: int = 256
    feedback_weight: int = 3
    max_base_docs: int | None = None
    base_dev_count: int | None = None
    margin: float = 0.01
    min_support: int = 5
    pending: str = "keep"
    device: str = "auto"
    seed: int = 13
    activate: bool = True


@dataclass
class GateCheck:
    """One comparison of the gate: a metric of the candidate against the active model on one evaluation set."""

    eval_set: str
    metric: str
    active: float
    candidate: float
    support: int
    gated: bool
    passed: bool

    @property
    def delta(self) -> float:
        """Candidate minus active."""
        return round(self.candidate - self.active, 4)


@dataclass
class RetrainReport:
    """What a retraining run did and why the gate decided as it did.

    Attributes:
        version: The candidate's registered version id.
        parent: The version it was fine-tuned from (the active one at the start).
        promoted: Whether the gate let it through.
        activated: Whether it is now the active version.
        reasons: Sentences explaining the decision (each failing check, or why it passed).
        checks: Every gate comparison.
        metrics: ``{"active": {set: scores}, "candidate": {set: scores}}``.
        data: Counts of notes and decisions used.
        data_hash: Hash of the training data.
        training_config: The run's configuration, device included.
        stages: Per stage, ``trained`` or ``copied from <parent>``.
        model_dir: The candidate's model-set folder.
        seconds: Wall time of the run.
    """

    version: str
    parent: str
    promoted: bool
    activated: bool
    reasons: list[str]
    checks: list[GateCheck]
    metrics: dict[str, Any]
    data: dict[str, Any]
    data_hash: str
    training_config: dict[str, Any]
    stages: dict[str, str]
    model_dir: str
    seconds: float = 0.0
    margin: float = 0.0
    min_support: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``report.json``)."""
        out = asdict(self)
        out["checks"] = [{**asdict(c), "delta": c.delta} for c in self.checks]
        out["decision"] = "promoted" if self.promoted else "refused"
        return out

    def to_text(self) -> str:
        """The human-readable report (``REPORT.txt``)."""
        verdict = "PROMOTED" if self.promoted else "REFUSED"
        state = "now active" if self.activated else "not active"
        d = self.data
        lines = [
            f"Retraining {self.version} from {self.parent}: {verdict} ({state})",
            "",
            f"Data: {d.get('feedback_notes', 0)} reviewed notes ({d.get('feedback_train_notes', 0)} trained on, "
            f"{d.get('feedback_test_notes', 0)} in the frozen test split), {d.get('base_train_docs', 0)} base "
            f"training documents, {d.get('base_dev_docs', 0)} base dev documents; {d.get('train_docs', 0)} distinct "
            "training notes after de-duplication by note hash.",
            "Decisions: " + (", ".join(f"{k} {v}" for k, v in sorted(d.get("decisions", {}).items())) or "none"),
            f"Summary labels: {d.get('sentence_notes_train', 0)} reviewed summaries trained on, "
            f"{d.get('sentence_notes_test', 0)} in the frozen test split.",
            "Stages: " + ", ".join(f"{k} {v}" for k, v in self.stages.items()),
            "",
            f"Gate: on every held-out set, the candidate's strict F1 must be at least the active model's minus "
            f"{self.margin:.3f}, overall and for each type with at least {self.min_support} gold spans (support: gold "
            "spans, or kept/dropped sentence pairs for the summarizer).",
            "",
            f"{'set':<16}{'metric':<16}{'active':>8}{'candidate':>11}{'delta':>9}{'support':>8}  result",
        ]
        for c in self.checks:
            result = ("ok" if c.passed else "WORSE") if c.gated else "not gated (support)"
            lines.append(
                f"{c.eval_set:<16}{c.metric:<16}{c.active:>8.4f}{c.candidate:>11.4f}{c.delta:>+9.4f}{c.support:>8}  "
                f"{result}"
            )
        lines += ["", "Decision:"] + [f"- {r}" for r in self.reasons] + [""]
        return "\n".join(lines)


def _f1_metrics(scores: dict[str, Any]) -> Iterator[tuple[str, float, int]]:
    overall = scores["overall"]
    yield "overall F1", float(overall["f1"]), int(overall["tp"] + overall["fn"])
    for label in LABELS:
        typed = scores["per_type"].get(label)
        if typed is not None:
            yield f"{label} F1", float(typed["f1"]), int(typed["tp"] + typed["fn"])


def gate(
    active: dict[str, dict[str, Any]],
    candidate: dict[str, dict[str, Any]],
    margin: float,
    min_support: int,
) -> tuple[bool, list[GateCheck], list[str]]:
    """Decide whether the candidate may replace the active model.

    Args:
        active: Per evaluation set, :func:`engine.evaluation.ner.score` results of the active model.
        candidate: The same for the candidate, on the same sets.
        margin: Allowed drop in F1 (absolute).
        min_support: Per-type checks apply to types with at least this many gold spans in the set; the overall
            F1 is always checked.

    Returns:
        ``(promote, checks, reasons)``.
    """
    checks: list[GateCheck] = []
    for eval_set in active:
        if active[eval_set].get("n_gold", 0) == 0:
            continue
        cand = dict((m, (v, s)) for m, v, s in _f1_metrics(candidate[eval_set]))
        for metric, value, support in _f1_metrics(active[eval_set]):
            cand_value = cand[metric][0]
            gated = metric == "overall F1" or support >= min_support
            passed = cand_value >= value - margin - 1e-9
            checks.append(GateCheck(eval_set, metric, value, cand_value, support, gated, passed or not gated))
    gated = [c for c in checks if c.gated]
    failed = [c for c in gated if not c.passed]
    if not gated:
        return False, checks, ["refused: no held-out set has gold entities, so the candidate cannot be judged"]
    if failed:
        reasons = [
            f"refused: {c.eval_set} {c.metric} fell {-c.delta:.4f} ({c.active:.4f} -> {c.candidate:.4f}, "
            f"{c.support} gold spans), more than the margin {margin:.4f}"
            for c in failed
        ]
        return False, checks, reasons
    sets = sorted({c.eval_set for c in gated})
    gains = [c for c in gated if c.metric == "overall F1"]
    reasons = [
        f"promoted: none of {len(gated)} gated metrics on {', '.join(sets)} fell more than {margin:.4f} below the "
        "active model",
        *(f"{c.eval_set} overall F1 {c.active:.4f} -> {c.candidate:.4f} ({c.delta:+.4f})" for c in gains),
    ]
    return True, checks, reasons


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
    from engine.training.ner import batches, make_examples, train_step

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
    config = dict(parent_config)
    config["version"] = version
    config["weights"] = WEIGHTS_FILE
    config["parent_version"] = str(parent_config.get("version", "unknown"))
    config["retraining"] = {**asdict(cfg), **facts, "n_train_docs": len(train_docs)}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    card = init_folder / "MODEL_CARD.md"
    parent_card = card.read_text(encoding="utf-8") if card.is_file() else ""
    (out / "MODEL_CARD.md").write_text(
        f"# NER model {version}\n\nFine-tuned from `{config['parent_version']}` on reviewer feedback "
        f"({len(train_docs)} training notes: base training data plus reviewed notes) for {cfg.epochs} epochs, "
        f"lr {cfg.lr}, on {device}. Promotion is decided by the retraining gate; see the version's REPORT.txt.\n\n"
        f"## Parent model card\n\n{parent_card}",
        encoding="utf-8",
    )
    write_training_profile(out, [d.text for d in train_docs], cfg.device)  # the reference monitoring compares with
    return facts


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


# ----- the run ------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _retrain_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / RETRAIN_LOCK, "a+") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise EngineError(ErrorCode.BAD_INPUT, "another retraining run is in progress; wait for it") from exc
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def load_base_data(
    spec: str | None, settings: Settings, parent_ner: Path, dev_count: int | None = None
) -> tuple[list[Document], list[Document]]:
    """Base training documents and the base dev set.

    Args:
        spec: ``none``; or ``FORMAT:PATH[:LABELMAP]`` (as ``train ner --data``) split like the NER trainer does
            (its recorded ``dev_count``), or ``None`` for MACCROBAT in the data folder when it exists.
        settings: For the data folder.
        parent_ner: The parent NER folder (its recorded dev split is reused so the dev set stays unseen).
        dev_count: Hold out this many documents (the last by sorted id) instead of the parent's split.
    """
    from engine.corpora.specs import load_data_specs
    from engine.ner import read_config

    if spec == "none":
        return [], []
    if spec is None:
        maccrobat = Path(settings.data_dir) / "maccrobat"
        if not maccrobat.is_dir():
            return [], []
        spec = f"brat:{maccrobat}:maccrobat"
    training = read_config(parent_ner).get("training", {})
    documents = load_data_specs([spec])
    if dev_count is not None:
        return split_documents(documents, dev_count=dev_count)
    # The exact documents the parent was early-stopped on when they are in this corpus, else its split rule.
    dev_ids = set(training.get("dev_ids") or [])
    if dev_ids and dev_ids <= {d.id for d in documents}:
        return [d for d in documents if d.id not in dev_ids], [d for d in documents if d.id in dev_ids]
    return split_documents(
        documents, dev_count=training.get("dev_count", 20), dev_fraction=training.get("dev_fraction") or 0.14
    )


def _sample(docs: list[Document], limit: int | None, seed: int) -> list[Document]:
    if limit is None or len(docs) <= limit:
        return docs
    return random.Random(seed).sample(docs, limit)


def retrain(
    decisions: str | Path,
    *,
    summary_labels: str | Path | None = None,
    base_data: str | None = None,
    config: RetrainConfig | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
    report_path: str | Path | None = None,
) -> RetrainReport:
    """Retrain from a decisions export, gate the candidate, register it, and promote it if it passes.

    Args:
        decisions: The feedback store's JSONL export of analyses with decisions.
        summary_labels: Optional JSONL export of summary sentence keep/drop decisions.
        base_data: Base training data spec (see :func:`load_base_data`).
        config: Run settings (epochs, learning rate, margin, device...).
        settings: Engine settings (registry folder, data folder, windowing).
        progress: Optional ``progress(fraction, message)`` callback.
        report_path: Also write ``report.json`` here (and the text report next to it, ``.txt``).

    Returns:
        The :class:`RetrainReport` (also stored in the version folder).

    Raises:
        EngineError: ``DATA_NOT_FOUND`` when there is nothing to train on; ``BAD_INPUT`` for bad exports or when
            another run holds the retraining lock.
    """
    cfg = config or RetrainConfig()
    settings = (settings or Settings()).with_overrides(device=cfg.device)
    started = time.monotonic()

    def tell(fraction: float, message: str) -> None:
        if progress:
            progress(min(max(fraction, 0.0), 1.0), message)

    root = versions.registry_dir(settings)
    with _retrain_lock(root):
        tell(0.0, "reading decisions")
        parent = versions.active_version(settings)
        parent_dir = versions.version_model_dir(settings, parent)
        feedback = load_feedback(decisions, pending=cfg.pending)
        sentences = load_sentence_labels(summary_labels) if summary_labels else []
        if not any(n.split == "train" for n in feedback) and not any(s.split == "train" for s in sentences):
            raise EngineError(
                ErrorCode.DATA_NOT_FOUND,
                f"{decisions}: no reviewed note outside the frozen test split; nothing to learn from yet",
            )
        versions.check_model_set(parent_dir, parent)
        base_train, base_dev = load_base_data(base_data, settings, parent_dir / "ner", cfg.base_dev_count)
        base_train = _sample(base_train, cfg.max_base_docs, cfg.seed)
        data = build_retrain_data(feedback, base_train, base_dev, sentences)
        feedback_hashes = {n.note_hash for n in feedback if n.split == "train"}
        train_docs = [
            doc for doc in data.train for _ in range(cfg.feedback_weight if note_hash(doc.text) in feedback_hashes
                                                     else 1)
        ]
        sentences_train, unusable = _sentence_examples(data.sentences_train)
        sentences_test, _ = _sentence_examples(data.sentences_test)
        # Only notes with both a kept and a dropped sentence can tell a better summarizer from a worse one.
        sentences_test = [ex for ex in sentences_test if {keep for _, _, keep in ex.labels} == {0, 1}]
        data.stats["sentence_labels_not_sentences"] = unusable
        train_summarizer = bool(sentences_train and sentences_test)
        if not feedback_hashes and not train_summarizer:
            raise EngineError(
                ErrorCode.DATA_NOT_FOUND,
                f"{summary_labels}: summary labels alone, but none in the frozen test split to judge a retrained "
                "summarizer on; nothing was retrained",
            )
        dhash = data_hash(data.train if feedback_hashes else [], sentences_train if train_summarizer else [])
        version = versions.new_version_id(settings, dhash)
        staging = root / "versions" / f".staging-{version}-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        try:
            facts: dict[str, Any] | None = None
            summarizer_facts: dict[str, Any] | None = None
            if feedback_hashes:
                tell(0.02, f"fine-tuning NER from {parent} on {len(data.train)} notes")
                facts = fine_tune_ner(
                    parent_dir / "ner", train_docs, staging / "ner", cfg, version,
                    progress=lambda f, m: tell(0.02 + 0.7 * f, m),
                )
                stages = {"ner": "trained"}
            else:  # only summary labels: the NER model stays as it is
                versions.link_or_copy_tree(parent_dir / "ner", staging / "ner")
                stages = {"ner": f"copied from {parent} (no reviewed entities)"}
            if train_summarizer:
                tell(0.72, f"fine-tuning the summarizer on {len(sentences_train)} reviewed summaries")
                summarizer_facts = retrain_summarizer(
                    parent_dir / "summarizer", sentences_train, staging / "summarizer", cfg, version, parent
                )
                stages["summarizer"] = "trained"
            else:
                versions.link_or_copy_tree(parent_dir / "summarizer", staging / "summarizer")
                why = "no new sentence labels" if not sentences_train else "no frozen test labels to judge it on"
                stages["summarizer"] = f"copied from {parent} ({why})"

            active_metrics: dict[str, Any] = {}
            candidate_metrics: dict[str, Any] = {}
            checks: list[GateCheck] = []
            reasons: list[str] = []
            promote = True
            if facts is not None:
                eval_sets = {"feedback_test": data.feedback_test, "base_dev": data.base_dev}
                tell(0.8, "scoring the active NER model on the held-out sets")
                active_metrics = evaluate_ner(parent_dir / "ner", eval_sets, settings)
                tell(0.88, "scoring the candidate NER model on the held-out sets")
                candidate_metrics = evaluate_ner(staging / "ner", eval_sets, settings)
                promote, checks, reasons = gate(active_metrics, candidate_metrics, cfg.margin, cfg.min_support)
            if summarizer_facts is not None:
                tell(0.94, "scoring the summarizers on the frozen test summaries")
                before = evaluate_summarizer(parent_dir / "summarizer", sentences_test, settings)
                after = evaluate_summarizer(staging / "summarizer", sentences_test, settings)
                active_metrics["summary_test"], candidate_metrics["summary_test"] = before, after
                check = GateCheck("summary_test", "keep/drop AUC", before["auc"], after["auc"], before["pairs"],
                                  gated=True, passed=after["auc"] >= before["auc"] - cfg.margin - 1e-9)
                checks.append(check)
                line = (f"summary_test keep/drop AUC {check.active:.4f} -> {check.candidate:.4f} "
                        f"({check.delta:+.4f}, {check.support} pairs)")
                if not check.passed:
                    promote = False
                    reasons = [r for r in reasons if not r.startswith("promoted")]
                    reasons.append(f"refused: {line}: fell more than the margin {cfg.margin:.4f}")
                elif facts is None:
                    reasons = [f"promoted: {line}, within the margin {cfg.margin:.4f}"]
                else:
                    reasons.append(line)

            final = root / "versions" / version
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

        training_config = {**asdict(cfg), "ner": facts, "summarizer": summarizer_facts,
                           "base_data": base_data or "maccrobat (default)", "decisions": str(decisions),
                           "summary_labels": str(summary_labels) if summary_labels else None}
        metrics = {"active": active_metrics, "candidate": candidate_metrics}
        activate = promote and cfg.activate
        if activate and versions.active_version(settings) != parent:
            activate = False
            reasons.append("not activated: the active version changed during retraining; activate it by hand")
        activate = retrain_activation(final, version, activate, reasons)  # the audit gate (engine.audit.gate)
        report = RetrainReport(
            version=version, parent=parent, promoted=promote, activated=activate, reasons=reasons, checks=checks,
            metrics=metrics, data=data.stats, data_hash=dhash, training_config=training_config, stages=stages,
            model_dir=str(final), seconds=round(time.monotonic() - started, 1), margin=cfg.margin,
            min_support=cfg.min_support,
        )
        (final / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        (final / "REPORT.txt").write_text(report.to_text(), encoding="utf-8")
        if facts is not None:  # only into a folder this run wrote: copied stages are hard links to the parent's
            (final / "ner" / "metrics.json").write_text(
                json.dumps({"gate": candidate_metrics, "training": facts}, indent=2) + "\n", encoding="utf-8"
            )
        info = versions.VersionInfo(
            id=version, parent=parent, created=versions.utc_now(), path=f"versions/{version}",
            status="promoted" if promote else "refused", data_hash=dhash,
            metrics={name: {"overall": s["overall"], "per_type": s["per_type"]} if "overall" in s else s
                     for name, s in candidate_metrics.items()},
            training_config=training_config,
            gate={"promote": promote, "margin": cfg.margin, "reasons": reasons,
                  "summary": ("promoted" if promote else "refused") + ": " + reasons[0].split(": ", 1)[-1][:80]},
            stages=stages,
        )
        versions.register_version(settings, info, activate=activate)
        if report_path:
            target = Path(report_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
            target.with_suffix(".txt").write_text(report.to_text(), encoding="utf-8")
        tell(1.0, f"{version} {'promoted' if promote else 'refused'}")
        return report


class ProgressFile:
    """Writes progress to a JSON file (atomically) so another process, such as the app, can show it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, fraction: float, message: str, **extra: Any) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fraction": round(fraction, 4), "message": message, "time": time.time(),
                                   "pid": os.getpid(), **extra}), encoding="utf-8")
        os.replace(tmp, self.path)


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m engine retrain``."""
    d = RetrainConfig()
    p = argparse.ArgumentParser(prog="python -m engine retrain", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--decisions", required=True, help="JSONL export of analyses with reviewer decisions")
    p.add_argument("--summary-labels", help="JSONL export of summary sentence keep/drop decisions")
    p.add_argument("--base-data", help="base training data FORMAT:PATH[:LABELMAP], or 'none' "
                   "(default: MACCROBAT in the data folder when present)")
    p.add_argument("--max-base-docs", type=int, help="train on at most this many base documents")
    p.add_argument("--base-dev-count", type=int, help="base documents held out as the dev set "
                   "(default: the parent model's recorded dev split)")
    p.add_argument("--margin", type=float, default=d.margin, help="allowed F1 drop for promotion")
    p.add_argument("--min-support", type=int, default=d.min_support, help="gold spans a type needs to be gated")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--feedback-weight", type=int, default=d.feedback_weight,
                   help="repeats of each reviewed note per epoch")
    p.add_argument("--pending", choices=["keep", "drop"], default=d.pending,
                   help="undecided model spans: keep them as gold or train them as outside")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-activate", action="store_true", help="register a promoted candidate without activating")
    p.add_argument("--registry-dir", help="model registry folder (default: Settings.registry_dir)")
    p.add_argument("--report", help="also write the gate report here (JSON; text next to it)")
    p.add_argument("--progress-file", help="write progress as JSON here (for the app)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m engine retrain``: exit 0 when promoted, 3 when the gate refused."""
    from tqdm import tqdm

    args = build_parser().parse_args(argv)
    cfg = RetrainConfig(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, feedback_weight=args.feedback_weight,
        max_base_docs=args.max_base_docs, base_dev_count=args.base_dev_count, margin=args.margin,
        min_support=args.min_support, pending=args.pending,
        device=args.device, seed=args.seed, activate=not args.no_activate,
    )
    settings = Settings().with_overrides(registry_dir=args.registry_dir)
    writer = ProgressFile(args.progress_file) if args.progress_file else None
    bar = tqdm(total=1000, desc="retrain", file=sys.stderr, bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def progress(fraction: float, message: str) -> None:
        bar.n = int(fraction * 1000)
        bar.set_postfix_str(message[:60])
        bar.refresh()
        if writer:
            writer(fraction, message, state="running")

    try:
        report = retrain(args.decisions, summary_labels=args.summary_labels, base_data=args.base_data, config=cfg,
                         settings=settings, progress=progress, report_path=args.report)
    except Exception as exc:  # any failure, not only coded ones, must reach the app's page with its text
        bar.close()
        if writer:
            text = str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
            writer(1.0, text, state="failed")
        raise
    bar.close()
    if writer:
        writer(1.0, report.reasons[0], state="done", version=report.version, promoted=report.promoted)
    sys.stderr.write(report.to_text())
    print(json.dumps({"version": report.version, "parent": report.parent, "promoted": report.promoted,
                      "activated": report.activated, "model_dir": report.model_dir, "reasons": report.reasons}))
    return 0 if report.promoted else 3
