"""From the analysis's diagnosis mentions to candidate code lines, one per condition.

For each ``DIAG`` entity: the assertion decides whether it is coded (negated and hypothetical findings never are;
uncertain ones per the setting: guideline IV.H outpatient, II.H inpatient; family history as Z80-Z84 and personal
history as Z85-Z87, as the linker codes them); the code is made billable and specific from the context (words after
the mention such as "stage 4", the anatomy written next to it, the default diabetes type, the 7th character); then
mentions with the same code, or an unspecified code of the same condition, are merged into one line.
"""

from __future__ import annotations

import re
from dataclasses import replace

from engine.encounter.context import BuildContext, is_symptom
from engine.encounter.model import CodeLine
from engine.encounter.notes import undot
from engine.types import Code, Entity

NEVER_CODED = ("negated", "hypothetical")
FAMILY = ("Z80", "Z84")
UNSPECIFIED_WORDS = frozenset({"unspecified", "nos", "of", "and", "the", "in", "with", "site", "part"})
ANATOMY_GAP = re.compile(r"^(?:\s{1,2}|\s+of\s+(?:the\s+)?|\s+in\s+(?:the\s+)?)$", re.IGNORECASE)
"""What may stand between a diagnosis and the anatomy read with it: "chest pain", "fracture of the left femur"."""
FRAGMENT_GAP = re.compile(r"^[ \t]{1,2}$")
"""Adjacent diagnosis entities separated by this are fragments of one mention (the NER split it)."""
RELINK_MIN_SCORE = 0.85
"""A re-linked wider mention replaces the code only when the linker is at least this sure of it."""


def _first_billable(codes: list[Code]) -> Code | None:
    return next((c for c in codes if c.billable), None)


def _uncertain(ctx: BuildContext, idx: list[int], entity: Entity, codes: list[Code]) -> bool:
    """Whether an uncertain finding is coded (inpatient, in a final diagnostic statement); records it otherwise."""
    i = idx[0]
    top = _first_billable(codes)
    if top is not None:
        top, _ = _refine(ctx, idx, entity, top)  # the code it would have: "Rule out pulmonary [embolism]" is I26.99
    what = f"'{entity.text}' (entity {i}) is documented as uncertain"
    what += f" ('{entity.trigger}')" if entity.trigger else ""
    if ctx.setting == "outpatient":
        ctx.drop(top.code if top else None, idx, "uncertain",
                 f"{what}: outpatient uncertain diagnoses are not coded; the signs or symptoms are coded instead "
                 "(guideline IV.H)")
        return False
    if not ctx.rules.section(entity.section).final:
        ctx.drop(top.code if top else None, idx, "uncertain",
                 f"{what} in the {entity.section or 'note'}, not in the diagnoses stated at discharge: only those "
                 "are coded as if established (guideline II.H)")
        return False
    return True


def _refine(ctx: BuildContext, idx: list[int], entity: Entity, code: Code) -> tuple[Code, str | None]:
    """A more specific code from the words next to the mention, with the reason, or ``code`` unchanged."""
    text = ctx.text
    if text is None or text[entity.start : entity.end] != entity.text:
        return code, None
    wider = None
    after = ctx.rules.first_match("qualifier", text[entity.end : entity.end + 40])
    before = ctx.rules.first_match("qualifier_before", text[max(0, entity.start - 40) : entity.start])
    if after or before:
        lo = entity.start - (len(text[max(0, entity.start - 40) : entity.start]) - before.start()) if before else \
            entity.start
        wider = text[lo : entity.end + (after.end() if after else 0)]
    elif "unspecified" in code.description.lower() or code.code.startswith(("R52", "T14", "B99")):
        wider = _with_anatomy(ctx, idx, entity)
    if not wider:
        return code, None
    better = _first_billable(ctx.link(" ".join(wider.split()), [t for t in entity.traits if t != "possible"]))
    if better is None or better.code == code.code or better.score < RELINK_MIN_SCORE:
        return code, None
    return better, f"coded from '{' '.join(wider.split())}', the words written with the mention"


