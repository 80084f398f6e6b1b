"""History: reviewers' decisions with filters, and acceptance rates by type, chapter, reviewer and over time."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from engine.types import LABELS
from ui.charts import acceptance, acceptance_chart, decisions_frame
from ui.resources import get_db_engine
from ui.store import decision_rows

st.title("Review history")
f1, f2, f3, f4, f5 = st.columns(5)
reviewer = f1.text_input("Reviewer", key="hist_reviewer").strip() or None
decision = f2.selectbox("Decision", ["any", "accept", "reject", "correct", "add"], key="hist_decision")
label = f3.selectbox("Entity type", ["any", *LABELS], key="hist_label")
model_version = f4.text_input("Model version", key="hist_model").strip() or None
days = f5.date_input("Dates", value=(), key="hist_dates", help="A start and an end day (inclusive).")

since = until = None
if isinstance(days, tuple | list) and len(days) == 2:
    since = dt.datetime.combine(days[0], dt.time())
    until = dt.datetime.combine(days[1] + dt.timedelta(days=1), dt.time())

rows = decision_rows(get_db_engine(), since=since, until=until, reviewer=reviewer, model_version=model_version,
                     decision=None if decision == "any" else decision, label=None if label == "any" else label)
frame = decisions_frame(rows)
if frame.empty:
    st.info("No decisions match. Review entities on the Analyze page; they appear here.")
    st.stop()

reviewed = frame[frame["decision"] != "add"]
m1, m2, m3 = st.columns(3)
m1.metric("Decisions", len(frame))
m2.metric("Acceptance rate", f"{reviewed['accepted'].mean():.0%}" if len(reviewed) else "–")
m3.metric("Reviewers", frame["reviewer"].nunique())

columns = ["when", "reviewer", "role", "decision", "target", "label", "entity_text", "code", "corrected_code",
           "corrected_label", "model_version", "comment", "analysis_id"]
st.dataframe(frame[columns], hide_index=True, key="history_table",
             column_config={"when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")})

c1, c2 = st.columns(2)
for col, by, title in ((c1, "label", "By entity type"), (c2, "chapter", "By ICD-10-CM chapter (code decisions)"),
                       (c1, "reviewer", "By reviewer"), (c2, "day", "Over time")):
    table = acceptance(frame, by)
    if table.empty:
        col.caption(f"{title}: no accept/reject/correct decisions yet.")
    else:
        col.plotly_chart(acceptance_chart(table, by, title), key=f"chart-{by}")
