"""End to end in a real browser: Debian's chromium driven by Playwright against the real app and engine.

Starts ``streamlit run app.py`` once for the module on a free port with a temporary SQLite feedback store, then
pastes a note, analyses it, accepts one code and rejects another, finds both in History and exports JSON lines.
A screenshot of the page is saved under ``tests/artifacts/`` when a step fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.devserver import (
    CHROMIUM,
    CHROMIUM_ARGS,
    accept_first_reject_second,
    run_app,
    screenshot_on_failure,
)

REPO = Path(__file__).resolve().parent.parent
NOTE = (REPO / "tests" / "fixtures" / "app" / "note_short.txt").read_text(encoding="utf-8")
STARTUP_S = 900  # a cold start loads and warms the engine (and may build the ICD index) before the first page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: run .ci/system-deps to install Debian's chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("browser")
    with run_app(f"sqlite:///{tmp / 'feedback.sqlite'}", tmp / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
    yield context.new_page()
    context.close()


def test_review_flow_analyze_decide_history_export(app_url, page, tmp_path):
    from playwright.sync_api import expect

    with screenshot_on_failure(page, "review_flow"):
        page.goto(app_url)
        reviewer = page.locator(".st-key-reviewer input")
        reviewer.wait_for(timeout=STARTUP_S * 1000)
        page.locator(".st-key-note_text textarea").wait_for(timeout=STARTUP_S * 1000)
        reviewer.fill("Dr Browser")
        reviewer.press("Enter")
        page.get_by_role("button", name="Analyze").click()  # nothing pasted yet: a clear message, nothing stored
        page.get_by_text("The note is empty").wait_for(timeout=60_000)
        page.locator(".st-key-note_text textarea").fill(NOTE)
        page.get_by_role("button", name="Analyze").click()
        page.locator(".analysis-done[data-run='1']").wait_for(state="attached", timeout=120_000)

        marks = page.locator(".ent-note mark.ent")
        assert marks.count() >= 3
        negated = page.locator(".ent-note mark.ent.asr-negated").first
        assert "trigger" in (negated.get_attribute("title") or "")
        assert page.locator(".ent-legend").count() == 1

        _, code0, code1 = accept_first_reject_second(page)

        page.get_by_role("link", name="History").click()
        page.get_by_text("Review history").wait_for()
        expect(page.locator("[data-testid=stMetric]").first).to_contain_text("2", timeout=60_000)
        grid = page.locator("[data-testid=stDataFrame]").first
        for text in (code0, code1, "Dr Browser", "accept", "reject"):  # the grid keeps its cells in textContent
            expect(grid).to_contain_text(text, timeout=60_000)

        page.get_by_role("link", name="Export").click()
        # The note is not marked fully reviewed: the default export (gold only) leaves it out; silver brings it.
        page.get_by_text("Include notes not fully reviewed (silver)").click()
        page.get_by_role("button", name="Prepare export").click()
        download_button = page.get_by_role("button", name="Download data.jsonl")
        download_button.wait_for(timeout=60_000)
        with page.expect_download() as info:
            download_button.click()
        path = tmp_path / "data.jsonl"
        info.value.save_as(path)
        docs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert len(docs) == 1 and docs[0]["text"] == NOTE and docs[0]["status"] == "silver"
        assert docs[0]["silver"] and all(g["source"] == "silver" for g in docs[0]["silver"])
        decisions = [d for e in docs[0]["entities"] for d in e.get("decisions", [])]
        got = {(d["decision"], d["target"], d["code"], d["reviewer"]) for d in decisions}
        assert got == {("accept", "code", code0, "Dr Browser"), ("reject", "code", code1, "Dr Browser")}


STALE_PROBE = """
async (run) => {
  // Computed styles of output that Streamlit marks stale while the page reruns, recorded as it is marked.
  const seen = [];
  const observer = new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target;
      if (el.dataset && el.dataset.stale === 'true' && el.dataset.testid === 'stElementContainer') {
        const cs = getComputedStyle(el);
        seen.push({opacity: cs.opacity, duration: cs.transitionDuration});
      }
    }
  });
  observer.observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-stale']});
  [...document.querySelectorAll('button')].find((b) => b.innerText.trim() === 'Analyze').click();
  const selector = `.analysis-done[data-run="${run}"]`;
  while (!document.querySelector(selector)) await new Promise((r) => setTimeout(r, 20));
  observer.disconnect();
  return seen;
}
"""


def test_rerun_keeps_old_output_unfaded(app_url, page):
    """While Analyze reruns the page, the output not yet redrawn is neither faded nor animated (ui.render.APP_CSS:
    the fade repaints the whole page every frame in a browser without GPU compositing)."""
    with screenshot_on_failure(page, "stale_output"):
        page.goto(app_url)
        box = page.locator(".st-key-note_text textarea")
        box.wait_for(timeout=STARTUP_S * 1000)
        box.fill(NOTE)
        page.get_by_role("button", name="Analyze").click()
        page.locator(".analysis-done[data-run='1']").wait_for(state="attached", timeout=120_000)
        box.fill(NOTE + "\nSecond analysis.")
        seen = page.evaluate(STALE_PROBE, 2)
        assert seen, "no output was marked stale during the rerun"
        assert all(s["opacity"] == "1" and s["duration"] == "0s" for s in seen), seen[:5]
