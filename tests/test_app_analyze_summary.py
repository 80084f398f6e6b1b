"""Issue #17 item 8: the Analyze page shows the summary (key sentences in note order) with entities and codes.

Real engine, real SQLite file, Streamlit's AppTest; the page helpers are those of ``test_app_analyze_input``.
"""

from __future__ import annotations

import re

import pytest
from test_app_analyze_input import NOTE, db_url, press, shown_html, start  # noqa: F401 (db_url: fixture)

from ui.summary_view import key_sentences_html

pytestmark = pytest.mark.usefixtures("db_url")


def test_the_analyze_page_shows_key_sentences_with_entities_and_codes():
    at = start()
    at.text_area(key="note_text").input(NOTE)
    at = press(at)
    block = next((h for h in shown_html(at) if 'class="key-sentences"' in h), None)
    assert block is not None, "no summary on the Analyze page"
    spans = [(int(a), int(b)) for a, b in re.findall(r'<li class="key-sent" data-start="(\d+)" data-end="(\d+)"',
                                                     block)]
    assert spans and spans == sorted(spans), spans  # note order
    assert [s["start"] for s in at.session_state["analysis"]["summary"]["sentences"]] == [a for a, _ in spans]
    entities = at.session_state["analysis"]["result"]["entities"]
    inside = [e for e in entities if e.get("codes") and any(a <= e["start"] and e["end"] <= b for a, b in spans)]
    assert inside, "the fixture note's key sentences hold coded entities"
    assert '<mark class="ent ' in block
    assert any(e["codes"][0]["code"] in block for e in inside), "no entity code shown beside the key sentences"
    # and the entity highlights with the review panel are still on the same screen
    assert any('class="ent-note"' in h for h in shown_html(at))


def test_key_sentences_html_highlights_only_entities_inside_each_sentence():
    text = "Chest pain. No fever today."
    sentences = [{"start": 12, "end": 27, "rank": 1, "score": 0.9}, {"start": 0, "end": 11, "rank": 2, "score": 0.5}]
    entities = [
        {"start": 0, "end": 10, "text": "Chest pain", "label": "DIAG", "assertion": "present",
         "codes": [{"code": "R07.9", "description": "Chest pain, unspecified"}]},
        {"start": 15, "end": 20, "text": "fever", "label": "DIAG", "assertion": "negated",
         "codes": [{"code": "R50.9", "description": "Fever, unspecified"}]},
        {"start": 21, "end": 26, "text": "today", "label": "DIAG", "assertion": "present", "codes": [],
         "note": "no confident code"},
    ]
    out = key_sentences_html(text, sentences, entities)
    assert out.index('data-start="0"') < out.index('data-start="12"')  # note order, not rank order
    assert out.count('<mark class="ent ') == 3
    assert "today: no confident code" in out
    assert "Chest pain → <b>R07.9</b>" in out and "fever (negated) → <b>R50.9</b>" in out
    assert "Chest pain → <b>R07.9</b>" not in key_sentences_html(text, sentences, entities, show=[1])


def test_key_sentences_are_withheld_in_the_redacted_view():
    at = start()
    at.text_area(key="note_text").input(NOTE)
    at = press(at)
    at.toggle(key="redacted_view").set_value(True).run()
    assert not at.exception, at.exception
    assert not any('class="key-sentences"' in h for h in shown_html(at)), "original sentences beside a redacted note"
    assert any("Hidden in the redacted view" in c.value for c in at.caption)
