"""The encounter's code set: lines, conflicts and left-out codes, serialised as the contract's ``code`` object.

A line's id is its code: the builder merges every mention of one condition into one line, so a code appears once
in a code set, and the id stays the same when the note is analysed again (a coder's stored decisions keep
pointing at the right line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SETTINGS: tuple[str, ...] = ("outpatient", "inpatient")
"""The encounter settings (``auto`` picks one from the note, see :mod:`engine.encounter.builder`)."""
STATUSES: tuple[str, ...] = ("suggested", "accepted", "added")
"""A line's status: as built, accepted by the coder, or added by the coder."""


def ordinal(n: int) -> str:
    """``1`` -> ``"1st"``, ``12`` -> ``"12th"``, ``22`` -> ``"22nd"``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(slots=True)
class CodeLine:
    """One reported code.

    Attributes:
        code: A billable ICD-10-CM code, with its dot.
        description: Its Tabular description.
        evidence: Indexes into the analysis's ``entities`` that document it.
        sequence: 1 for the first-listed (principal) code, then 2, 3...
        reason: Plain words: what was documented, which conventions were applied, why this place in the order.
        kind: ``condition``, ``symptom``, ``history`` (personal history / status) or ``family``.
        flags: Things the coder should check (a 7th character assumed, a note asking for another code...).
        status: One of :data:`STATUSES`.
        facts: The reason's parts before the order is known (not serialised).
        rank: The best section rank of the evidence (lower: diagnostic statement; not serialised).
        final: Some evidence lies in a final diagnostic statement section (not serialised).
        acute: The condition is acute (sequencing; not serialised).
        position: Character offset of the first evidence (not serialised).
        score: The best linker score of the evidence (not serialised).
        uncertain: Coded from an uncertain diagnosis (inpatient, guideline II.H; not serialised).
        mentions: See below.
    """

    code: str
    description: str
    evidence: list[int]
    sequence: int = 0
    reason: str = ""
    kind: str = "condition"
    flags: list[str] = field(default_factory=list)
    status: str = "suggested"
    facts: list[str] = field(default_factory=list)
    rank: int = 9
    final: bool = False
    acute: bool = False
    position: int = 1 << 30
    score: float = 0.0
    uncertain: bool = False
    mentions: list[tuple[int, str, str | None]] = field(default_factory=list)
    """``(entity index, mention text, section)`` of the evidence (not serialised)."""

    @property
    def id(self) -> str:
        """The line's stable id (its code)."""
        return self.code

    def support(self) -> tuple:
        """Sort key, best supported first: in a final diagnostic statement, more mentions, a higher linker score,
        a more specific (longer) code, documented earlier."""
        specificity = len(self.code.replace(".", "").replace("X", ""))  # placeholder X adds no detail
        return (not self.final, -len(self.evidence), -round(self.score, 3), -specificity, self.position)

    def to_dict(self) -> dict[str, Any]:
        """The contract's code line (``id``, ``kind``, ``flags`` and ``status`` are optional extensions)."""
        out: dict[str, Any] = {
            "id": self.id,
            "code": self.code,
            "description": self.description,
            "sequence": self.sequence,
            "evidence": sorted(self.evidence),
            "reason": self.reason,
            "kind": self.kind,
            "status": self.status,
        }
        if self.flags:
            out["flags"] = list(self.flags)
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> CodeLine:
        """A line read back from :meth:`to_dict` (for stored code sets)."""
        return cls(
            code=str(obj["code"]),
            description=str(obj.get("description", "")),
            evidence=[int(i) for i in obj.get("evidence", [])],
            sequence=int(obj.get("sequence", 0)),
            reason=str(obj.get("reason", "")),
            kind=str(obj.get("kind", "condition")),
            flags=list(obj.get("flags", [])),
            status=str(obj.get("status", "suggested")),
        )


@dataclass(slots=True)
class Conflict:
    """Two codes that the conventions forbid reporting together, and what was done.

    Attributes:
        type: ``excludes1``.
        codes: The two codes.
        kept: The code(s) in the code set (both when the coder chose to report both).
        dropped: The code(s) left out.
        note: The Tabular note, quoted with the code it is written on.
        reason: Plain words: why the kept one was kept.
        flag: What the coder must check (the unrelated-conditions exception of guideline I.A.12.a).
        evidence: Entity indexes of both codes.
    """

    type: str
    codes: list[str]
    kept: list[str]
    dropped: list[str]
    note: str
    reason: str
    flag: str | None = None
    evidence: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "type": self.type,
            "codes": list(self.codes),
            "kept": list(self.kept),
            "dropped": list(self.dropped),
            "note": self.note,
            "reason": self.reason,
            "flag": self.flag,
            "evidence": sorted(self.evidence),
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Conflict:
        """A conflict read back from :meth:`to_dict`."""
        return cls(
            type=str(obj.get("type", "excludes1")),
            codes=list(obj.get("codes", [])),
            kept=list(obj.get("kept", [])),
            dropped=list(obj.get("dropped", [])),
            note=str(obj.get("note", "")),
            reason=str(obj.get("reason", "")),
            flag=obj.get("flag"),
            evidence=[int(i) for i in obj.get("evidence", [])],
        )


@dataclass(slots=True)
class Dropped:
    """A finding or code the encounter does not report, and why (shown to the coder, not submitted).

    Attributes:
        code: The code it would have had, or ``None``.
        evidence: Entity indexes.
        rule: ``uncertain``, ``integral``, ``combined``, ``superseded``, ``excludes1``, ``unbillable``, ``family``.
        reason: Plain words.
    """

    code: str | None
    evidence: list[int]
    rule: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"code": self.code, "evidence": sorted(self.evidence), "rule": self.rule, "reason": self.reason}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Dropped:
        """A left-out entry read back from :meth:`to_dict`."""
        return cls(obj.get("code"), [int(i) for i in obj.get("evidence", [])], str(obj.get("rule", "")),
                   str(obj.get("reason", "")))


@dataclass(slots=True)
class Encounter:
    """The encounter's code set (the contract's ``code`` output).

    Attributes:
        id: The note's id.
        setting: ``outpatient`` or ``inpatient``.
        codes: The lines, in sequence order.
        conflicts: Excludes1 pairs met and how each was resolved.
        dropped: Findings and codes left out, with the rule that left them out.
        setting_reason: How the setting was chosen.
    """

    id: str | None
    setting: str
    codes: list[CodeLine] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    setting_reason: str = ""

    def line(self, code: str) -> CodeLine | None:
        """The line with this code (dot optional), or ``None``."""
        key = code.replace(".", "").strip().upper()
        return next((ln for ln in self.codes if ln.code.replace(".", "") == key), None)

    def to_dict(self) -> dict[str, Any]:
        """The contract's object: ``id``, ``setting``, ``codes``, ``conflicts`` (+ ``dropped``, ``setting_reason``)."""
        return {
            "id": self.id,
            "setting": self.setting,
            "codes": [ln.to_dict() for ln in sorted(self.codes, key=lambda ln: ln.sequence)],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "dropped": [d.to_dict() for d in self.dropped],
            "setting_reason": self.setting_reason,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Encounter:
        """A code set read back from :meth:`to_dict` (the app stores it as JSON)."""
        return cls(
            id=obj.get("id"),
            setting=str(obj.get("setting", "outpatient")),
            codes=[CodeLine.from_dict(c) for c in obj.get("codes", [])],
            conflicts=[Conflict.from_dict(c) for c in obj.get("conflicts", [])],
            dropped=[Dropped.from_dict(d) for d in obj.get("dropped", [])],
            setting_reason=str(obj.get("setting_reason", "")),
        )
