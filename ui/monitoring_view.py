"""The Monitoring page's rendering: the report's alerts, a time series per statistic with its threshold, the
reviewer override rates and the audit's reliability diagrams. Figures are pure functions of the report dict
(``python -m engine monitor --series N`` prints the same dict), so they are tested without a browser."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.settings import REPO_ROOT

PLOTTED = {
    "input_drift": "Input drift: excess vocabulary KL divergence",
    "prediction_drift": "Prediction drift: chi-squared p-value of the entity mix",
    "mean_confidence": "Mean entity confidence",
    "entities_per_note": "Entities per note",
    "token_entropy": "Mean NER token entropy (nats)",
    "o_share": "Share of O tokens",
    "low_confidence_share": "Share of low-confidence entities",
}
AUDIT_DIR = REPO_ROOT / "docs" / "audit"
"""Where the committed audit run's figures are (``python -m engine audit --out docs/audit``)."""


@st.cache_data(ttl=30, show_spinner="Computing the monitoring report…")
def load_report(url: str, window: int, points: int) -> dict[str, Any]:
    """The monitoring report with its time series (cached for 30 s per URL, window and points)."""
    from db.monitor import build

    return build(url, window, series_points=points)


def statistics_frame(report: dict[str, Any]) -> pd.DataFrame:
    """One row per statistic: value, threshold, rule, alert and the reference's value."""
    rows = []
    for name, stat in report["statistics"].items():
        threshold = stat["threshold"]
        rows.append({
            "statistic": name,
            "value": stat["value"],
            "threshold": "–" if threshold is None else " to ".join(map(str, threshold))
            if isinstance(threshold, list) else str(threshold),
            "rule": stat["rule"],
            "alert": stat["alert"],
            "reference": stat.get("reference"),
        })
    return pd.DataFrame(rows)


def _x(points: list[dict[str, Any]]) -> tuple[list[Any], str]:
    if points and all(p.get("time") is not None for p in points):
        return [datetime.fromtimestamp(p["time"], UTC) for p in points], "time of the window's last analysis"
    return [p["end"] for p in points], "analyses stored"


def series_figure(points: list[dict[str, Any]], name: str, threshold: Any) -> go.Figure:
    """A statistic over the stream, alerting points in red, its threshold(s) as dashed lines."""
    x, x_title = _x(points)
    y = [p.get(name) for p in points]
    alert = [bool(p.get(f"{name}_alert")) for p in points]
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines+markers", name=name,
                               marker={"color": ["#c0392b" if a else "#2c7fb8" for a in alert]}))
    for line in threshold if isinstance(threshold, list) else [threshold]:
        if line is not None:
            fig.add_hline(y=line, line_dash="dash", line_color="#c0392b", annotation_text=f"threshold {line}")
    if name == "prediction_drift":
        fig.update_yaxes(type="log")
    fig.update_layout(title=PLOTTED.get(name, name), height=280, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis_title=x_title, showlegend=False)
    return fig


def override_figure(rates: dict[str, Any]) -> go.Figure:
    """Weekly override rates, entity and code decisions, with the number of decisions on hover."""
    fig = go.Figure()
    for key, title in (("entity_by_week", "entities"), ("code_by_week", "codes"), ("by_week", "all")):
        weeks = rates.get(key, {})
        fig.add_trace(go.Scatter(x=list(weeks), y=[w["rate"] for w in weeks.values()], mode="lines+markers",
                                 name=title, customdata=[w["decisions"] for w in weeks.values()],
                                 hovertemplate="%{x}: %{y:.0%} of %{customdata} decisions"))
    fig.update_layout(title="Reviewer override rate per week (rejections + corrections / decisions)", height=300,
                      yaxis={"tickformat": ".0%", "range": [0, 1]}, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def rates_frame(rates: dict[str, dict[str, Any]], key: str) -> pd.DataFrame:
    """A ``{group: rate}`` mapping as a table."""
    return pd.DataFrame([{key: g, **r} for g, r in rates.items()])


def render_alerts(report: dict[str, Any]) -> None:
    """The current alerts, or a calm line when there are none."""
    reference = report.get("reference", {})
    st.caption(f"{report['n_analyses']:,} analyses stored; window of the newest {report['n_window']:,} "
               f"(setting {report['window']:,}); reference: {reference.get('source', '?')} "
               f"({reference.get('models', {}).get('ner', '?')}). {reference.get('note', '')}")
    if report["alerts"]:
        for name in report["alerts"]:
            stat = report["statistics"][name]
            st.error(f"**{name}**: {stat['value']} ({stat['rule']}; threshold {stat['threshold']})",
                     icon=":material/warning:")
    else:
        st.success("No alert.", icon=":material/check_circle:")
    st.dataframe(statistics_frame(report), hide_index=True, key="monitoring_stats")


def render_series(report: dict[str, Any]) -> None:
    """A chart per statistic, two to a row."""
    points = report.get("series") or []
    if len(points) < 2:
        st.info("Time series appear once a few analyses are stored.")
        return
    names = [n for n in PLOTTED if n in report["statistics"]]
    for i in range(0, len(names), 2):
        for column, name in zip(st.columns(2), names[i : i + 2], strict=False):
            column.plotly_chart(series_figure(points, name, report["statistics"][name]["threshold"]),
                                key=f"series_{name}")


def render_overrides(report: dict[str, Any]) -> None:
    """Override rates per week, per label and per code, and label drift."""
    rates = report["override_rates"]
    overall = rates["overall"]
    if not overall["decisions"]:
        st.info("No reviewer decisions yet: override rates and label drift appear once entities are reviewed.")
        return
    st.metric("Override rate, all decisions", f"{overall['rate']:.0%}", help=f"{overall['decisions']} decisions")
    st.plotly_chart(override_figure(rates), key="override_weeks")
    left, right = st.columns(2)
    left.dataframe(rates_frame(rates["by_label"], "label"), hide_index=True, key="override_labels")
    right.dataframe(rates_frame(rates["by_code"], "code"), hide_index=True, key="override_codes")
    weeks = report["statistics"]["label_drift"]["weeks"]
    if weeks:
        st.dataframe(pd.DataFrame(weeks).drop(columns=["by_label"]), hide_index=True, key="label_drift_weeks")


def render_audit(folder: Path = AUDIT_DIR) -> None:
    """The committed audit run's reliability diagrams and verdict link."""
    figures = sorted(folder.glob("reliability_*.png"))
    if not figures:
        st.info("No audit run found: `python -m engine audit --out docs/audit` writes one.")
        return
    for column, figure in zip(st.columns(len(figures)), figures, strict=True):
        column.image(str(figure), caption=figure.stem.replace("_", " "))
    st.caption(f"From the audit committed in {folder.relative_to(REPO_ROOT)} (verdict: docs/audit/verdict.md).")
