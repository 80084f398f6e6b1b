"""Clinical NLP review app: the ``st.navigation`` router.

Runs on every page load: asks for the reviewer's name (required before any decision is recorded), warms the
engine once per process (so the first analysis does not pay for model loading) and runs the chosen page.
Launch with ``streamlit run app.py``; the feedback database is ``$CLINICAL_NLP_DB_URL`` (default under ``db/``).
"""

from __future__ import annotations

import os

# Before torch is first imported (by the engine, below): OpenMP worker threads that sleep instead of spinning between
# operations. The web server and, on small machines, the browser share the cores with the engine, and spinning
# threads take CPU from them (see docs/benchmarks.md, "The app and OpenMP"); the standalone engine is no slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st

from ui.render import APP_CSS
from ui.resources import engine_error_message, get_db_engine, get_pipeline

st.set_page_config(page_title="Clinical NLP review", page_icon=":material/stethoscope:", layout="wide")

PAGES = [
    st.Page("app_pages/analyze.py", title="Analyze", icon=":material/search:", default=True),
    st.Page("app_pages/summary.py", title="Summary", icon=":material/summarize:", url_path="summary"),
    st.Page("app_pages/review.py", title="Review", icon=":material/rule:", url_path="review"),
    st.Page("app_pages/history.py", title="History", icon=":material/monitoring:", url_path="history"),
    st.Page("app_pages/export.py", title="Export", icon=":material/download:", url_path="export"),
    st.Page("app_pages/models.py", title="Models", icon=":material/model_training:", url_path="models"),
    st.Page("app_pages/batch.py", title="Batch", icon=":material/folder_zip:", url_path="batch"),
    st.Page("app_pages/monitoring.py", title="Monitoring", icon=":material/query_stats:", url_path="monitoring"),
]

# The page scripts live in app_pages/, not pages/: Streamlit treats a folder named pages/ as a legacy multipage app
# and, on a fresh server, serves /analyze from it directly, bypassing this router (no sidebar, no warm engine).
page = st.navigation(PAGES)
st.html(APP_CSS)

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
    get_db_engine()
except Exception as err:
    st.sidebar.error(f"The feedback database could not be opened: {err}")
try:
    get_pipeline()
except Exception as err:  # the review pages still work without the engine
    st.sidebar.error(engine_error_message(err))

page.run()
