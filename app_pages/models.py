"""Models: the model versions, their metrics, and which one is active and loaded."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import versions
from ui.models_view import render_version_charts
from ui.resources import active_version, engine_error_message, get_db_engine, get_pipeline
from ui.retrain_panel import render_retrain_panel
from ui.store import model_version_rows

st.title("Models")
active = active_version()
try:
    loaded = get_pipeline().models
except Exception as err:
    loaded = {}
    st.error(engine_error_message(err))

st.subheader("Loaded now")
st.caption(f"Active version: **{active}**. Activate or roll back with `python -m engine models activate VERSION` "
           "or `python -m engine models rollback`; the app picks the change up on the next page load.")
if loaded:
    st.dataframe(pd.DataFrame([{"stage": k, "version": v} for k, v in loaded.items()]), hide_index=True,
                 key="loaded_models")

try:
    listed = versions.list_versions()
except Exception as err:
    st.error(f"The model registry could not be read: {err}")
    st.stop()

st.subheader("Versions")
st.dataframe(
    pd.DataFrame([
        {"version": v.id, "active": "✅" if v.id == active else "", "status": v.status, "parent": v.parent,
         "created": v.created, "trained": ", ".join(f"{k}: {s}" for k, s in v.stages.items()),
         "data hash": (v.data_hash or "")[:12]}
        for v in listed
    ]),
    hide_index=True, key="model_versions",
)

st.subheader("Metrics")
choice = st.selectbox("Version", [v.id for v in listed], index=[v.id for v in listed].index(active)
                      if active in [v.id for v in listed] else 0, key="metrics_version")
render_version_charts(choice, next(v for v in listed if v.id == choice))  # ui/models_view.py

render_retrain_panel()  # retrain from feedback with progress, activate, roll back (ui/retrain_panel.py)

recorded = model_version_rows(get_db_engine())
if recorded:
    st.subheader("Versions recorded in the feedback store")
    st.dataframe(pd.DataFrame(recorded), hide_index=True, key="db_model_versions")
