"""ui.charts: ICD-10-CM chapters and acceptance rates from decision rows."""

from __future__ import annotations

import pytest

from ui.charts import acceptance, acceptance_chart, decisions_frame, icd_chapter


@pytest.mark.parametrize(
    ("code", "chapter"),
    [
        ("I21.9", "I00–I99 Circulatory"),
        ("D48.1", "C00–D49 Neoplasms"),
        ("D50.0", "D50–D89 Blood and immune"),
        ("H61.20", "H60–H95 Ear"),
        ("O9A.211", "O00–O9A Pregnancy and childbirth"),
        ("T81.4XXA", "S00–T88 Injury and poisoning"),
        ("z00.00", "Z00–Z99 Health status and services"),
        ("", None),
        (None, None),
        ("W1", None),
    ],
)
def test_icd_chapter(code, chapter):
    assert icd_chapter(code) == chapter


def row(decision, label, reviewer, when, code=None, target="code"):
    return {"when": when, "reviewer": reviewer, "decision": decision, "target": target, "label": label,
            "code": code, "entity_text": "x"}


def test_acceptance_by_label_chapter_reviewer_and_day():
    rows = [
        row("accept", "DIAG", "ann", "2026-11-20T10:00:00", "I10"),
        row("reject", "DIAG", "ann", "2026-11-20T11:00:00", "I21.9"),
        row("correct", "DIAG", "bob", "2026-11-21T09:00:00", "E11.9"),
        row("accept", "MED", "bob", "2026-11-21T09:30:00", target="entity"),
        row("add", "TEST", "bob", "2026-11-21T09:40:00", target="entity"),
    ]
    frame = decisions_frame(rows)
    by_label = acceptance(frame, "label").set_index("label")
    assert by_label.loc["DIAG", "decided"] == 3 and by_label.loc["DIAG", "rate"] == pytest.approx(1 / 3)
    assert by_label.loc["MED", "rate"] == 1.0 and "TEST" not in by_label.index  # "add" is not a review of a model
    by_chapter = acceptance(frame, "chapter").set_index("chapter")
    assert by_chapter["decided"].to_dict() == {"E00–E89 Endocrine and metabolic": 1, "I00–I99 Circulatory": 2}
    by_reviewer = acceptance(frame, "reviewer").set_index("reviewer")
    assert by_reviewer.loc["ann", "rate"] == 0.5 and by_reviewer.loc["bob", "rate"] == 0.5
    by_day = acceptance(frame, "day")
    assert list(by_day["decided"]) == [2, 2]
    fig = acceptance_chart(by_day, "day", "Over time")
    assert fig.data[0].type == "scatter" and list(fig.data[0].y) == [0.5, 0.5]
    assert acceptance_chart(by_reviewer.reset_index(), "reviewer", "By reviewer").data[0].type == "bar"


def test_empty_rows():
    frame = decisions_frame([])
    assert frame.empty and acceptance(frame, "label").empty
