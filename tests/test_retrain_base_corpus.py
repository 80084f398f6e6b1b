"""The retraining base corpus (issue #17 item 2): without ``../shared`` the panel warns before a run that the gate
has no base documents, and a person can point the run at a base corpus (a setting or a folder on the panel), with a
clear message for a folder that cannot be used."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import versions
from engine.settings import DEFAULT_MODEL_DIR, Settings
from engine.training.retrain_data import base_corpus_status, check_corpus_dir, default_base_spec, load_base_data
from ui.retrain_jobs import RetrainOptions, base_data_spec, job_status, start_retrain

BASE = Path(__file__).resolve().parent / "fixtures" / "retrain" / "base"
PARENT_NER = DEFAULT_MODEL_DIR / "ner"

PAGE = """
from ui.retrain_panel import render_retrain_panel

render_retrain_panel()
"""


@pytest.fixture
def no_shared(tmp_path, monkeypatch):
    """An install without ../shared: the data folder is empty, no base corpus is configured."""
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("CLINICAL_DATA_DIR", str(empty))
    monkeypatch.delenv("CLINICAL_NLP_BASE_CORPUS_DIR", raising=False)
    monkeypatch.setenv("CLINICAL_NLP_BASE_CORPUS_LABELS", "identity")
    monkeypatch.setenv("CLINICAL_NLP_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("CLINICAL_NLP_DB_URL", f"sqlite:///{tmp_path / 'feedback.sqlite'}")
    from db.session import init_db

    init_db(f"sqlite:///{tmp_path / 'feedback.sqlite'}")
    return Settings()


def test_without_a_base_corpus_the_status_says_zero_documents_and_feedback_test_only(no_shared):
    status = base_corpus_status(no_shared, PARENT_NER)
    assert (status.spec, status.train_docs, status.dev_docs, status.found) == (None, 0, 0, False)
    assert "frozen test split of the reviewed notes only" in status.gate_sets()
    assert load_base_data(None, no_shared, PARENT_NER) == ([], [])


def test_the_setting_names_the_base_corpus_for_the_run_and_the_status(no_shared, monkeypatch):
    monkeypatch.setenv("CLINICAL_NLP_BASE_CORPUS_DIR", str(BASE))
    settings = Settings()
    assert settings.base_corpus_dir == BASE and default_base_spec(settings) == f"brat:{BASE}:identity"
    train, dev = load_base_data(None, settings, PARENT_NER)
    status = base_corpus_status(settings, PARENT_NER)
    assert status.found and (status.train_docs, status.dev_docs) == (len(train), len(dev))
    assert status.train_docs + status.dev_docs == len(list(BASE.glob("*.ann")))
    assert f"{status.dev_docs} base dev documents" in status.gate_sets()


def test_a_configured_folder_that_is_missing_is_reported_not_silently_skipped(no_shared, tmp_path, monkeypatch):
    monkeypatch.setenv("CLINICAL_NLP_BASE_CORPUS_DIR", str(tmp_path / "gone"))
    status = base_corpus_status(Settings(), PARENT_NER)
    assert not status.found and status.problem == f"{tmp_path / 'gone'} does not exist"


def test_folder_checks_name_the_problem(tmp_path):
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    assert check_corpus_dir(tmp_path / "nope") == f"{tmp_path / 'nope'} does not exist"
    assert check_corpus_dir(tmp_path / "file.txt") == f"{tmp_path / 'file.txt'} is not a folder"
    assert "holds no BRAT documents" in check_corpus_dir(tmp_path / "empty")
    assert check_corpus_dir(BASE) is None
    with pytest.raises(ValueError, match=r"base corpus folder: .* does not exist"):
        base_data_spec(Settings(), str(tmp_path / "nope"))


def test_the_panel_warns_before_a_run_and_takes_a_base_corpus_folder(no_shared, tmp_path):
    script = tmp_path / "page.py"
    script.write_text(PAGE, encoding="utf-8")
    at = AppTest.from_file(str(script), default_timeout=60).run()
    assert not at.exception and not at.error
    warning = " ".join(w.value for w in at.warning)
    assert "No base corpus found" in warning and "0 base training documents" in warning
    assert "frozen test split of the reviewed notes only" in warning

    at.text_input(key="base_corpus_dir").input(str(tmp_path / "missing")).run()
    assert [e.value for e in at.error] == [
        f"Base corpus folder: {tmp_path / 'missing'} does not exist. Fix the path (or clear it to use the default) "
        "to retrain."
    ]
    assert next(b for b in at.button if b.label == "Retrain now").disabled

    at.text_input(key="base_corpus_dir").input(str(BASE)).run()
    assert not at.error and not at.warning
    status = base_corpus_status(no_shared, PARENT_NER, BASE)
    info = " ".join(i.value for i in at.info)
    assert f"{status.train_docs} base training documents" in info and f"{status.dev_docs} base dev documents" in info
    assert not next(b for b in at.button if b.label == "Retrain now").disabled


def test_a_panel_folder_reaches_the_retraining_command(no_shared, tmp_path):
    decisions = tmp_path / "decisions.jsonl"
    decisions.write_text("", encoding="utf-8")
    spec = base_data_spec(no_shared, str(BASE))
    job = start_retrain(decisions, options=RetrainOptions(epochs=1, base_data=spec), settings=no_shared,
                        work_dir=tmp_path / "job")
    assert job["command"][job["command"].index("--base-data") + 1] == f"brat:{BASE}:identity"
    recorded = json.loads((versions.registry_dir(no_shared) / "retrain_job.json").read_text(encoding="utf-8"))
    assert recorded["options"]["base_data"] == spec
    deadline = time.monotonic() + 300  # the empty export has nothing to learn from: the run ends on its own
    while (status := job_status(no_shared))["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status["state"] == "failed" and "nothing to learn from" in status["message"], status
