"""Offset mapping between a note and its redacted text (property tests)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.deid.offsets import OffsetMap, Replacement


@st.composite
def note_and_replacements(draw: st.DrawFn) -> tuple[str, list[Replacement], tuple[int, int]]:
    text = draw(st.text(alphabet="ab c\n", min_size=0, max_size=60))
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=8, unique=True)))
    reps = []
    for a, b in zip(cuts[::2], cuts[1::2], strict=False):
        reps.append(Replacement(a, b, draw(st.text(alphabet="XYZ[]", max_size=9))))
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, len(text)))
    return text, reps, (start, end)


@settings(max_examples=400, deadline=None)
@given(note_and_replacements())
def test_spans_map_onto_the_redacted_text(case: tuple[str, list[Replacement], tuple[int, int]]) -> None:
    text, reps, (start, end) = case
    omap = OffsetMap(text, reps)
    expected = text
    for rep in sorted(reps, key=lambda r: r.start, reverse=True):
        expected = expected[:rep.start] + rep.text + expected[rep.end:]
    assert omap.text == expected
    new_start, new_end = omap.map_span(start, end)
    assert 0 <= new_start <= new_end <= len(omap.text)
    if not omap.touches(start, end):
        # A span clear of every replacement keeps its exact text.
        assert omap.text[new_start:new_end] == text[start:end]
    else:
        # A span touching a replacement covers each touched replacement whole.
        for rep in reps:
            if rep.start < end and rep.end > start and rep.end > rep.start:
                a, b = omap.map_span(rep.start, rep.end)
                assert new_start <= a and b <= new_end and omap.text[a:b] == rep.text


def test_overlapping_replacements_are_refused() -> None:
    try:
        OffsetMap("abcdef", [Replacement(0, 3, "x"), Replacement(2, 4, "y")])
    except ValueError:
        return
    raise AssertionError("overlap accepted")


@settings(max_examples=200, deadline=None)
@given(note_and_replacements())
def test_mapped_entities_match_their_text(case: tuple[str, list[Replacement], tuple[int, int]]) -> None:
    from engine.deid.offsets import map_entities

    text, reps, (start, end) = case
    omap = OffsetMap(text, reps)
    [ent] = map_entities(omap, [{"start": start, "end": end, "text": text[start:end], "label": "DIAG"}])
    assert omap.text[ent["start"]:ent["end"]] == ent["text"] and ent["label"] == "DIAG"
    assert ent.get("phi_overlap", False) == omap.touches(start, end)
