"""The Models page's retraining panel: export feedback, retrain in the background, activate and roll back.

Retraining runs as a separate process (``python -m engine retrain``), so the app stays responsive, a page reload
or another browser tab sees the same job, and a crash in training cannot take the app down. The job is described
by ``retrain_job.json`` in the registry folder; the process writes its progress to a JSON file next to it, which
the panel polls once a second in a fragment. Activation and rollback write the registry (:mod:`engine.versions`);
``ui.resources.get_pipeline`` compares the active version with the loaded one on every page run and reloads, so
no restart is needed. The database's ``model_versions`` table mirrors the registry for reporting (stage
``model_set``, one row per registry version) and is synced after every change made here.

Everything except :func:`render_retrain_panel` is plain Python, usable (and tested) without Streamlit.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine import versions
from engine.settings import REPO_ROOT, Settings

JOB_FILE = "retrain_job.json"
MIRROR_STAGE = "model_set"
EXPORTS_DIR = REPO_ROOT / "exports"

_processes: dict[int, subprocess.Popen[bytes]] = {}
"""Children started by this app process, so finished ones are reaped and their exit status is known."""


@dataclass(slots=True)
class RetrainOptions:
    """What the panel lets a person choose (the rest keeps the CLI's defaults)."""

    epochs: int = 3
    margin: float = 0.01
    device: str = "auto"
    base_data: str | None = None
    max_base_docs: int | None = None


def export_feedback(db_engine: Any, out_dir: Path) -> dict[str, Any]:
    """Export every entity decision and summary sentence decision as the retrainer's inputs.

    Returns:
        ``{"decisions": path, "summary_labels": path or None, "documents": n, "summaries": n}``.
    """
    from db.export import export_dataset
    from db.session import session_scope

    out_dir.mkdir(parents=True, exist_ok=True)
    decisions = out_dir / "decisions.jsonl"
    summaries = out_dir / "summary_labels.jsonl"
    with session_scope(db_engine, write=False) as session, decisions.open("w", encoding="utf-8") as handle:
        manifest = export_dataset(session, "jsonl", stream=handle)
    with session_scope(db_engine, write=False) as session, summaries.open("w", encoding="utf-8") as handle:
        summary_manifest = export_dataset(session, "summary_jsonl", stream=handle)
    n_docs = _count_lines(decisions)
    n_summaries = _count_lines(summaries)
    return {
        "decisions": str(decisions),
        "summary_labels": str(summaries) if n_summaries else None,
        "documents": n_docs,
        "summaries": n_summaries,
        "manifest": manifest.to_dict(),
        "summary_manifest": summary_manifest.to_dict(),
    }


def _count_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def _job_path(settings: Settings) -> Path:
    return versions.registry_dir(settings) / JOB_FILE


def _alive(pid: int) -> bool:
    proc = _processes.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie (finished, not yet reaped by another app process) is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def last_error_line(log: Path) -> str | None:
    """The exception line (``ZeroDivisionError: division by zero``) a crashed process left at the end of its log."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines[-200:]):
        text = line.strip()
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b:?", text):
            return text
    return None


def job_status(settings: Settings | None = None) -> dict[str, Any] | None:
    """The latest retraining job with its progress: ``state`` is ``running``, ``done``, ``failed`` or ``lost``.

    ``None`` when no job was ever started from the app.
    """
    settings = settings or Settings()
    path = _job_path(settings)
    try:
        job = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    progress: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, KeyError):
        progress = json.loads(Path(job["progress_file"]).read_text(encoding="utf-8"))
    job["fraction"] = float(progress.get("fraction", 0.0))
    job["message"] = str(progress.get("message", "starting"))
    state = progress.get("state", "running")
    if state == "running" and not _alive(int(job.get("pid", -1))):
        state = "lost"
        error = last_error_line(Path(job.get("log", "")))
        job["message"] = error or "the retraining process ended without a result; see its log"
    job["state"] = state
    for key in ("version", "promoted"):
        if key in progress:
            job[key] = progress[key]
    report = Path(job.get("report", ""))
    txt = report.with_suffix(".txt")
    job["report_text"] = txt.read_text(encoding="utf-8") if state == "done" and txt.is_file() else None
    log = Path(job.get("log", ""))
    if state in {"failed", "lost"} and log.is_file():
        job["log_tail"] = log.read_text(encoding="utf-8", errors="replace")[-3000:]
    return job


def start_retrain(
    decisions: str | Path,
    summary_labels: str | Path | None = None,
    options: RetrainOptions | None = None,
    settings: Settings | None = None,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Start ``python -m engine retrain`` in the background and record the job.

    Raises:
        RuntimeError: When a job started from the app is still running.
    """
    settings = settings or Settings()
    options = options or RetrainOptions()
    current = job_status(settings)
    if current is not None and current["state"] == "running":
        raise RuntimeError(f"a retraining run (pid {current['pid']}) is still running")
    work_dir = work_dir or Path(decisions).parent
    work_dir.mkdir(parents=True, exist_ok=True)
    progress_file, report, log = work_dir / "progress.json", work_dir / "report.json", work_dir / "retrain.log"
    progress_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "engine", "retrain", "--decisions", str(decisions),
           "--registry-dir", str(versions.registry_dir(settings)), "--epochs", str(options.epochs),
           "--margin", str(options.margin), "--device", options.device, "--progress-file", str(progress_file),
           "--report", str(report)]
    if summary_labels:
        cmd += ["--summary-labels", str(summary_labels)]
    if options.base_data:
        cmd += ["--base-data", options.base_data]
    if options.max_base_docs:
        cmd += ["--max-base-docs", str(options.max_base_docs)]
    with log.open("wb") as handle:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    _processes[proc.pid] = proc
    job = {"pid": proc.pid, "started": versions.utc_now(), "command": cmd, "progress_file": str(progress_file),
           "report": str(report), "log": str(log), "options": asdict(options)}
    path = _job_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(job, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return job


def sync_db_mirror(db_engine: Any, settings: Settings | None = None, actor: str = "app") -> int:
    """Mirror the registry into the database's ``model_versions`` (stage ``model_set``); returns rows added.

    The registry stays the source of truth: rows are only added (never edited) and the active flag follows it.
    """
    from db.repository import activate_model_version, list_model_versions, register_model_version
    from db.session import session_scope

    settings = settings or Settings()
    active = versions.active_version(settings)
    added = 0
    with session_scope(db_engine) as session:
        rows = {row.name: row for row in list_model_versions(session, MIRROR_STAGE)}
        for info in versions.list_versions(settings):
            if info.id not in rows:
                rows[info.id] = register_model_version(
                    session, name=info.id, stage=MIRROR_STAGE, path=str(versions.version_model_dir(settings, info.id)),
                    metrics=info.metrics, parent=info.parent, data_hash=info.data_hash,
                    config={"status": info.status, "stages": info.stages, "gate": info.gate,
                            "training": info.training_config},
                    actor=actor,
                )
                added += 1
        target = rows.get(active)
        if target is not None and not target.active:
            activate_model_version(session, target.id, actor=actor)
    return added


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
    with st.form("retrain_form"):
        c1, c2, c3 = st.columns(3)
        epochs = c1.number_input("Epochs", min_value=1, max_value=50, value=3, step=1)
        margin = c2.number_input("Margin (F1)", min_value=0.0, max_value=0.5, value=0.01, step=0.005, format="%.3f")
        device = c3.selectbox("Device", ["auto", "cpu", "cuda"], help="auto uses the GPU when there is one")
        submitted = st.form_submit_button("Retrain now", type="primary")
    if submitted:
        try:
            work = EXPORTS_DIR / f"retrain-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
            exported = export_feedback(db_engine, work)
            if not exported["documents"] and not exported["summaries"]:
                st.warning("There are no reviewer decisions yet: review some notes first.")
            else:
                job = start_retrain(exported["decisions"], exported["summary_labels"],
                                    RetrainOptions(epochs=int(epochs), margin=float(margin), device=device),
                                    settings, work)
                st.success(f"Retraining started (pid {job['pid']}) on {exported['documents']} reviewed analyses and "
                           f"{exported['summaries']} reviewed summaries.")
        except Exception as err:  # shown, never raised: the page must keep working
            st.error(f"Retraining could not start: {err}")

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

    st.subheader("Activate or roll back")
    listed = versions.list_versions(settings)
    active = versions.active_version(settings)
    ids = [v.id for v in listed]
    c1, c2 = st.columns([3, 1])
    choice = c1.selectbox("Version", ids, index=ids.index(active) if active in ids else 0, key="activate_choice",
                          format_func=lambda v: f"{v} ({next(i.status for i in listed if i.id == v)})"
                          + (" - active" if v == active else ""))
    if c2.button("Activate", disabled=choice == active, key="activate_button"):
        _change(lambda: versions.activate(settings, choice), f"{choice} is now active.", db_engine, settings)
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
