"""The model registry: retrained model sets, their lineage, and the pointer to the active one.

The registry lives in :attr:`Settings.registry_dir <engine.settings.Settings.registry_dir>` (outside git, by
default the ignored ``model_registry/`` folder; env ``CLINICAL_NLP_REGISTRY_DIR``)::

    model_registry/
        registry.json            # every version, the active pointer and the activation history
        registry.lock            # advisory lock held while registry.json is read-modified-written
        versions/<id>/ner/       # a full model set: what load_pipeline(model_dir=...) takes
        versions/<id>/summarizer/
        versions/<id>/report.json, REPORT.txt   # the gate's decision for this version

``registry.json`` is only ever replaced whole (temporary file + :func:`os.replace`) under the lock, so a reader never
sees half a file and two writers (the app's retrain button and a CLI run) never lose each other's updates.
The committed default models in ``assets/models`` are the implicit version :data:`BASE`; a fresh clone has no
registry and therefore runs the defaults. The app compares :func:`active_version` with the version its cached
pipeline was built for and reloads when they differ, so an activation or rollback is picked up without a restart.

Command line (``python -m engine models ...``)::

    python -m engine models list [--json]
    python -m engine models show VERSION
    python -m engine models activate VERSION [--accept FINDING ...] [--override-audit REASON]
    python -m engine models rollback
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError, ErrorCode
from engine.settings import DEFAULT_MODEL_DIR, Settings

try:  # POSIX advisory locks; on platforms without fcntl the registry is single-writer.
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None  # type: ignore[assignment]

BASE = "base"
"""The implicit version of the committed default models (``assets/models``)."""

STAGES = ("ner", "summarizer")
"""Sub-folders that make a full model set."""

REGISTRY_FILE = "registry.json"
LOCK_FILE = "registry.lock"
SCHEMA = 1


@dataclass(slots=True)
class VersionInfo:
    """One registered model set.

    Attributes:
        id: Unique version id (also written as ``version`` in the stages this version trained).
        parent: The version it was fine-tuned from (:data:`BASE` for the committed defaults).
        created: UTC time of registration, ISO 8601.
        path: Folder of the model set, relative to the registry folder (absolute for :data:`BASE`).
        status: ``promoted`` (passed the gate), ``refused`` (kept for inspection, never activated by retraining),
            or ``registered`` (added by hand).
        data_hash: Hash of the training data (feedback + base data) the version was trained on.
        metrics: Gate metrics of this version (per evaluation set: overall and per-type strict P/R/F1).
        training_config: Epochs, learning rate, device, seed, data counts... as given to the trainers.
        gate: The gate's decision summary (``promote``, ``reasons``, margin).
        stages: Per stage: ``trained`` or ``copied from <parent>``.
    """

    id: str
    parent: str | None
    created: str
    path: str
    status: str = "registered"
    data_hash: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    training_config: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in ``registry.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionInfo:
        """Inverse of :meth:`to_dict`, ignoring unknown keys written by newer code."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def _empty() -> dict[str, Any]:
    return {"schema": SCHEMA, "active": BASE, "history": [BASE], "versions": {}}


def registry_dir(settings: Settings | None = None) -> Path:
    """The registry folder of ``settings`` (default :class:`Settings`)."""
    return Path((settings or Settings()).registry_dir)


def read_registry(settings: Settings | None = None) -> dict[str, Any]:
    """Read ``registry.json`` (no lock needed: it is only ever replaced whole).

    Returns:
        The registry object; an empty registry (active :data:`BASE`) when the folder or file does not exist.

    Raises:
        EngineError: ``MODEL_INVALID`` when the file exists but is not a registry.
    """
    path = registry_dir(settings) / REGISTRY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _empty()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EngineError(ErrorCode.MODEL_INVALID, f"{path}: not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("versions"), dict):
        raise EngineError(ErrorCode.MODEL_INVALID, f"{path}: not a model registry")
    data.setdefault("active", BASE)
    data.setdefault("history", [data["active"]])
    return data


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+") as lock:
        if fcntl is not None:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def update_registry(settings: Settings | None, change: Callable[[dict[str, Any]], Any]) -> Any:
    """Apply ``change`` to the registry under the lock and write it back atomically.

    Args:
        settings: Whose :attr:`registry_dir` to use.
        change: Mutates the registry object in place; its return value is passed through.
    """
    root = registry_dir(settings)
    with _locked(root):
        data = read_registry(settings)
        result = change(data)
        _write_atomic(root / REGISTRY_FILE, data)
    return result


def _base_info() -> VersionInfo:
    return VersionInfo(
        id=BASE, parent=None, created="", path=str(DEFAULT_MODEL_DIR), status="committed",
        stages={s: "committed" for s in STAGES},
    )


def list_versions(settings: Settings | None = None) -> list[VersionInfo]:
    """All versions, :data:`BASE` first, then in registration order."""
    data = read_registry(settings)
    return [_base_info()] + [VersionInfo.from_dict(v) for v in data["versions"].values()]


def get_version(settings: Settings | None, version: str) -> VersionInfo:
    """The version named ``version`` (:data:`BASE` for the committed defaults).

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when no such version is registered.
    """
    if version == BASE:
        return _base_info()
    data = read_registry(settings)
    if version not in data["versions"]:
        known = ", ".join([BASE, *data["versions"]])
        raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"no model version {version!r} in the registry (known: {known})")
    return VersionInfo.from_dict(data["versions"][version])


