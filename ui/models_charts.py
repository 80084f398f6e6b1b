"""Plotly figures of the Models page (pure functions of what :mod:`ui.models_data` reads).

- :func:`f1_by_type_figure`: grouped bars, strict F1 per entity type (and overall), one bar group per model/set;
- :func:`reliability_figure`: reliability curves (accuracy against confidence per bin, the diagonal for perfect
  calibration), or the stored ECE values as bars when no bins are stored;
- :func:`calibration_map_figure`: the ICD ranker's isotonic map from raw score to calibrated probability;
- :func:`gate_figure`: the retraining gate's comparison, active model against candidate, per set and metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from engine.types import LABELS

ACTIVE_COLOUR = "#7f8c8d"
CANDIDATE_COLOUR = "#2e86c1"
WORSE_COLOUR = "#c0392b"


def _layout(fig: go.Figure, title: str, y_title: str, y_range: tuple[float, float] | None = (0.0, 1.0)) -> go.Figure:
    fig.update_layout(title=title, yaxis_title=y_title, legend={"orientation": "h", "y": -0.2},
                      margin={"l": 50, "r": 20, "t": 50, "b": 40}, height=380)
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig


def f1_by_type_figure(sources: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """Strict F1 per entity type and overall, one trace per model/evaluation set.

    Args:
        sources: ``{name: {"overall": {"f1", "tp", "fn", ...}, "per_type": {label: {...}}}}`` (``score`` results).
    """
    fig = go.Figure()
    categories = [*LABELS, "overall"]
    for name, scores in sources.items():
        per_type = scores.get("per_type", {})
        values, support = [], []
        for label in categories:
            typed = scores.get("overall") if label == "overall" else per_type.get(label)
            values.append(float(typed["f1"]) if typed else None)
            support.append(int(typed.get("tp", 0) + typed.get("fn", 0)) if typed else 0)
        fig.add_trace(go.Bar(name=name, x=categories, y=values, customdata=support,
                             hovertemplate="%{x}: F1 %{y:.3f} (%{customdata} gold spans)<extra>" + name + "</extra>"))
    fig.update_layout(barmode="group")
    return _layout(fig, "Strict F1 per entity type", "F1")


def _used_bins(curve: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [b for b in curve.get("bins", []) if b.get("n") and b.get("confidence") is not None]


def reliability_figure(curves: Mapping[str, Mapping[str, Any]], ece: Mapping[str, float] | None = None,
                       title: str = "Reliability") -> go.Figure:
    """Accuracy against mean confidence per bin, one line per curve; the stored ECE as bars when there are no bins.

    Args:
        curves: ``{name: {"ece", "bins": [{"n", "confidence", "accuracy"}]}}`` (:func:`engine.audit.calibration.
            reliability`).
        ece: ``{name: value}``, drawn only when ``curves`` is empty.
        title: The figure's title.
    """
    fig = go.Figure()
    if not curves:
        names = list((ece or {}).keys())
        fig.add_trace(go.Bar(x=names, y=[float((ece or {})[n]) for n in names], name="ECE",
                             hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
        if not names:
            fig.add_annotation(text="neither bins nor an ECE are stored for this version", showarrow=False,
                               xref="paper", yref="paper", x=0.5, y=0.5)
        return _layout(fig, f"{title}: expected calibration error (no bins stored)", "ECE", None)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line={"dash": "dash", "color": "grey", "width": 1}))
    for name, curve in curves.items():
        used = _used_bins(curve)
        label = f"{name} (ECE {float(curve['ece']):.3f})" if "ece" in curve else name
        fig.add_trace(go.Scatter(
            x=[b["confidence"] for b in used], y=[b["accuracy"] for b in used], mode="lines+markers", name=label,
            customdata=[b["n"] for b in used],
            hovertemplate="confidence %{x:.2f}: accuracy %{y:.2f} (%{customdata} items)<extra></extra>",
        ))
    fig.update_xaxes(range=[0, 1], title="mean confidence in bin")
    return _layout(fig, title, "fraction correct in bin")


def calibration_map_figure(mapping: Mapping[str, Sequence[float]]) -> go.Figure:
    """The ICD ranker's isotonic calibration: raw ranker score to P(the top code is in the right category)."""
    fig = go.Figure(go.Scatter(x=list(mapping["x"]), y=list(mapping["y"]), mode="lines", line={"shape": "hv"},
                               name="isotonic map",
                               hovertemplate="raw score %{x:.2f}: probability %{y:.2f}<extra></extra>"))
    fig.update_xaxes(title="raw ranker score")
    return _layout(fig, "ICD ranker calibration map (fitted on held-out queries)", "calibrated probability")


def gate_figure(rows: Sequence[Mapping[str, Any]], decision: str = "") -> go.Figure:
    """Active against candidate for every gate comparison; candidate bars that fell past the margin are red.

    Args:
        rows: :func:`ui.models_data.gate_rows` (``set``, ``metric``, ``active``, ``candidate``, ``result``...).
        decision: ``promoted`` or ``refused``, for the title.
    """
    x = [f"{r['set']}<br>{r['metric']}" for r in rows]
    support = [r.get("support", 0) for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Bar(name="active (before)", x=x, y=[r["active"] for r in rows], marker_color=ACTIVE_COLOUR,
                         customdata=support, hovertemplate="%{x}: %{y:.4f} (support %{customdata})<extra></extra>"))
    fig.add_trace(go.Bar(
        name="candidate (after)", x=x, y=[r["candidate"] for r in rows], customdata=[r["result"] for r in rows],
        marker_color=[WORSE_COLOUR if r["result"] == "worse" else CANDIDATE_COLOUR for r in rows],
        hovertemplate="%{x}: %{y:.4f} (%{customdata})<extra></extra>",
    ))
    fig.update_layout(barmode="group")
    title = "Retraining gate: active model (before) vs candidate (after)"
    return _layout(fig, f"{title}: {decision}" if decision else title, "score (F1 or AUC)")
