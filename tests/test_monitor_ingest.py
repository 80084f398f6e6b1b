"""``python -m engine monitor ingest`` on bad input: one line naming the file and line, exit status 2, nothing
stored (the stats lines are read by the engine's JSON lines reader, ``engine.training.feedback_data.read_jsonl``)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from db import monitor

GOOD = {"id": "n1", "label_counts": {"DIAG": 2}, "n_entities": 2, "vocab": [[3, 1]]}


@pytest.mark.parametrize(("bad", "message"), [
    ("{broken", "bad.stats.jsonl:3: invalid JSON"),
    ("[1, 2]", "bad.stats.jsonl:3: expected a JSON object"),  # was an AttributeError traceback
])
def test_bad_line_is_named_and_nothing_is_stored(tmp_path, capsys, bad, message):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    path = tmp_path / "bad.stats.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + bad + "\n", encoding="utf-8")
    assert monitor.main(["ingest", "--db", url, str(path)]) == 2
    assert message in capsys.readouterr().err
    with sqlite3.connect(tmp_path / "store.sqlite") as con:
        assert con.execute("SELECT count(*) FROM analysis_stats").fetchone() == (0,)  # one transaction: rolled back


def test_missing_file_and_good_file(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    assert monitor.main(["ingest", "--db", url, str(tmp_path / "none.jsonl")]) == 2
    assert "none.jsonl: cannot read" in capsys.readouterr().err
    path = tmp_path / "ok.stats.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps({**GOOD, "id": "n2"}) + "\n", encoding="utf-8")
    assert monitor.main(["ingest", "--db", url, str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"stored": 2}