def version_model_dir(settings: Settings | None, version: str) -> Path:
    """The model-set folder of ``version`` (``assets/models`` for :data:`BASE`)."""
    info = get_version(settings, version)
    path = Path(info.path)
    return path if path.is_absolute() else registry_dir(settings) / path


def active_version(settings: Settings | None = None) -> str:
    """Id of the active version (:data:`BASE` when none was ever activated).

    Cheap (one small JSON read), so the app may call it on every page run to decide whether to reload its pipeline.
    """
    return str(read_registry(settings).get("active") or BASE)


def active_model_dir(settings: Settings | None = None) -> Path | None:
    """Folder of the active version, or ``None`` when the committed defaults are active.

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when the active version's folder has gone (so a deleted folder is never
            silently replaced by other models); ``python -m engine models activate base`` repairs it.
    """
    version = active_version(settings)
    if version == BASE:
        return None
    path = version_model_dir(settings, version)
    check_model_set(path, version)
    return path


def check_model_set(path: Path, version: str) -> None:
    """Raise ``MODEL_NOT_FOUND`` unless ``path`` holds every stage of :data:`STAGES` (each with ``config.json``)."""
    missing = [s for s in STAGES if not (path / s / "config.json").is_file()]
    if missing:
        raise EngineError(
            ErrorCode.MODEL_NOT_FOUND,
            f"model version {version!r} at {path} lacks {', '.join(missing)}/config.json; "
            f"run `python -m engine models activate {BASE}` or activate another version",
        )


