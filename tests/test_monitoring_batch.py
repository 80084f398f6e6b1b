"""The CLI batch job writes each note's monitoring statistics (``OUTPUT.stats.jsonl``), which ``monitor ingest``
stores and the ``monitor`` report counts: the batch path of issue 24's "written by the app, the CLI batch and the
API alike"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from db import monitor
from engine import batch
from engine.batch.stats import StatsLog, stats_path

NOTES = {
    "n1": "Chief complaint: chest pain.\nHistory of hypertension treated with lisinopril 10 mg daily.\n",
    "n2": "Assessment: type 2 diabetes mellitus. Patient denies fever or cough. Plan: start metformin.\n",
    "n3": "Family history: mother had breast cancer.\nCT scan of the abdomen showed no acute findings.\n",
}


def _notes(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.txt").write_text(NOTES[name], encoding="utf-8")
    return folder


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_batch_cli_writes_stats_that_monitor_ingests(tmp_path, capsys):
    folder = _notes(tmp_path / "notes", ["n1", "n2"])
    (folder / "bad.txt").write_bytes("caf\xe9".encode("latin-1"))  # fails: no stats line for it
    out = tmp_path / "results.jsonl"
    assert batch.main([str(folder), str(out), "--device", "cpu", "--no-progress"]) == 2
    assert "monitoring statistics appended to" in capsys.readouterr().err

    lines = _lines(stats_path(out))
    results = {r["id"]: r for r in _lines(out)}
    assert [line["id"] for line in lines] == ["n1", "n2"]
    for line in lines:
        assert line["n_entities"] == len(results[line["id"]]["entities"]) > 0
        assert sum(line["label_counts"].values()) == line["n_entities"]
        # Taken from the engine's own result: the NER token statistics the contract's dict does not carry.
        assert line["token_entropy"] is not None and 0.0 <= line["o_share"] <= 1.0
        assert line["n_chars"] == len(NOTES[line["id"]])
    stored = json.dumps(lines)
    assert "lisinopril" not in stored and "metformin" not in stored and "text" not in lines[0]

    # Resume: a new note is analysed and gets its line; the notes already done are not counted again.
    _notes(folder, ["n3"])
    assert batch.main([str(folder), str(out), "--device", "cpu", "--no-progress"]) == 2
    assert [line["id"] for line in _lines(stats_path(out))] == ["n1", "n2", "n3"]

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    capsys.readouterr()
    assert monitor.main(["ingest", "--db", url, str(stats_path(out))]) == 0
    assert json.loads(capsys.readouterr().out) == {"stored": 3}
    assert monitor.main(["--db", url, "--window", "50"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_analyses"] == report["n_window"] == 3
    expected = sum(len(r["entities"]) for r in _lines(out)) / 3
    assert report["statistics"]["entities_per_note"]["value"] == pytest.approx(expected, abs=1e-3)


@pytest.mark.slow
def test_no_stats_flag_and_parquet_output(tmp_path):
    folder = _notes(tmp_path / "notes", ["n1"])
    plain = tmp_path / "plain.jsonl"
    assert batch.main([str(folder), str(plain), "--device", "cpu", "--no-progress", "--no-stats"]) == 0
    assert plain.is_file() and not stats_path(plain).exists()
    parquet = tmp_path / "results.parquet"
    assert batch.main([str(folder), str(parquet), "--device", "cpu", "--no-progress"]) == 0
    assert [line["id"] for line in _lines(stats_path(parquet))] == ["n1"]


def test_stats_log_drops_a_line_cut_by_a_crash(tmp_path):
    path = tmp_path / "o.jsonl.stats.jsonl"
    path.write_text('{"id": "a", "n_entities": 1}\n{"id": "b", "n_ent', encoding="utf-8")
    log = StatsLog(path)
    log.write([None, {"id": "c", "n_entities": 2}])
    log.close()
    assert [line["id"] for line in _lines(path)] == ["a", "c"] and log.count == 1
    empty = StatsLog(tmp_path / "none.stats.jsonl")
    empty.write([None])
    empty.close()
    assert not (tmp_path / "none.stats.jsonl").exists()


@pytest.mark.slow
def test_ray_actor_returns_each_notes_stats_line():
    """The Ray runner's engine actor (called directly here, without a cluster) returns the statistics column the
    driver appends to OUTPUT.stats.jsonl."""
    import numpy as np

    from engine.batch.ray import EngineActor

    actor = EngineActor(None, "cpu", {})
    ids = np.array(["n1", "bad", "n2"], dtype=object)
    out = actor({"id": ids, "text": np.array([NOTES["n1"], "", NOTES["n2"]], dtype=object),
                 "error": np.array(["", "not UTF-8", ""], dtype=object)})
    assert list(out["error"]) == ["", "not UTF-8", ""] and out["stats"][1] == ""
    for i in (0, 2):
        line, result = json.loads(out["stats"][i]), json.loads(out["result"][i])
        assert line["id"] == ids[i] and line["n_entities"] == len(result["entities"]) > 0
        assert line["o_share"] is not None
    quiet = EngineActor(None, "cpu", {}, monitor_stats=False)
    assert list(quiet({"id": ids[:1], "text": np.array([NOTES["n1"]], dtype=object),
                       "error": np.array([""], dtype=object)})["stats"]) == [""]
