"""The audit gate on model activation: a model set goes live only with a passing audit verdict of its own.

A model set's audit lives in its folder, ``<set>/audit/audit.json`` (written by ``python -m engine audit
--model-dir SET --out SET/audit``). Activating a registered version (``python -m engine models activate``, the
Models page, a retraining run that promotes its candidate) checks it:

- no audit there, or an audit of other models (its ``models.ner`` is not the set's NER version): refused;
- findings of the verdict (:func:`~engine.audit.verdict.review_findings`) not signed off, neither in the audit
  (``audit --accept``, kept in ``audit.json`` as ``accepted``) nor at activation (``models activate --accept``):
  refused;
- otherwise allowed.

A refusal is :class:`~engine.errors.EngineError` ``AUDIT_REFUSED`` (E601) naming the open findings and the commands
that clear them. ``--override-audit REASON`` activates anyway; the override, with its reason, who gave it and the
findings it overrode, is appended to the registry's ``audit_log`` (as is every gated activation).

The committed defaults (``base``) are not gated: rolling back to them must always work, and their audit is the
committed ``docs/audit`` whose findings were reviewed when they shipped.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.audit.verdict import review_findings
from engine.errors import EngineError, ErrorCode

AUDIT_DIR = "audit"
AUDIT_FILE = "audit.json"


def audit_path(model_dir: str | Path) -> Path:
    """Where a model set's own audit report lives: ``<set>/audit/audit.json``."""
    return Path(model_dir) / AUDIT_DIR / AUDIT_FILE


@dataclass(slots=True)
class AuditCheck:
    """The audit gate's view of one model set.

    Attributes:
        path: The audit report looked for.
        problem: Why there is no usable audit (missing, unreadable, of other models), or ``None``.
        findings: The verdict's findings needing review.
        accepted: Findings signed off (in the audit, and at activation).
        open: Findings neither signed off: the gate passes only when this is empty and ``problem`` is ``None``.
    """

    path: Path
    problem: str | None = None
    findings: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    open: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether activation is allowed without an override."""
        return self.problem is None and not self.open


def _ner_version(model_dir: Path) -> str | None:
    try:
        return json.loads((model_dir / "ner" / "config.json").read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        return None


def check_audit(model_dir: str | Path, accepted: Sequence[str] = ()) -> AuditCheck:
    """Read the model set's audit and apply the gate (no exception: see :attr:`AuditCheck.passed`)."""
    model_dir = Path(model_dir)
    check = AuditCheck(audit_path(model_dir))
    try:
        report = json.loads(check.path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        check.problem = f"no audit of this model set at {check.path}"
        return check
    except (OSError, ValueError) as exc:
        check.problem = f"the audit at {check.path} cannot be read ({exc})"
        return check
    try:
        check.findings = review_findings(report)
    except (KeyError, TypeError, AttributeError) as exc:
        check.problem = f"{check.path} is not an audit report (missing {exc})"
        return check
    if not report.get("swaps", {}).get("pairs"):
        check.problem = f"the audit at {check.path} ran no demographic swap pairs"
        return check
    audited, own = (report.get("models") or {}).get("ner"), _ner_version(model_dir)
    if own is not None and audited != own:
        check.problem = f"the audit at {check.path} is of NER model {audited!r}, not this set's {own!r}"
        return check
    check.accepted = sorted({*report.get("accepted", []), *accepted})
    check.open = [f for f in check.findings if f not in check.accepted]
    return check


def _actor() -> str:
    try:
        return os.environ.get("CLINICAL_NLP_USER") or getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        return "unknown"


def require_audit(model_dir: str | Path, version: str, accepted: Sequence[str] = (),
                  override: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """The gate itself: the record of an allowed activation, or a refusal.

    Args:
        model_dir: The model set about to be activated.
        version: Its registry id (for messages and the record).
        accepted: Findings a person signs off at activation (``models activate --accept``).
        override: A reason to activate despite the gate (``--override-audit``); recorded.
        actor: Who activates (default ``$CLINICAL_NLP_USER`` or the login name).

    Returns:
        The record to keep in the registry's ``audit_log``: ``version``, ``at``, ``by``, ``audit``, ``findings``,
        ``accepted``, ``open_findings``, ``problem``, ``override`` (``None`` unless one was needed and given).

    Raises:
        EngineError: ``AUDIT_REFUSED`` when the gate is closed and no override reason is given.
    """
    check = check_audit(model_dir, accepted)
    record: dict[str, Any] = {
        "version": version,
        "at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "by": actor or _actor(),
        "audit": str(check.path),
        "findings": check.findings,
        "accepted": check.accepted,
        "open_findings": check.open,
        "problem": check.problem,
        "override": None,
    }
    if check.passed:
        return record
    if override is not None and override.strip():
        record["override"] = override.strip()
        return record
    why = check.problem or f"findings not signed off: {', '.join(check.open)}"
    fix = (f"audit it: python -m engine audit --model-dir {model_dir} --out {check.path.parent} --gate"
           if check.problem else f"after review, sign them off: python -m engine models activate {version} "
           + " ".join(f"--accept {f!r}" if " " in f else f"--accept {f}" for f in check.open))
    raise EngineError(
        ErrorCode.AUDIT_REFUSED,
        f"model version {version!r} not activated: audit gate closed ({why}); {fix}; or activate anyway with "
        "--override-audit REASON (recorded)",
    )


def retrain_activation(model_dir: str | Path, version: str, activate: bool, reasons: list[str]) -> bool:
    """Whether a retraining run may activate the candidate it promoted: the gate without override (a person
    decides that). When it may not, the reason is appended to ``reasons`` and the version stays registered,
    promoted but inactive (``python -m engine models activate`` after the audit)."""
    if not activate:
        return False
    try:
        require_audit(model_dir, version)
    except EngineError as exc:
        reasons.append(exc.message)  # "model version '...' not activated: audit gate closed (...)"
        return False
    return True
