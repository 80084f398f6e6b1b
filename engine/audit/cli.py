"""``python -m engine audit``: the bias and safety audit before deployment, written to an output folder.

Runs the demographic swap pairs (:mod:`engine.audit.swaps`), the calibration of NER and ICD scores with
reliability diagrams (:mod:`engine.audit.calibration`) and the error severity distribution on the dev sets
(:mod:`engine.audit.severity`), and writes ``audit.json``, ``reliability_ner.png``, ``reliability_icd.png`` and
``verdict.md`` (one page). Example::

    python -m engine audit --out docs/audit
    python -m engine audit --gate --report docs/audit/audit.json --accept race   # the check before shipping
    python -m engine audit --model-dir SET --out SET/audit --gate   # a model set's own audit: what activating it needs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.audit.calibration import icd_calibration, ner_calibration, plot_reliability
from engine.audit.severity import icd_severity, ner_severity
from engine.audit.swaps import read_templates, read_values, run_swaps
from engine.audit.verdict import review_findings, write_verdict
from engine.rules import rule_rows
from engine.settings import ASSETS_DIR, REPO_ROOT, Settings

AUDIT_DIR = ASSETS_DIR / "audit"
ICD_DEV = REPO_ROOT / "tests" / "fixtures" / "icd_dev.tsv"


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def read_dev_rows(path: Path) -> list[tuple[str, str, str]]:
    """``(phrase, gold code, kind)`` rows of an ICD dev file (the format ``python -m engine evaluate icd`` reads;
    read here because the audit, like every layer-0 module, does not import ``engine.evaluation``)."""
    return [(f[0].strip(), f[1].strip(), f[2].strip() if len(f) > 2 else "paraphrase")
            for _, f in rule_rows(path, what="ICD dev file") if len(f) >= 2]


def ner_part(settings: Settings, out: Path) -> dict[str, Any] | None:
    """Calibration and severity of the NER stage on the MACCROBAT dev reports (``None`` without the data)."""
    from engine.corpora.brat import read_brat
    from engine.corpora.document import split_documents
    from engine.ner import load_folder

    folder = settings.data_dir / "maccrobat"
    if not folder.is_dir():
        _log(f"audit: no MACCROBAT at {folder}: NER calibration and severity skipped")
        return None
    stage = load_folder(settings.model_dir / "ner", settings)
    dev_count = stage.config.get("training", {}).get("n_dev_docs")
    _, dev = split_documents(read_brat(folder, "maccrobat"), dev_count=dev_count)
    calibration, predicted = ner_calibration(stage, dev)
    plot_reliability({"NER entities": calibration}, out / "reliability_ner.png",
                     f"NER {stage.version}: MACCROBAT dev ({len(dev)} reports)")
    return {"version": stage.version, "documents": len(dev), "calibration": calibration,
            "severity": ner_severity([d.spans for d in dev], predicted)}


def icd_part(settings: Settings, out: Path, dev: Path) -> dict[str, Any]:
    """Calibration and severity of the ICD stage's top code on the dev phrases (inclusion terms left out)."""
    from engine.registry import load_stage

    linker = load_stage("icd", settings)
    rows = [r for r in read_dev_rows(dev) if r[2] != "inclusion"]
    calibration, calibrated, ranked = icd_calibration(linker, rows)
    version = str(getattr(linker, "version", "unknown"))
    curves = {"raw top score vs exact code": calibration}
    if calibrated is not None:
        curves["abstention confidence vs category"] = calibrated
    plot_reliability(curves, out / "reliability_icd.png", f"ICD {version}: {dev.name} ({len(rows)} phrases)")
    return {"version": version, "rows": len(rows), "dev": str(dev.relative_to(REPO_ROOT) if dev.is_relative_to(
        REPO_ROOT) else dev), "calibration": calibration, "calibrated_confidence": calibrated,
            "severity": icd_severity(rows, ranked)}


def run_audit(out: Path, model_dir: Path | None = None, device: str = "cpu", icd_dev: Path = ICD_DEV,
              audit_dir: Path = AUDIT_DIR, accepted: Sequence[str] = ()) -> dict[str, Any]:
    """Run every part of the audit and write its files into ``out``; returns what ``audit.json`` holds."""
    from engine.pipeline import ANALYSIS_STAGES, load_pipeline

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    pipeline = load_pipeline(model_dir=model_dir, device=device)
    pipeline.warm(ANALYSIS_STAGES, freeze=False)
    settings = pipeline.settings
    _log("audit: demographic swap pairs")
    swaps = run_swaps(pipeline, read_templates(audit_dir / "swap_templates.txt"),
                      read_values(audit_dir / "swap_values.tsv"))
    _log("audit: NER calibration and error severity")
    ner = ner_part(settings, out)
    _log("audit: ICD calibration and error severity")
    icd = icd_part(settings, out, icd_dev)
    report = {"models": pipeline.models, "swaps": swaps, "ner": ner, "icd": icd,
              "accepted": sorted(set(accepted)),  # sign-offs, honoured by the activation gate (engine.audit.gate)
              "seconds": round(time.perf_counter() - started, 1)}
    (out / "audit.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    write_verdict(report, out / "verdict.md", accepted)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m engine audit``.

    With ``--gate`` it is the check before a model set ships: exit status 3 when a finding of the verdict
    (:func:`~engine.audit.verdict.review_findings`) is not signed off with ``--accept``; ``--report`` re-applies
    the gate to a written ``audit.json`` without analysing again.
    """
    parser = argparse.ArgumentParser(prog="python -m engine audit", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("audit_out"), help="output folder (default: audit_out)")
    parser.add_argument("--model-dir", help="another trained model set (default: the committed one)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--icd-dev", type=Path, default=ICD_DEV, help="ICD dev phrases (phrase, gold code, kind)")
    parser.add_argument("--gate", action="store_true", help="exit 3 when a finding is not signed off")
    parser.add_argument("--accept", action="append", default=[], metavar="FINDING",
                        help="a finding a person reviewed and signed off (repeatable), e.g. --accept race")
    parser.add_argument("--report", type=Path, help="gate an existing audit.json instead of running the audit")
    args = parser.parse_args(argv)
    if args.report:
        try:
            report = json.loads(args.report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"python -m engine audit: cannot read {args.report} ({exc})\n")
            return 2
    else:
        report = run_audit(args.out, args.model_dir, args.device, args.icd_dev, accepted=args.accept)
    findings = review_findings(report)
    open_findings = [f for f in findings if f not in args.accept]
    summary = {
        "out": str(args.report or args.out),
        "swap_pairs": report["swaps"]["pairs"],
        "swap_pairs_differing": report["swaps"]["pairs_differing"],
        "ner_ece": report["ner"]["calibration"]["ece"] if report["ner"] else None,
        "icd_ece": report["icd"]["calibration"]["ece"],
        "findings": findings,
        "open_findings": open_findings,
        "seconds": report["seconds"],
    }
    print(json.dumps(summary))
    if args.gate and open_findings:
        sys.stderr.write(f"python -m engine audit: gate closed, findings to review: {', '.join(open_findings)} "
                         "(see verdict.md; sign off each with --accept FINDING)\n")
        return 3
    return 0
