"""Streamlit building blocks of the Analyze page: the entity table, the review panel and the missed-entity form.

Decisions go through :mod:`ui.review` (which requires the reviewer's name). What was decided in this session is
kept in ``st.session_state.decided`` so the table and the panel show it; the database stays the record.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from db.errors import FeedbackError
from engine.types import LABELS
from ui.ingest import find_occurrence
from ui.render import md_escape
from ui.resources import get_db_engine, get_pipeline
from ui.review import (
    ReviewError,
    add_missed_entity,
    load_analysis,
    recent_analyses,
    record_decision,
    stored_ids,
)


def _decide(analysis: dict[str, Any], position: int, decision: str, target: str, **extra: Any) -> None:
    """Button callback: record one decision and remember it for display."""
    state = st.session_state
    try:
        sid = stored_ids(analysis).suggestion_ids[position]
        record_decision(get_db_engine(), reviewer=state.get("reviewer"), suggestion_id=sid, decision=decision,
                        target=target, **extra)
    except ReviewError as err:
        state.flash = ("error", str(err))
        return
    except FeedbackError as err:
        state.flash = ("error", f"Not recorded: {err.message}")
        return
    state.decided[(analysis["run"], position, target, extra.get("code") or "")] = decision
    if extra.get("corrected_code"):
        key = (analysis["run"], position, extra.get("code") or "")
        state.setdefault("corrected", {})[key] = extra["corrected_code"]
    what = extra.get("corrected_code") or extra.get("code") or analysis["result"]["entities"][position]["text"]
    state.flash = ("success", f"Recorded: {decision} {target} {what}")


def _status(analysis: dict[str, Any], position: int, target: str, code: str = "") -> str:
    return st.session_state.decided.get((analysis["run"], position, target, code), "")


def entity_table(analysis: dict[str, Any], shown: list[int]) -> None:
    """One row per shown entity: type, assertion, trigger, top code with description, score and billable flag."""
    entities = analysis["result"]["entities"]
    rows = []
    for i in shown:
        e = entities[i]
        top = e["codes"][0] if e["codes"] else {}
        rows.append({
            "#": i, "entity": e["text"], "type": e["label"], "assertion": e["assertion"],
            "trigger": e.get("trigger") or "", "top code": top.get("code", ""),
            "description": top.get("description", e.get("note") or ""), "score": top.get("score"),
            "billable": top.get("billable"), "codes": len(e["codes"]),
            "review": ", ".join(f"{t}:{d}" for (a, p, t, _c), d in st.session_state.decided.items()
                                if a == analysis["run"] and p == i),
        })
    st.dataframe(pd.DataFrame(rows), hide_index=True, height=min(300, 38 + 35 * max(len(rows), 1)),
                 key="entity_table", column_config={"score": st.column_config.NumberColumn(format="%.2f")})


def review_panel(analysis: dict[str, Any], shown: list[int]) -> None:
    """Pick an entity; accept, reject or correct it and each of its codes (search ICD-10-CM to correct a code)."""
    state = st.session_state
    entities, note_text = analysis["result"]["entities"], analysis["text"]
    if not (state.get("reviewer") or "").strip():
        st.warning("Enter your name in the sidebar to record decisions.", icon=":material/person:")
    flash = state.pop("flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])
    stored = analysis["stored"]
    if stored.done() and stored.exception() is not None:
        st.error(f"This analysis could not be stored, so decisions are disabled: {stored.exception()}")
    if not shown:
        st.info("No entity matches the filters.")
        return
    default = next((k for k, i in enumerate(shown) if entities[i]["codes"]), 0)
    pos = st.selectbox(
        "Review entity", shown, index=default, key=f"review_entity_{analysis['run']}",
        format_func=lambda i: f"#{i} {entities[i]['text']} [{entities[i]['label']}, {entities[i]['assertion']}]",
    )
    ent = entities[pos]
    with st.container(border=True, key="review_panel"):
        st.markdown(f"**{md_escape(ent['text'])}** · {ent['label']} · {ent['assertion']}"
                    + (f" (trigger: *{md_escape(ent['trigger'])}*)" if ent.get("trigger") else "")
                    + (f" · section: {md_escape(ent['section'])}" if ent.get("section") else ""))
        row = st.container(horizontal=True)
        row.button("Entity right", key=f"ent-acc-{pos}", on_click=_decide, args=(analysis, pos, "accept", "entity"),
                   icon=":material/check:", help="The span and type are right.")
        row.button("Not an entity", key=f"ent-rej-{pos}", on_click=_decide, args=(analysis, pos, "reject", "entity"),
                   icon=":material/close:")
        with row.popover("Correct span / type", icon=":material/edit:"):
            new_label = st.selectbox("Type", LABELS, index=LABELS.index(ent["label"]), key=f"fix-label-{pos}")
            c_start = st.number_input("Start", 0, len(note_text), ent["start"], key=f"fix-start-{pos}")
            c_end = st.number_input("End", 0, len(note_text), ent["end"], key=f"fix-end-{pos}")
            st.caption(f"Span text: “{note_text[int(c_start):int(c_end)]}”")
            st.button("Save correction", key=f"ent-fix-{pos}", on_click=_decide,
                      args=(analysis, pos, "correct", "entity"),
                      kwargs={"corrected_label": new_label, "corrected_start": int(c_start),
                              "corrected_end": int(c_end)})
        if _status(analysis, pos, "entity"):
            st.caption(f"Entity: {_status(analysis, pos, 'entity')}")

        if not ent["codes"]:
            st.caption(ent.get("note") or "No ICD-10-CM suggestion for this entity.")
        for j, code in enumerate(ent["codes"]):
            done = _status(analysis, pos, "code", code["code"])
            new_code = st.session_state.get("corrected", {}).get((analysis["run"], pos, code["code"]))
            line = st.container(horizontal=True, vertical_alignment="center", key=f"code-row-{pos}-{j}")
            line.markdown(f"`{code['code']}` {md_escape(code['description'])}  \n"
                          f"score {code['score']:.2f} · {'billable' if code['billable'] else 'not billable'}"
                          + (f" · **corrected to `{new_code}`**" if done == "correct" and new_code
                             else f" · **{done}ed**" if done else ""), width="stretch")
            line.button("", key=f"code-acc-{pos}-{j}", on_click=_decide, icon=":material/check:",
                        help=f"Accept {code['code']}", args=(analysis, pos, "accept", "code"),
                        kwargs={"code": code["code"]})
            line.button("", key=f"code-rej-{pos}-{j}", on_click=_decide, icon=":material/close:",
                        help=f"Reject {code['code']}", args=(analysis, pos, "reject", "code"),
                        kwargs={"code": code["code"]})

        query = st.text_input("Correct the code: search ICD-10-CM by code or words", key=f"code-search-{pos}")
        if query.strip():
            try:
                found = get_pipeline().stage("icd").search(query.strip(), limit=20)
            except Exception as err:  # the search index is part of the engine; say why it is unavailable
                st.error(f"Search failed: {err}")
                found = []
            if found:
                pick = st.selectbox("Matches", found, key=f"code-pick-{pos}",
                                    format_func=lambda c: f"{c.code} {c.description}"
                                    + ("" if c.billable else " (not billable)"))
                top_code = ent["codes"][0]["code"] if ent["codes"] else None
                st.button("Use this code", key=f"code-fix-{pos}", on_click=_decide,
                          args=(analysis, pos, "correct", "code"),
                          kwargs={"code": top_code, "corrected_code": pick.code})
            else:
                st.caption("No ICD-10-CM code matches.")


def missed_entity_form(analysis: dict[str, Any]) -> None:
    """Add an entity the engine missed, located by its text (and which occurrence) in the note."""
    note_text = analysis["text"]
    with st.form("add_entity", clear_on_submit=True):
        mention = st.text_input("Mention exactly as written in the note", key="add_mention")
        a1, a2 = st.columns(2)
        label = a1.selectbox("Type", LABELS, key="add_label")
        occurrence = a2.number_input("Occurrence", 1, 1000, 1, key="add_occurrence",
                                     help="Which occurrence of the mention, counting from the start of the note.")
        if st.form_submit_button("Add entity", key="add_submit"):
            start = find_occurrence(note_text, mention, int(occurrence))
            if start < 0:
                st.error(f"“{mention}” (occurrence {int(occurrence)}) is not in the note.")
            else:
                try:
                    add_missed_entity(get_db_engine(), reviewer=st.session_state.get("reviewer"),
                                      analysis_id=stored_ids(analysis).analysis_id, start=start,
                                      end=start + len(mention), label=label)
                except ReviewError as err:
                    st.error(str(err))
                except FeedbackError as err:
                    st.error(f"Not recorded: {err.message}")
                else:
                    analysis["added"].append({"start": start, "end": start + len(mention), "text": mention,
                                              "label": label})
                    st.success(f"Added {label} “{mention}” at {start}.")
    if analysis["added"]:
        st.dataframe(pd.DataFrame(analysis["added"]), hide_index=True, key="added_table")


RECENT_COLUMNS = ["analysis", "when", "note id", "source", "entities", "decisions", "start"]


def reopen_analysis(analysis_id: int) -> None:
    """Make a stored analysis the one under review (also the reopen button's callback)."""
    state = st.session_state
    try:
        text, result, source, stored = load_analysis(get_db_engine(), analysis_id)
    except ReviewError as err:
        state.flash = ("error", str(err))
        return
    state.analysis_run = state.get("analysis_run", 0) + 1
    state.analysis = {"text": text, "result": result, "source": source, "stored": stored,
                      "run": state.analysis_run, "added": []}


def recent_panel(limit: int = 20) -> None:
    """The newest stored analyses, and a way to reopen one for review."""
    st.subheader("Recent analyses")
    rows = recent_analyses(get_db_engine(), limit)
    st.dataframe(pd.DataFrame(rows, columns=RECENT_COLUMNS), hide_index=True, key="recent_table",
                 height=min(300, 38 + 35 * max(len(rows), 1)))
    if rows:
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        pick = c1.selectbox("Reopen an analysis", [r["analysis"] for r in rows], key="reopen_pick",
                            format_func=lambda i: next(f"#{r['analysis']} {r['source']} · {r['start'][:50]}"
                                                       for r in rows if r["analysis"] == i))
        c2.button("Open for review", key="reopen", on_click=reopen_analysis, args=(pick,), icon=":material/history:")
