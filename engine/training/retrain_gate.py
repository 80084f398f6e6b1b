"""The retraining run's settings, its promotion gate and the gate's report (:mod:`engine.training.retrain`).

The gate: the candidate is promoted only if, on every held-out set, its overall F1 and each per-type F1 (for types
with at least ``min_support`` gold spans there) are at least the active model's minus ``margin``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from engine.types import LABELS


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
