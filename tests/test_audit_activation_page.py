"""The Models page's Activate action through the audit gate (issue 24): the page shows the gate, offers the CLI's
sign-off (``--accept``) and override (``--override-audit``) inputs with who gives them, and the registry's
``audit_log`` records them. Streamlit's AppTest runs the real panel on a real registry folder and SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from support.audit_testing import write_audit
from support.gate_testing import fake_stage_folders

from engine import versions
from engine.settings import Settings

PAGE = """
from ui.retrain_panel import render_retrain_panel

render_retrain_panel()
"""


@pytest.fixture
def env(tmp_path, monkeypatch, app_db_url):
    """A registry folder the panel reads (``$CLINICAL_NLP_REGISTRY_DIR``), beside conftest's SQLite store."""
    registry = tmp_path / "registry"
    monkeypatch.setenv("CLINICAL_NLP_REGISTRY_DIR", str(registry))
    script = tmp_path / "page.py"
    script.write_text(PAGE, encoding="utf-8")
    return Settings().with_overrides(registry_dir=registry), script


def _version(settings: Settings, tag: str, differing: dict[str, int] | None, audited: bool = True) -> str:
    """A registered, inactive version with fake stage folders and (``audited``) its own audit report."""
    vid, folder = fake_stage_folders(settings, tag)
    if audited:
        write_audit(folder, vid, differing)
    info = versions.VersionInfo(id=vid, parent=versions.BASE, created=versions.utc_now(), path=f"versions/{vid}",
                                status="promoted")
    versions.register_version(settings, info)
    return vid


def _open(script: Path, version: str, reviewer: str | None = None) -> AppTest:
    at = AppTest.from_file(str(script), default_timeout=60)
    if reviewer:
        at.session_state["reviewer"] = reviewer  # the sidebar's reviewer name, as the app sets it
    at.run()
    at.selectbox(key="activate_choice").set_value(version).run()
    assert not at.exception, at.exception
    return at


def _activate(at: AppTest) -> AppTest:
    at.button(key="activate_button").click().run()
    assert not at.exception, at.exception
    return at


def _log(settings: Settings) -> list[dict]:
    return versions.read_registry(settings).get("audit_log", [])


def test_open_findings_are_signed_off_on_the_page_and_recorded(env):
    settings, script = env
    vid = _version(settings, "a", differing={"race": 2, "sex": 1})
    at = _open(script, vid, reviewer="Dr Sidebar")
    assert any("findings not signed off: sex, race" in w.value for w in at.warning)
    assert at.multiselect(key=f"gate_accept_{vid}").options == ["sex", "race"]
    assert at.text_input(key=f"gate_by_{vid}").value == "Dr Sidebar"  # defaults to the reviewer

    at = _activate(at)  # nothing signed off: refused with the gate's E601, nothing recorded
    assert any("[E601]" in e.value and "findings not signed off" in e.value for e in at.error)
    assert versions.active_version(settings) == versions.BASE and _log(settings) == []

    at.multiselect(key=f"gate_accept_{vid}").set_value(["sex"]).run()
    at = _activate(at)  # one of two: still refused
    assert any("findings not signed off: race" in e.value for e in at.error)
    assert versions.active_version(settings) == versions.BASE

    at.multiselect(key=f"gate_accept_{vid}").set_value(["sex", "race"]).run()
    at.text_input(key=f"gate_by_{vid}").input("  ").run()
    at = _activate(at)  # a sign-off needs a name
    assert any("Enter who signs off" in e.value for e in at.error)
    assert versions.active_version(settings) == versions.BASE

    at.text_input(key=f"gate_by_{vid}").input("Dr Gate").run()
    at = _activate(at)
    assert not at.error, [e.value for e in at.error]
    assert versions.active_version(settings) == vid
    record = _log(settings)[-1]
    assert (record["version"], record["by"], record["accepted"], record["open_findings"], record["override"]) == (
        vid, "Dr Gate", ["race", "sex"], [], None)


def test_missing_audit_is_overridden_with_a_reason_and_recorded(env):
    settings, script = env
    vid = _version(settings, "b", differing=None, audited=False)
    at = _open(script, vid)
    assert any("no audit of this model set" in w.value for w in at.warning)
    assert not [m for m in at.multiselect if m.key == f"gate_accept_{vid}"]  # nothing to sign off without an audit

    at.text_area(key=f"gate_override_{vid}").input("hotfix for ticket 42; audit scheduled").run()
    at = _activate(at)  # no name yet
    assert any("Enter who signs off" in e.value for e in at.error)
    at.text_input(key=f"gate_by_{vid}").input("Dr Override").run()
    at = _activate(at)
    assert versions.active_version(settings) == vid
    record = _log(settings)[-1]
    assert record["by"] == "Dr Override" and record["override"] == "hotfix for ticket 42; audit scheduled"
    assert "no audit" in record["problem"]

    # the page lists the recorded activation; the committed defaults are not gated
    at = AppTest.from_file(str(script), default_timeout=60).run()
    assert at.selectbox(key="activate_choice").value == vid
    logged = [d.value for d in at.dataframe if "override reason" in d.value.columns]
    assert len(logged) == 1 and list(logged[0]["by"]) == ["Dr Override"]
    at.selectbox(key="activate_choice").set_value(versions.BASE).run()
    assert any("not gated" in c.value for c in at.caption)
    _activate(at)
    assert versions.active_version(settings) == versions.BASE


def test_a_passing_audit_activates_without_inputs(env):
    settings, script = env
    vid = _version(settings, "c", differing=None)
    at = _open(script, vid)
    assert any("Audit gate open" in s.value for s in at.success)
    assert not [t for t in at.text_area if t.key == f"gate_override_{vid}"]
    _activate(at)
    assert versions.active_version(settings) == vid and _log(settings)[-1]["override"] is None
