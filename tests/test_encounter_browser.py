"""The code set on the review page in a real browser (issue 19 item 6): Debian's chromium driven by Playwright
against the real app and engine, with a temporary SQLite feedback store.

A coder accepts the first line, moves the last line up and removes the second; the page shows the new order, the
analysis reopened from the store shows it too, and the three decisions are in the ``codeset_decisions`` table with
the reviewer, the time and the model version.
A screenshot of the page is saved under ``tests/artifacts/`` when a step fails.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.devserver import CHROMIUM, CHROMIUM_ARGS, click_key, run_app, screenshot_on_failure

REPO = Path(__file__).resolve().parent.parent
NOTE = (REPO / "tests" / "fixtures" / "app" / "note_short.txt").read_text(encoding="utf-8")
STARTUP_S = 900  # a cold start loads and warms the engine before the first page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: run .ci/system-deps to install Debian's chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("codeset")
    db_path = tmp / "feedback.sqlite"
    with run_app(f"sqlite:///{db_path}", tmp / "streamlit.log") as url:
        yield url, db_path


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1100})
        yield context.new_page()
        context.close()
        browser.close()


def _codes(pg) -> list[str]:
    return (pg.locator(".codeset-done").first.get_attribute("data-codes") or "").split()


def test_code_set_accept_reorder_remove_stored(app, page) -> None:
    from playwright.sync_api import expect

    url, db_path = app
    with screenshot_on_failure(page, "codeset_flow"):
        page.goto(url)
        reviewer = page.locator(".st-key-reviewer input")
        reviewer.wait_for(timeout=STARTUP_S * 1000)
        reviewer.fill("Coder Browser")
        reviewer.press("Enter")
        box = page.locator(".st-key-note_text textarea")
        box.wait_for(timeout=STARTUP_S * 1000)
        box.fill(NOTE)
        page.get_by_role("button", name="Analyze").click()
        page.locator(".codeset-done[data-run='1']").wait_for(state="attached", timeout=300_000)
        # the code set stands above the mention list
        panel, table = page.locator(".st-key-codeset_panel"), page.locator(".st-key-review_panel")
        assert panel.bounding_box()["y"] < table.bounding_box()["y"]
        codes = _codes(page)
        assert len(codes) >= 3, codes
        first, second, last = codes[0], codes[1], codes[-1]

        click_key(page, f"cs-acc-{first.replace('.', '_')}")
        page.get_by_text(f"Recorded: accept {first} in the code set").wait_for(timeout=60_000)
        expect(page.locator(f".st-key-cs-row-{first.replace('.', '_')}")).to_contain_text("accepted")

        click_key(page, f"cs-up-{last.replace('.', '_')}")
        page.get_by_text(f"Recorded: move {last} to {len(codes) - 1} in the code set").wait_for(timeout=60_000)
        moved = [*codes[:-2], last, codes[-2]]
        expect(page.locator(".codeset-done").first).to_have_attribute("data-codes", " ".join(moved), timeout=30_000)

        click_key(page, f"cs-rem-{second.replace('.', '_')}")
        page.get_by_text(f"Recorded: remove {second} in the code set").wait_for(timeout=60_000)
        final = [c for c in moved if c != second]
        expect(page.locator(".codeset-done").first).to_have_attribute("data-codes", " ".join(final), timeout=30_000)
        assert page.locator(f".st-key-cs-row-{second.replace('.', '_')}").count() == 0

        # reopened from the store (a new run of the page), the code set is the one the decisions left
        click_key(page, "reopen")
        page.locator(".codeset-done[data-run='2']").wait_for(state="attached", timeout=120_000)
        assert _codes(page) == final
        expect(page.locator(f".st-key-cs-row-{first.replace('.', '_')}")).to_contain_text("accepted")

    con = sqlite3.connect(db_path)
    try:
        rows = con.execute("SELECT action, code, to_sequence, reviewer, model_version, created_at, final, suggested "
                           "FROM codeset_decisions ORDER BY id").fetchall()
        icd = con.execute("SELECT icd_version FROM analyses").fetchone()[0]
    finally:
        con.close()
    assert [r[:4] for r in rows] == [("accept", first, None, "Coder Browser"),
                                     ("move", last, len(codes) - 1, "Coder Browser"),
                                     ("remove", second, None, "Coder Browser")]
    assert icd and all(r[4] == icd for r in rows) and all(r[5] for r in rows)
    assert json.loads(rows[-1][6]) == final and json.loads(rows[0][7]) == codes
