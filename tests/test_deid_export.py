"""The store/export helpers of de-identification (engine/deid/export.py), on the real stage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.deid import Deidentifier
from engine.deid.export import redact_analysis, stored_text
from engine.errors import EngineError
from engine.evaluation.deid import load_handwritten
from engine.settings import Settings

NOTES = [ex["text"] for ex in load_handwritten()]
DEID = Deidentifier(Settings())


@st.composite
def note_and_entities(draw: st.DrawFn) -> tuple[str, list[dict]]:
    text = draw(st.sampled_from(NOTES))
    ents = []
    for _ in range(draw(st.integers(0, 8))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 40)))
        ents.append({"start": start, "end": end, "text": text[start:end], "label": "DIAG", "score": 0.5})
    return text, ents


@settings(max_examples=150, deadline=None)
@given(note_and_entities(), st.sampled_from(["surrogate", "mask"]))
def test_every_exported_span_matches_its_text(case: tuple[str, list[dict]], mode: str) -> None:
    text, ents = case
    result = DEID.deidentify(text, "n1", mode=mode)
    out = redact_analysis({"id": "n1", "entities": ents}, result)
    assert out["text"] == result.text and out["deid"] == {"mode": mode, "phi": len(result.phi)}
    assert len(out["entities"]) == len(ents)
    for old, new in zip(ents, out["entities"], strict=True):
        assert out["text"][new["start"]:new["end"]] == new["text"]
        assert new["label"] == old["label"] and new["score"] == old["score"]
        touches = old["end"] > old["start"] and any(p.start < old["end"] and p.end > old["start"] for p in result.phi)
        assert new.get("phi_overlap", False) == touches
        if not touches:
            assert new["text"] == old["text"]


def test_exported_text_holds_no_found_phi() -> None:
    text = "Pt seen by Dr. Okafor on 3/14, call (617) 555-0143. Dx: pneumonia."
    result = DEID.deidentify(text, "n2", mode="mask")
    start = text.index("pneumonia")
    out = redact_analysis({"entities": [{"start": start, "end": start + 9, "text": "pneumonia"}]}, result)
    assert "Okafor" not in out["text"] and "555-0143" not in out["text"]
    [ent] = out["entities"]
    assert out["text"][ent["start"]:ent["end"]] == "pneumonia" and "phi_overlap" not in ent


def test_stored_text_by_setting() -> None:
    text = "Wife Maria called 508-555-0199."
    calls = []

    def redact(t: str) -> str:
        calls.append(t)
        return DEID.deidentify(t, "n3").text

    kept = stored_text(text, "deidentified", redact)
    assert kept != text and "508-555-0199" not in kept and "Maria" not in kept
    assert stored_text(text, "original", redact) == text
    assert stored_text(text, "none", redact) is None
    assert calls == [text]  # the stage only runs when the redacted text is kept
    assert stored_text(text, Settings().store_text, redact) == kept  # default: deidentified
    with pytest.raises(EngineError, match="store_text"):
        stored_text(text, "raw", redact)
