"""Retrained versions for the Models page's tests and screenshots: gate scores, the real gate's report, a
registered version folder (shared by ``tests/test_ui_models_charts.py`` and ``docs/screenshots/``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine import versions
from engine.settings import Settings
from engine.training.retrain_gate import RetrainReport, gate


def gate_scores(f1: dict[str, float], support: int = 10) -> dict[str, Any]:
    """A ``score`` result with the given per-type F1 (``overall`` included) and ``support`` gold spans each."""
    def one(value: float) -> dict[str, Any]:
        tp = round(value * support)
        return {"f1": value, "tp": tp, "fn": support - tp, "fp": 0}

    return {"overall": one(f1["overall"]), "per_type": {k: one(v) for k, v in f1.items() if k != "overall"},
            "n_gold": support * len(f1)}


def write_gate_report(folder: Path, active: dict[str, Any], candidate: dict[str, Any], version: str = "v-test",
                      data_hash: str = "0" * 64) -> dict[str, Any]:
    """``folder/report.json``: the real gate (margin 0.01, support 5) on the two models' scores; returned too."""
    promote, checks, reasons = gate(active, candidate, margin=0.01, min_support=5)
    report = RetrainReport(version=version, parent="base", promoted=promote, activated=False, reasons=reasons,
                           checks=checks, metrics={"active": active, "candidate": candidate}, data={},
                           data_hash=data_hash, training_config={}, stages={"ner": "trained"}, model_dir=str(folder),
                           margin=0.01, min_support=5)
    (folder / "report.json").write_text(json.dumps(report.to_dict()), encoding="utf-8")
    return report.to_dict()


def register_gated_version(settings: Settings, active: dict[str, Any], candidate: dict[str, Any],
                           data_hash: str) -> str:
    """Register a version (not activated, its status the gate's decision) whose folder holds a config per stage,
    the gate's report on ``candidate`` against ``active`` and the candidate's scores as its NER ``metrics.json``.

    Returns:
        The version id.
    """
    vid = versions.new_version_id(settings, data_hash)
    folder = settings.registry_dir / "versions" / vid
    for stage in versions.STAGES:
        (folder / stage).mkdir(parents=True)
        (folder / stage / "config.json").write_text(json.dumps({"version": vid}), encoding="utf-8")
    written = write_gate_report(folder, active, candidate, version=vid, data_hash=data_hash)
    (folder / "ner" / "metrics.json").write_text(json.dumps({"gate": candidate}), encoding="utf-8")
    versions.register_version(settings, versions.VersionInfo(
        id=vid, parent=versions.BASE, created=versions.utc_now(), path=f"versions/{vid}",
        status=written["decision"], data_hash=data_hash), activate=False)
    return vid


NER_CONFIG = Path(__file__).resolve().parents[2] / "assets" / "models" / "ner" / "config.json"


def fake_stage_folders(settings: Settings, tag: str) -> tuple[str, Path]:
    """A new version id and its folder with one ``config.json`` per stage (no weights: the panels only read the
    configs, and the NER one carries the shipped tagger's labels, which the base-corpus status reads)."""
    vid = versions.new_version_id(settings, tag * 8)
    folder = settings.registry_dir / "versions" / vid
    for stage in versions.STAGES:
        (folder / stage).mkdir(parents=True)
        config: dict[str, Any] = {"version": vid}
        if stage == "ner":
            config["id2label"] = json.loads(NER_CONFIG.read_text(encoding="utf-8"))["id2label"]
        (folder / stage / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return vid, folder
