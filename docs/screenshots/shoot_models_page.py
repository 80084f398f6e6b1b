"""Screenshots of the Models page for ``docs/app.md`` (issue #17 items 2 and 9), in Debian's chromium.

Serves the real app (engine on CPU, a temporary SQLite store, a temporary model registry, an empty data folder so
no base corpus is found), and saves:

- ``models_f1_calibration.png``: the base version's per-type F1 bars and calibration charts;
- ``models_gate.png``: the gate's before/after chart of a demonstration version whose ``report.json`` comes from
  the real gate applied to invented scores (``tests/support/gate_testing.py``, as in the page's tests);
- ``retrain_no_base_corpus.png``: the retraining panel's warning before a run without a base corpus;
- ``retrain_bad_folder.png``: the message for a base corpus folder that does not exist.

    .venv/bin/python docs/screenshots/shoot_models_page.py
"""

from __future__ import annotations

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
    from support.gate_testing import gate_scores, register_gated_version

    from engine.settings import Settings

    active = {"feedback_test": gate_scores({"overall": 0.70, "DIAG": 0.74, "MED": 0.81, "TEST": 0.66}, 12),
              "base_dev": gate_scores({"overall": 0.69, "DIAG": 0.66, "MED": 0.79, "TEST": 0.73}, 12)}
    candidate = {"feedback_test": gate_scores({"overall": 0.74, "DIAG": 0.79, "MED": 0.85, "TEST": 0.70}, 12),
                 "base_dev": gate_scores({"overall": 0.68, "DIAG": 0.62, "MED": 0.79, "TEST": 0.72}, 12)}
    return register_gated_version(Settings(), active, candidate, data_hash="d" * 64)


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
