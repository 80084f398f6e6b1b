"""Review: one note's decisions by every reviewer, its "fully reviewed" mark, and adjudication of conflicts."""

from __future__ import annotations

import streamlit as st

from db.errors import FeedbackError
from ui.resources import get_db_engine
from ui.review import ReviewError, recent_analyses, stored_ids
from ui.review_notes import adjudicate, is_adjudicator, load_note_review, mark_fully_reviewed, review_frame

state = st.session_state
engine = get_db_engine()
reviewer = (state.get("reviewer") or "").strip()
st.title("Review a note")

rows = recent_analyses(engine, limit=50)
ids = [r["analysis"] for r in rows]
current = None
if state.get("analysis"):
    try:
        current = stored_ids(state["analysis"], timeout=30).analysis_id
    except ReviewError:
        current = None
if current is not None and current not in ids:
    ids.insert(0, current)
if not ids:
    st.info("No stored analysis yet. Analyze a note first; its decisions appear here.")
    st.stop()
labels = {r["analysis"]: f"#{r['analysis']} {r['source'] or r['note id']} · {r['start'][:60]}" for r in rows}
analysis_id = st.selectbox("Note", ids, index=ids.index(current) if current in ids else 0, key="review_pick",
                           format_func=lambda i: labels.get(i, f"#{i} (open on Analyze)"))

flash = state.pop("review_flash", None)
if flash:
    (st.success if flash[0] == "success" else st.error)(flash[1])


def _act(action, *args, **kwargs) -> None:
    """Button callback: run one write; remember what to say after the rerun."""
    try:
        message = action(*args, **kwargs)
    except ReviewError as err:
        state.review_flash = ("error", str(err))
    except FeedbackError as err:
        state.review_flash = ("error", f"Not recorded: {err.message}")
    else:
        state.review_flash = ("success", message)


def _mark(reviewed: bool) -> str:
    mark_fully_reviewed(engine, reviewer=state.get("reviewer"), analysis_id=analysis_id, reviewed=reviewed)
    return "Marked fully reviewed: exports take this note as gold." if reviewed else "The mark is cleared."


def _resolve(option: dict) -> str:
    adjudicate(engine, reviewer=state.get("reviewer"), option=option)
    return f"Resolved as the adjudicator: {option['decision']} {option.get('code') or ''}".strip()


view = load_note_review(engine, analysis_id)
with st.container(border=True, key="review_mark"):
    if view.reviewed_at is not None:
        st.success(f"Fully reviewed by **{view.reviewed_by}** at {view.reviewed_at:%Y-%m-%d %H:%M} UTC: exported "
                   "as gold; entities nobody decided on stand as the model gave them.", icon=":material/verified:")
        st.button("Clear the mark", key="review_unmark", on_click=_act, args=(_mark, False))
    else:
        st.info("Not marked fully reviewed: exports leave it out by default, or give it as silver (spans nobody "
                "decided on are the model's, not gold).", icon=":material/pending:")
        st.button("Mark fully reviewed", key="review_mark_btn", type="primary", on_click=_act, args=(_mark, True),
                  disabled=not reviewer, help="Every entity and code of this note has been looked at.")
    if not reviewer:
        st.caption("Enter your name in the sidebar to mark the note or resolve conflicts.")

m1, m2, m3 = st.columns(3)
m1.metric("Reviewers", len(view.reviewers))
m2.metric("Items decided", len(view.items))
m3.metric("Open conflicts", len(view.conflicts))
if not view.items:
    st.info("Nobody has decided on this note yet.")
else:
    st.subheader("Who decided what")
    st.dataframe(review_frame(view), hide_index=True, key="review_matrix")

if view.conflicts:
    st.subheader("Conflicts")
    if not is_adjudicator(reviewer):
        names = ", ".join(view.adjudicators) or "none set (CLINICAL_NLP_ADJUDICATORS)"
        st.warning(f"{len(view.conflicts)} conflict(s). An adjudicator resolves them here: {names}.")
    for n, item in enumerate(view.conflicts):
        what = "entity" if item.target == "entity" else f"code {item.code}"
        with st.container(border=True, key=f"conflict-{n}"):
            st.markdown(f"**{item.text}** ({item.label}) · {what}: "
                        + "; ".join(f"{r}: {d}" for r, d in item.by_reviewer.items()))
            if is_adjudicator(reviewer):
                row = st.container(horizontal=True)
                for k, option in enumerate(item.options):
                    row.button(f"Take {', '.join(option['by'])}: {option['shown']}", key=f"adj-{n}-{k}",
                               on_click=_act, args=(_resolve, option))
