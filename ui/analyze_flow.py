"""What pressing **Analyze** does: pick the note's source, read it, reopen or analyse it, and say what happened.

Any error clears the previous result from the screen, so a message is never read as being about the result
under it. When a file is attached while the text box also holds text, the file is analysed and a notice says so.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui.ingest import MAX_NOTE_BYTES, MAX_NOTE_CHARS, IngestError, read_note, validate_text
from ui.panels import reopen_analysis
from ui.resources import engine_error_message, get_db_engine, get_pipeline
from ui.review import find_stored_analysis, store_in_background

UPLOAD_LABEL = f"…or upload .txt, .docx or .pdf (up to {MAX_NOTE_CHARS:,} characters)"
UPLOAD_HELP = (f"One note of at most {MAX_NOTE_CHARS:,} characters ({MAX_NOTE_BYTES // (1024 * 1024)} MB a file). "
               "While a file is attached it is analysed instead of the text box, and the page says so.")
UPLOAD_LIMIT_MB = MAX_NOTE_BYTES // (1024 * 1024)
"""The uploader's own limit, so its "Limit … per file" line is the note limit, not ``server.maxUploadSize``."""


def _read(text: str, upload: Any) -> tuple[str, str]:
    """The note's text and source name, showing a notice for how it was read."""
    if upload is None:
        return validate_text(text), "pasted"
    note_text, notice = read_note(upload.name, upload.getvalue())
    if text and text.strip():
        st.warning(f"Analysed the attached file **{upload.name}**, not the text box. Remove the file "
                   "(✕ beside its name) to analyse the text box instead.", icon=":material/attach_file:")
    if notice:
        st.warning(notice, icon=":material/translate:")
    return note_text, upload.name


def _failed(message: str, icon: str) -> None:
    st.session_state.pop("analysis", None)  # the old result under a new error reads as this input's result
    st.error(message, icon=icon)


def submit_note(text: str, upload: Any, note_id: str, rerun: bool) -> None:
    """Analyse the attached file, else the text box; reopen the stored analysis of the same text unless ``rerun``.

    Args:
        text: The text box's content.
        upload: The uploader's file, or ``None``.
        note_id: The optional note id typed by the user.
        rerun: Analyse again even when this text was analysed with the same model versions.
    """
    state = st.session_state
    try:
        note_text, source = _read(text, upload)
    except IngestError as err:
        _failed(str(err), ":material/warning:")
        return
    previous = None if rerun else find_stored_analysis(get_db_engine(), note_text, get_pipeline().models)
    if previous is not None:
        reopen_analysis(previous)
        st.info(f"Reopened stored analysis {previous}: same text, same model versions. Tick "
                "**Re-run even if analysed before** to analyse it again.", icon=":material/history:")
        return
    try:
        with st.spinner("Analysing the note…"):
            analysed = get_pipeline().analyze(note_text, note_id.strip() or None)
            result = analysed.to_dict()
    except Exception as err:
        _failed(engine_error_message(err, "analyse this note"), ":material/error:")
        return
    state.analysis_run = state.get("analysis_run", 0) + 1
    state.analysis = {
        "text": note_text,
        "result": result,
        "source": source,
        # Stored in the background so the result shows at once; decisions wait for the ids.
        # token_stats: the NER's token statistics for monitoring, which the contract's dict does not carry
        "stored": store_in_background(get_db_engine(), note_text, result, source, analysed.token_stats),
        "run": state.analysis_run,
        "added": [],
    }
