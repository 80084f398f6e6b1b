"""Retraining as a background job: export the feedback, start ``python -m engine retrain``, read its progress.

Retraining runs as a separate process, so the app stays responsive, a page reload or another browser tab sees
the same job, and a crash in training cannot take the app down. The job is described by ``retrain_job.json`` in
the registry folder; the process writes its progress to a JSON file next to it. Plain Python, usable (and tested)
without Streamlit; :mod:`ui.retrain_panel` draws it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine import versions
from engine.settings import REPO_ROOT, Settings
from engine.training.retrain_data import BaseCorpusStatus, base_corpus_status, check_corpus_dir

JOB_FILE = "retrain_job.json"
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


_base_cache: dict[tuple[str, ...], BaseCorpusStatus] = {}


def base_corpus(settings: Settings, folder: str | None = None) -> BaseCorpusStatus:
    """What the next run would use as its base corpus (``folder``, else the settings' default), read once per
    folder state (its path and modification time) and active version."""
    parent_ner = versions.version_model_dir(settings, versions.active_version(settings)) / "ner"
    target = Path(folder).expanduser() if folder and folder.strip() else settings.base_corpus_dir
    target = target or Path(settings.data_dir) / "maccrobat"
    try:
        stamp = str(target.stat().st_mtime_ns)
    except OSError:
        stamp = "missing"
    key = (str(folder or ""), str(settings.base_corpus_dir), str(settings.data_dir), str(parent_ner), stamp)
    if key not in _base_cache:
        _base_cache[key] = base_corpus_status(settings, parent_ner, folder)
    return _base_cache[key]


def base_data_spec(settings: Settings, folder: str | None) -> str | None:
    """The ``--base-data`` a run gets for ``folder`` (``None``: the settings' default).

    Raises:
        ValueError: When ``folder`` is given but is not a readable BRAT folder.
    """
    if not folder or not folder.strip():
        return None
    problem = check_corpus_dir(folder)
    if problem:
        raise ValueError(f"base corpus folder: {problem}")
    return f"brat:{Path(folder).expanduser()}:{settings.base_corpus_labels}"


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
