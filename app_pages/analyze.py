"""Analyze: a note in; its key sentences, entities highlighted with their codes, and a review of each entity."""

from __future__ import annotations

import streamlit as st

from engine.types import LABELS
from ui.analyze_flow import UPLOAD_HELP, UPLOAD_LABEL, UPLOAD_LIMIT_MB, submit_note
from ui.codeset import codeset_panel
from ui.panels import entity_table, missed_entity_form, recent_panel, review_panel
from ui.render import highlight_entities, legend_html
from ui.resources import get_pipeline
from ui.review import redacted_view
from ui.summary_view import summary_panel

ASSERTIONS = ("present", "negated", "possible", "hypothetical", "family", "historical")
state = st.session_state
state.setdefault("decided", {})
state.setdefault("analysis_run", 0)

st.title("Analyze a note")
with st.form("analyze_form", border=False):
    left, right = st.columns([3, 1])
    text = left.text_area("Note text", height=220, key="note_text", placeholder="Paste a clinical note…")
    note_id = right.text_input("Note id (optional)", key="note_id")
    upload = right.file_uploader(UPLOAD_LABEL, key="note_upload", help=UPLOAD_HELP, max_upload_size=UPLOAD_LIMIT_MB)
    rerun = right.checkbox("Re-run even if analysed before", key="rerun",
                           help="Off: the same text with the same model versions reopens the stored analysis.")
    submitted = right.form_submit_button("Analyze", type="primary", key="analyze", width="stretch")

if submitted:
    submit_note(text, upload, note_id, rerun)

f1, f2 = st.columns(2)
types = f1.multiselect("Entity types", LABELS, default=list(LABELS), key="filter_types")
assertions = f2.multiselect("Assertions", ASSERTIONS, default=list(ASSERTIONS), key="filter_assertions")

analysis = state.get("analysis")
if not analysis:
    st.info("Paste or upload a note, then press **Analyze**; or reopen a recent analysis below.")
    st.html(legend_html())
else:
    result, note_text = analysis["result"], analysis["text"]
    entities = result["entities"]
    timings = result.get("timings_ms", {})
    source = "the text box" if analysis["source"] == "pasted" else analysis["source"]
    st.caption(
        f"Analysed {source} · {len(entities)} entities · {timings.get('total', 0):.0f} ms in the engine · models: "
        + ", ".join(f"{k} {v}" for k, v in result.get("models", {}).items())
    )
    shown = [i for i, e in enumerate(entities) if e["label"] in types and e["assertion"] in assertions]
    note_col, review_col = st.columns([3, 2], gap="medium")
    with note_col:
        key_slot = st.container()  # filled last: the entities show first, the summary ~0.5 s after
        st.html(legend_html())
        view_text, view_ents = (redacted_view(note_text, result) if st.toggle(
            f"Redacted view · the feedback store keeps: {get_pipeline().settings.store_text}", key="redacted_view",
            help="store_text (CLINICAL_NLP_STORE_TEXT): deidentified, original or none.") else (note_text, entities))
        st.html(highlight_entities(view_text, view_ents, show=shown, marker={"run": analysis["run"]}))
    with review_col:
        codeset_panel(analysis)  # issue 19: the encounter's code set above the mention list
        entity_table(analysis, shown)
        review_panel(analysis, shown)
    with st.expander("Add an entity the engine missed"):
        missed_entity_form(analysis)
    st.html(f'<div class="analysis-done" data-run="{analysis["run"]}" data-entities="{len(entities)}"'
            f' data-engine-ms="{timings.get("total", 0):.1f}"></div>')
    with key_slot:
        summary_panel(analysis, shown, redacted=bool(state.get("redacted_view")))

st.divider()
recent_panel()
