"""The app's monitoring rows (issue 24): the Analyze page and the Batch page store per-analysis statistics with the
NER token statistics (``token_entropy``, ``o_share``) as the API and the CLI batch do. Streamlit's AppTest runs the
real app on the real engine (default models, CPU) and a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine.settings import REPO_ROOT

NOTE = (REPO_ROOT / "tests" / "fixtures" / "app" / "note_short.txt").read_text(encoding="utf-8")
FIRST_RUN_TIMEOUT = 900  # the first run of the process loads and warms the engine


def _start(page: str) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=300)
    at.run(timeout=FIRST_RUN_TIMEOUT)
    assert not at.exception, at.exception
    at.sidebar.text_input(key="reviewer").input("Dr Monitor")
    at.switch_page(page)
    return at.run()


def _click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def _stats_rows(url: str) -> list[tuple]:
    with sqlite3.connect(Path(url.removeprefix("sqlite:///"))) as con:
        return con.execute("SELECT source, external_id, analysis_id, n_entities, token_entropy, o_share, n_tokens "
                           "FROM analysis_stats ORDER BY id").fetchall()


def test_batch_page_stores_statistics_with_token_stats(app_db_url):
    at = _start("app_pages/batch.py")
    lines = [json.dumps({"id": "a", "text": NOTE}), "{broken", json.dumps({"id": "b", "text": "Denies chest pain."})]
    at.file_uploader(key="batch_upload").set_value(("notes.jsonl", "\n".join(lines).encode(), "application/json"))
    at = _click(at.run(), "Run batch")
    assert not at.exception and not at.error, [e.value for e in at.error]
    rows = _stats_rows(app_db_url)
    table = at.dataframe[0].value
    assert [(r[0], r[1], r[2]) for r in rows] == [("batch", "a", None), ("batch", "b", None)]  # not the broken line
    assert [r[3] for r in rows] == list(table["entities"])  # the same analyses as the page's table
    for _, _, _, _, entropy, o_share, n_tokens in rows:
        assert entropy is not None and entropy >= 0 and 0 < o_share <= 1 and n_tokens > 0
    assert any("monitoring statistics of 2 stored" in s.value for s in at.success)


def test_analyze_page_rows_carry_token_stats(app_db_url):
    at = _start("app_pages/analyze.py")
    at.text_area(key="note_text").input(NOTE)
    at = _click(at, "Analyze")
    assert not at.exception and not at.error, [e.value for e in at.error]
    stored = at.session_state["analysis"]["stored"].result(timeout=120)
    rows = _stats_rows(app_db_url)
    assert len(rows) == 1
    source, _, analysis_id, n_entities, entropy, o_share, n_tokens = rows[0]
    assert (source, analysis_id) == ("app", stored.analysis_id)
    assert n_entities == len(at.session_state["analysis"]["result"]["entities"]) > 0
    assert entropy is not None and entropy >= 0 and 0 < o_share <= 1 and n_tokens > 0


def test_store_analysis_keeps_the_engines_token_stats(tmp_path, pipeline):
    """The store step puts the AnalysisResult's token statistics (not in the contract dict) into the row."""
    from db.session import dispose_engines, init_db
    from ui.review import store_analysis

    result = pipeline.analyze(NOTE, "t1")
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    engine = init_db(url)
    assert "token_stats" not in result.to_dict()
    store_analysis(engine, NOTE, result.to_dict(), "paste")  # without: NULL, as before the fix
    store_analysis(engine, NOTE + " ", result.to_dict(), "paste", token_stats=result.token_stats)
    dispose_engines()
    without, with_stats = _stats_rows(url)
    assert without[4:] == (None, None, None)
    assert with_stats[4:] == (result.token_stats["token_entropy"], result.token_stats["o_share"],
                              result.token_stats["n_tokens"])