def _with_anatomy(ctx: BuildContext, idx: list[int], entity: Entity) -> str | None:
    """The mention joined with the anatomy entities written right next to it ("Chest" + "pain", "Urinary" +
    "tract" + "infection"), or ``None``."""
    text = ctx.text or ""
    for step, j in ((-1, idx[0] - 1), (1, idx[-1] + 1)):
        lo, hi = entity.start, entity.end
        while 0 <= j < len(ctx.entities) and ctx.entities[j].label == "ANAT":
            other = ctx.entities[j]
            gap = text[other.end : lo] if step < 0 else text[hi : other.start]
            if not ((other.end <= lo if step < 0 else hi <= other.start) and ANATOMY_GAP.match(gap)):
                break
            lo, hi = min(lo, other.start), max(hi, other.end)
            j += step
        if (lo, hi) != (entity.start, entity.end):
            return text[lo:hi]
    return None


def _default_type(ctx: BuildContext, idx: list[int], entity: Entity, code: Code) -> tuple[Code, str | None]:
    """The guideline's default (type 2 diabetes) when the linker's code names a type the note does not."""
    for rule in ctx.rules.defaults:
        if code.code.startswith(rule.source) and not rule.keep_words.search(ctx.clause(entity)):
            target = ctx.describe(rule.target + code.code[len(rule.source) :])
            if target is not None and target.billable:
                return target, f"{rule.reason} (guideline {rule.guideline}): {code.code} -> {target.code}"
    return code, None


def _seventh(ctx: BuildContext, entity: Entity, code: Code) -> tuple[Code, str | None, str | None]:
    """The code with its 7th character chosen from the mention's sentence: ``(code, fact, flag)``."""
    defs = ctx.conventions.seven_chr(code.code)
    if not defs:
        return code, None, None
    words = set(ctx.rules.words("seventh", ctx.clause(entity)))
    kind = next((k for k in ("sequela", "subsequent", "initial") if k in words), None)
    letter = choose_letter(defs, words, kind or "initial")
    base = undot(code.code)
    base = base[:6] if len(base) >= 7 else base.ljust(6, "X")
    candidate = ctx.describe(f"{base[:3]}.{base[3:]}{letter}") or _default_child(ctx, code.code, letter)
    if candidate is None or not candidate.billable:
        return code, None, None  # left out as unbillable by the caller
    meaning = defs[letter]
    if kind is None:
        flag = (f"7th character {letter} ({meaning}) assumed: the note does not say initial, subsequent or sequela "
                "(A is for active treatment, guideline I.C.19.a)")
        return candidate, None, flag
    cue = ", ".join(sorted(words))
    return candidate, f"7th character {letter} ({meaning}) from the words around it ({cue}; guideline I.C.19.a)", None


def _default_child(ctx: BuildContext, code: str, letter: str) -> Code | None:
    """The unspecified (else first) billable code under ``code`` with 7th character ``letter``: a subcategory such
    as S01.0 "Open wound of scalp" has children (S01.00 "Unspecified open wound of scalp") before the 7th."""
    prefix = undot(code)
    found = [c for c in ctx.icd.search(code, limit=400)
             if undot(c.code).startswith(prefix) and len(undot(c.code)) == 7 and c.code.endswith(letter)
             and c.billable]
    return next((c for c in found if "unspecified" in c.description.lower()), found[0] if found else None)


def choose_letter(defs: dict[str, str], words: set[str], kind: str) -> str:
    """The 7th character whose definition fits the encounter ``kind`` and the other context ``words`` best.

    Definitions that are not of ``kind`` ("initial encounter...", "subsequent encounter...", "sequela") are out;
    among the rest one wins by the words it shares with the context, less the qualifiers it adds that the context
    does not say, except the defaults: a fracture not said to be open is closed (guideline I.C.19.c.1) and healing
    is routine unless said otherwise.
    """
    tags = ("open", "closed", "routine healing", "delayed healing", "nonunion", "malunion")
    defaults = {"closed", "routine healing"}
    best, best_score = None, None
    for letter, meaning in defs.items():
        low = meaning.lower()
        if kind not in low:
            continue
        has = {t for t in tags if t in low}
        score = len(has & words) - len(has - words - defaults) * 2 - len(has & defaults - words) * 0.1
        if best_score is None or score > best_score:
            best, best_score = letter, score
    return best or next(iter(defs))


