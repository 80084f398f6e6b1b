"""Issue #17 item 6: a code correction showed "corrected" without the new code; History's "code" column held the
corrected code (the database keeps code and corrected_code apart); the "Over time" axis ticked milliseconds for one
day of data.

Real SQLite file, real repository queries, real Plotly figures, the real app in AppTest.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from streamlit.testing.v1 import AppTest

from db import repository
from db.session import init_db, session_scope
from ui.charts import acceptance, acceptance_chart, decisions_frame

REPO = Path(__file__).resolve().parent.parent
NOTE = (REPO / "tests" / "fixtures" / "app" / "note_short.txt").read_text(encoding="utf-8") + "\nCorrect a code."


def test_history_keeps_the_suggested_code_and_the_corrected_code_apart(app_db_url):
    text = "Chest pain, likely myocardial infarction."
    start = text.index("myocardial")
    result = {"entities": [{"start": start, "end": len(text) - 1, "label": "DIAG", "score": 0.9,
                            "codes": [{"code": "I21.9", "description": "Acute MI", "score": 0.8}]}],
              "models": {"ner": "t"}}
    with session_scope(init_db(app_db_url)) as session:
        analysis = repository.save_analysis(session, repository.save_note(session, text), result)
        sid = analysis.suggestions[0].id
        repository.record_decision(session, suggestion_id=sid, reviewer="ann", decision="correct", target="code",
                                   code="I21.9", corrected_code="I25.10")
    with session_scope(init_db(app_db_url), write=False) as session:
        (view,) = repository.list_decisions(session)
    assert (view.code, view.corrected_code) == ("I21.9", "I25.10")
    frame = decisions_frame([view.to_dict()])
    assert frame.loc[0, "chapter"].startswith("I00")  # the chapter follows the corrected code


def test_over_time_axis_is_by_day_not_milliseconds():
    when = dt.datetime(2026, 12, 7, 10, 0)
    rows = [{"when": when + dt.timedelta(minutes=m), "reviewer": "ann", "decision": d, "target": "entity",
             "label": "DIAG", "code": None, "corrected_code": None} for m, d in enumerate(["accept", "reject"])]
    fig = acceptance_chart(acceptance(decisions_frame(rows), "day"), "day", "Over time")
    assert list(fig.data[0].x) == ["2026-12-07"]
    assert fig.layout.xaxis.type == "category"


def test_code_row_shows_the_corrected_code(app_db_url):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=900)
    at.run()
    at.sidebar.text_input(key="reviewer").input("Dr Fix")
    at.run()
    at.text_area(key="note_text").input(NOTE)
    next(b for b in at.button if b.label == "Analyze").click()
    at.run()
    at.session_state["analysis"]["stored"].result(timeout=60)
    run = at.session_state["analysis"]["run"]
    pos = at.selectbox(key=f"review_entity_{run}").value
    top = at.session_state["analysis"]["result"]["entities"][pos]["codes"][0]["code"]
    at.text_input(key=f"code-search-{pos}").input("I10").run()
    at.button(key=f"code-fix-{pos}").click()
    at.run()
    assert not at.exception, at.exception
    rows = [m.value for m in at.markdown if m.value.startswith(f"`{top}`")]
    assert rows and "corrected to `I10`" in rows[0], rows
