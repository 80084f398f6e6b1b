"""A model set's own audit report for tests that activate registered versions (the audit gate needs one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def audit_report(ner_version: str, differing: dict[str, int] | None = None) -> dict[str, Any]:
    """An ``audit.json`` as ``python -m engine audit`` writes it, of the NER model ``ner_version``: 12 swap pairs
    per dimension, ``differing`` of them differing (no finding by default), NER and ICD well calibrated."""
    differing = differing or {}
    dims = {d: {"pairs": 12, "differing": differing.get(d, 0), "differences": differing.get(d, 0)}
            for d in ("sex", "age", "race")}
    part = {"version": "v", "calibration": {"ece": 0.03, "n": 100, "accuracy": 0.8, "mean_confidence": 0.81},
            "severity": {"errors": 10, "share": {"critical": 0.1, "moderate": 0.3, "minor": 0.6, "other": 0.0}}}
    return {"models": {"ner": ner_version}, "seconds": 1.0, "ner": part, "icd": {**part, "calibrated_confidence": None},
            "swaps": {"pairs": 36, "pairs_differing": sum(differing.values()), "notes_analysed": 48,
                      "differences": [], "by_dimension": dims}}


def write_audit(model_dir: Path, ner_version: str, differing: dict[str, int] | None = None) -> Path:
    """Write :func:`audit_report` as ``model_dir/audit/audit.json``; returns its path."""
    path = model_dir / "audit" / "audit.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(audit_report(ner_version, differing)), encoding="utf-8")
    return path
