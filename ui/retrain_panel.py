"""The Models page's retraining panel: retrain from feedback in the background, activate and roll back.

Only drawing lives here: the job (export, subprocess, progress) is :mod:`ui.retrain_jobs`, the database mirror of
the registry :mod:`ui.registry_mirror`. The panel polls the job's progress once a second in a fragment.
Activation and rollback write the registry (:mod:`engine.versions`); ``ui.resources.get_pipeline`` compares the
active version with the loaded one on every page run and reloads, so no restart is needed.
"""

from __future__ import annotations

import time
from typing import Any

from engine import versions
from engine.settings import Settings
from ui.model_activation import activate_through_gate, render_gate
from ui.registry_mirror import sync_db_mirror
from ui.retrain_jobs import (
    EXPORTS_DIR,
    RetrainOptions,
    base_corpus,
    base_data_spec,
    export_feedback,
    job_status,
    start_retrain,
)


def render_retrain_panel(db_engine: Any | None = None, settings: Settings | None = None) -> None:
    """Draw the retraining and activation controls (call it from the Models page).

    Args:
        db_engine: The feedback store's engine (default: ``ui.resources.get_db_engine()``).
        settings: Engine settings (default: from the environment).
    """
    import streamlit as st

    settings = settings or Settings()
    if db_engine is None:
        from ui.resources import get_db_engine

        db_engine = get_db_engine()

    st.subheader("Retrain from feedback")
    st.caption(
        "Fine-tunes the active model on every reviewer decision (accepted, rejected, corrected, added entities; kept "
        "and dropped summary sentences) plus the base training data, in the background. The candidate is promoted "
        "only if its strict F1 on the frozen test notes and the base dev set, overall and per type, is not worse "
        "than the active model's by more than the margin."
    )
    folder, usable = _base_corpus_field(settings)
    _start_form(db_engine, settings, folder, usable)

    @st.fragment(run_every=1.0)
    def _progress() -> None:
        job = job_status(settings)
        if job is None:
            st.caption("No retraining run yet.")
            return
        if job["state"] == "running":
            st.progress(min(max(job["fraction"], 0.0), 1.0), text=f"Retraining: {job['message']}")
        elif job["state"] == "done":
            verdict = "promoted and active" if job.get("promoted") else "refused by the gate"
            st.success(f"Last run ({job['started']}): {job.get('version')} {verdict}.")
            if job.get("report_text"):
                with st.expander("Gate report", expanded=not job.get("promoted")):
                    st.code(job["report_text"], language=None)
        else:
            st.error(f"Last run ({job['started']}) {job['state']}: {job['message']}")
            if job.get("log_tail"):
                with st.expander("Log"):
                    st.code(job["log_tail"], language=None)
        # A finished run changed the registry: redraw the whole page once so its tables show the new version.
        seen = st.session_state.get("_retrain_seen")
        if job["state"] != "running" and seen != (job["pid"], job["state"]):
            st.session_state["_retrain_seen"] = (job["pid"], job["state"])
            if seen is not None:
                _safe_sync(db_engine, settings)
                st.rerun(scope="app")
        elif job["state"] == "running":
            st.session_state["_retrain_seen"] = (job["pid"], "running")

    _progress()

    _activation(db_engine, settings)


