"""Issue 22's bad-input asks, one test each: empty text, non-UTF-8 or binary input (the contract's error line and
exit status 2), and linear time on long and odd-shaped notes up to 5 MB."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.deid import Deidentifier
from engine.evaluation.deid import load_handwritten
from engine.settings import REPO_ROOT


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", "deidentify", *args], cwd=REPO_ROOT,
                          capture_output=True, timeout=300, text=True)


def test_empty_file_and_empty_text_give_empty_phi(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    jsonl = tmp_path / "notes.jsonl"
    jsonl.write_text(json.dumps({"id": "blank", "text": ""}) + "\n")
    for args, name in (([str(empty)], str(empty)), (["--jsonl", str(jsonl)], "blank")):
        proc = _cli(args)
        assert proc.returncode == 0 and proc.stderr == ""
        assert json.loads(proc.stdout) == {"id": name, "text": "", "phi": []}


def test_non_utf8_file_gets_the_error_line_and_exit_2(tmp_path: Path) -> None:
    """A Latin-1 note (no NUL byte): one ``error: [E100]`` line naming it; the good note is still written."""
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Caf\u00e9 visit, seen by Dr. Okafor".encode("latin-1"))
    good = tmp_path / "good.txt"
    good.write_text("Wife Maria called 508-555-0199.")
    proc = _cli([str(bad), str(good), "--mode", "mask"])
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: [E100]") and "latin1.txt" in line and "UTF-8" in line
    (out,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert out["id"] == str(good) and out["text"] == "Wife [NAME] called [PHONE]."


def test_binary_text_in_jsonl_gets_the_error_line_and_exit_2(tmp_path: Path) -> None:
    jsonl = tmp_path / "notes.jsonl"
    jsonl.write_text(json.dumps({"id": "bin", "text": "PK\x03\x04\x00\x00binary"}) + "\n"
                     + json.dumps({"id": "ok", "text": "Dr. Okafor"}) + "\n")
    proc = _cli(["--jsonl", str(jsonl)])
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: [E100]") and "notes.jsonl:1" in line and "binary" in line
    assert [json.loads(x)["id"] for x in proc.stdout.splitlines()] == ["ok"]


def _timed(deid: Deidentifier, text: str) -> float:
    t0 = time.perf_counter()
    deid.find(text)
    return time.perf_counter() - t0


@pytest.mark.parametrize("unit", ["1-2-", "a.b+", "1/2/", "DR SMITH ", "Smith, John, "])
def test_odd_shaped_notes_are_linear(deid: Deidentifier, unit: str) -> None:
    """Runs with no line break that a regular expression could rescan from every position (a quadratic e-mail
    pattern made 100,000 characters of "1-2-" take 47 s); 5x the text may take at most ~7.5x the time."""
    small = (unit * (20_000 // len(unit) + 1))[:20_000]
    big = (unit * (100_000 // len(unit) + 1))[:100_000]
    _timed(deid, small)  # warm the tagger's feature cache
    t_small, t_big = _timed(deid, small), _timed(deid, big)
    assert t_big < 7.5 * t_small + 0.3, (t_small, t_big)


@pytest.mark.slow
def test_five_mb_note_finishes_in_linear_time(deid: Deidentifier) -> None:
    """A 5 MB note of the hand-written notes repeated: 4x the text of a 1.25 MB note takes at most ~6x the time."""
    block = "\n\n".join(str(e["text"]) for e in load_handwritten()) + "\n\n"
    quarter = (block * (1_250_000 // len(block) + 1))[:1_250_000]
    full = (block * (5_000_000 // len(block) + 1))[:5_000_000]
    t_quarter = _timed(deid, quarter)
    t0 = time.perf_counter()
    spans = deid.find(full)
    t_full = time.perf_counter() - t0
    assert len(spans) > 50_000
    assert t_full < 6 * t_quarter + 2, (t_quarter, t_full)
