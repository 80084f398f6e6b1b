"""Batch: analyse many notes from a .zip of .txt files, a .csv or a .jsonl, and download the results."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from engine.batch import analyze_with_stats
from engine.inputs import BadNote, Note
from engine.types import LABELS
from ui.ingest import IngestError, read_batch
from ui.monitoring_store import store_batch_stats
from ui.resources import engine_error_message, get_db_engine, get_pipeline

CHUNK = 8
state = st.session_state
st.title("Batch analysis")
st.caption("Upload a .zip of .txt notes, a .csv with `id` and `text` columns, or .jsonl with one "
           '`{"id": …, "text": …}` a line. Results are the engine\'s analysis objects, one per note.')
upload = st.file_uploader("Notes", key="batch_upload")

if st.button("Run batch", type="primary", key="run_batch", disabled=upload is None) and upload is not None:
    try:
        batch = read_batch(upload.name, upload.getvalue())
    except IngestError as err:
        st.error(str(err), icon=":material/warning:")
    else:
        try:
            pipeline = get_pipeline()
        except Exception as err:
            st.error(engine_error_message(err), icon=":material/error:")
        else:
            results, problems, monitored = [], list(batch.problems), 0
            bar = st.progress(0.0, text=f"0 / {len(batch.notes)} notes")
            for i in range(0, len(batch.notes), CHUNK):
                chunk = [Note(note_id, text) for note_id, text in batch.notes[i : i + CHUNK]]
                outs, lines = analyze_with_stats(pipeline, chunk, pipeline.settings.monitor.low_confidence)
                for note, out in zip(chunk, outs, strict=True):
                    if isinstance(out, BadNote):
                        problems.append(f"{note.id}: {out.error}")
                    else:
                        results.append(out)
                try:  # monitoring (issue 24): each chunk's statistics, numbers only, as the CLI batch and API do
                    monitored += store_batch_stats(get_db_engine(), lines)
                except Exception as err:  # the results are still shown and downloadable
                    problems.append(f"monitoring statistics not stored: {type(err).__name__}: {err}")
                done = min(i + CHUNK, len(batch.notes))
                bar.progress(done / len(batch.notes), text=f"{done} / {len(batch.notes)} notes")
            state.batch_result = {"name": upload.name, "results": results, "problems": problems,
                                  "monitored": monitored}

outcome = state.get("batch_result")
if not outcome:
    st.stop()

if outcome["problems"]:
    with st.expander(f"{len(outcome['problems'])} problems (those notes were skipped)", expanded=True):
        st.code("\n".join(outcome["problems"]), language=None)
rows = []
for r in outcome["results"]:
    ents = r["entities"]
    codes = [e["codes"][0]["code"] for e in ents if e["codes"]]
    rows.append({"id": r["id"], "entities": len(ents),
                 **{lab: sum(e["label"] == lab for e in ents) for lab in LABELS},
                 "not present": sum(e["assertion"] != "present" for e in ents),
                 "top codes": ", ".join(dict.fromkeys(codes)), "ms": r["timings_ms"].get("total")})
st.success(f"{len(outcome['results'])} notes analysed from {outcome['name']}; monitoring statistics of "
           f"{outcome.get('monitored', 0)} stored (numbers only, no text).")
table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, key="batch_table")
stem = outcome["name"].rsplit(".", 1)[0]
d1, d2 = st.columns(2)
d1.download_button("Download results (.jsonl)", "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                         for r in outcome["results"]),
                   file_name=f"{stem}-analysis.jsonl", mime="application/x-ndjson", key="dl_batch_jsonl")
d2.download_button("Download table (.csv)", table.to_csv(index=False), file_name=f"{stem}-summary.csv",
                   mime="text/csv", key="dl_batch_csv")