def utc_now() -> str:
    """Current UTC time, ISO 8601 to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def new_version_id(settings: Settings | None, data_hash: str) -> str:
    """A fresh id ``v<NNN>-<8 hex of the data hash>`` (sequence number over the registry's history)."""
    data = read_registry(settings)
    used = set(data["versions"])
    versions_dir = registry_dir(settings) / "versions"
    if versions_dir.is_dir():
        used |= {p.name for p in versions_dir.iterdir()}
    number = len(data["versions"]) + 1
    while True:
        candidate = f"v{number:03d}-{data_hash[:8]}"
        if candidate not in used and not any(u.startswith(f"v{number:03d}-") for u in used):
            return candidate
        number += 1


def link_or_copy_tree(src: Path, dst: Path) -> None:
    """Copy a stage folder, hard-linking files where the filesystem allows (versions are never edited in place)."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        target = dst / item.name
        if item.is_dir():
            link_or_copy_tree(item, target)
            continue
        try:
            os.link(item, target)
        except OSError:
            shutil.copy2(item, target)


def register_version(
    settings: Settings | None,
    info: VersionInfo,
    *,
    activate: bool = False,
    accept: Sequence[str] = (),
    override_audit: str | None = None,
) -> VersionInfo:
    """Add a version whose model set already sits in ``versions/<id>`` and optionally make it active.

    Activating goes through the audit gate (:func:`engine.audit.gate.require_audit`, as :func:`activate`).

    Raises:
        EngineError: ``MODEL_INVALID`` when the id is taken; ``MODEL_NOT_FOUND`` when the folder is incomplete;
            ``AUDIT_REFUSED`` when ``activate`` is asked for and the audit gate is closed (nothing is registered).
    """
    path = Path(info.path)
    folder = path if path.is_absolute() else registry_dir(settings) / path
    check_model_set(folder, info.id)
    gated = _audit_gate(folder, info.id, accept, override_audit) if activate else None

    def change(data: dict[str, Any]) -> None:
        if info.id in data["versions"] or info.id == BASE:
            raise EngineError(ErrorCode.MODEL_INVALID, f"model version {info.id!r} is already registered")
        data["versions"][info.id] = info.to_dict()
        if activate:
            data["active"] = info.id
            data["history"].append(info.id)
            data.setdefault("audit_log", []).append(gated)

    update_registry(settings, change)
    return info


def _audit_gate(folder: Path, version: str, accept: Sequence[str], override: str | None,
                actor: str | None = None) -> dict[str, Any]:
    from engine.audit.gate import require_audit  # the gate reads the audit's verdict rules; not needed to serve

    return require_audit(folder, version, accept, override, actor)


def activate(settings: Settings | None, version: str, *, accept: Sequence[str] = (),
             override_audit: str | None = None, actor: str | None = None) -> str:
    """Make ``version`` the active model set (any registered version, refused ones included, or :data:`BASE`).

    A registered version passes the audit gate first (:mod:`engine.audit.gate`: its own ``audit/audit.json``
    with every finding signed off, in the audit or by ``accept``); ``override_audit`` (a reason) activates it
    anyway. Either way the gate's record (who, when, findings, override) is appended to the registry's
    ``audit_log``. :data:`BASE` (the committed defaults, the rollback target) is not gated. ``actor``: who
    activates, signs off or overrides (the Models page passes the name typed there; default
    ``$CLINICAL_NLP_USER`` or the login name).

    Returns:
        The version that was active before.

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` for an unknown version or an incomplete folder; ``AUDIT_REFUSED`` when
            the audit gate is closed and no override is given (the active version is unchanged).
    """
    gated = None
    if version != BASE:
        folder = version_model_dir(settings, version)
        check_model_set(folder, version)
        gated = _audit_gate(folder, version, accept, override_audit, actor)

    def change(data: dict[str, Any]) -> str:
        if version != BASE and version not in data["versions"]:
            raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"no model version {version!r} in the registry")
        before = str(data.get("active") or BASE)
        if before != version:
            data["active"] = version
            data["history"].append(version)
        if gated is not None:
            data.setdefault("audit_log", []).append(gated)
        return before

    return update_registry(settings, change)


def rollback(settings: Settings | None = None) -> str:
    """Return to the version that was active before the current one (by activation history).

    Returns:
        The version active after the rollback.

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when there is nothing to roll back to.
    """

    def change(data: dict[str, Any]) -> str:
        history: list[str] = data["history"]
        current = str(data.get("active") or BASE)
        # Drop the current activation, then any entries equal to it or no longer registered.
        while history and history[-1] == current:
            history.pop()
        while history and history[-1] != BASE and history[-1] not in data["versions"]:
            history.pop()
        if not history:
            if current == BASE:
                raise EngineError(ErrorCode.MODEL_NOT_FOUND, "nothing to roll back to: the base models are active")
            history.append(BASE)
        data["active"] = history[-1]
        return history[-1]

    return update_registry(settings, change)


def _format_table(settings: Settings) -> str:
    active = active_version(settings)
    rows = [("", "version", "parent", "status", "created", "gate")]
    for info in list_versions(settings):
        gate = info.gate.get("summary", "") if info.gate else ""
        rows.append(("*" if info.id == active else "", info.id, info.parent or "-", info.status,
                     info.created or "-", gate))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1] for r in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine models list|show|activate|rollback``."""
    parser = argparse.ArgumentParser(prog="python -m engine models", description="Model versions and the active one.")
    parser.add_argument("--registry-dir", help="registry folder (default: Settings.registry_dir)")
    sub = parser.add_subparsers(dest="action", required=True)
    p_list = sub.add_parser("list", help="every version; * marks the active one")
    p_list.add_argument("--json", action="store_true", help="one JSON object per version")
    sub.add_parser("active", help="print the active version id")
    p_show = sub.add_parser("show", help="a version's record and its gate report")
    p_show.add_argument("version")
    p_act = sub.add_parser("activate", help="make VERSION the active model set ('base' for the committed defaults); "
                           "a registered version needs a passing audit (VERSION's audit/audit.json)")
    p_act.add_argument("version")
    p_act.add_argument("--accept", action="append", default=[], metavar="FINDING",
                       help="an audit finding a person reviewed and signs off (repeatable; recorded)")
    p_act.add_argument("--override-audit", metavar="REASON",
                       help="activate although the audit gate is closed; the reason is recorded in the registry")
    sub.add_parser("rollback", help="return to the previously active version")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    settings = Settings().with_overrides(registry_dir=args.registry_dir)
    out = sys.stdout
    if args.action == "list":
        if args.json:
            active = active_version(settings)
            for info in list_versions(settings):
                out.write(json.dumps({**info.to_dict(), "active": info.id == active}, ensure_ascii=False) + "\n")
        else:
            out.write(_format_table(settings))
    elif args.action == "active":
        out.write(active_version(settings) + "\n")
    elif args.action == "show":
        info = get_version(settings, args.version)
        out.write(json.dumps(info.to_dict(), indent=2, ensure_ascii=False) + "\n")
        gated = [g for g in read_registry(settings).get("audit_log", []) if g.get("version") == args.version]
        if gated:
            out.write("audit gate at activation:\n" + "".join(json.dumps(g, ensure_ascii=False) + "\n" for g in gated))
        report = version_model_dir(settings, args.version) / "REPORT.txt"
        if report.is_file():
            out.write("\n" + report.read_text(encoding="utf-8"))
    elif args.action == "activate":
        try:
            before = activate(settings, args.version, accept=args.accept, override_audit=args.override_audit)
        except EngineError as exc:
            sys.stderr.write(f"python -m engine models activate: {exc}\n")
            return 3 if exc.code == ErrorCode.AUDIT_REFUSED else 1
        out.write(f"active: {args.version} (was {before})\n")
        last = (read_registry(settings).get("audit_log") or [{}])[-1]
        if args.version != BASE and last.get("override"):
            out.write(f"audit gate overridden (recorded): {last['override']}\n")
    else:
        before = active_version(settings)
        after = rollback(settings)
        out.write(f"active: {after} (was {before})\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
