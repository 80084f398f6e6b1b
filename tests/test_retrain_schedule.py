"""Issue #17 item 1: retraining with 1 epoch crashed (ZeroDivisionError in the LR schedule) and the page said only
"see its log".

Real components: the real schedule, the real default NER model fine-tuned for one epoch on one tiny note, and the
real job-status reader over a real job file and log left by a dead process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.corpora.document import Document
from engine.settings import DEFAULT_MODEL_DIR, Settings
from engine.training.schedule import linear_warmup_decay


def test_schedule_survives_a_run_whose_warmup_covers_every_step():
    # LambdaLR calls the multiplier once at construction (step 0) and once after each optimiser step, so a run of
    # one step asks for step 1 == total == warmup: the old lambda divided by (total - warmup) == 0 there.
    multiplier = linear_warmup_decay(1, 1)
    assert multiplier(0) == 1.0
    assert multiplier(1) == 0.0


@pytest.mark.parametrize(("total", "warmup"), [(1, 1), (2, 1), (3, 3), (10, 1), (100, 10), (5, 0), (4, 9)])
def test_schedule_warms_up_then_decays_to_zero_within_bounds(total, warmup):
    multiplier = linear_warmup_decay(total, warmup)
    values = [multiplier(step) for step in range(total + 2)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert max(values) == 1.0
    assert values[total] == 0.0
    peak = values.index(1.0)
    assert values[: peak + 1] == sorted(values[: peak + 1])
    assert values[peak:] == sorted(values[peak:], reverse=True)


def test_fine_tune_ner_runs_one_epoch_on_one_tiny_note(tmp_path):
    import torch

    from engine.training.retrain import RetrainConfig, fine_tune_ner

    torch.set_num_threads(1)
    text = "Patient with pneumonia was given amoxicillin after a chest x-ray."
    doc = Document("tiny", text, [(13, 22, "DIAG"), (33, 44, "MED"), (53, 64, "TEST")])
    out = tmp_path / "ner"
    facts = fine_tune_ner(Path(DEFAULT_MODEL_DIR) / "ner", [doc], out, RetrainConfig(epochs=1, device="cpu"), "t1")
    assert facts["steps"] == 1
    assert len(facts["history"]) == 1
    assert json.loads((out / "config.json").read_text())["version"] == "t1"


def test_a_crashed_run_shows_its_error_text_not_only_see_its_log(tmp_path):
    from ui.retrain_jobs import JOB_FILE, job_status

    settings = Settings().with_overrides(registry_dir=str(tmp_path / "registry"))
    (tmp_path / "registry").mkdir()
    log = tmp_path / "retrain.log"
    # A real process that dies the way the 1-epoch run did: an uncaught exception, no progress "failed" state.
    crashed = subprocess.run([sys.executable, "-c", "1 / 0"], stderr=subprocess.PIPE, check=False)
    log.write_bytes(crashed.stderr)
    progress = tmp_path / "progress.json"
    progress.write_text(json.dumps({"fraction": 0.4, "message": "NER epoch 1/1", "state": "running"}))
    job = {"pid": 2**22 + 12345, "started": "now", "progress_file": str(progress), "report": str(tmp_path / "r.json"),
           "log": str(log)}
    (tmp_path / "registry" / JOB_FILE).write_text(json.dumps(job))
    status = job_status(settings)
    assert status["state"] == "lost"
    assert status["message"] == "ZeroDivisionError: division by zero"