def _line(ctx: BuildContext, idx: list[int], entity: Entity, codes: list[Code], uncertain: bool
          ) -> CodeLine | None:
    """The candidate line of one coded mention (entities ``idx``), or ``None`` (recorded as left out) when it has
    no billable code."""
    i = idx[0]
    kind = "condition"
    if "family" in entity.traits:
        codes = [c for c in codes if FAMILY[0] <= c.code[:3] <= FAMILY[1]]
        kind = "family"
    code = _first_billable(codes)
    if code is None and codes and ctx.conventions.seven_chr(codes[0].code):
        code = codes[0]  # a category waiting for its 7th character (S72.90 -> S72.90XA), chosen below
    if code is None:
        if codes:
            ctx.drop(codes[0].code, idx, "unbillable",
                     f"'{entity.text}' (entity {i}) has no billable code: {codes[0].code} needs more characters "
                     "that the note does not give (code to the highest specificity, guideline I.B.2)")
        return None
    facts, flags = [], []
    for step in (_refine, _default_type):
        code, fact = step(ctx, idx, entity, code)
        facts += [fact] if fact else []
    code, fact, flag = _seventh(ctx, entity, code)
    facts += [fact] if fact else []
    flags += [flag] if flag else []
    if not code.billable:
        ctx.drop(code.code, idx, "unbillable", f"'{entity.text}' (entity {i}) has no billable code: {code.code} "
                 "needs characters that the note does not give (guideline I.B.2)")
        return None
    if uncertain:
        facts.append(f"'{entity.text}' is uncertain ('{entity.trigger or 'possible'}') and coded as if established: "
                     "inpatient, stated at discharge (guideline II.H)")
    if kind != "family":
        kind = "history" if code.code.startswith("Z") else "symptom" if is_symptom(code.code) else "condition"
    section = ctx.rules.section(entity.section)
    acute = bool(ctx.rules.words("acute", f"{ctx.mention(entity)} {code.description}"))
    return CodeLine(code=code.code, description=code.description, evidence=list(idx), kind=kind, flags=flags,
                    facts=facts, rank=section.rank, final=section.final, acute=acute, position=entity.start,
                    score=code.score, uncertain=uncertain, mentions=[(i, entity.text, entity.section)])


def _units(ctx: BuildContext) -> list[tuple[list[int], Entity]]:
    """The coded diagnosis mentions: one entity each, or adjacent fragments of one mention ("Congestive" +
    "heart failure") joined when the linker codes the joined words with confidence."""
    units: list[tuple[list[int], Entity]] = []
    for i, entity in enumerate(ctx.entities):
        if entity.label != "DIAG" or any(t in entity.traits for t in NEVER_CODED):
            continue
        if units and ctx.text is not None:
            idx, prev = units[-1]
            gap = ctx.text[prev.end : entity.start]
            if idx[-1] == i - 1 and FRAGMENT_GAP.match(gap) and prev.traits == entity.traits:
                joined = ctx.text[prev.start : entity.end]
                codes = ctx.link(joined, [t for t in entity.traits if t != "possible"])
                top = _first_billable(codes)
                if top is not None and top.score >= RELINK_MIN_SCORE:
                    units[-1] = ([*idx, i], replace(prev, end=entity.end, text=joined, codes=codes))
                    continue
        units.append(([i], entity))
    return units


