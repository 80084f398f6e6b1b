"""A coder's decisions on a code set: accept, remove, move or add lines (the Review page stores them).

A decision names a line by its code (a line's stable id, see :mod:`engine.encounter.model`)::

    {"action": "accept", "code": "E11.22"}
    {"action": "remove", "code": "R07.9"}
    {"action": "move", "code": "I10", "to": 1}          # to: the new 1-based sequence number
    {"action": "add", "code": "Z79.4", "to": 3}         # to: optional, default last

Decisions apply in order to a copy of the code set; sequences are renumbered; Excludes1 pairs that the decisions
leave reported together get a conflict entry (the coder took the unrelated-conditions exception, I.A.12.a), so no
code set ever holds an Excludes1 pair without one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.encounter.conflicts import exception_flag
from engine.encounter.conventions import Conventions
from engine.encounter.model import CodeLine, Conflict, Dropped, Encounter, ordinal
from engine.encounter.notes import dot
from engine.errors import EngineError, ErrorCode
from engine.types import Code

ACTIONS = ("accept", "remove", "move", "add")


@dataclass(frozen=True, slots=True)
class Decision:
    """One coder decision.

    Attributes:
        action: One of :data:`ACTIONS`.
        code: The line's code (dot optional); for ``add``, the code to add.
        to: The 1-based sequence number for ``move`` (required) and ``add`` (optional).
        note: The coder's own words, kept in the line's reason.
    """

    action: str
    code: str
    to: int | None = None
    note: str | None = None

    @classmethod
    def from_dict(cls, obj: Any, n: int = 1) -> Decision:
        """A decision from its JSON form; ``n`` (1-based) names it in errors.

        Raises:
            EngineError: ``BAD_INPUT`` for a malformed decision.
        """
        if isinstance(obj, Decision):
            return obj
        if not isinstance(obj, dict) or obj.get("action") not in ACTIONS or not isinstance(obj.get("code"), str):
            raise EngineError(ErrorCode.BAD_INPUT,
                              f"decision {n}: expected {{'action': {'|'.join(ACTIONS)}, 'code': ...}}, got {obj!r}")
        to = obj.get("to")
        if to is not None and (not isinstance(to, int) or isinstance(to, bool) or to < 1):
            raise EngineError(ErrorCode.BAD_INPUT, f"decision {n}: 'to' must be a sequence number from 1, got {to!r}")
        if obj["action"] == "move" and to is None:
            raise EngineError(ErrorCode.BAD_INPUT, f"decision {n}: 'move' needs 'to'")
        return cls(obj["action"], obj["code"], to, obj.get("note"))

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {"action": self.action, "code": self.code}
        if self.to is not None:
            out["to"] = self.to
        if self.note:
            out["note"] = self.note
        return out


def _kind(code: str) -> str:
    if "Z80" <= code[:3] <= "Z84":
        return "family"
    return "history" if code.startswith("Z") else "symptom" if code.startswith("R") else "condition"


def _apply(enc: Encounter, n: int, d: Decision, describe: Callable[[str], Code | None]) -> None:
    code = dot(d.code)
    line = enc.line(code)
    said = f" ({d.note})" if d.note else ""
    if d.action == "add":
        known = describe(code)
        if known is None:
            raise EngineError(ErrorCode.UNKNOWN_CODE, f"decision {n}: {d.code!r} is not an ICD-10-CM code")
        if not known.billable:
            raise EngineError(ErrorCode.BAD_INPUT,
                              f"decision {n}: {known.code} is not billable (it has codes under it): choose one")
        if line is None:
            line = CodeLine(code=known.code, description=known.description, evidence=[], kind=_kind(known.code),
                            status="added", reason=f"{known.code} {known.description}: added by the coder{said}.")
            enc.codes.append(line)
        else:
            line.status = "accepted"
        if d.to is not None:
            enc.codes.remove(line)
            enc.codes.insert(d.to - 1, line)
        return
    if line is None:
        present = ", ".join(ln.code for ln in enc.codes) or "none"
        raise EngineError(ErrorCode.UNKNOWN_CODE,
                          f"decision {n}: {d.code!r} is not a line of this code set (lines: {present})")
    if d.action == "accept":
        line.status = "accepted" if line.status != "added" else line.status
        line.reason += f" Accepted by the coder{said}." if said else ""
    elif d.action == "remove":
        enc.codes.remove(line)
        enc.dropped.append(Dropped(line.code, line.evidence, "coder", f"{line.code} removed by the coder{said}"))
    else:
        enc.codes.remove(line)
        enc.codes.insert(min(d.to or 1, len(enc.codes) + 1) - 1, line)
        line.reason += f" Moved to {ordinal(min(d.to or 1, len(enc.codes)))} by the coder{said}."


def apply_decisions(encounter: Encounter | dict[str, Any], decisions: Sequence[Decision | dict[str, Any]],
                    conventions: Conventions, describe: Callable[[str], Code | None]) -> Encounter:
    """Apply a coder's decisions, in order, to a copy of ``encounter``.

    Args:
        encounter: The code set (an :class:`Encounter` or its ``to_dict`` form, as stored).
        decisions: :class:`Decision` objects or their JSON forms.
        conventions: The Tabular notes (``EncounterBuilder.conventions``), to check Excludes1 pairs.
        describe: Code -> description and billability (the ICD stage's ``describe``).

    Returns:
        The new code set, sequences renumbered.

    Raises:
        EngineError: ``UNKNOWN_CODE`` naming a code that is not ICD-10-CM (``add``) or not a line of the code set
            (``accept``/``remove``/``move``); ``BAD_INPUT`` for a malformed decision or a non-billable added code.
    """
    source = encounter.to_dict() if isinstance(encounter, Encounter) else encounter
    enc = Encounter.from_dict(source)
    enc.codes.sort(key=lambda ln: ln.sequence)
    for n, raw in enumerate(decisions, start=1):
        _apply(enc, n, Decision.from_dict(raw, n), describe)
    for n, line in enumerate(enc.codes, start=1):
        line.sequence = n
    check_pairs(enc, conventions)
    return enc


def check_pairs(enc: Encounter, conventions: Conventions) -> None:
    """Give every Excludes1 pair reported together a conflict entry saying both are reported."""
    for i, a in enumerate(enc.codes):
        for b in enc.codes[i + 1 :]:
            note = conventions.excludes1(a.code, b.code)
            if note is None:
                continue
            pair = {a.code, b.code}
            entry = next((c for c in enc.conflicts if set(c.codes) == pair), None)
            if entry is None:
                entry = Conflict(type="excludes1", codes=[a.code, b.code], kept=[], dropped=[], note=note.quote(),
                                 reason="", evidence=sorted(set(a.evidence) | set(b.evidence)))
                enc.conflicts.append(entry)
            entry.kept, entry.dropped = [a.code, b.code], []
            entry.reason = ("both reported by the coder's decision: the Excludes1 note forbids it unless the "
                            "conditions are unrelated (guideline I.A.12.a)")
            entry.flag = exception_flag(a.code, b.code)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What the app stores and exports for one note's code set: the engine's suggestion, the coder's decisions in
    order, and the code set they gave. Its JSON form (:meth:`to_dict`) is plain data, so it can sit in any column
    or export file and be replayed later (:func:`replay`).

    Attributes:
        note_id: The note's id (``None`` when the note had none).
        setting: ``outpatient`` or ``inpatient``, as the code set was built.
        suggested: The engine's codes, in its order.
        decisions: The coder's decisions, in the order they were made.
        final: The codes after the decisions, in their final order.
        conventions: The ICD-10-CM package whose Tabular notes checked the decisions.
    """

    note_id: str | None
    setting: str
    suggested: tuple[str, ...]
    decisions: tuple[Decision, ...]
    final: tuple[str, ...]
    conventions: str = "?"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"note_id": self.note_id, "setting": self.setting, "suggested": list(self.suggested),
                "decisions": [d.to_dict() for d in self.decisions], "final": list(self.final),
                "conventions": self.conventions}

    @classmethod
    def from_dict(cls, obj: Any) -> DecisionRecord:
        """A record from its JSON form.

        Raises:
            EngineError: ``BAD_INPUT`` naming the missing field or the malformed decision.
        """
        if not isinstance(obj, dict):
            raise EngineError(ErrorCode.BAD_INPUT, f"decision record: expected an object, got {obj!r}")
        missing = [k for k in ("setting", "suggested", "decisions", "final") if k not in obj]
        if missing:
            raise EngineError(ErrorCode.BAD_INPUT, f"decision record: missing {', '.join(missing)}")
        decisions = tuple(Decision.from_dict(d, n) for n, d in enumerate(obj["decisions"], start=1))
        return cls(obj.get("note_id"), str(obj["setting"]), tuple(obj["suggested"]), decisions,
                   tuple(obj["final"]), str(obj.get("conventions", "?")))

    def export_rows(self) -> list[dict[str, Any]]:
        """One row per final line (``note_id``, ``sequence``, ``code``, ``suggested``: whether the engine had it),
        for the app's CSV/JSON exports."""
        return [{"note_id": self.note_id, "sequence": n, "code": code, "suggested": code in self.suggested}
                for n, code in enumerate(self.final, start=1)]


