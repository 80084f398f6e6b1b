"""Acceptance statistics and Plotly charts for the History page (pure functions of decision rows)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

ICD_CHAPTERS: tuple[tuple[str, str, str], ...] = (
    ("A00", "B99", "Infectious and parasitic"),
    ("C00", "D49", "Neoplasms"),
    ("D50", "D89", "Blood and immune"),
    ("E00", "E89", "Endocrine and metabolic"),
    ("F01", "F99", "Mental and behavioural"),
    ("G00", "G99", "Nervous system"),
    ("H00", "H59", "Eye"),
    ("H60", "H95", "Ear"),
    ("I00", "I99", "Circulatory"),
    ("J00", "J99", "Respiratory"),
    ("K00", "K95", "Digestive"),
    ("L00", "L99", "Skin"),
    ("M00", "M99", "Musculoskeletal"),
    ("N00", "N99", "Genitourinary"),
    ("O00", "O9A", "Pregnancy and childbirth"),
    ("P00", "P96", "Perinatal"),
    ("Q00", "Q99", "Congenital"),
    ("R00", "R99", "Symptoms and signs"),
    ("S00", "T88", "Injury and poisoning"),
    ("U00", "U85", "Special purposes"),
    ("V00", "Y99", "External causes"),
    ("Z00", "Z99", "Health status and services"),
)
"""ICD-10-CM chapters as (first, last category, short title), in code order."""

REVIEWED = ("accept", "reject", "correct")
"""Decisions on a model suggestion; ``add`` (a missed entity) has no suggestion to accept."""


def icd_chapter(code: str | None) -> str | None:
    """The ICD-10-CM chapter of a code, e.g. ``"I00–I99 Circulatory"``; ``None`` when unknown."""
    if not code or len(code) < 3:
        return None
    category = code[:3].upper()
    for first, last, title in ICD_CHAPTERS:
        if first <= category <= last:
            return f"{first}–{last} {title}"
    return None


def decisions_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Decision rows (``DecisionView.to_dict()``) as a frame with ``day``, ``chapter`` and ``accepted`` columns."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=["when", "day", "reviewer", "decision", "target", "label", "code", "chapter",
                                     "accepted"])
    frame["when"] = pd.to_datetime(frame["when"])
    frame["day"] = frame["when"].dt.floor("D")
    final = frame["corrected_code"].where(frame["corrected_code"].notna(), frame["code"]) \
        if "corrected_code" in frame else frame["code"]
    frame["chapter"] = [icd_chapter(c) if t == "code" else None for c, t in zip(final, frame["target"], strict=True)]
    frame["accepted"] = frame["decision"] == "accept"
    return frame


def acceptance(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Acceptance rate per value of ``by`` among accept/reject/correct decisions.

    Returns:
        Columns ``by``, ``accepted``, ``decided`` and ``rate`` (accepted / decided), sorted by ``by``.
    """
    reviewed = frame[frame["decision"].isin(REVIEWED) & frame[by].notna()]
    if reviewed.empty:
        return pd.DataFrame({by: [], "accepted": [], "decided": [], "rate": []})
    table = reviewed.groupby(by, sort=True)["accepted"].agg(accepted="sum", decided="count").reset_index()
    table["accepted"] = table["accepted"].astype(int)
    table["rate"] = table["accepted"] / table["decided"]
    return table


def acceptance_chart(table: pd.DataFrame, by: str, title: str) -> Any:
    """A Plotly bar chart (or a line over time when ``by`` is ``day``) of an :func:`acceptance` table."""
    import plotly.express as px

    hover = {"accepted": True, "decided": True, "rate": ":.0%"}
    if by == "day":
        # One tick per calendar day: a datetime axis over one day of data would tick every few milliseconds.
        table = table.assign(day=pd.to_datetime(table["day"]).dt.strftime("%Y-%m-%d"))
        fig = px.line(table, x=by, y="rate", markers=True, hover_data=hover, title=title)
        fig.update_xaxes(type="category", title="day")
    else:
        fig = px.bar(table, x=by, y="rate", text="decided", hover_data=hover, title=title)
        fig.update_traces(texttemplate="n=%{text}", textposition="outside")
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%", title="acceptance rate")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, height=320)
    return fig
