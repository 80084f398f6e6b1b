"""Export: the feedback store's dataset formats as downloads."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from db.errors import FeedbackError
from ui.resources import get_db_engine
from ui.store import EXPORT_FORMATS, export_dataset

st.title("Export reviewed data")
FORMAT_HELP = {
    "jsonl": "analyses with decisions and gold entities (JSON lines)",
    "conll": "IOB2 tokens with offsets",
    "docbin": "spaCy DocBin shards",
    "brat": "BRAT standoff .txt/.ann pairs",
    "summary_jsonl": "summaries with keep/drop per sentence",
}
c1, c2, c3, c4 = st.columns(4)
fmt = c1.selectbox("Format", EXPORT_FORMATS, key="export_fmt",
                   format_func=lambda f: f"{f}: {FORMAT_HELP.get(f, '')}")
reviewer = c2.text_input("Only this reviewer", key="export_reviewer").strip() or None
days = c3.date_input("Dates", value=(), key="export_dates", help="A start and an end day (inclusive).")
dev = c4.number_input("Dev split (fraction of notes)", 0.0, 0.9, 0.0, 0.05, key="export_split",
                      help="0 writes one file; otherwise train and dev files, split by note.")
o1, o2 = st.columns(2)
silver = o1.checkbox("Include notes not fully reviewed (silver)", key="export_silver",
                     help="Off: only notes marked fully reviewed on the Review page (gold). On: the others too, each "
                          "span labelled gold (a reviewer decided) or silver (the model's); the manifest lists both.")
conflicts = o2.selectbox("Notes with unresolved reviewer conflicts", ["exclude", "flag"], key="export_conflicts",
                         help="exclude: left out; flag: exported with their conflicts listed. Counted in the manifest.")
original = st.checkbox("Export original note text (not de-identified)", value=False, key="export_original",
                       help="Off (default): every exported note is de-identified. On: notes the store kept with their "
                            "original text (store_text=original) are exported as they are. The manifest records it.")
since = until = None
if isinstance(days, tuple | list) and len(days) == 2:
    since = dt.datetime.combine(days[0], dt.time())
    until = dt.datetime.combine(days[1] + dt.timedelta(days=1), dt.time())

if st.button("Prepare export", type="primary", key="export_run"):
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        out = Path(tmp) / "export"
        try:
            manifest = export_dataset(get_db_engine(), fmt, out, since=since, until=until, reviewer=reviewer,
                                      split=dev or None, include_silver=silver, conflicts=conflicts,
                                      deidentify=not original)
        except FeedbackError as err:
            st.error(err.message)
            st.stop()
        files = sorted(p for p in (out.rglob("*") if out.is_dir() else [out]) if p.is_file())
        payload = {str(p.relative_to(out if out.is_dir() else out.parent)): p.read_bytes() for p in files}
    st.session_state.export_result = {"fmt": fmt, "files": payload, "manifest": manifest}

result = st.session_state.get("export_result")
if result:
    manifest = result["manifest"]
    counts = ", ".join(f"{v} {k}" for k, v in manifest.counts.items()) or "nothing matched"
    st.success(f"{result['fmt']} export ready: {counts}.")
    notes = manifest.notes
    if notes:
        st.caption(f"Gold notes (fully reviewed): {len(notes['gold'])} · silver notes: {len(notes['silver'])} · "
                   f"with unresolved conflicts: {len(notes['conflict_excluded'])} left out, "
                   f"{len(notes['conflict_flagged'])} flagged.")
    with st.expander("Manifest"):
        st.json(manifest.to_dict(), expanded=False)
    for name, data in result["files"].items():
        st.download_button(f"Download {name}", data, file_name=name.replace("/", "_"), key=f"dl-{name}")
    if len(result["files"]) > 1:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in result["files"].items():
                zf.writestr(name, data)
        st.download_button("Download all (.zip)", buf.getvalue(), file_name=f"feedback-{result['fmt']}.zip",
                           mime="application/zip", key="dl-all")