def record_decisions(encounter: Encounter | dict[str, Any], decisions: Sequence[Decision | dict[str, Any]],
                     conventions: Conventions, describe: Callable[[str], Code | None]
                     ) -> tuple[Encounter, DecisionRecord]:
    """Apply ``decisions`` (:func:`apply_decisions`) and return the new code set with the record to store.

    Raises:
        EngineError: As :func:`apply_decisions`; nothing is recorded then.
    """
    before = encounter if isinstance(encounter, Encounter) else Encounter.from_dict(encounter)
    parsed = tuple(Decision.from_dict(d, n) for n, d in enumerate(decisions, start=1))
    after = apply_decisions(before, parsed, conventions, describe)
    suggested = tuple(ln.code for ln in sorted(before.codes, key=lambda ln: ln.sequence))
    record = DecisionRecord(before.id, before.setting, suggested, parsed, tuple(ln.code for ln in after.codes),
                            conventions.package)
    return after, record


def replay(record: DecisionRecord | dict[str, Any], encounter: Encounter | dict[str, Any],
           conventions: Conventions, describe: Callable[[str], Code | None]) -> Encounter:
    """Re-apply a stored record's decisions to a code set built again (a re-analysed note, a new engine version).

    Raises:
        EngineError: ``UNKNOWN_CODE`` naming the stored decision's code that is not ICD-10-CM or no longer a line
            of the code set; ``BAD_INPUT`` for a malformed record.
    """
    rec = record if isinstance(record, DecisionRecord) else DecisionRecord.from_dict(record)
    return apply_decisions(encounter, rec.decisions, conventions, describe)
