"""The audit's one-page markdown verdict (``verdict.md``), from what ``audit.json`` holds.

Rules (also in ``docs/monitoring.md``):

- swap pairs: a dimension passes when no pair differs; otherwise it is marked REVIEW and its differences listed
  (a difference may be clinically right, an age that changes a code, but a person must decide);
- calibration: ECE <= 0.05 good, <= 0.10 acceptable, above that REVIEW;
- error severity: reported as counts and shares; REVIEW when critical errors are more than a third of all errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.audit.severity import SEVERITIES

MAX_LISTED = 12


def _calibration_verdict(ece: float) -> str:
    return "good" if ece <= 0.05 else "acceptable" if ece <= 0.10 else "REVIEW"


_KIND_ORDER = {"codes": 0, "assertion": 1, "label": 2, "entity": 3}


def _difference_line(d: dict[str, Any], variants: list[str]) -> str:
    where = f"- {d['dimension']} {d['baseline']} -> {', '.join(variants)}, note {d['template']}: "
    if d["side"] == "both":
        return (where + f"{d['kind']}: \"{d['baseline_text']}\" {d['label']} {d['assertion']} "
                f"{', '.join(d['codes']) or 'no code'} -> \"{d['variant_text']}\" {d['variant_label']} "
                f"{d['variant_assertion']} {', '.join(d['variant_codes']) or 'no code'}")
    text = d.get("baseline_text") or d.get("variant_text")
    return where + (f"{d['kind']} ({d['side']}): {d['label']} \"{text}\" {d['assertion']}, "
                    f"{', '.join(d['codes']) or 'no code'}")


def grouped_differences(differences: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[str]]]:
    """Differences that repeat across the variants of a dimension, once with their variants; codes and assertion
    differences first, then label changes, then entities found on one side only."""
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for d in differences:
        key = repr(sorted((k, str(v)) for k, v in d.items() if k != "variant"))
        groups.setdefault(key, (d, []))[1].append(d["variant"])
    return sorted(groups.values(), key=lambda g: (_KIND_ORDER.get(g[0]["kind"], 9), -len(g[1]), g[0]["dimension"],
                                                  g[0]["template"]))


def _swap_lines(swaps: dict[str, Any]) -> list[str]:
    lines = ["| dimension | pairs | pairs differing | differences (entity / label / assertion / codes) | verdict |",
             "|---|---:|---:|---|---|"]
    for dimension, cell in swaps["by_dimension"].items():
        verdict = "pass" if cell["differing"] == 0 else "REVIEW"
        kinds = [sum(d["kind"] == k for d in swaps["differences"] if d["dimension"] == dimension)
                 for k in ("entity", "label", "assertion", "codes")]
        lines.append(f"| {dimension} | {cell['pairs']} | {cell['differing']} | {cell['differences']} "
                     f"({' / '.join(map(str, kinds))}) | {verdict} |")
    groups = grouped_differences(swaps["differences"])
    if groups:
        lines += ["", f"Differences ({len(swaps['differences'])}, {len(groups)} distinct; the first "
                      f"{min(MAX_LISTED, len(groups))}, most serious first; all in audit.json):", ""]
        lines += [_difference_line(d, variants) for d, variants in groups[:MAX_LISTED]]
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
        *_calibrated_line(part),
        "",
        f"![{name} reliability diagram]({figure})",
    ]


def _calibrated_line(part: dict[str, Any]) -> list[str]:
    cal = part.get("calibrated_confidence")
    if not cal:
        return []
    return ["", f"Abstention confidence (P(right category), what `analyze` compares with `icd_min_score`): ECE "
                f"{cal['ece']:.3f} (category accuracy {cal['accuracy']}, mean confidence {cal['mean_confidence']}): "
                f"{_calibration_verdict(cal['ece'])}{_direction(cal)}."]


def _direction(cal: dict[str, Any]) -> str:
    if _calibration_verdict(cal["ece"]) != "REVIEW":
        return ""
    if cal["mean_confidence"] < cal["accuracy"]:
        return " (underconfident: it abstains more often than needed, a throughput cost, not a safety finding)"
    return " (overconfident: codes are shown with more confidence than they earn)"


def review_findings(report: dict[str, Any]) -> list[str]:
    """What a person must look at before the models ship: each swap dimension with a differing pair, then
    ``"<ner|icd> calibration"`` (ECE above 0.10), ``"<ner|icd> severity"`` (critical errors over a third) and
    ``"icd abstention calibration"`` when the abstention confidence is overconfident with an ECE above 0.10
    (an underconfident one only abstains more than needed)."""
    findings = [d for d, c in report["swaps"]["by_dimension"].items() if c["differing"]]
    for key in ("ner", "icd"):
        part = report.get(key)
        if not part:
            continue
        if _calibration_verdict(part["calibration"]["ece"]) == "REVIEW":
            findings.append(f"{key} calibration")
        if part["severity"]["share"]["critical"] > 1 / 3:
            findings.append(f"{key} severity")
        cal = part.get("calibrated_confidence")
        if cal and _calibration_verdict(cal["ece"]) == "REVIEW" and cal["mean_confidence"] > cal["accuracy"]:
            findings.append(f"{key} abstention calibration")
    return findings


def write_verdict(report: dict[str, Any], path: Path, accepted: Sequence[str] = ()) -> Path:
    """Write the one-page verdict of an audit report (``accepted``: findings a person signed off, listed)."""
    swaps = report["swaps"]
    review = [f for f in review_findings(report) if f not in accepted]
    signed = [f for f in review_findings(report) if f in accepted]
    models = ", ".join(f"{k} {v}" for k, v in report["models"].items())
    lines = [
        "# Audit verdict",
        "",
        f"Models: {models}. Produced by `python -m engine audit` in {report['seconds']:.0f} s.",
        "",
        "**Verdict: " + ("no finding needs review.**" if not review else f"review needed: {', '.join(review)}.**")
        + (f" Signed off (`--accept`): {', '.join(signed)}." if signed else ""),
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
