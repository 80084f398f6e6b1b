"""Screenshots of the Models page for ``docs/app.md`` (issue #17 items 2 and 9), in Debian's chromium.

Serves the real app (engine on CPU, a temporary SQLite store, a temporary model registry, an empty data folder so
no base corpus is found), and saves:

- ``models_f1_calibration.png``: the base version's per-type F1 bars and calibration charts;
- ``models_gate.png``: the gate's before/after chart of a demonstration version whose ``report.json`` comes from
  the real gate applied to invented scores (the same construction as ``tests/test_ui_models_charts.py``);
- ``retrain_no_base_corpus.png``: the retraining panel's warning before a run without a base corpus;
- ``retrain_bad_folder.png``: the message for a base corpus folder that does not exist.

    .venv/bin/python docs/screenshots/shoot_models_page.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from support.devserver import CHROMIUM, CHROMIUM_ARGS, run_app  # noqa: E402

OUT = Path(__file__).resolve().parent


def demo_version(registry: Path) -> str:
    """Register a refused demonstration version whose gate report is the real gate on invented scores."""
    os.environ["CLINICAL_NLP_REGISTRY_DIR"] = str(registry)
    from engine import versions
    from engine.settings import Settings
    from engine.training.retrain_gate import RetrainReport, gate

    def scores(f1: dict[str, float], support: int = 12) -> dict:
        def one(v: float) -> dict:
            return {"f1": v, "tp": round(v * support), "fn": support - round(v * support), "fp": 0}
        return {"overall": one(f1.pop("overall")), "per_type": {k: one(v) for k, v in f1.items()}, "n_gold": 60}

    active = {"feedback_test": scores({"overall": 0.70, "DIAG": 0.74, "MED": 0.81, "TEST": 0.66}),
              "base_dev": scores({"overall": 0.69, "DIAG": 0.66, "MED": 0.79, "TEST": 0.73})}
    candidate = {"feedback_test": scores({"overall": 0.74, "DIAG": 0.79, "MED": 0.85, "TEST": 0.70}),
                 "base_dev": scores({"overall": 0.68, "DIAG": 0.62, "MED": 0.79, "TEST": 0.72})}
    settings = Settings()
    vid = versions.new_version_id(settings, "d" * 64)
    folder = settings.registry_dir / "versions" / vid
    for stage in versions.STAGES:
        (folder / stage).mkdir(parents=True)
        (folder / stage / "config.json").write_text(json.dumps({"version": vid}), encoding="utf-8")
    promote, checks, reasons = gate(active, candidate, margin=0.01, min_support=5)
    report = RetrainReport(version=vid, parent="base", promoted=promote, activated=False, reasons=reasons,
                           checks=checks, metrics={"active": active, "candidate": candidate}, data={},
                           data_hash="d" * 64, training_config={}, stages={"ner": "trained"}, model_dir=str(folder),
                           margin=0.01, min_support=5)
    (folder / "report.json").write_text(json.dumps(report.to_dict()), encoding="utf-8")
    (folder / "ner" / "metrics.json").write_text(json.dumps({"gate": candidate}), encoding="utf-8")
    versions.register_version(settings, versions.VersionInfo(
        id=vid, parent=versions.BASE, created=versions.utc_now(), path=f"versions/{vid}", status="refused",
        data_hash="d" * 64), activate=False)
    return vid


def main() -> None:
    """Serve the app and take the screenshots."""
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="models-shots-"))
    (tmp / "data").mkdir()
    os.environ["CLINICAL_DATA_DIR"] = str(tmp / "data")
    os.environ.pop("CLINICAL_NLP_BASE_CORPUS_DIR", None)
    vid = demo_version(tmp / "registry")
    with run_app(f"sqlite:///{tmp / 'feedback.sqlite'}", tmp / "app.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(f"{url}/models")
        page.get_by_text("Strict F1 per entity type").first.wait_for(timeout=900_000)
        page.wait_for_timeout(2500)
        page.get_by_text("Per-type F1", exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(OUT / "models_f1_calibration.png"))

        page.locator(".st-key-metrics_version").click()
        page.get_by_role("option", name=vid).click()
        page.get_by_text("Retraining gate: active model").first.wait_for(timeout=120_000)
        page.locator(".st-key-chart_gate").scroll_into_view_if_needed()
        page.wait_for_timeout(2500)
        page.locator(".st-key-chart_gate").screenshot(path=str(OUT / "models_gate.png"))

        panel = page.get_by_text("No base corpus found").first
        panel.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)
        page.get_by_text("Retrain from feedback").first.evaluate("e => e.scrollIntoView()")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(OUT / "retrain_no_base_corpus.png"))

        field = page.locator(".st-key-base_corpus_dir input")
        field.fill(str(tmp / "no-such-corpus"))
        field.press("Enter")
        page.get_by_text("does not exist").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(OUT / "retrain_bad_folder.png"))
        browser.close()
    print("saved", *(p.name for p in sorted(OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
