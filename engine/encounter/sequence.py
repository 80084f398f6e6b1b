"""The order of the code set: the first-listed (outpatient, guideline IV.G) or principal (inpatient, guideline II)
candidate first, then the rest, each line's reason saying why it stands where it does.

Order: current conditions, then signs/symptoms, then history/status codes, then family history; within a group,
by section (the diagnostic statement first: diagnoses, assessment, then plan, chief complaint, history of present
illness...; ``encounter_sections.tsv``), acute before not acute, then as documented. Then the Tabular notes move
codes: a "use additional code" note puts its code before the named one, a "code first" note puts the named code
before its own (etiology before manifestation, guideline I.A.13).
"""

from __future__ import annotations

from engine.encounter.conflicts import MANIFESTATION_WORDS
from engine.encounter.context import BuildContext
from engine.encounter.model import CodeLine, ordinal

GROUPS = {"condition": 0, "symptom": 1, "history": 2, "family": 3}
GROUP_WORDS = {
    1: "a sign or symptom, after the diagnoses (guideline I.B.4: symptoms are reported when no related "
       "diagnosis is established)",
    2: "a history or status code, after the current conditions",
    3: "a family history code, after the patient's own conditions",
}


def _key(ctx: BuildContext, line: CodeLine) -> tuple:
    manifestation = MANIFESTATION_WORDS in line.description.lower()
    return (GROUPS.get(line.kind, 0), manifestation, line.rank, not line.acute, line.position)


def _section(ctx: BuildContext, line: CodeLine) -> str:
    sections = [s for _, _, s in line.mentions]
    best = min(sections, key=lambda s: ctx.rules.section(s).rank, default=None)
    return f"the {best}" if best else "the note"


def order(ctx: BuildContext, lines: list[CodeLine]) -> list[CodeLine]:
    """Sort ``lines``, number them from 1 and write each one's sequence reason into its ``facts``."""
    ordered = sorted(lines, key=lambda ln: _key(ctx, ln))
    moved: dict[int, str] = {}
    pairs = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            found = ctx.conventions.first_of(a.code, b.code)
            if found is not None:
                first, note = found
                pairs.append((a if first == a.code else b, b if first == a.code else a, note))
    for _ in range(len(pairs) + 1):  # bounded: a cycle of notes cannot loop forever
        changed = False
        for first, second, _ in pairs:
            i, j = ordered.index(first), ordered.index(second)
            if i > j:
                ordered.insert(j, ordered.pop(i))
                changed = True
        if not changed:
            break
    for first, second, note in pairs:
        if ordered.index(first) < ordered.index(second):
            moved.setdefault(id(second), f"after {first.code}, as {note.quote()} asks (guideline I.A.13, I.A.12)")
    for n, line in enumerate(ordered, start=1):
        line.sequence = n
        line.facts.append(_why(ctx, ordered, n, moved.get(id(line))))
    return ordered


def _why(ctx: BuildContext, ordered: list[CodeLine], n: int, moved: str | None) -> str:
    line = ordered[n - 1]
    group = GROUPS.get(line.kind, 0)
    where = _section(ctx, line)
    acute = ", acute" if line.acute else ""
    if n == 1:
        role = ("principal diagnosis candidate (inpatient, guideline II: the condition chiefly responsible for the "
                "admission)" if ctx.setting == "inpatient" else
                "first-listed diagnosis (outpatient, guideline IV.G: the main reason for the encounter)")
        basis = {0: f"documented in {where}{acute}", 1: f"no confirmed diagnosis outranks it; documented in {where}",
                 2: "only history codes are documented", 3: "only family history is documented"}[group]
        return f"Sequenced 1st as the {role}: {basis}"
    if moved:
        return f"Sequenced {ordinal(n)}: {moved}"
    prev = ordered[n - 2]
    if group != GROUPS.get(prev.kind, 0) and group in GROUP_WORDS:
        return f"Sequenced {ordinal(n)}: {GROUP_WORDS[group]}"
    if group in GROUP_WORDS:
        return f"Sequenced {ordinal(n)}: {GROUP_WORDS[group]}; documented after {prev.code}"
    if line.rank != prev.rank:
        return (f"Sequenced {ordinal(n)}: documented in {where}, after the codes of sections that state the "
                "diagnosis")
    if line.acute != prev.acute:
        return f"Sequenced {ordinal(n)}: documented in {where}; not acute, so after the acute {prev.code}"
    return f"Sequenced {ordinal(n)}: documented in {where}{acute}, after {prev.code}"
