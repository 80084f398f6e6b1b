"""The Models page's retraining panel: activation and rollback through the UI, the database mirror, and the
background retraining process's life cycle (a real subprocess, here one that has nothing to learn from)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from support.audit_testing import write_audit
from support.gate_testing import fake_stage_folders

from engine import versions
from engine.settings import Settings

PAGE = """
from ui.retrain_panel import render_retrain_panel

render_retrain_panel()
"""




def _version(settings: Settings, tag: str) -> str:
    vid, folder = fake_stage_folders(settings, tag)
    write_audit(folder, vid)  # activation is gated by the set's own audit (engine.audit.gate)
    info = versions.VersionInfo(id=vid, parent=versions.BASE, created=versions.utc_now(), path=f"versions/{vid}",
                                status="promoted", data_hash=tag * 64)
    versions.register_version(settings, info, activate=True)
    return vid


@pytest.fixture
def env(tmp_path, monkeypatch):
    from db.session import init_db

    registry = tmp_path / "registry"
    url = f"sqlite:///{tmp_path / 'feedback.sqlite'}"
    monkeypatch.setenv("CLINICAL_NLP_REGISTRY_DIR", str(registry))
    monkeypatch.setenv("CLINICAL_NLP_DB_URL", url)
    init_db(url)
    return Settings().with_overrides(registry_dir=registry), url


def _mirror(url: str) -> dict[str, bool]:
    from db.repository import list_model_versions
    from db.session import init_db, session_scope

    with session_scope(init_db(url), write=False) as session:
        return {row.name: row.active for row in list_model_versions(session, "model_set")}


def test_activate_and_rollback_from_the_page(env, tmp_path):
    settings, url = env
    v1 = _version(settings, "a")
    v2 = _version(settings, "b")
    script = tmp_path / "page.py"
    script.write_text(PAGE, encoding="utf-8")
    at = AppTest.from_file(str(script), default_timeout=60).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="activate_choice").value == v2

    at.selectbox(key="activate_choice").set_value(v1).run()
    next(b for b in at.button if b.label == "Activate").click().run()
    assert not at.exception and not at.error
    assert versions.active_version(settings) == v1
    assert _mirror(url) == {versions.BASE: False, v1: True, v2: False}

    next(b for b in at.button if b.label.startswith("Roll back")).click().run()
    assert versions.active_version(settings) == v2
    assert _mirror(url)[v2] is True and _mirror(url)[v1] is False


def test_background_job_reports_failure_with_its_log(env, tmp_path):
    from ui.retrain_jobs import export_feedback, job_status, start_retrain

    settings, url = env
    from db.session import init_db

    exported = export_feedback(init_db(url), tmp_path / "export")
    assert exported["documents"] == 0 and exported["summary_labels"] is None
    assert job_status(settings) is None
    job = start_retrain(exported["decisions"], settings=settings, work_dir=tmp_path / "job")
    assert Path(job["log"]).parent == tmp_path / "job"
    deadline = time.monotonic() + 300
    while (status := job_status(settings))["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status["state"] == "failed", status
    assert "nothing to learn from" in status["message"]
    assert "nothing to learn from" in status["log_tail"]
    assert versions.active_version(settings) == versions.BASE
