"""Analyze: a note in, entities highlighted, and a review of each entity's ICD-10-CM suggestions."""

from __future__ import annotations

import streamlit as st

from engine.types import LABELS
from ui.ingest import IngestError, extract_note, validate_text
from ui.panels import entity_table, missed_entity_form, recent_panel, reopen_analysis, review_panel
from ui.render import highlight_entities, legend_html
from ui.resources import engine_error_message, get_db_engine, get_pipeline
from ui.review import find_stored_analysis, redacted_view, store_in_background

ASSERTIONS = ("present", "negated", "possible", "hypothetical", "family", "historical")
state = st.session_state
state.setdefault("decided", {})
state.setdefault("analysis_run", 0)

st.title("Analyze a note")
with st.form("analyze_form", border=False):
    left, right = st.columns([3, 1])
    text = left.text_area("Note text", height=220, key="note_text", placeholder="Paste a clinical note…")
    note_id = right.text_input("Note id (optional)", key="note_id")
    upload = right.file_uploader("…or upload .txt, .docx or .pdf", key="note_upload",
                                 help="While a file is attached it is analysed instead of the text box.")
    rerun = right.checkbox("Re-run even if analysed before", key="rerun",
                           help="Off: the same text with the same model versions reopens the stored analysis.")
    submitted = right.form_submit_button("Analyze", type="primary", key="analyze", width="stretch")

if submitted:
    try:
        source = upload.name if upload is not None else "pasted"
        note_text = extract_note(upload.name, upload.getvalue()) if upload is not None else validate_text(text)
    except IngestError as err:
        st.error(str(err), icon=":material/warning:")
    else:
        previous = None if rerun else find_stored_analysis(get_db_engine(), note_text, get_pipeline().models)
        if previous is not None:
            reopen_analysis(previous)
            st.info(f"Reopened stored analysis {previous}: same text, same model versions. Tick "
                    "**Re-run even if analysed before** to analyse it again.", icon=":material/history:")
        else:
            try:
                with st.spinner("Analysing the note…"):
                    result = get_pipeline().analyze(note_text, note_id.strip() or None).to_dict()
            except Exception as err:
                st.error(engine_error_message(err, "analyse this note"), icon=":material/error:")
            else:
                state.analysis_run += 1
                state.analysis = {
                    "text": note_text,
                    "result": result,
                    "source": source,
                    # Stored in the background so the result shows at once; decisions wait for the ids.
                    "stored": store_in_background(get_db_engine(), note_text, result, source),
                    "run": state.analysis_run,
                    "added": [],
                }

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
    st.caption(
        f"{len(entities)} entities · {timings.get('total', 0):.0f} ms in the engine · models: "
        + ", ".join(f"{k} {v}" for k, v in result.get("models", {}).items())
    )
    shown = [i for i, e in enumerate(entities) if e["label"] in types and e["assertion"] in assertions]
    note_col, review_col = st.columns([3, 2], gap="medium")
    with note_col:
        st.html(legend_html())
        view_text, view_ents = (redacted_view(note_text, result) if st.toggle(
            f"Redacted view · the feedback store keeps: {get_pipeline().settings.store_text}", key="redacted_view",
            help="store_text (CLINICAL_NLP_STORE_TEXT): deidentified, original or none.") else (note_text, entities))
        st.html(highlight_entities(view_text, view_ents, show=shown, marker={"run": analysis["run"]}))
    with review_col:
        entity_table(analysis, shown)
        review_panel(analysis, shown)
    with st.expander("Add an entity the engine missed"):
        missed_entity_form(analysis)
    st.html(f'<div class="analysis-done" data-run="{analysis["run"]}" data-entities="{len(entities)}"'
            f' data-engine-ms="{timings.get("total", 0):.1f}"></div>')

st.divider()
recent_panel()
