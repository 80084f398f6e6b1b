"""The audit gate on activation (engine.audit.gate): a registered model set goes live only with a passing audit of
its own, a sign-off of each finding, or a recorded override."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.audit_testing import write_audit

from engine import versions
from engine.audit.gate import check_audit, retrain_activation
from engine.errors import EngineError, ErrorCode
from engine.settings import DEFAULT_MODEL_DIR, Settings

REPO = Path(__file__).resolve().parent.parent


def _settings(tmp_path: Path) -> Settings:
    return Settings().with_overrides(registry_dir=tmp_path / "registry")


def _version(settings: Settings, tag: str, link_defaults: bool = False) -> tuple[str, Path]:
    """A registered, inactive version: fake stage folders, or the committed models hard-linked (a real set)."""
    vid = versions.new_version_id(settings, tag * 8)
    folder = settings.registry_dir / "versions" / vid
    for stage in versions.STAGES:
        if link_defaults:
            versions.link_or_copy_tree(DEFAULT_MODEL_DIR / stage, folder / stage)
        else:
            (folder / stage).mkdir(parents=True)
            (folder / stage / "config.json").write_text(json.dumps({"version": vid}), encoding="utf-8")
    info = versions.VersionInfo(id=vid, parent=versions.BASE, created=versions.utc_now(), path=f"versions/{vid}",
                                status="promoted")
    versions.register_version(settings, info)
    return vid, folder


def test_activation_is_refused_without_a_passing_audit(tmp_path):
    settings = _settings(tmp_path)
    vid, folder = _version(settings, "a")
    with pytest.raises(EngineError) as refused:
        versions.activate(settings, vid)
    assert refused.value.code == ErrorCode.AUDIT_REFUSED and "[E601]" in str(refused.value)
    assert "no audit of this model set" in refused.value.message and "python -m engine audit" in refused.value.message
    assert versions.active_version(settings) == versions.BASE

    write_audit(folder, "another-model")  # an audit of other models does not count
    with pytest.raises(EngineError, match="is of NER model 'another-model'"):
        versions.activate(settings, vid)

    write_audit(folder, vid, differing={"race": 2, "sex": 1})
    with pytest.raises(EngineError, match="findings not signed off: sex, race") as refused:
        versions.activate(settings, vid)
    assert "--accept sex --accept race" in refused.value.message
    with pytest.raises(EngineError, match="findings not signed off: race"):
        versions.activate(settings, vid, accept=["sex"])
    assert versions.active_version(settings) == versions.BASE
    assert "audit_log" not in versions.read_registry(settings)  # nothing recorded for a refusal

    # Signed off at activation: allowed, and who signed what is recorded.
    assert versions.activate(settings, vid, accept=["sex", "race"]) == versions.BASE
    assert versions.active_version(settings) == vid
    record = versions.read_registry(settings)["audit_log"][-1]
    assert record["version"] == vid and record["accepted"] == ["race", "sex"] and record["open_findings"] == []
    assert record["override"] is None and record["by"]


def test_override_activates_and_is_recorded(tmp_path):
    settings = _settings(tmp_path)
    vid, folder = _version(settings, "b")
    write_audit(folder, vid, differing={"age": 1})
    with pytest.raises(EngineError):
        versions.activate(settings, vid, override_audit="   ")  # a blank reason is no reason
    versions.activate(settings, vid, override_audit="age difference reviewed by Dr A, ticket 42")
    assert versions.active_version(settings) == vid
    record = versions.read_registry(settings)["audit_log"][-1]
    assert record["override"] == "age difference reviewed by Dr A, ticket 42" and record["open_findings"] == ["age"]
    # The committed defaults are never gated: rolling back always works.
    assert versions.rollback(settings) == versions.BASE
    versions.activate(settings, versions.BASE)


def test_register_and_activate_is_gated_too(tmp_path):
    settings = _settings(tmp_path)
    vid = versions.new_version_id(settings, "c" * 8)
    folder = settings.registry_dir / "versions" / vid
    for stage in versions.STAGES:
        (folder / stage).mkdir(parents=True)
        (folder / stage / "config.json").write_text(json.dumps({"version": vid}), encoding="utf-8")
    info = versions.VersionInfo(id=vid, parent=versions.BASE, created=versions.utc_now(), path=f"versions/{vid}")
    with pytest.raises(EngineError, match="audit gate closed"):
        versions.register_version(settings, info, activate=True)
    assert [v.id for v in versions.list_versions(settings)] == [versions.BASE]  # nothing registered
    write_audit(folder, vid)
    versions.register_version(settings, info, activate=True)
    assert versions.active_version(settings) == vid


def test_retrain_activation_reports_the_gate():
    reasons: list[str] = []
    assert retrain_activation(Path("/nonexistent/set"), "v009-x", True, reasons) is False
    assert reasons and reasons[0].startswith("model version 'v009-x' not activated: audit gate closed (no audit")
    assert retrain_activation(Path("/nonexistent/set"), "v009-x", False, reasons) is False and len(reasons) == 1


def test_cli_exit_status_and_record(tmp_path):
    settings = _settings(tmp_path)
    vid, folder = _version(settings, "d")
    write_audit(folder, vid, differing={"race": 1})
    reg = ["--registry-dir", str(settings.registry_dir)]
    run = [sys.executable, "-m", "engine", "models", *reg]
    refused = subprocess.run([*run, "activate", vid], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 3 and "[E601]" in refused.stderr and "race" in refused.stderr
    done = subprocess.run([*run, "activate", vid, "--override-audit", "pilot ward only"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"active: {vid}" in done.stdout and "overridden (recorded): pilot ward only" in done.stdout
    shown = subprocess.run([*run, "show", vid], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert '"override": "pilot ward only"' in shown.stdout


@pytest.mark.slow
def test_real_audit_of_a_model_set_gates_its_activation(tmp_path):
    """The audit verb run on a registered set (the committed models hard-linked) writes the audit the gate reads:
    its findings close the gate (audit exit 3, activation E601) until each is signed off."""
    settings = _settings(tmp_path)
    vid, folder = _version(settings, "e", link_defaults=True)
    dev = tmp_path / "icd_dev.tsv"
    dev.write_text("heart attack\tI21.9\tparaphrase\nhigh blood pressure\tI10\tparaphrase\n", encoding="utf-8")
    env = {**os.environ, "CLINICAL_DATA_DIR": str(tmp_path / "no-data")}  # NER dev part skipped: faster
    audit = subprocess.run([sys.executable, "-m", "engine", "audit", "--model-dir", str(folder), "--out",
                            str(folder / "audit"), "--icd-dev", str(dev), "--gate"], cwd=REPO, capture_output=True,
                           text=True, timeout=1200, env=env)
    summary = json.loads(audit.stdout)
    check = check_audit(folder)
    assert check.problem is None and check.findings == summary["findings"]
    # The committed models' swap pairs differ by race (docs/audit/verdict.md): the audit fails and so does activation.
    assert audit.returncode == 3 and "race" in check.open, audit.stderr[-500:]
    with pytest.raises(EngineError, match="audit gate closed"):
        versions.activate(settings, vid)
    versions.activate(settings, vid, accept=check.open)
    assert versions.active_version(settings) == vid
    assert versions.read_registry(settings)["audit_log"][-1]["accepted"] == sorted(check.open)
