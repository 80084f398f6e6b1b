"""Property: no code set ever holds an Excludes1 pair without a conflict entry (guideline I.A.12.a), whatever
the codes documented, their sections and support, and whatever codes a coder adds afterwards.

The codes are drawn from real Excludes1 notes of the Tabular List (the codes carrying a note and the codes it
names), so most random sets hold real Excludes1 pairs; the builder, the Tabular notes and the ICD index are the
real ones.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.encounter import apply_decisions
from engine.encounter.notes import dot
from engine.types import AnalysisResult, Code, Entity

SECTIONS = ["assessment", "history of present illness", "chief complaint", "diagnoses", None]


@pytest.fixture(scope="module")
def icd(pipeline):
    return pipeline.stage("icd")


@pytest.fixture(scope="module")
def builder(pipeline):
    return pipeline.stage("encounter")


@pytest.fixture(scope="module")
def pool(builder, icd) -> list[Code]:
    """~300 billable codes from both sides of 150 Excludes1 notes (a fixed random sample, so runs repeat)."""
    rng = random.Random(19)
    sources = [s for s in builder.conventions.sources("excludes1") if s[0].isalpha() and "-" not in s]
    picked: dict[str, Code] = {}
    for source in rng.sample(sources, 150):
        targets = [source, *[dot(r.lo) for n in builder.conventions.notes(source, "excludes1") for r in n.refs][:3]]
        for target in targets:
            for code in icd.search(target, limit=4):
                if code.billable and not code.code.startswith("Z"):
                    picked.setdefault(code.code, code)
    assert len(picked) > 200
    return sorted(picked.values(), key=lambda c: c.code)


def _analysis(chosen: list[tuple[Code, int, float]]) -> tuple[AnalysisResult, str]:
    text, entities = "", []
    for code, section, score in chosen:
        words = code.description[:60]
        entities.append(Entity(len(text), len(text) + len(words), words, "DIAG", 0.9, [], None, SECTIONS[section],
                               [Code(code.code, code.description, score, True)]))
        text += words + ".\n"
    return AnalysisResult("p", entities, {}, {}), text


def _assert_no_silent_pair(enc, conventions) -> None:
    reported = [ln.code for ln in enc.codes]
    for i, a in enumerate(reported):
        for b in reported[i + 1 :]:
            if conventions.excludes1(a, b) is not None:
                assert any(set(c.codes) == {a, b} and set(c.kept) == {a, b} for c in enc.conflicts), (a, b)
    for entry in enc.dropped:
        if entry.rule == "excludes1":
            assert any(entry.code in c.dropped for c in enc.conflicts), entry


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_no_excludes1_pair_without_conflict_entry(data, pool, builder, icd) -> None:
    """Guideline I.A.12.a: never both codes of an Excludes1 pair silently, in the built code set or after a coder
    adds codes (a pair reported together always has its conflict entry)."""
    size = data.draw(st.integers(min_value=2, max_value=9))
    chosen = data.draw(st.lists(
        st.tuples(st.sampled_from(pool), st.integers(0, len(SECTIONS) - 1), st.floats(0.3, 1.0)),
        min_size=size, max_size=size))
    setting = data.draw(st.sampled_from(["outpatient", "inpatient"]))
    analysis, text = _analysis(chosen)
    enc = builder.build(analysis, text, setting, icd=icd)
    _assert_no_silent_pair(enc, builder.conventions)
    assert [ln.sequence for ln in enc.codes] == list(range(1, len(enc.codes) + 1))
    adds = data.draw(st.lists(st.sampled_from(pool), max_size=4))
    decisions = [{"action": "add", "code": c.code} for c in adds]
    after = apply_decisions(enc.to_dict(), decisions, builder.conventions, icd.describe)
    _assert_no_silent_pair(after, builder.conventions)
