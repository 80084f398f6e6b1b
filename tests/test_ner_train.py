"""Train, then evaluate, a NER model end to end on CPU on the tiny BRAT fixture written for this test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.corpora.brat import read_brat
from engine.corpora.document import split_documents
from engine.evaluation.ner import main as evaluate_main
from engine.ner import load_folder
from engine.training.ner import main as train_main

FIXTURE = Path(__file__).parent / "fixtures" / "ner_tiny"


@pytest.mark.slow
def test_train_then_evaluate_on_tiny_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ner"
    status = train_main([
        "--data", f"brat:{FIXTURE}:maccrobat", "--dev-count", "2", "--out", str(out), "--device", "cpu",
        "--epochs", "10", "--lr", "3e-4", "--batch-size", "4", "--train-window", "128", "--seed", "1",
        "--version", "tiny-test",
    ])
    assert status == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name in ("config.json", "metrics.json", "MODEL_CARD.md", "weights.safetensors"):
        assert (out / name).is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["version"] == "tiny-test" and config["training"]["dev_ids"] == ["1010", "1011"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]][:1] == [1] and "dev_f1" in metrics["history"][0]
    # Held-out fixture notes use the training vocabulary in new sentences: a model that learned anything finds them.
    assert summary["dev_f1"] >= 0.7

    report = tmp_path / "eval.json"
    assert evaluate_main([
        "--model", str(out), "--data", f"brat:{FIXTURE}:maccrobat", "--device", "cpu", "--json", str(report),
    ]) == 0
    printed = capsys.readouterr().out
    assert "dictionary baseline" in printed and "overall f1" in printed
    results = json.loads(report.read_text())
    model = results["model tiny-test"]
    assert model["overall"]["f1"] == pytest.approx(metrics["dev"]["overall"]["f1"], abs=1e-4)
    assert set(model["per_type"]) == {"DIAG", "PROC", "MED", "TEST", "ANAT"}
    assert set(model["errors"]) == {"boundary", "type", "boundary_type", "missed", "spurious"}
    assert 0.0 <= model["ece"] <= 1.0
    assert results["dictionary baseline"]["n_gold"] == model["n_gold"] > 0

    # the folder loads as a stage and reproduces its dev predictions
    _, dev = split_documents(read_brat(FIXTURE), dev_count=2)
    stage = load_folder(out, device="cpu")
    spans = stage.predict([d.text for d in dev])
    assert sum(len(s) for s in spans) > 0
