"""Clinical NLP review app: the ``st.navigation`` router.

Runs on every page load: asks for the reviewer's name (required before any decision is recorded), warms the
engine once per process (so the first analysis does not pay for model loading) and runs the chosen page.
Launch with ``streamlit run app.py``; the feedback database is ``$CLINICAL_NLP_DB_URL`` (default under ``db/``).
"""

from __future__ import annotations

import streamlit as st

from ui.resources import engine_error_message, get_pipeline

st.set_page_config(page_title="Clinical NLP review", page_icon="🩺", layout="wide")

PAGES = [
    st.Page("pages/analyze.py", title="Analyze", icon="🔎", url_path="analyze", default=True),
    st.Page("pages/summary.py", title="Summary", icon="📝", url_path="summary"),
    st.Page("pages/history.py", title="History", icon="📊", url_path="history"),
    st.Page("pages/export.py", title="Export", icon="📦", url_path="export"),
    st.Page("pages/models.py", title="Models", icon="🧠", url_path="models"),
    st.Page("pages/batch.py", title="Batch", icon="🗂️", url_path="batch"),
]

page = st.navigation(PAGES)

with st.sidebar:
    st.text_input(
        "Reviewer name",
        key="reviewer",
        placeholder="required to record decisions",
        help="Stored with every accept, reject, correction and summary decision you make.",
    )
    if not st.session_state.get("reviewer", "").strip():
        st.caption("Enter your name to record decisions.")

try:
    get_pipeline()
except Exception as err:  # the review pages still work without the engine
    st.sidebar.error(engine_error_message(err))

page.run()
