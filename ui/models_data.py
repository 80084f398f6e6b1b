"""What the Models page plots, read from the model folders and the run records (plain Python, no Streamlit).

- per-type F1: each NER folder's ``metrics.json`` (``dev`` and ``dev_baseline_dictionary`` for a trained model,
  ``gate`` for a retrained one: its scores on the gate's held-out sets);
- calibration: the model folders store the expected calibration error (ECE) only, not reliability bins; the bins
  come from the audit record (``docs/audit/audit.json``, ``python -m engine audit``) when it was run on the same NER
  version, and the ICD ranker's fitted isotonic map is its folder's ``calibration.json``;
- the gate's before/after comparison: ``report.json`` in a retrained version's folder (``engine.training.retrain``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.settings import REPO_ROOT

AUDIT_PATH = REPO_ROOT / "docs" / "audit" / "audit.json"
NER_STAGES = ("ner", "ner_accurate")
STAGES_WITH_METRICS = ("ner", "ner_accurate", "summarizer", "assertion", "icd_encoder", "icd_ranker", "deid")


@dataclass
class ModelSetMetrics:
    """The metrics of one model-set folder.

    Attributes:
        stages: ``{stage: metrics.json contents}`` for each stage folder that has one.
        versions: ``{stage: version}`` from each stage's ``config.json``.
        problems: Files that could not be read, with why.
    """

    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        problems.append(f"{path} could not be read: {err}")
        return None
    return data if isinstance(data, dict) else None


def read_model_set(folder: Path) -> ModelSetMetrics:
    """Read ``metrics.json`` and the version of every stage folder under ``folder``."""
    out = ModelSetMetrics()
    for stage in STAGES_WITH_METRICS:
        metrics = _read_json(folder / stage / "metrics.json", out.problems)
        if metrics is not None:
            out.stages[stage] = metrics
        config = _read_json(folder / stage / "config.json", out.problems)
        if config and config.get("version"):
            out.versions[stage] = str(config["version"])
    return out


def f1_sources(model_set: ModelSetMetrics) -> dict[str, dict[str, Any]]:
    """Scores with per-type F1, by a display name: ``{"ner (dev)": {"overall": ..., "per_type": ...}, ...}``."""
    sources: dict[str, dict[str, Any]] = {}
    for stage in NER_STAGES:
        metrics = model_set.stages.get(stage)
        if not metrics:
            continue
        if _has_per_type(metrics.get("dev")):
            sources[f"{stage} (dev)"] = metrics["dev"]
        for eval_set, scores in (metrics.get("gate") or {}).items():
            if _has_per_type(scores):
                sources[f"{stage} ({eval_set})"] = scores
        baseline = metrics.get("dev_baseline_dictionary")
        if _has_per_type(baseline) and "dictionary baseline (dev)" not in sources:
            sources["dictionary baseline (dev)"] = baseline
    return sources


def _has_per_type(scores: Any) -> bool:
    return isinstance(scores, dict) and isinstance(scores.get("per_type"), dict) and "overall" in scores


def read_audit(path: Path = AUDIT_PATH) -> dict[str, Any] | None:
    """The audit record (reliability bins of NER and ICD), ``None`` when there is none."""
    return _read_json(path, [])


@dataclass
class Calibration:
    """Reliability curves to draw and what is missing.

    Attributes:
        curves: ``{name: {"ece", "n", "bins": [{"lo", "hi", "n", "confidence", "accuracy"}]}}``.
        ece: ``{name: ECE}`` from the model folders (drawn when there are no bins).
        notes: Sentences on where the curves come from and what is not stored.
    """

    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    ece: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def ner_calibration(model_set: ModelSetMetrics, audit: dict[str, Any] | None) -> Calibration:
    """NER reliability: the audit's bins when the audit ran on this NER version, else the stored ECE and a note."""
    out = Calibration()
    version = model_set.versions.get("ner")
    metrics = model_set.stages.get("ner") or {}
    cal = metrics.get("calibration") or {}
    for key, name in (("ece_before", "before temperature"), ("ece_fitted", "fitted temperature"),
                      ("ece_two_fold", "two-fold (held out)")):
        if isinstance(cal.get(key), int | float):
            out.ece[f"ECE {name}"] = float(cal[key])
    if isinstance((metrics.get("dev") or {}).get("ece"), int | float):
        out.ece["ECE dev (as shipped)"] = float(metrics["dev"]["ece"])
    ner_audit = (audit or {}).get("ner") or {}
    if version and ner_audit.get("version") == version and (ner_audit.get("calibration") or {}).get("bins"):
        out.curves[f"NER entities ({ner_audit.get('documents', '?')} dev reports)"] = ner_audit["calibration"]
        out.notes.append(f"NER bins: the audit record {AUDIT_PATH.relative_to(REPO_ROOT)} of {version}.")
    else:
        audited = ner_audit.get("version") or "no NER version"
        out.notes.append(
            f"No reliability bins are stored for NER {version or '(unknown version)'}: its metrics.json holds the "
            f"ECE only, and the audit record covers {audited}. Run `python -m engine audit --out docs/audit` on "
            "this version (needs the MACCROBAT dev reports) to get them."
        )
    return out


def icd_calibration(audit: dict[str, Any] | None) -> Calibration:
    """ICD reliability from the audit: the raw top-code score and the calibrated confidence ``analyze`` uses."""
    out = Calibration()
    icd = (audit or {}).get("icd") or {}
    if (icd.get("calibration") or {}).get("bins"):
        out.curves["raw top-code score vs exact code"] = icd["calibration"]
    if (icd.get("calibrated_confidence") or {}).get("bins"):
        out.curves["calibrated confidence vs category"] = icd["calibrated_confidence"]
    if out.curves:
        out.notes.append(f"ICD bins: the audit record of {icd.get('version', '?')} on {icd.get('rows', '?')} dev "
                         "phrases.")
    else:
        out.notes.append("No ICD reliability bins recorded (run `python -m engine audit`).")
    return out


def icd_calibration_map(ranker_dir: Path) -> dict[str, list[float]] | None:
    """The ICD ranker's isotonic map (raw ranker score ``x`` to calibrated probability ``y``), if stored."""
    data = _read_json(ranker_dir / "calibration.json", [])
    if not data or not isinstance(data.get("x"), list) or len(data["x"]) != len(data.get("y") or []):
        return None
    return {"x": [float(v) for v in data["x"]], "y": [float(v) for v in data["y"]]}


def gate_report(version_dir: Path) -> dict[str, Any] | None:
    """The retraining gate's report of a version (``report.json`` in its folder), ``None`` for the base set."""
    report = _read_json(version_dir / "report.json", [])
    return report if report and isinstance(report.get("checks"), list) else None


def gate_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per gate comparison: set, metric, active, candidate, delta, support, result."""
    rows = []
    for check in report.get("checks", []):
        active, candidate = float(check["active"]), float(check["candidate"])
        result = ("ok" if check.get("passed") else "worse") if check.get("gated") else "not gated (support)"
        rows.append({"set": check["eval_set"], "metric": check["metric"], "active": active, "candidate": candidate,
                     "delta": round(candidate - active, 4), "support": int(check.get("support", 0)),
                     "result": result})
    return rows
