"""Issue #17 item 5: analysing the same note again stored a new analysis each time (six rows for one note).

The same text with the same model versions now reopens the stored analysis, unless "Re-run" is ticked. Real engine,
real SQLite file, Streamlit's AppTest.
"""

from __future__ import annotations

import os
from pathlib import Path

from streamlit.testing.v1 import AppTest

from db import repository
from db.session import init_db, session_scope

REPO = Path(__file__).resolve().parent.parent
NOTE = (REPO / "tests" / "fixtures" / "app" / "note_short.txt").read_text(encoding="utf-8") + "\nAnalysed twice."


def analyses_of_note(url: str) -> int:
    from sqlalchemy import func, select

    from db.models import Analysis, Note
    from db.repository.validation import sha256_text

    with session_scope(init_db(url), write=False) as session:
        stmt = select(func.count(Analysis.id)).join(Note).where(Note.sha256 == sha256_text(NOTE))
        return int(session.scalar(stmt))


def press_analyze(at: AppTest) -> AppTest:
    at.text_area(key="note_text").input(NOTE)
    next(b for b in at.button if b.label == "Analyze").click()
    at.run()
    assert not at.exception, at.exception
    at.session_state["analysis"]["stored"].result(timeout=60)
    return at


def test_same_text_same_models_reopens_the_stored_analysis_unless_rerun(app_db_url):
    assert os.environ["CLINICAL_NLP_DB_URL"] == app_db_url
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=900)
    at.run()
    at.sidebar.text_input(key="reviewer").input("Dr Twice")
    at.run()
    first = press_analyze(at).session_state["analysis"]["stored"].result().analysis_id
    assert analyses_of_note(app_db_url) == 1
    again = press_analyze(at)
    assert again.session_state["analysis"]["stored"].result().analysis_id == first
    assert analyses_of_note(app_db_url) == 1
    assert any(f"Reopened stored analysis {first}" in i.value for i in again.info)
    again.checkbox(key="rerun").check()
    rerun = press_analyze(again)
    assert rerun.session_state["analysis"]["stored"].result().analysis_id != first
    assert analyses_of_note(app_db_url) == 2
    with session_scope(init_db(app_db_url), write=False) as session:
        assert len(repository.list_analyses(session)) == 2
