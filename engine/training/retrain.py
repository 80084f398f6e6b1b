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

This module is the run (lock, orchestration, registry) and the CLI; the settings, gate and report are
:mod:`engine.training.retrain_gate`, the stages' training and scoring :mod:`engine.training.retrain_stages`, the base
corpus :mod:`engine.training.retrain_data`. Their public names stay importable from here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import versions
from engine.audit.gate import retrain_activation
from engine.corpora.document import Document
from engine.errors import EngineError, ErrorCode
from engine.settings import Settings
from engine.training.feedback_data import (
    RetrainData,
    SentenceExample,
    build_retrain_data,
    data_hash,
    load_feedback,
    load_sentence_labels,
    note_hash,
)
from engine.training.retrain_data import _sample, default_base_spec, load_base_data
from engine.training.retrain_gate import GateCheck, RetrainConfig, RetrainReport, gate
from engine.training.retrain_stages import (
    Progress,
    _sentence_examples,
    evaluate_ner,
    evaluate_summarizer,
    fine_tune_ner,
    retrain_summarizer,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "GateCheck", "Progress", "ProgressFile", "RetrainConfig", "RetrainReport", "build_parser", "evaluate_ner",
    "evaluate_summarizer", "fine_tune_ner", "gate", "load_base_data", "main", "retrain", "retrain_summarizer",
]

RETRAIN_LOCK = "retrain.lock"


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


@dataclass
class _Prepared:
    """The training and held-out data of one run, ready for the stages."""

    data: RetrainData
    train_docs: list[Document]
    feedback_hashes: set[str]
    sentences_train: list[SentenceExample]
    sentences_test: list[SentenceExample]
    train_summarizer: bool
    dhash: str


@dataclass
class _Judged:
    """What the gate compared and decided."""

    active: dict[str, Any] = field(default_factory=dict)
    candidate: dict[str, Any] = field(default_factory=dict)
    checks: list[GateCheck] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    promote: bool = True


def _prepare(
    decisions: str | Path, summary_labels: str | Path | None, base_data: str | None, cfg: RetrainConfig,
    settings: Settings, parent: str, parent_dir: Path,
) -> _Prepared:
    """Read the exports, merge them with the base corpus, and refuse a run with nothing to learn from."""
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
    return _Prepared(data, train_docs, feedback_hashes, sentences_train, sentences_test, train_summarizer, dhash)


def _train(
    prep: _Prepared, parent: str, parent_dir: Path, staging: Path, cfg: RetrainConfig, version: str, tell: Progress
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, str]]:
    """Train the stages that have new labels into ``staging``; link the others from the parent.

    Returns:
        ``(NER facts or None, summarizer facts or None, stages)``.
    """
    facts: dict[str, Any] | None = None
    summarizer_facts: dict[str, Any] | None = None
    if prep.feedback_hashes:
        tell(0.02, f"fine-tuning NER from {parent} on {len(prep.data.train)} notes")
        facts = fine_tune_ner(
            parent_dir / "ner", prep.train_docs, staging / "ner", cfg, version,
            progress=lambda f, m: tell(0.02 + 0.7 * f, m),
        )
        stages = {"ner": "trained"}
    else:  # only summary labels: the NER model stays as it is
        versions.link_or_copy_tree(parent_dir / "ner", staging / "ner")
        stages = {"ner": f"copied from {parent} (no reviewed entities)"}
    if prep.train_summarizer:
        tell(0.72, f"fine-tuning the summarizer on {len(prep.sentences_train)} reviewed summaries")
        summarizer_facts = retrain_summarizer(
            parent_dir / "summarizer", prep.sentences_train, staging / "summarizer", cfg, version, parent
        )
        stages["summarizer"] = "trained"
    else:
        versions.link_or_copy_tree(parent_dir / "summarizer", staging / "summarizer")
        why = "no new sentence labels" if not prep.sentences_train else "no frozen test labels to judge it on"
        stages["summarizer"] = f"copied from {parent} ({why})"
    return facts, summarizer_facts, stages


