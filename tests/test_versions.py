"""The filesystem model registry: registration, activation, rollback, atomic concurrent updates, CLI."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from support.audit_testing import write_audit

from engine import versions
from engine.errors import EngineError
from engine.settings import DEFAULT_MODEL_DIR, Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings().with_overrides(registry_dir=tmp_path / "registry")


def _make_version(settings: Settings, tag: str, parent: str = versions.BASE, **kwargs) -> versions.VersionInfo:
    vid = versions.new_version_id(settings, tag * 8)
    folder = settings.registry_dir / "versions" / vid
    for stage in versions.STAGES:
        (folder / stage).mkdir(parents=True)
        (folder / stage / "config.json").write_text(json.dumps({"version": vid}), encoding="utf-8")
    write_audit(folder, vid)  # a passing audit of its own: activation is gated (tests/test_audit_gate.py)
    info = versions.VersionInfo(id=vid, parent=parent, created=versions.utc_now(), path=f"versions/{vid}", **kwargs)
    return versions.register_version(settings, info, activate=kwargs.get("status") == "promoted")


def test_empty_registry_means_base(tmp_path):
    settings = _settings(tmp_path)
    assert versions.active_version(settings) == versions.BASE
    assert versions.active_model_dir(settings) is None
    assert [v.id for v in versions.list_versions(settings)] == [versions.BASE]
    assert versions.version_model_dir(settings, versions.BASE) == DEFAULT_MODEL_DIR
    with pytest.raises(EngineError, match="nothing to roll back"):
        versions.rollback(settings)
    assert not (settings.registry_dir / versions.REGISTRY_FILE).exists()


def test_register_activate_rollback_chain(tmp_path):
    settings = _settings(tmp_path)
    v1 = _make_version(settings, "a", status="promoted")
    v2 = _make_version(settings, "b", parent=v1.id, status="promoted")
    refused = _make_version(settings, "c", parent=v2.id, status="refused")
    assert v1.id.startswith("v001-aaaaaaaa") and v2.id.startswith("v002-") and refused.id.startswith("v003-")
    assert versions.active_version(settings) == v2.id
    assert versions.active_model_dir(settings) == settings.registry_dir / "versions" / v2.id
    # Any version can be activated by hand, then rollback walks the activation history backwards.
    assert versions.activate(settings, refused.id) == v2.id
    assert versions.rollback(settings) == v2.id
    assert versions.rollback(settings) == v1.id
    assert versions.rollback(settings) == versions.BASE
    assert versions.active_model_dir(settings) is None
    versions.activate(settings, v1.id)
    assert versions.active_version(settings) == v1.id
    info = versions.get_version(settings, v2.id)
    assert info.parent == v1.id and info.status == "promoted"


def test_unknown_and_incomplete_versions_are_refused(tmp_path):
    settings = _settings(tmp_path)
    with pytest.raises(EngineError, match="no model version"):
        versions.activate(settings, "v999-nothere")
    v1 = _make_version(settings, "a", status="promoted")
    with pytest.raises(EngineError, match="already registered"):
        versions.register_version(settings, v1)
    # A deleted folder is an error, never a silent fallback to other weights.
    (settings.registry_dir / "versions" / v1.id / "ner" / "config.json").unlink()
    with pytest.raises(EngineError, match=r"lacks ner/config\.json"):
        versions.active_model_dir(settings)
    versions.activate(settings, versions.BASE)
    assert versions.active_model_dir(settings) is None


def test_corrupt_registry_file_is_a_clear_error(tmp_path):
    settings = _settings(tmp_path)
    settings.registry_dir.mkdir(parents=True)
    (settings.registry_dir / versions.REGISTRY_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(EngineError, match="not valid JSON"):
        versions.active_version(settings)


def test_concurrent_updates_are_not_lost(tmp_path):
    settings = _settings(tmp_path)

    def bump(i: int) -> None:
        def change(data):
            data.setdefault("counter", 0)
            data["counter"] += 1

        for _ in range(20):
            versions.update_registry(settings, change)

    threads = [threading.Thread(target=bump, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert versions.read_registry(settings)["counter"] == 80
    # Only the registry and its lock remain: temporary files were all renamed into place.
    left = sorted(p.name for p in settings.registry_dir.iterdir())
    assert left == sorted([versions.LOCK_FILE, versions.REGISTRY_FILE])


def test_cli_list_activate_rollback(tmp_path, capsys):
    settings = _settings(tmp_path)
    v1 = _make_version(settings, "a", status="promoted")
    reg = ["--registry-dir", str(settings.registry_dir)]
    assert versions.main([*reg, "list"]) == 0
    table = capsys.readouterr().out
    assert [line.split()[1] for line in table.splitlines() if line.startswith("*")] == [v1.id]
    assert versions.main([*reg, "activate", "base"]) == 0
    assert f"active: base (was {v1.id})" in capsys.readouterr().out
    assert versions.main([*reg, "rollback"]) == 0
    assert f"active: {v1.id}" in capsys.readouterr().out
    assert versions.main([*reg, "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["active"]) for r in rows] == [("base", False), (v1.id, True)]


def test_load_pipeline_follows_the_active_version(tmp_path, monkeypatch):
    from engine.pipeline import load_pipeline

    monkeypatch.delenv("CLINICAL_NLP_MODEL_DIR", raising=False)
    settings = _settings(tmp_path)
    monkeypatch.setenv("CLINICAL_NLP_REGISTRY_DIR", str(settings.registry_dir))
    assert load_pipeline(device="cpu").settings.model_dir == DEFAULT_MODEL_DIR
    v1 = _make_version(settings, "a", status="promoted")
    assert load_pipeline(device="cpu").settings.model_dir == settings.registry_dir / "versions" / v1.id
    # An explicit model set or the environment variable always wins over the registry.
    assert load_pipeline(model_dir=tmp_path, device="cpu").settings.model_dir == tmp_path
    monkeypatch.setenv("CLINICAL_NLP_MODEL_DIR", str(tmp_path / "elsewhere"))
    assert load_pipeline(device="cpu").settings.model_dir == tmp_path / "elsewhere"
