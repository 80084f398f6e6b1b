"""Codes that may not stand together: symptoms integral to a confirmed diagnosis, and Excludes1 pairs.

Excludes1 (guideline I.A.12.a) means "NOT CODED HERE": the two codes are never reported together. The builder keeps
the better-supported one (see :meth:`CodeLine.support`) and records the conflict, with the guideline's exception as
a flag for the coder: when the two conditions are unrelated to each other, both may be reported. Excludes2 ("not
included here") allows both, which the reasons say.
"""

from __future__ import annotations

from engine.encounter.context import BuildContext, is_symptom
from engine.encounter.conventions import Conventions
from engine.encounter.model import CodeLine, Conflict

MANIFESTATION_WORDS = "diseases classified elsewhere"
"""Manifestation codes say so in their title (guideline I.A.13): they are never first-listed and need the
underlying condition coded first."""
OPTIONAL_WORDS = ("if applicable", "if known", "such as")


def exception_flag(a: str, b: str) -> str:
    """The coder's check for an Excludes1 pair (guideline I.A.12.a)."""
    return (f"Excludes1 exception (guideline I.A.12.a): when {a} and {b} are unrelated conditions both may be "
            "reported; query the provider when it is not clear whether they are related")


def drop_integral(ctx: BuildContext, lines: list[CodeLine]) -> list[CodeLine]:
    """Remove sign/symptom lines routinely associated with a confirmed diagnosis of the code set (I.B.5)."""
    diagnoses = [ln for ln in lines if ln.kind == "condition" and not is_symptom(ln.code)]
    out = []
    for line in lines:
        hit = None
        if line.kind in ("symptom", "condition"):
            hit = next(((rule, d) for rule in ctx.rules.integral if rule.symptoms.matches(line.code)
                        for d in diagnoses if d is not line and rule.diagnoses.matches(d.code)), None)
        if hit is None:
            out.append(line)
            continue
        rule, dx = hit
        how = "confirmed" if not dx.uncertain else "coded as established (inpatient, II.H)"
        ctx.drop(line.code, line.evidence, "integral",
                 f"{line.code} ({line.description}, {ctx.quote(line, 1)}) not coded: {rule.reason}, and {dx.code} "
                 f"({dx.description}) is {how}; signs and symptoms routinely associated with a diagnosis are not "
                 "coded (guideline I.B.5)")
        dx.facts.append(f"{line.code} ({line.description}) is integral to it and not coded (guideline I.B.5)")
    return out


def resolve_excludes1(ctx: BuildContext, lines: list[CodeLine]) -> tuple[list[CodeLine], list[Conflict]]:
    """Keep, of every Excludes1 pair, the better-supported code; return the kept lines and the conflicts."""
    kept: list[CodeLine] = []
    conflicts: list[Conflict] = []
    for line in sorted(lines, key=CodeLine.support):
        clash = next(((k, note) for k in kept if (note := ctx.conventions.excludes1(k.code, line.code))), None)
        if clash is None:
            kept.append(line)
            continue
        winner, note = clash
        why = (f"{winner.code} is better supported ({_support_words(winner, line)}); the Excludes1 note means the "
               "two are never reported together")
        conflicts.append(Conflict(
            type="excludes1", codes=[winner.code, line.code], kept=[winner.code], dropped=[line.code],
            note=note.quote(), reason=why, flag=exception_flag(winner.code, line.code),
            evidence=sorted(set(winner.evidence) | set(line.evidence)),
        ))
        ctx.drop(line.code, line.evidence, "excludes1",
                 f"{line.code} ({line.description}) not reported with {winner.code}: {note.quote()} (guideline "
                 "I.A.12.a); see the conflict")
        winner.flags.append(exception_flag(winner.code, line.code))
    return sorted(kept, key=lambda ln: ln.position), conflicts


def _support_words(a: CodeLine, b: CodeLine) -> str:
    if a.final != b.final:
        return "stated in the diagnoses/assessment"
    if len(a.evidence) != len(b.evidence):
        return f"{len(a.evidence)} mentions against {len(b.evidence)}"
    if round(a.score, 3) != round(b.score, 3):
        return f"linker score {a.score:.2f} against {b.score:.2f}"
    return "more specific" if a.support()[3] < b.support()[3] else "documented first"


def _on_code(note_source: str) -> bool:
    """Whether a note is written on a category or code (not on a block such as ``I10-I1A`` or a chapter): chapter
    and block Excludes2 notes only say where the classification files other conditions."""
    return "-" not in note_source and not note_source.isdigit()


def explain_pairs(ctx: BuildContext, lines: list[CodeLine]) -> None:
    """Add the Excludes2 and "code also" notes between reported codes to the reasons of the codes they are on."""
    for i, a in enumerate(lines):
        for b in lines[i + 1 :]:
            for x, y in ((a, b), (b, a)):
                note = ctx.conventions.note_naming(x.code, "excludes2", y.code)
                if note is not None and _on_code(note.source):
                    x.facts.append(f"{note.quote()}: Excludes2 allows reporting {x.code} with {y.code} when the "
                                   "patient has both (guideline I.A.12.b)")
                also = ctx.conventions.note_naming(x.code, "code_also", y.code)
                if also is not None:
                    x.facts.append(f"{also.quote()}: {y.code} is coded too, in no required order (I.A.12.c)")


def flag_missing(conventions: Conventions, lines: list[CodeLine]) -> None:
    """Flag manifestation codes without their underlying condition, and codes whose own "use additional code"
    note names codes that none of the lines is (``N18.1-N18.6`` for E11.22: the stage is not documented)."""
    codes = [ln.code for ln in lines]
    for line in lines:
        if MANIFESTATION_WORDS in line.description.lower():
            notes = conventions.notes(line.code, "code_first")
            if not any(n.names(c) for n in notes for c in codes):
                line.flags.append("manifestation code: code first the underlying condition (guideline I.A.13), "
                                  "which the note does not document")
        for note in conventions.notes(line.code, "use_additional"):
            if note.source.replace(".", "") != line.code.replace(".", ""):
                continue  # category/block notes are mostly "if applicable" options (tobacco use, ...)
            if any(w in note.text.lower() for w in OPTIONAL_WORDS) or any(note.names(c) for c in codes):
                continue
            line.flags.append(f"{note.quote()}: not documented in this note; add it when it applies, or query the "
                              "provider")


def explain_uncertain(ctx: BuildContext, lines: list[CodeLine]) -> None:
    """Say, for each uncertain diagnosis left out (outpatient), which of its signs/symptoms are coded for it."""
    for entry in ctx.dropped:
        if entry.rule != "uncertain" or not entry.code or not entry.reason.startswith("'") \
                or ctx.setting != "outpatient":
            continue
        coded = [ln for ln in lines if ln.kind == "symptom" and any(
            rule.symptoms.matches(ln.code) and rule.diagnoses.matches(entry.code) for rule in ctx.rules.integral)]
        if coded:
            entry.reason += "; coded for it: " + ", ".join(f"{ln.code} ({ln.description})" for ln in coded)
        else:
            entry.reason += f"; no sign or symptom of {entry.code} is documented with it"