def _bare_modifier(ctx: BuildContext, idx: list[int], entity: Entity) -> tuple[Entity | None, str | None]:
    """A mention made only of acuity/side words ("Chronic", the NER having cut "kidney disease stage 3") read with
    the rest of its phrase, re-linked, with the reason; ``(None, None)`` (recorded as left out) when that names no
    condition with confidence. Any other mention is returned unchanged."""
    if not ctx.rules.first_match("modifier_only", entity.text):
        return entity, None
    text = ctx.text or ""
    rest = ctx.rules.first_match("phrase_rest", text[entity.end : entity.end + 80]) if ctx.text else None
    if rest is not None and text[entity.start : entity.end] == entity.text:
        wider = text[entity.start : entity.end + rest.end()].rstrip()
        codes = ctx.link(wider, [t for t in entity.traits if t != "possible"])
        top = _first_billable(codes)
        if top is not None and top.score >= RELINK_MIN_SCORE:
            return replace(entity, end=entity.start + len(wider), text=wider, codes=codes), \
                f"'{entity.text}' alone names no condition: coded from '{wider}', the words written with it"
    linked = _first_billable(list(entity.codes))
    ctx.drop(linked.code if linked else None, idx, "fragment",
             f"'{entity.text}' (entity {idx[0]}) is only a qualifier and names no condition; the words after it do "
             "not give one either (check the mention)")
    return None, None


def gather(ctx: BuildContext) -> list[CodeLine]:
    """One line per code documented in the analysis (mentions merged), in note order."""
    lines: dict[str, CodeLine] = {}
    for idx, found in _units(ctx):
        entity, read_with = _bare_modifier(ctx, idx, found)
        if entity is None:
            continue
        uncertain = "possible" in entity.traits
        if uncertain:
            codes = ctx.link(ctx.mention(entity), [t for t in entity.traits if t != "possible"])
            if not _uncertain(ctx, idx, entity, codes):
                continue
        else:
            codes = list(entity.codes)
        line = _line(ctx, idx, entity, codes, uncertain)
        if line is None:
            continue
        line.facts[:0] = [read_with] if read_with else []
        if line.code in lines:
            merge_into(lines[line.code], line)
        else:
            lines[line.code] = line
    return merge_unspecified(ctx, list(lines.values()))


def merge_into(target: CodeLine, other: CodeLine, fact: str | None = None) -> None:
    """Move ``other``'s evidence and reasons into ``target`` (the same condition)."""
    known = set(target.evidence)
    target.evidence = sorted(known | set(other.evidence))
    target.mentions += [m for m in other.mentions if m[0] not in known]
    target.facts += [f for f in ([fact] if fact else []) + other.facts if f not in target.facts]
    target.flags += [f for f in other.flags if f not in target.flags]
    target.rank = min(target.rank, other.rank)
    target.final = target.final or other.final
    target.acute = target.acute or other.acute
    target.position = min(target.position, other.position)
    target.score = max(target.score, other.score)
    target.uncertain = target.uncertain and other.uncertain


def merge_unspecified(ctx: BuildContext, lines: list[CodeLine]) -> list[CodeLine]:
    """Merge a line with an unspecified code into a more specific line of the same condition: same category and
    kind, and every word of the unspecified description found in the specific code's description or category
    title ("Heart failure, unspecified" into I50.23; "Unspecified fracture of left femur" into S72.002A, never
    into a right femur code)."""
    out: list[CodeLine] = []
    for line, words in sorted(((ln, set(re.findall(r"[a-z0-9]+", ln.description.lower()))) for ln in lines),
                              key=lambda pair: -len(pair[1])):
        if "unspecified" in words or line.description.endswith(" NOS"):
            words -= UNSPECIFIED_WORDS
            for target in out:
                if (target.kind == line.kind and target.code[:3] == line.code[:3]
                        and words <= ctx.title_words(target.code)):
                    merge_into(target, line, f"{ctx.quote(line)} is the same condition, coded more specifically "
                                             f"as {target.code} instead of {line.code} (guideline I.B.2)")
                    break
            else:
                out.append(line)
        else:
            out.append(line)
    return sorted(out, key=lambda ln: ln.position)
