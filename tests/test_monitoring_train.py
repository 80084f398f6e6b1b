"""Training writes the new model's reference profile (``ner/reference_profile.json``), which ``monitor`` compares
the stored analyses with; the shipped NER models carry theirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.monitoring.reference import PROFILE_FILE, read_reference, write_training_profile
from engine.settings import DEFAULT_MODEL_DIR
from engine.training.ner import main as train_main

FIXTURE = Path(__file__).parent / "fixtures" / "ner_tiny"


@pytest.mark.slow
def test_training_writes_a_profile_that_monitor_reads(tmp_path, capsys):
    from db import monitor
    from db.session import init_db, session_scope
    from db.stats import record_many
    from engine.monitoring.profile import profile_analysis

    model_set = tmp_path / "set"
    out = model_set / "ner"
    assert train_main([
        "--data", f"brat:{FIXTURE}:maccrobat", "--dev-count", "2", "--out", str(out), "--device", "cpu",
        "--epochs", "2", "--lr", "3e-4", "--batch-size", "4", "--train-window", "128", "--seed", "1",
        "--version", "tiny-profiled",
    ]) == 0
    header, table = read_reference(out / PROFILE_FILE)
    notes = sorted(FIXTURE.glob("*.txt"))
    assert header["n_notes"] == len(table) == len(notes)  # every training and dev note, analysed once
    assert header["models"]["ner"] == "tiny-profiled" and header["source"].startswith("training documents")
    assert "Patient" not in (out / PROFILE_FILE).read_text()  # numbers only, never the notes' text

    # The report of a store compares with the model set's own profile.
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    with session_scope(init_db(url)) as session:
        rows = [(profile_analysis(p.read_text(encoding="utf-8"), {"entities": []}), p.stem) for p in notes]
        record_many(session, rows)
    capsys.readouterr()
    assert monitor.main(["--db", url, "--model-dir", str(model_set), "--window", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reference"]["path"] == str(out / PROFILE_FILE)
    assert report["reference"]["models"]["ner"] == "tiny-profiled" and report["n_window"] == len(notes)


def test_a_profile_that_cannot_be_written_does_not_fail_the_trainer(tmp_path, capsys):
    assert write_training_profile(tmp_path / "ner", ["   "]) is None
    err = capsys.readouterr().err
    assert "no reference profile written" in err and "python -m engine monitor profile" in err
    assert not (tmp_path / "ner" / PROFILE_FILE).exists()


@pytest.mark.parametrize("stage", ["ner", "ner_accurate"])
def test_shipped_ner_models_have_their_own_profile(stage):
    path = DEFAULT_MODEL_DIR / stage / PROFILE_FILE
    if not (DEFAULT_MODEL_DIR / stage / "config.json").is_file():
        pytest.skip(f"no shipped {stage} model")
    header, table = read_reference(path)
    version = json.loads((DEFAULT_MODEL_DIR / stage / "config.json").read_text())["version"]
    assert header["models"]["ner"] == version and len(table) == header["n_notes"] >= 100


def test_profile_folders_follow_the_ner_models(monkeypatch, tmp_path):
    from db.monitor import reference_path
    from engine.monitoring.reference import NER_FOLDERS, profile_path
    from engine.ner import NER_MODELS

    assert NER_FOLDERS == NER_MODELS
    assert profile_path(tmp_path, "accurate") == tmp_path / "ner_accurate" / PROFILE_FILE
    monkeypatch.setenv("CLINICAL_NLP_NER_MODEL", "accurate")  # the accurate model runs: its own profile is used
    assert reference_path(DEFAULT_MODEL_DIR)[0] == DEFAULT_MODEL_DIR / "ner_accurate" / PROFILE_FILE