def _base_corpus_field(settings: Settings) -> tuple[str, bool]:
    """The base corpus folder field and what the next run would train and gate on; returns ``(folder, usable)``."""
    import streamlit as st

    default = str(settings.base_corpus_dir) if settings.base_corpus_dir else ""
    folder = st.text_input(
        "Base corpus folder", value=default, key="base_corpus_dir",
        placeholder=f"default: {settings.data_dir / 'maccrobat'} when it exists",
        help="A BRAT folder (.txt notes with their .ann annotations) the run trains on besides the reviewed notes "
        "and holds a dev set out of for the gate. Set it for every run with CLINICAL_NLP_BASE_CORPUS_DIR "
        f"(labels: CLINICAL_NLP_BASE_CORPUS_LABELS, now {settings.base_corpus_labels!r}).",
    )
    status = base_corpus(settings, folder)
    if status.problem:
        st.error(f"Base corpus folder: {status.problem}. Fix the path (or clear it to use the default) to retrain.")
        return folder, False
    if not status.found:
        st.warning(
            "No base corpus found: a run would train on **0 base training documents** (the reviewed notes alone), "
            f"and the gate would compare the candidate with the active model on {status.gate_sets()}. A model "
            "that got worse on everything but those notes could be promoted. Point the base corpus folder above "
            "at a BRAT corpus, or set CLINICAL_NLP_BASE_CORPUS_DIR.",
            icon="⚠️",
        )
        return folder, True
    st.info(f"Base corpus `{status.spec}`: **{status.train_docs} base training documents**; the gate compares "
            f"on {status.gate_sets()}.")
    return folder, True


def _start_form(db_engine: Any, settings: Settings, folder: str = "", usable: bool = True) -> None:
    import streamlit as st

    with st.form("retrain_form"):
        c1, c2, c3 = st.columns(3)
        epochs = c1.number_input("Epochs", min_value=1, max_value=50, value=3, step=1)
        margin = c2.number_input("Margin (F1)", min_value=0.0, max_value=0.5, value=0.01, step=0.005, format="%.3f")
        device = c3.selectbox("Device", ["auto", "cpu", "cuda"], help="auto uses the GPU when there is one")
        submitted = st.form_submit_button("Retrain now", type="primary", disabled=not usable)
    if submitted:
        try:
            base_data = base_data_spec(settings, folder)
            work = EXPORTS_DIR / f"retrain-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
            exported = export_feedback(db_engine, work)
            if not exported["documents"] and not exported["summaries"]:
                st.warning("There are no reviewer decisions yet: review some notes first.")
            else:
                job = start_retrain(exported["decisions"], exported["summary_labels"],
                                    RetrainOptions(epochs=int(epochs), margin=float(margin), device=device,
                                                   base_data=base_data),
                                    settings, work)
                st.success(f"Retraining started (pid {job['pid']}) on {exported['documents']} reviewed analyses and "
                           f"{exported['summaries']} reviewed summaries.")
        except Exception as err:  # shown, never raised: the page must keep working
            st.error(f"Retraining could not start: {err}")


def _activation(db_engine: Any, settings: Settings) -> None:
    import streamlit as st

    st.subheader("Activate or roll back")
    listed = versions.list_versions(settings)
    active = versions.active_version(settings)
    ids = [v.id for v in listed]
    c1, c2 = st.columns([3, 1])
    choice = c1.selectbox("Version", ids, index=ids.index(active) if active in ids else 0, key="activate_choice",
                          format_func=lambda v: f"{v} ({next(i.status for i in listed if i.id == v)})"
                          + (" - active" if v == active else ""))
    given = render_gate(settings, choice, st.session_state.get("reviewer"))  # the audit gate's sign-off/override
    if c2.button("Activate", disabled=choice == active, key="activate_button"):
        _change(lambda: activate_through_gate(settings, choice, given), f"{choice} is now active.", db_engine,
                settings)
    if st.button("Roll back to the previously active version", key="rollback_button", disabled=active == versions.BASE
                 and len(versions.read_registry(settings).get("history", [])) <= 1):
        _change(lambda: versions.rollback(settings), "Rolled back.", db_engine, settings)


def _safe_sync(db_engine: Any, settings: Settings) -> None:
    import streamlit as st

    try:
        sync_db_mirror(db_engine, settings)
    except Exception as err:  # the mirror is for reporting; the registry already holds the truth
        st.warning(f"The database mirror of the model registry could not be updated: {err}")


def _change(action: Any, message: str, db_engine: Any, settings: Settings) -> None:
    import streamlit as st

    try:
        action()
    except Exception as err:
        st.error(str(err))
        return
    _safe_sync(db_engine, settings)
    st.toast(message)
    st.rerun()
