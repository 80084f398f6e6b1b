"""Summary: the note's key sentences, in note order, highlighted inside the full note; keep or drop each."""

from __future__ import annotations

import streamlit as st

from db.errors import FeedbackError
from engine.errors import EngineError
from ui.ingest import IngestError, validate_text
from ui.render import highlight_sentences, md_escape
from ui.resources import engine_error_message, get_db_engine, get_pipeline
from ui.review import ReviewError, record_sentence_decision, store_summary

state = st.session_state
st.title("Summarize a note")

analysed = (state.get("analysis") or {}).get("text", "")
if analysed and not state.get("summary_text"):
    state.summary_text = analysed
text = st.text_area("Note text", height=180, key="summary_text", placeholder="Paste a note, or analyse one first…")
k = st.slider("Sentences in the summary", 1, 20, 5, key="summary_k", help="The summary's length.")

current = state.get("summary")
stale = current is not None and (current["text"] != text or current["k"] != k)
if st.button("Summarize", type="primary", key="summarize") or (stale and current["text"] == text):
    try:
        note = validate_text(text)
        summary = get_pipeline().summarize(note, k=k).to_dict()
        version = get_pipeline().models.get("summarizer")
    except IngestError as err:
        st.error(str(err), icon=":material/warning:")
    except EngineError as err:
        st.error(f"The summarizer could not run: {err.message}", icon=":material/error:")
    except Exception as err:
        st.error(engine_error_message(err), icon=":material/error:")
    else:
        state.summary = {"text": note, "k": k, "result": summary, "version": version, "sentence_ids": None,
                         "decided": {}}
        current = state.summary

if not current:
    st.info("Paste a note (or analyse one on the Analyze page), then press **Summarize**.")
    st.stop()

sentences = current["result"]["sentences"]
dropped = [i for i, d in current["decided"].items() if d == "drop"]
st.caption(f"{len(sentences)} sentences · summarizer {current['version']} · rank 1 is the most salient"
           f" · the feedback store keeps: {get_pipeline().settings.store_text}")


def _decide(index: int, decision: str) -> None:
    """Button callback: store the summary on the first decision, then the keep/drop."""
    try:
        engine = get_db_engine()
        if current["sentence_ids"] is None:
            if not (state.get("reviewer") or "").strip():
                raise ReviewError("Enter your name in the sidebar (Reviewer name) before recording a decision.")
            current["sentence_ids"] = store_summary(engine, current["text"], current["result"], current["version"])
        record_sentence_decision(engine, reviewer=state.get("reviewer"), sentence_id=current["sentence_ids"][index],
                                 decision=decision)
    except (ReviewError, FeedbackError) as err:
        state.summary_flash = ("error", getattr(err, "message", str(err)))
        return
    current["decided"][index] = decision
    state.summary_flash = ("success", f"Recorded: {decision} sentence {index + 1}")


left, right = st.columns([3, 2], gap="medium")
with left:
    st.html(highlight_sentences(current["text"], sentences, dropped=dropped, marker={"k": current["k"]}))
with right:
    if not (state.get("reviewer") or "").strip():
        st.warning("Enter your name in the sidebar to record decisions.", icon=":material/person:")
    flash = state.pop("summary_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])
    for i, sent in enumerate(sentences):
        with st.container(border=True, key=f"sent-{i}"):
            status = current["decided"].get(i)
            st.markdown(f"**{i + 1}.** {md_escape(sent['text'])}  \n*rank {sent['rank']} · score {sent['score']:.2f}*"
                        + (f" · **{status}**" if status else ""))
            c1, c2 = st.columns(2)
            c1.button("Keep", key=f"keep-{i}", on_click=_decide, args=(i, "keep"), width="stretch")
            c2.button("Drop", key=f"drop-{i}", on_click=_decide, args=(i, "drop"), width="stretch")
