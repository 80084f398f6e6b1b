"""Export: the feedback store's dataset formats as downloads."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from db.errors import FeedbackError
from db.session import session_scope
from ui.resources import get_db_engine

st.title("Export reviewed data")
try:
    from db import export as db_export
except ImportError as err:
    st.error(f"The export module of the feedback store is not available: {err}")
    st.stop()

formats = list(getattr(db_export, "FORMATS", ("jsonl",)))
c1, c2, c3 = st.columns(3)
fmt = c1.selectbox("Format", formats, key="export_fmt")
reviewer = c2.text_input("Only this reviewer", key="export_reviewer").strip() or None
days = c3.date_input("Dates", value=(), key="export_dates", help="A start and an end day (inclusive).")
since = until = None
if isinstance(days, tuple | list) and len(days) == 2:
    since = dt.datetime.combine(days[0], dt.time())
    until = dt.datetime.combine(days[1] + dt.timedelta(days=1), dt.time())

if st.button("Prepare export", type="primary", key="export_run"):
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        out = Path(tmp) / "export"
        try:
            with session_scope(get_db_engine(), write=False) as session:
                manifest = db_export.export_dataset(session, fmt, out, since=since, until=until, reviewer=reviewer)
        except FeedbackError as err:
            st.error(err.message)
            st.stop()
        files = sorted(p for p in (out.rglob("*") if out.is_dir() else [out]) if p.is_file())
        payload = {str(p.relative_to(out if out.is_dir() else out.parent)): p.read_bytes() for p in files}
    st.session_state.export_result = {"fmt": fmt, "files": payload, "manifest": manifest}

result = st.session_state.get("export_result")
if result:
    manifest = result["manifest"]
    as_dict = manifest.to_dict() if hasattr(manifest, "to_dict") else dict(getattr(manifest, "__dict__", {}))
    st.success(f"{result['fmt']} export ready: {len(result['files'])} file(s).")
    with st.expander("Manifest"):
        st.json(as_dict, expanded=False)
    for name, data in result["files"].items():
        st.download_button(f"Download {name}", data, file_name=name.replace("/", "_"), key=f"dl-{name}")
    if len(result["files"]) > 1:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in result["files"].items():
                zf.writestr(name, data)
        st.download_button("Download all (.zip)", buf.getvalue(), file_name=f"feedback-{result['fmt']}.zip",
                           mime="application/zip", key="dl-all")
