"""The encounter's code set on the review page (issue 19 item 6): what a coder would submit, and their decisions.

Shown above the mention list: one row per line of the code set (sequence, code, description, its reason on hover),
with buttons to accept a line, move it up or down, or remove it. Each click is one decision
(:mod:`engine.encounter.decisions`), applied by the engine (which checks Excludes1 pairs) and stored with the
reviewer, the time and the model versions (:mod:`db.repository.codeset`); the page shows the code set with every
stored decision of the analysis replayed, so a reopened analysis shows what was decided. A stored decision whose
code is no longer a line (a newer engine built a different code set) is reported by name and the engine's code set
is shown instead.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from db.errors import FeedbackError
from db.repository.codeset import codeset_decisions, record_codeset_decision
from db.session import session_scope
from engine.encounter import Encounter, analysis_from_dict, build_encounter, record_decisions, replay
from engine.errors import EngineError
from ui.render import md_escape
from ui.resources import get_db_engine, get_pipeline
from ui.review import ReviewError, require_reviewer, stored_ids


def suggested_encounter(analysis: dict[str, Any]) -> Encounter:
    """The engine's code set of the analysis under review (built once per analysis shown, kept in it)."""
    built = analysis.get("encounter")
    if built is None:
        pipeline = get_pipeline()
        built = build_encounter(pipeline, analysis_from_dict(analysis["result"]), analysis["text"], "auto")
        analysis["encounter"] = built
    return built


def stored_decisions(engine: Any, analysis_id: int) -> list[dict[str, Any]]:
    """The analysis's stored code-set decisions in the engine's decision form, in order."""
    with session_scope(engine, write=False) as session:
        return [{"action": r.action, "code": r.code, "to": r.to_sequence, "note": r.comment}
                for r in codeset_decisions(session, analysis_id)]


def current_encounter(analysis: dict[str, Any]) -> tuple[Encounter, str | None]:
    """The code set with the stored decisions replayed, and the message when they could not be (else ``None``)."""
    base = suggested_encounter(analysis)
    stored = analysis["stored"]
    if not stored.done() or stored.exception() is not None:
        return base, None  # a fresh analysis not yet stored has no decisions
    decisions = stored_decisions(get_db_engine(), stored.result().analysis_id)
    if not decisions:
        return base, None
    builder, icd = get_pipeline().stage("encounter"), get_pipeline().stage("icd")
    try:
        return replay({"setting": base.setting, "suggested": [], "decisions": decisions, "final": []}, base,
                      builder.conventions, icd.describe), None
    except EngineError as err:
        return base, f"The stored code-set decisions do not apply to this code set: {err.message}"


def decide(analysis: dict[str, Any], action: str, code: str, to: int | None = None) -> None:
    """Button callback: apply one decision to the current code set and store it (the outcome goes in a flash)."""
    state = st.session_state
    try:
        reviewer = require_reviewer(state.get("reviewer"))
        analysis_id = stored_ids(analysis).analysis_id
        current, problem = current_encounter(analysis)
        if problem:
            raise ReviewError(problem)
        builder, icd = get_pipeline().stage("encounter"), get_pipeline().stage("icd")
        decision = {"action": action, "code": code, **({"to": to} if to is not None else {})}
        after, record = record_decisions(current, [decision], builder.conventions, icd.describe)
        suggested = [ln.code for ln in sorted(suggested_encounter(analysis).codes, key=lambda ln: ln.sequence)]
        with session_scope(get_db_engine()) as session:
            record_codeset_decision(session, analysis_id=analysis_id, reviewer=reviewer, action=action, code=code,
                                    to=to, setting=after.setting, suggested=suggested, final=list(record.final),
                                    conventions=f"{builder.version} {record.conventions}")
    except ReviewError as err:
        state.codeset_flash = ("error", str(err))
        return
    except (EngineError, FeedbackError) as err:
        state.codeset_flash = ("error", f"Not recorded: {err.message}")
        return
    where = f" to {to}" if action == "move" else ""
    state.codeset_flash = ("success", f"Recorded: {action} {code}{where} in the code set")


def _key(code: str) -> str:
    return code.replace(".", "_")


def codeset_panel(analysis: dict[str, Any]) -> None:
    """The encounter's code set with accept / up / down / remove per line, its conflicts and what it left out."""
    try:
        enc, problem = current_encounter(analysis)
    except Exception as err:  # the code set is an addition: the mention review below still works without it
        st.error(f"The code set could not be built: {err}")
        return
    with st.container(border=True, key="codeset_panel"):
        st.markdown(f"**Code set** · {enc.setting} · {len(enc.codes)} line{'s' if len(enc.codes) != 1 else ''}")
        st.caption(enc.setting_reason or "")
        flash = st.session_state.pop("codeset_flash", None)
        if flash:
            (st.success if flash[0] == "success" else st.error)(flash[1])
        if problem:
            st.error(problem)
        if not enc.codes:
            st.caption("No diagnosis to code: the code set is empty.")
        for line in sorted(enc.codes, key=lambda ln: ln.sequence):
            k, n = _key(line.code), line.sequence
            with st.container(key=f"cs-row-{k}"):
                text, acc, up, down, rem = st.columns([12, 1, 1, 1, 1], gap="small", vertical_alignment="center")
            status = {"accepted": " · **accepted**", "added": " · **added**"}.get(line.status, "")
            text.markdown(f"{n}. `{line.code}` {md_escape(line.description)}{status}", help=line.reason)
            acc.button("", key=f"cs-acc-{k}", icon=":material/check:", help=f"Accept {line.code}", type="tertiary",
                       on_click=decide, args=(analysis, "accept", line.code), disabled=line.status == "accepted")
            up.button("", key=f"cs-up-{k}", icon=":material/arrow_upward:", help=f"Move {line.code} up",
                      type="tertiary", on_click=decide, args=(analysis, "move", line.code, n - 1), disabled=n == 1)
            down.button("", key=f"cs-down-{k}", icon=":material/arrow_downward:", help=f"Move {line.code} down",
                        type="tertiary", on_click=decide, args=(analysis, "move", line.code, n + 1),
                        disabled=n == len(enc.codes))
            rem.button("", key=f"cs-rem-{k}", icon=":material/delete:", help=f"Remove {line.code}", type="tertiary",
                       on_click=decide, args=(analysis, "remove", line.code))
        for conflict in enc.conflicts:
            st.caption(f"Excludes1 {' / '.join(conflict.codes)}: {md_escape(conflict.reason)}"
                       + (f" · {md_escape(conflict.flag)}" if conflict.flag else ""))
        st.html(f'<div class="codeset-done" data-run="{analysis["run"]}" '
                f'data-codes="{" ".join(ln.code for ln in sorted(enc.codes, key=lambda ln: ln.sequence))}"></div>')
