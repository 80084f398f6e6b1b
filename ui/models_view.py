"""The Models page's charts of one version: per-type F1, calibration, and the retraining gate's comparison.

The data comes from :mod:`ui.models_data`, the figures from :mod:`ui.models_charts`; this module only places them.
"""

from __future__ import annotations

from engine import versions
from engine.settings import DEFAULT_MODEL_DIR, Settings
from ui import models_charts as charts
from ui import models_data as data


def render_version_charts(version: str, info: versions.VersionInfo, settings: Settings | None = None) -> None:
    """Draw the charts of ``version`` (call it from the Models page).

    Args:
        version: The version id chosen on the page.
        info: Its registry entry (gate summary, training configuration, registry metrics).
        settings: Engine settings (registry and model folders; default: from the environment).
    """
    import streamlit as st

    settings = settings or Settings()
    folder = versions.version_model_dir(settings, version)
    model_set = data.read_model_set(folder)
    for problem in model_set.problems:
        st.warning(problem)

    st.markdown("#### Per-type F1")
    sources = data.f1_sources(model_set)
    if sources:
        st.plotly_chart(charts.f1_by_type_figure(sources), key="chart_f1_by_type")
        st.caption("Strict span F1 (exact span and label) per entity type, from each NER folder's metrics.json: "
                   "`dev` is the model's own held-out split, `feedback_test` and `base_dev` the sets a retraining "
                   "gate scored it on. Hover a bar for its gold-span support.")
    else:
        st.info(f"No per-type F1 recorded for {version}.")

    st.markdown("#### Calibration")
    audit = data.read_audit()
    ner = data.ner_calibration(model_set, audit)
    icd = data.icd_calibration(audit)
    left, right = st.columns(2)
    left.plotly_chart(charts.reliability_figure(ner.curves, ner.ece, "NER entity confidence"),
                      key="chart_ner_reliability")
    right.plotly_chart(charts.reliability_figure(icd.curves, None, "ICD code score"), key="chart_icd_reliability")
    mapping = data.icd_calibration_map(settings.model_dir / "icd_ranker") or data.icd_calibration_map(
        DEFAULT_MODEL_DIR / "icd_ranker")
    if mapping:
        st.plotly_chart(charts.calibration_map_figure(mapping), key="chart_icd_calibration_map")
    st.caption(" ".join([*ner.notes, *icd.notes, "The ICD stage is not retrained: its charts are the same for "
                         "every version."]))

    st.markdown("#### Retraining gate")
    report = data.gate_report(folder)
    if report:
        rows = data.gate_rows(report)
        st.plotly_chart(charts.gate_figure(rows, str(report.get("decision", ""))), key="chart_gate")
        st.dataframe(rows, hide_index=True, key="gate_checks")
        for reason in report.get("reasons", []):
            st.markdown(f"- {reason}")
    elif info.gate:
        st.caption(f"{version} has a gate decision but no report.json in its folder to plot.")
        st.json(info.gate)
    else:
        st.caption(f"{version} was not made by a retraining run, so there is no gate comparison to show.")

    with st.expander("All recorded metrics (raw)"):
        st.json({"registry": info.metrics, "model folders": model_set.stages}, expanded=False)
    if info.training_config:
        with st.expander("Training configuration"):
            st.json(info.training_config)
