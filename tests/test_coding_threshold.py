"""The abstention sweep (engine/evaluation/coding_threshold.py) on hand-made results: one analysis scores every
threshold, from an entity's first code or, when it abstained, its first candidate."""

from __future__ import annotations

from engine.evaluation.coding import GoldNote, score
from engine.evaluation.coding_threshold import at_threshold, scored_codes, sweep_table

NOTE = GoldNote(file="n.txt", sha1="0", type="office", setting="outpatient",
                codes=[frozenset({"E11.9"}), frozenset({"I10"})], acceptable=frozenset())
RESULT = {"entities": [
    {"label": "DIAG", "codes": [{"code": "E11.9", "score": 0.9}]},
    {"label": "DIAG", "codes": [], "candidates": [{"code": "I10", "score": 0.35}]},
    {"label": "DIAG", "codes": [{"code": "R52", "score": 0.5}]},
    {"label": "ANAT", "codes": [{"code": "X", "score": 1.0}]},
    {"label": "DIAG", "codes": [], "note": "exam descriptor: not coded"},
]}


def test_scored_codes_take_codes_then_candidates_of_diag_entities_only() -> None:
    assert scored_codes(RESULT, lambda s: s) == [("E11.9", 0.9), ("I10", 0.35), ("R52", 0.5)]


def test_threshold_moves_precision_and_recall() -> None:
    scored = [scored_codes(RESULT, lambda s: s)]
    assert at_threshold(scored, 0.3) == [{"E11.9", "I10", "R52"}]
    assert at_threshold(scored, 0.4) == [{"E11.9", "R52"}]
    assert at_threshold(scored, 0.6) == [{"E11.9"}]
    low, high = (score([NOTE], at_threshold(scored, t))["all"].figures() for t in (0.3, 0.6))
    assert (low["recall"], round(low["precision"], 3)) == (1.0, 0.667)
    assert (high["recall"], high["precision"]) == (0.5, 1.0)
    table = sweep_table([NOTE], [RESULT], lambda s: s, score, thresholds=(0.3, 0.6), current=0.6)
    assert table.splitlines()[-1].endswith("*") and "0.60" in table.splitlines()[-1]
