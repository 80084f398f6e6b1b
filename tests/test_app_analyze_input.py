"""Issue #17 item 7 on the Analyze page: real engine, real SQLite file, Streamlit's AppTest.

An error clears the previous result; a file attached while the text box holds text says which one is analysed;
the uploader's limit matches the note limit; a Latin-1 file is decoded with a notice instead of refused.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from test_app import NOTE, click, db_url, start  # noqa: F401 (db_url: the fixture)

FILE_NOTE = "Chief complaint: fièvre and cough.\nAssessment: community-acquired pneumonia. Start amoxicillin."


pytestmark = pytest.mark.usefixtures("db_url")  # one SQLite store for the module, as test_app.py's


def press(at: AppTest) -> AppTest:
    at = click(at, "Analyze")
    assert not at.exception, at.exception
    return at


def shown_html(at: AppTest) -> list[str]:
    return [h.value for h in at.get("html")]


def test_an_error_clears_the_previous_result():
    at = start()
    at.text_area(key="note_text").input(NOTE)
    at = press(at)
    assert "analysis" in at.session_state
    assert any('class="ent-note"' in h for h in shown_html(at))
    at.text_area(key="note_text").input("   ")
    at = press(at)
    assert any("empty" in e.value for e in at.error), [e.value for e in at.error]
    assert "analysis" not in at.session_state
    assert not any('class="ent-note"' in h for h in shown_html(at)), "the previous result is still on screen"


def test_a_file_and_the_text_box_together_say_which_one_is_analysed():
    at = start()
    at.text_area(key="note_text").input(NOTE)
    at.file_uploader(key="note_upload").set_value(("visit.txt", FILE_NOTE.encode("utf-8"), "text/plain"))
    at = press(at)
    assert at.session_state["analysis"]["text"] == FILE_NOTE
    notices = [w.value for w in at.warning]
    assert any("visit.txt" in w and "text box" in w for w in notices), notices


def test_the_uploader_limit_is_the_note_limit():
    at = start()
    uploader = at.file_uploader(key="note_upload")
    assert uploader.proto.max_upload_size_mb == 2  # the app's own MAX_NOTE_BYTES, not server.maxUploadSize (60)
    assert "200,000 characters" in uploader.proto.label + uploader.proto.help


def test_a_latin1_file_is_decoded_with_a_notice():
    at = start()
    at.file_uploader(key="note_upload").set_value(("latin.txt", FILE_NOTE.encode("latin-1"), "text/plain"))
    at = press(at)
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["analysis"]["text"] == FILE_NOTE
    notices = [w.value for w in at.warning]
    assert any("latin.txt" in w and "not UTF-8" in w for w in notices), notices
