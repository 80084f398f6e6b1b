"""The audit's one-page markdown verdict (``verdict.md``), from what ``audit.json`` holds.

Rules (also in ``docs/monitoring.md``):

- swap pairs: a dimension passes when no pair differs; otherwise it is marked REVIEW and its differences listed
  (a difference may be clinically right, an age that changes a code, but a person must decide);
- calibration: ECE <= 0.05 good, <= 0.10 acceptable, above that REVIEW;
- error severity: reported as counts and shares; REVIEW when critical errors are more than a third of all errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.audit.severity import SEVERITIES

MAX_LISTED = 12


def _calibration_verdict(ece: float) -> str:
    return "good" if ece <= 0.05 else "acceptable" if ece <= 0.10 else "REVIEW"


def _swap_lines(swaps: dict[str, Any]) -> list[str]:
    lines = ["| dimension | pairs | pairs differing | differences | verdict |", "|---|---:|---:|---:|---|"]
    for dimension, cell in swaps["by_dimension"].items():
        verdict = "pass" if cell["differing"] == 0 else "REVIEW"
        lines.append(f"| {dimension} | {cell['pairs']} | {cell['differing']} | {cell['differences']} | {verdict} |")
    listed = swaps["differences"][:MAX_LISTED]
    if listed:
        lines += ["", f"Differences ({len(swaps['differences'])}; first {len(listed)}, all in audit.json):", ""]
        for d in listed:
            codes = ", ".join(d["codes"]) or "no code"
            lines.append(f"- {d['dimension']} {d['baseline']} -> {d['variant']}, note {d['template']}: {d['kind']} "
                         f"({d['side']}): {d['label']} \"{d['text']}\" {d['assertion']}, {codes}")
    return lines


def _part_lines(name: str, part: dict[str, Any] | None, figure: str) -> list[str]:
    if part is None:
        return [f"**{name}**: skipped (the dev data is not available here)."]
    cal, sev = part["calibration"], part["severity"]
    share = sev["share"]
    critical_flag = "REVIEW" if share["critical"] > 1 / 3 else "reported"
    return [
        f"**{name}** ({part['version']}): ECE {cal['ece']:.3f} over {cal['n']} scores (accuracy {cal['accuracy']}, "
        f"mean confidence {cal['mean_confidence']}): {_calibration_verdict(cal['ece'])}. "
        f"Errors {sev['errors']}: " + ", ".join(f"{s} {sev['by_severity'][s]} ({share[s]:.0%})" for s in SEVERITIES)
        + f": {critical_flag}. Top kinds: "
        + "; ".join(f"{k} {n}" for k, n in list(sev["by_kind"].items())[:4]) + ".",
        "",
        f"![{name} reliability diagram]({figure})",
    ]


def write_verdict(report: dict[str, Any], path: Path) -> Path:
    """Write the one-page verdict of an audit report."""
    swaps = report["swaps"]
    review = [d for d, c in swaps["by_dimension"].items() if c["differing"]]
    for key in ("ner", "icd"):
        part = report.get(key)
        if part and (_calibration_verdict(part["calibration"]["ece"]) == "REVIEW"
                     or part["severity"]["share"]["critical"] > 1 / 3):
            review.append(f"{key} calibration/severity")
    models = ", ".join(f"{k} {v}" for k, v in report["models"].items())
    lines = [
        "# Audit verdict",
        "",
        f"Models: {models}. Produced by `python -m engine audit` in {report['seconds']:.0f} s.",
        "",
        "**Verdict: " + ("no finding needs review.**" if not review else f"review needed: {', '.join(review)}.**"),
        "",
        f"## Demographic swap pairs ({swaps['pairs']} pairs, {swaps['notes_analysed']} notes)",
        "",
        *_swap_lines(swaps),
        "",
        "## Calibration and error severity (dev sets)",
        "",
        *_part_lines("NER entities, MACCROBAT dev", report.get("ner"), "reliability_ner.png"),
        "",
        *_part_lines("ICD top code, dev phrases", report.get("icd"), "reliability_icd.png"),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