def _judge(
    prep: _Prepared, parent_dir: Path, staging: Path, trained: tuple[bool, bool], cfg: RetrainConfig,
    settings: Settings, tell: Progress,
) -> _Judged:
    """Score the active model and the candidate on the same held-out sets and apply the gate."""
    ner_trained, summarizer_trained = trained
    judged = _Judged()
    if ner_trained:
        eval_sets = {"feedback_test": prep.data.feedback_test, "base_dev": prep.data.base_dev}
        tell(0.8, "scoring the active NER model on the held-out sets")
        judged.active = evaluate_ner(parent_dir / "ner", eval_sets, settings)
        tell(0.88, "scoring the candidate NER model on the held-out sets")
        judged.candidate = evaluate_ner(staging / "ner", eval_sets, settings)
        judged.promote, judged.checks, judged.reasons = gate(judged.active, judged.candidate, cfg.margin,
                                                             cfg.min_support)
    if summarizer_trained:
        tell(0.94, "scoring the summarizers on the frozen test summaries")
        before = evaluate_summarizer(parent_dir / "summarizer", prep.sentences_test, settings)
        after = evaluate_summarizer(staging / "summarizer", prep.sentences_test, settings)
        judged.active["summary_test"], judged.candidate["summary_test"] = before, after
        check = GateCheck("summary_test", "keep/drop AUC", before["auc"], after["auc"], before["pairs"],
                          gated=True, passed=after["auc"] >= before["auc"] - cfg.margin - 1e-9)
        judged.checks.append(check)
        line = (f"summary_test keep/drop AUC {check.active:.4f} -> {check.candidate:.4f} "
                f"({check.delta:+.4f}, {check.support} pairs)")
        if not check.passed:
            judged.promote = False
            judged.reasons = [r for r in judged.reasons if not r.startswith("promoted")]
            judged.reasons.append(f"refused: {line}: fell more than the margin {cfg.margin:.4f}")
        elif not ner_trained:
            judged.reasons = [f"promoted: {line}, within the margin {cfg.margin:.4f}"]
        else:
            judged.reasons.append(line)
    return judged


def _record(report: RetrainReport, facts: dict[str, Any] | None, settings: Settings,
            report_path: str | Path | None) -> None:
    """Write the report into the version folder (and ``report_path``) and register the version."""
    final = Path(report.model_dir)
    (final / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    (final / "REPORT.txt").write_text(report.to_text(), encoding="utf-8")
    if facts is not None:  # only into a folder this run wrote: copied stages are hard links to the parent's
        (final / "ner" / "metrics.json").write_text(
            json.dumps({"gate": report.metrics["candidate"], "training": facts}, indent=2) + "\n", encoding="utf-8"
        )
    promote, reasons = report.promoted, report.reasons
    info = versions.VersionInfo(
        id=report.version, parent=report.parent, created=versions.utc_now(), path=f"versions/{report.version}",
        status="promoted" if promote else "refused", data_hash=report.data_hash,
        metrics={name: {"overall": s["overall"], "per_type": s["per_type"]} if "overall" in s else s
                 for name, s in report.metrics["candidate"].items()},
        training_config=report.training_config,
        gate={"promote": promote, "margin": report.margin, "reasons": reasons,
              "summary": ("promoted" if promote else "refused") + ": " + reasons[0].split(": ", 1)[-1][:80]},
        stages=report.stages,
    )
    versions.register_version(settings, info, activate=report.activated)
    if report_path:
        target = Path(report_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        target.with_suffix(".txt").write_text(report.to_text(), encoding="utf-8")


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
        prep = _prepare(decisions, summary_labels, base_data, cfg, settings, parent, parent_dir)
        version = versions.new_version_id(settings, prep.dhash)
        staging = root / "versions" / f".staging-{version}-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        try:
            facts, summarizer_facts, stages = _train(prep, parent, parent_dir, staging, cfg, version, tell)
            judged = _judge(prep, parent_dir, staging, (facts is not None, summarizer_facts is not None), cfg,
                            settings, tell)
            final = root / "versions" / version
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

        training_config = {**asdict(cfg), "ner": facts, "summarizer": summarizer_facts,
                           "base_data": base_data or default_base_spec(settings) or "none (no base corpus found)",
                           "decisions": str(decisions),
                           "summary_labels": str(summary_labels) if summary_labels else None}
        activate = judged.promote and cfg.activate
        if activate and versions.active_version(settings) != parent:
            activate = False
            judged.reasons.append("not activated: the active version changed during retraining; activate it by hand")
        activate = retrain_activation(final, version, activate, judged.reasons)  # the audit gate (engine.audit.gate)
        report = RetrainReport(
            version=version, parent=parent, promoted=judged.promote, activated=activate, reasons=judged.reasons,
            checks=judged.checks, metrics={"active": judged.active, "candidate": judged.candidate},
            data=prep.data.stats, data_hash=prep.dhash, training_config=training_config, stages=stages,
            model_dir=str(final), seconds=round(time.monotonic() - started, 1), margin=cfg.margin,
            min_support=cfg.min_support,
        )
        _record(report, facts, settings, report_path)
        tell(1.0, f"{version} {'promoted' if judged.promote else 'refused'}")
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
