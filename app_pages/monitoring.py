"""Monitoring: drift, confidence and override statistics of the stored analyses, with thresholds and alerts."""

from __future__ import annotations

import streamlit as st

from db.settings import DbSettings
from engine.settings import Settings
from ui.monitoring_view import load_report, render_alerts, render_audit, render_overrides, render_series

st.title("Monitoring")
left, right = st.columns(2)
window = left.number_input("Window (analyses)", min_value=10, value=Settings().monitor.window, step=100,
                           key="mon_window")
points = right.slider("Points per time series", min_value=5, max_value=60, value=30, key="mon_points")

try:
    report = load_report(DbSettings().url, int(window), int(points))
except Exception as err:  # a missing reference profile or an unreadable store: say so, keep the app up
    st.error(f"The monitoring report could not be computed: {err}", icon=":material/error:")
    st.stop()

render_alerts(report)
st.subheader("Statistics over time")
render_series(report)
st.subheader("Reviewer overrides and label drift")
render_overrides(report)
st.subheader("Calibration (audit)")
render_audit()
