"""The pieces behind the NER figures: the paired document bootstrap of an F1 difference and the model specs of
bench/bench_ner_models.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.evaluation.ner import paired_bootstrap, score
from engine.types import Span

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))


def _docs(n: int) -> list[list[tuple[int, int, str]]]:
    return [[(10 * k, 10 * k + 5, "DIAG") for k in range(6)] for _ in range(n)]


def _found(gold: list[list[tuple[int, int, str]]], keep: int) -> list[list[Span]]:
    """Each document's first ``keep`` gold spans, plus one spurious span."""
    return [[Span(s, e, lab, 0.9) for s, e, lab in doc[:keep]] + [Span(900, 905, "MED", 0.5)] for doc in gold]


def test_same_predictions_differ_by_nothing() -> None:
    gold = _docs(8)
    pred = _found(gold, 4)
    result = paired_bootstrap(gold, pred, pred, resamples=200)
    assert result == {"diff": 0.0, "low": 0.0, "high": 0.0, "p_a_not_better": 1.0}


def test_a_better_model_has_an_interval_above_zero_and_the_observed_difference_matches_score() -> None:
    gold = _docs(10)
    better, worse = _found(gold, 5), _found(gold, 3)
    result = paired_bootstrap(gold, better, worse, resamples=300, seed=1)
    expected = score(gold, better)["overall"]["f1"] - score(gold, worse)["overall"]["f1"]
    assert result["diff"] == pytest.approx(expected, abs=2e-4)
    assert 0 < result["low"] <= result["diff"] <= result["high"] and result["p_a_not_better"] == 0.0
    reverse = paired_bootstrap(gold, worse, better, resamples=300, seed=1)
    assert reverse["diff"] == -result["diff"] and reverse["high"] < 0


def test_mixed_documents_give_an_interval_that_spans_zero() -> None:
    gold = _docs(12)
    a = [doc if i % 2 else _found(gold, 2)[i] for i, doc in enumerate(_found(gold, 5))]
    b = [doc if i % 2 == 0 else _found(gold, 2)[i] for i, doc in enumerate(_found(gold, 5))]
    result = paired_bootstrap(gold, a, b, resamples=500)
    assert result["low"] < 0 < result["high"] and 0.2 < result["p_a_not_better"] < 0.8


def test_model_specs_parse() -> None:
    from bench_ner_models import parse_spec

    assert parse_spec("t=assets/models/ner_accurate:512/128:int8") == (
        "t", Path("assets/models/ner_accurate"), (512, 128), True)
    assert parse_spec("assets/models/ner:fp32") == ("ner", Path("assets/models/ner"), None, False)
    with pytest.raises(SystemExit):
        parse_spec("x=assets/models/ner:bf16")


def test_curve_plot_places_each_scored_model() -> None:
    from plot_ner_curve import points, svg

    payload = {"models": {"teacher": {"ms": {"p50": 800.0}, "dev": {"f1": 0.686}},
                          "student": {"ms": {"p50": 400.0}, "dev": {"f1": 0.67}},
                          "untimed": {"ms": {"p50": 1.0}}}}
    pts = points(payload)
    assert [p[0] for p in pts] == ["teacher", "student"]
    image = svg(pts, "t")
    assert image.count("<circle") == 2 and "student (0.670, 400 ms)" in image
    with pytest.raises(SystemExit):
        svg([], "t")
