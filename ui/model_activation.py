"""The Models page's audit gate on **Activate**: what the gate says about the chosen version, and the sign-off and
override inputs the CLI has (``models activate V --accept FINDING`` / ``--override-audit REASON``).

A registered model set goes live only through :func:`engine.versions.activate`, whose gate
(:mod:`engine.audit.gate`) reads the set's own ``audit/audit.json``. Here a person picks the open findings they
sign off after review, or gives a reason to activate despite the gate, and names themself; the gate's record
(who, when, findings, sign-offs, override reason) goes into the registry's ``audit_log`` exactly as from the CLI,
and the page lists the version's recorded activations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine import versions
from engine.audit.gate import AuditCheck, check_audit
from engine.settings import Settings


@dataclass(slots=True)
class GateInput:
    """What the person entered for one activation.

    Attributes:
        accept: Open findings signed off (``--accept``).
        override: Reason to activate despite the gate (``--override-audit``), or ``None``.
        actor: Who signs off or overrides (recorded as ``by``).
    """

    accept: list[str] = field(default_factory=list)
    override: str | None = None
    actor: str = ""


def activate_through_gate(settings: Settings, version: str, given: GateInput) -> str:
    """Activate ``version`` through the audit gate with the page's sign-off or override.

    Raises:
        ValueError: A sign-off or an override without the name of who gives it.
        EngineError: ``AUDIT_REFUSED`` (E601) when the gate stays closed.
    """
    override = (given.override or "").strip() or None
    actor = given.actor.strip()
    if (given.accept or override) and not actor:
        raise ValueError("Enter who signs off or overrides (recorded with the activation).")
    return versions.activate(settings, version, accept=list(given.accept), override_audit=override,
                             actor=actor or None)


def recorded_activations(settings: Settings, version: str) -> list[dict[str, Any]]:
    """The registry's ``audit_log`` records of ``version``, newest first, as table rows."""
    log = versions.read_registry(settings).get("audit_log", [])
    return [{"at": r.get("at"), "by": r.get("by"), "signed off": ", ".join(r.get("accepted") or []),
             "open findings": ", ".join(r.get("open_findings") or []), "override reason": r.get("override") or ""}
            for r in reversed(log) if r.get("version") == version]


def _show_check(st: Any, check: AuditCheck) -> None:
    if check.problem:
        st.warning(f"Audit gate closed: {check.problem}. Audit the set first (`python -m engine audit "
                   "--model-dir SET --out SET/audit --gate`), or give a reason to override below.",
                   icon=":material/gpp_bad:")
    elif check.open:
        st.warning(f"Audit gate closed: findings not signed off: {', '.join(check.open)} (audit at "
                   f"`{check.path}`). Sign them off after review, or give a reason to override.",
                   icon=":material/gpp_maybe:")
    else:
        signed = f"; signed off: {', '.join(check.accepted)}" if check.accepted else ""
        st.success(f"Audit gate open: `{check.path}`, findings: {', '.join(check.findings) or 'none'}{signed}.",
                   icon=":material/verified_user:")


def render_gate(settings: Settings, version: str, reviewer: str | None) -> GateInput:
    """Draw the gate's state for ``version`` and its sign-off/override inputs; return what was entered.

    Args:
        settings: Engine settings (the registry).
        version: The version the Activate button would activate.
        reviewer: The sidebar's reviewer name, the default of "Signed off by".
    """
    import streamlit as st

    if version == versions.BASE:
        st.caption("The committed default models are not gated: activating or rolling back to them always works.")
        return GateInput()
    check = check_audit(versions.version_model_dir(settings, version))
    _show_check(st, check)
    given = GateInput()
    if not check.passed:
        if check.open:
            given.accept = st.multiselect("Sign off findings (after review)", check.open, key=f"gate_accept_{version}",
                                          help="As `models activate V --accept FINDING`: recorded with your name.")
        given.override = st.text_area(
            "Or activate despite the gate: reason (recorded)", key=f"gate_override_{version}",
            placeholder="e.g. race flips reviewed with the clinical lead, ticket 123",
            help="As `models activate V --override-audit REASON`.") or None
        given.actor = st.text_input("Signed off by", value=reviewer or "", key=f"gate_by_{version}",
                                    help="Recorded as `by` in the registry's audit log.")
    rows = recorded_activations(settings, version)
    if rows:
        with st.expander(f"Recorded activations of {version} ({len(rows)})"):
            st.dataframe(rows, hide_index=True, key=f"gate_log_{version}")
    return given
