"""Reviewer decisions to gold notes, the frozen split, merging with base data, and the promotion gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.corpora.document import Document
from engine.errors import EngineError
from engine.training.feedback_data import (
    TEST_FRACTION,
    build_retrain_data,
    data_hash,
    is_frozen_test,
    load_feedback,
    load_sentence_labels,
    note_hash,
)
from engine.training.retrain import gate

TEXT = "Chest pain treated with aspirin. CT of the head was normal."


def _entity(start: int, end: int, label: str, *decisions: dict, origin: str = "model") -> dict:
    return {"start": start, "end": end, "text": TEXT[start:end], "label": label, "origin": origin,
            "decisions": list(decisions)}


def _d(i: int, decision: str, target: str = "entity", **corrected) -> dict:
    return {"id": i, "target": target, "decision": decision, "created_at": f"2026-11-22T10:00:{i:02d}",
            **{f"corrected_{k}": v for k, v in corrected.items()}}


def _write(tmp_path: Path, rows: list[dict], name: str = "export.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_decisions_become_gold_and_negatives(tmp_path):
    row = {
        "id": "n1", "note_sha256": note_hash(TEXT), "text": TEXT,
        "entities": [
            _entity(0, 10, "DIAG", _d(1, "accept")),                          # Chest pain
            _entity(24, 31, "TEST", _d(2, "correct", label="MED")),           # aspirin: label fixed
            _entity(33, 35, "TEST", _d(3, "accept"), _d(4, "reject")),        # CT: later reject wins
            _entity(43, 47, "ANAT"),                                           # head: pending
            _entity(33, 47, "TEST", _d(5, "add"), origin="reviewer"),          # CT of the head: added
            _entity(6, 10, "DIAG", _d(6, "accept", target="code")),           # pain: only a code decision
        ],
    }
    (note,) = load_feedback(_write(tmp_path, [row]))
    assert note.id == "n1" and note.note_hash == note_hash(TEXT)
    # The pending "head" overlaps the reviewer's "CT of the head" and yields to it; "Chest pain" (longer) wins
    # over "pain".
    assert note.spans == [(0, 10, "DIAG"), (24, 31, "MED"), (33, 47, "TEST")]
    assert note.negatives == [(24, 31, "TEST"), (33, 35, "TEST")]
    assert note.counts == {"accept": 2, "reject": 1, "correct": 1, "add": 1, "pending": 1}
    assert [TEXT[s:e] for s, e, _ in note.spans] == ["Chest pain", "aspirin", "CT of the head"]


def test_pending_drop_and_undecided_notes(tmp_path):
    decided = {"id": "a", "text": TEXT, "entities": [_entity(0, 10, "DIAG", _d(1, "accept")), _entity(43, 47, "ANAT")]}
    other = "No acute distress."
    undecided = {"id": "b", "text": other, "entities": [{"start": 3, "end": 8, "label": "DIAG", "decisions": []}]}
    notes = load_feedback(_write(tmp_path, [decided, undecided]), pending="drop")
    assert [n.id for n in notes] == ["a"]
    assert notes[0].spans == [(0, 10, "DIAG")]


def test_later_export_of_same_note_wins(tmp_path):
    first = {"id": "x", "text": TEXT, "entities": [_entity(0, 10, "DIAG", _d(1, "accept"))]}
    second = {"id": "x", "text": TEXT, "entities": [_entity(0, 10, "DIAG", _d(2, "reject"))]}
    (note,) = load_feedback(_write(tmp_path, [first, second]))
    assert note.spans == [] and note.negatives == [(0, 10, "DIAG")]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "x"}, "missing field 'text'"),
        ({"text": TEXT, "note_sha256": "0" * 64, "entities": []}, "hash does not match"),
        ({"text": TEXT, "entities": [{"start": 5, "end": 500, "label": "DIAG"}]}, "does not fit"),
        ({"text": TEXT, "entities": [{"start": 0, "end": 5, "label": "DRUG"}]}, "not one of"),
    ],
)
def test_bad_exports_are_refused_with_the_line(tmp_path, row, message):
    path = _write(tmp_path, [row])
    with pytest.raises(EngineError, match=message) as info:
        load_feedback(path)
    assert f"{path}:1" in str(info.value)


def test_a_deidentified_export_keeps_the_original_notes_hash(tmp_path):
    # The export de-identifies the note text but keeps the stored note's hash as its identity (frozen split).
    original = "Seen by Dr. Ann Lee for chest pain."
    redacted = "Seen by Dr. Kim Roe for chest pain."
    row = {"id": "d1", "note_sha256": note_hash(original), "text": redacted, "deidentified": True,
           "entities": [{"start": 24, "end": 34, "label": "DIAG", "text": "chest pain",
                         "decisions": [_d(1, "accept")]}]}
    (note,) = load_feedback(_write(tmp_path, [row]))
    assert note.note_hash == note_hash(original) and note.spans == [(24, 34, "DIAG")]
    # Without the flag the same mismatch is still refused.
    with pytest.raises(EngineError, match="hash does not match"):
        load_feedback(_write(tmp_path, [{**row, "deidentified": False}], name="plain.jsonl"))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(EngineError, match="cannot read"):
        load_feedback(tmp_path / "nope.jsonl")


def test_frozen_split_is_deterministic_and_about_a_fifth():
    hashes = [note_hash(f"note number {i}") for i in range(2000)]
    first = [is_frozen_test(h) for h in hashes]
    assert first == [is_frozen_test(h) for h in hashes]
    share = sum(first) / len(first)
    assert abs(share - TEST_FRACTION) < 0.03


def _note_in(split: str, prefix: str) -> str:
    for i in range(1000):
        text = f"{prefix} {i}: chest pain."
        if is_frozen_test(note_hash(text)) == (split == "test"):
            return text
    raise AssertionError("no text found")


def test_merge_dedupes_and_keeps_held_out_notes_out_of_training(tmp_path):
    train_text, test_text, dev_text = _note_in("train", "tr"), _note_in("test", "te"), _note_in("train", "dev")
    rows = [
        {"id": t, "text": t, "entities": [{"start": len(t) - 11, "end": len(t) - 1, "label": "DIAG",
                                           "decisions": [_d(1, "accept")]}]}
        for t in (train_text, test_text, dev_text)
    ]
    feedback = load_feedback(_write(tmp_path, rows))
    base_train = [Document("b1", train_text, []), Document("b2", "Another note.", []),
                  Document("b2-copy", "Another note.", [])]
    base_dev = [Document("d1", dev_text, [])]
    data = build_retrain_data(feedback, base_train, base_dev)
    texts = sorted(d.text for d in data.train)
    # The reviewed copy of train_text replaced the base one; the duplicate base note counted once; the note that
    # is also in the base dev set and the frozen test note are never trained on.
    assert texts == sorted(["Another note.", train_text])
    assert next(d for d in data.train if d.text == train_text).spans == [(len(train_text) - 11, len(train_text) - 1,
                                                                         "DIAG")]
    assert [d.text for d in data.feedback_test] == [test_text]
    assert data.stats["base_docs_replaced_by_feedback"] == 1
    assert data.stats["held_out_notes_removed_from_training"] == 1
    assert data_hash(data.train) == data_hash(list(reversed(data.train)))
    assert data_hash(data.train) != data_hash(data.train[:1])


def test_sentence_labels(tmp_path):
    text = "Stable. Pain resolved. Follow up."
    row = {"id": "s", "text": text, "sentences": [
        {"start": 0, "end": 7, "decisions": [{"id": 1, "decision": "keep", "created_at": "2026-11-22T10:00:00"},
                                             {"id": 2, "decision": "drop", "created_at": "2026-11-22T10:00:01"}]},
        {"start": 8, "end": 22, "decisions": [{"id": 3, "decision": "keep", "created_at": "2026-11-22T10:00:02"}]},
        {"start": 23, "end": 33, "decisions": []},
    ]}
    (example,) = load_sentence_labels(_write(tmp_path, [row]))
    assert example.labels == [(0, 7, 0), (8, 22, 1)]


def _scores(overall: float, per_type: dict[str, tuple[float, int]], n_gold: int = 50) -> dict:
    def prf(f1: float, support: int) -> dict:
        tp = round(f1 * support)
        return {"precision": f1, "recall": f1, "f1": f1, "tp": tp, "fp": 0, "fn": support - tp}

    return {"overall": prf(overall, n_gold), "per_type": {k: prf(f, s) for k, (f, s) in per_type.items()},
            "n_gold": n_gold}


def test_gate_promotes_within_margin_and_explains():
    active = {"feedback_test": _scores(0.70, {"DIAG": (0.7, 30), "MED": (0.6, 20)})}
    candidate = {"feedback_test": _scores(0.695, {"DIAG": (0.8, 30), "MED": (0.595, 20)})}
    promote, checks, reasons = gate(active, candidate, margin=0.01, min_support=5)
    assert promote and reasons[0].startswith("promoted")
    assert {c.metric for c in checks if c.gated} == {"overall F1", "DIAG F1", "MED F1"}


def test_gate_refuses_a_per_type_drop_even_when_overall_improves():
    active = {"feedback_test": _scores(0.70, {"DIAG": (0.7, 30), "MED": (0.6, 20)}),
              "base_dev": _scores(0.5, {"ANAT": (0.5, 10), "PROC": (0.9, 2)})}
    candidate = {"feedback_test": _scores(0.80, {"DIAG": (0.9, 30), "MED": (0.5, 20)}),
                 "base_dev": _scores(0.5, {"ANAT": (0.5, 10), "PROC": (0.0, 2)})}
    promote, checks, reasons = gate(active, candidate, margin=0.01, min_support=5)
    assert not promote
    assert reasons == [
        "refused: feedback_test MED F1 fell 0.1000 (0.6000 -> 0.5000, 20 gold spans), more than the margin 0.0100"
    ]
    # PROC has 2 gold spans: reported, but too few to gate on.
    proc = next(c for c in checks if c.eval_set == "base_dev" and c.metric == "PROC F1")
    assert not proc.gated and proc.delta == -0.9


def test_gate_refuses_when_nothing_can_be_judged():
    empty = {"feedback_test": {"overall": {}, "per_type": {}, "n_gold": 0}}
    promote, _, reasons = gate(empty, empty, margin=0.01, min_support=5)
    assert not promote and "cannot be judged" in reasons[0]
