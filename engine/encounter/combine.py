"""Combination codes and superseded codes (``encounter_combinations.tsv``, ``encounter_supersede.tsv``).

ICD-10-CM codes some pairs of conditions with one combination code: diabetes with chronic kidney disease is
E11.22 (+ the N18 stage), hypertension with heart failure I11.0 (+ the I50 type), hypertension with chronic kidney
disease I12.x, with both I13.x. The Alphabetic Index links them with "with", and guideline I.A.15 presumes
conditions so linked are related unless the note says they are not.
"""

from __future__ import annotations

from itertools import product

from engine.encounter.context import BuildContext
from engine.encounter.gather import merge_into
from engine.encounter.model import CodeLine
from engine.encounter.rules import TEMPLATE_RE, Combination

COMBINABLE = ("condition", "symptom")
"""Line kinds that take part in combinations (not history or family codes)."""


def _render(template: str, picked: list[CodeLine]) -> str:
    return TEMPLATE_RE.sub(lambda m: picked[int(m.group(1)) - 1].code[: int(m.group(2))], template)


def _unrelated(ctx: BuildContext, picked: list[CodeLine]) -> str | None:
    """The words saying the conditions are unrelated, when a mention's sentence has them."""
    for line in picked:
        for i in line.evidence:
            clause = ctx.clause(ctx.entities[i])
            if ctx.rules.words("unrelated", clause):
                return clause.strip()
    return None


def _candidates(lines: list[CodeLine], rule: Combination) -> list[list[CodeLine]]:
    """Every choice of distinct lines, one per condition of ``rule``."""
    options = [[ln for ln in lines if ln.kind in COMBINABLE and cond.matches(ln.code)] for cond in rule.conditions]
    return [list(choice) for choice in product(*options) if len({id(ln) for ln in choice}) == len(choice)]


def _fire(ctx: BuildContext, lines: list[CodeLine], rule: Combination, picked: list[CodeLine]) -> bool:
    """Apply ``rule`` to ``picked``; ``False`` when a code it names does not exist as billable."""
    added = []
    for template in rule.add:
        known = ctx.describe(_render(template, picked))
        if known is None or not known.billable:
            return False
        added.append(known)
    names = " + ".join(f"{ln.code} ({ctx.quote(ln, 1)})" for ln in picked)
    reason = TEMPLATE_RE.sub(lambda m: picked[int(m.group(1)) - 1].code[: int(m.group(2))], rule.reason)
    fact = (f"combination code: {names} documented; {reason}. Conditions linked by \"with\" in the Alphabetic "
            f"Index are presumed related (guideline I.A.15; {rule.guideline})")
    for code in added:
        line = CodeLine(code=code.code, description=code.description, evidence=[], kind="condition",
                        rank=min(ln.rank for ln in picked), final=any(ln.final for ln in picked),
                        acute=any(ln.acute for ln in picked), position=min(ln.position for ln in picked),
                        score=min(ln.score for ln in picked), uncertain=all(ln.uncertain for ln in picked))
        for ln in picked:
            line.evidence += [e for e in ln.evidence if e not in line.evidence]
            line.mentions += [m for m in ln.mentions if m[0] not in {x[0] for x in line.mentions}]
        line.facts.append(fact)
        existing = next((ln for ln in lines if ln.code == code.code), None)
        if existing is not None:
            merge_into(existing, line)
        else:
            lines.append(line)
    for n in sorted(rule.drop):
        gone = picked[n - 1]
        if gone in lines:
            lines.remove(gone)
            ctx.drop(gone.code, gone.evidence, "combined",
                     f"{gone.code} ({gone.description}) is included in {', '.join(c.code for c in added)}: "
                     f"{reason} ({rule.guideline})")
    return True


def apply_combinations(ctx: BuildContext, lines: list[CodeLine]) -> list[CodeLine]:
    """Replace or complete documented condition pairs by their combination codes, rule by rule, in file order."""
    lines = list(lines)
    for rule in ctx.rules.combinations:
        tried: set[tuple[str, ...]] = set()
        while True:
            choices = [c for c in _candidates(lines, rule) if tuple(ln.code for ln in c) not in tried]
            if not choices:
                break
            picked = choices[0]
            tried.add(tuple(ln.code for ln in picked))
            words = _unrelated(ctx, picked)
            if words is not None:
                for ln in picked:
                    ln.facts.append(f"not combined by {rule.name}: the note says the conditions are unrelated "
                                    f"(\"{words}\"; guideline I.A.15)")
                continue
            _fire(ctx, lines, rule, picked)
    return lines


def apply_supersede(ctx: BuildContext, lines: list[CodeLine]) -> list[CodeLine]:
    """Remove codes that a more complete code of the same condition replaces, moving their evidence to it."""
    out = list(lines)
    for rule in ctx.rules.supersede:
        for line in [ln for ln in out if ln.kind in COMBINABLE and rule.codes.matches(ln.code)]:
            by = next((ln for ln in out if ln is not line and ln.kind in COMBINABLE and (
                ln.code[:3] == line.code[:3] if rule.by is None else rule.by.matches(ln.code))), None)
            if by is None:
                continue
            reason = rule.reason.replace("{by}", by.code)
            out.remove(line)
            merge_into(by, line, f"{line.code} ({line.description}) not reported: {reason} "
                                 f"(guideline {rule.guideline})")
            ctx.drop(line.code, line.evidence, "superseded", f"{line.code}: {reason} (guideline {rule.guideline})")
    return out
