"""Gold time and mood traits derived automatically from the shared corpora's own annotations (a large dev signal).

Neither MACCROBAT nor Chia annotates ConText's *historical* or *hypothetical*, but both annotate things from which
they follow with little doubt; only the spans where they do are judged:

- ``maccrobat-time``: a ``History`` entity (MACCROBAT's type for the patient's past medical history, "a history of
  [hypertension]") is ``historical``, unless it says there was none ("previously healthy", "no significant medical
  history") or is a habit (smoking, alcohol); a ``Sign_symptom`` or ``Disease_disorder`` event that a ``Duration``
  or a relative ``Date`` ("two years earlier") modifies is ``historical`` when that time is more than 14 days
  (ConText's threshold) and present when it is 14 days or less ("a 3-day history of fever"). Negated events are
  left out.
- ``chia-time``: a concept with a ``Has_temporal`` relation to a past word ("previous", "prior", "past", "pre-existing",
  "N months ago") is ``historical``; to a current word ("current", "active", "ongoing", "concomitant", "recent") or a
  study-period word ("during the study": ``hypothetical``) it is not historical; a concept joined to a "history of"
  observation is ``historical``; a ``Has_mood`` relation gives ``hypothetical`` ("planned", "scheduled", "risk of"),
  ``possible`` ("suspected", "possible") or neither ("known", "documented", "evidence of"). Negated concepts are left
  out.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.evaluation.assertion_data import CHIA_TYPES, GoldDoc, GoldItem, read_brat

_NUMBER = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
}
_UNIT_DAYS = {"hour": 1 / 24, "day": 1, "week": 7, "month": 30, "year": 365}
_AMOUNT = re.compile(
    r"\b(\d+(?:\.\d+)?|" + "|".join(_NUMBER) + r")(?:\s*(?:-|to|or)\s*(\d+))?[\s-]+(hour|day|week|month|year)s?\b", re.I
)
_RELATIVE_PAST = re.compile(r"\b(earlier|previously|before|ago|prior)\b", re.I)
_NO_HISTORY = re.compile(
    r"\b(no|without|unremarkable|healthy|negative|non-?contributory|nil|none)\b|smok|alcohol|drink|tobacco|drug", re.I
)
_MACCROBAT_FINDINGS = frozenset({"Sign_symptom", "Disease_disorder"})

CHIA_PAST = frozenset(
    {
        *("previous", "prior", "previously", "past", "pre-existing", "preexisting", "history", "historical"),
        *("former", "formerly", "earlier", "in the past", "old", "remote", "prior history"),
    }
)
CHIA_CURRENT = frozenset(
    {
        *("current", "currently", "active", "ongoing", "concomitant", "concurrent", "acute", "recent", "recently"),
        *("present", "presently", "at screening", "at baseline", "at the time of screening", "undergoing"),
        *("at the time of enrollment", "at enrollment", "at study entry", "existing", "new", "newly"),
    }
)
CHIA_FUTURE = frozenset(
    {
        *("during the study", "during the study period", "for the duration of the study", "during study"),
        *("during the trial", "during the course of the study", "throughout the study", "during the treatment period"),
    }
)
CHIA_HISTORY_OBSERVATIONS = frozenset({"history of", "history", "h/o", "past history of", "past medical history of"})
CHIA_MOOD = {
    "hypothetical": frozenset(
        {
            *("planned", "scheduled", "scheduled for", "anticipated", "planning to", "planning", "plan to", "plan"),
            *("intent", "intend", "intended", "intends to", "expected", "risk of", "increased risk", "at risk"),
            *("high risk", "at risk of", "at risk for", "planning to become", "likely to require"),
        }
    ),
    "possible": frozenset({"suspected", "suspicion", "suspicion of", "possible", "probable", "presumed", "likely"}),
    "present": frozenset({"known", "documented", "diagnosed", "evidence", "evidence of", "confirmed", "diagnosis"}),
}


def duration_days(text: str) -> float | None:
    """Days in a stated duration ("7-month" 210, "3 days" 3, "2-3 week" 21), or ``None`` when none is stated."""
    match = _AMOUNT.search(text)
    if match is None:
        return None
    amount, upper, unit = match.group(1).lower(), match.group(2), match.group(3).lower()
    value = float(upper or amount) if (upper or amount)[0].isdigit() else float(_NUMBER[amount])  # a range: its top
    return value * _UNIT_DAYS[unit]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _maccrobat_doc(txt: Path) -> GoldDoc:
    text, rows = read_brat(txt)
    spans: dict[str, tuple[str, int, int]] = {}
    event_of: dict[str, str] = {}  # event id -> entity id
    negated: set[str] = set()
    modifiers: dict[str, list[str]] = {}  # event -> modifying events
    for row in rows:
        if row[0].startswith("T") and len(row) >= 3:
            kind, _, offsets = row[1].partition(" ")
            if ";" not in offsets:
                start, end = (int(x) for x in offsets.split())
                spans[row[0]] = (kind, start, end)
        elif row[0].startswith("E") and len(row) >= 2:
            event_of[row[0]] = row[1].split()[0].partition(":")[2]
        elif row[0].startswith("A") and row[1].split()[:1] == ["POLARITY"] and row[1].split()[2] == "NEG":
            negated.add(row[1].split()[1])
        elif row[0].startswith("R") and row[1].startswith("MODIFY"):
            arg1, arg2 = (a.partition(":")[2] for a in row[1].split()[1:3])
            modifiers.setdefault(arg2, []).append(arg1)
    items: dict[tuple[int, int], GoldItem] = {}
    for kind, start, end in spans.values():  # History is an entity, not an event
        phrase = text[start:end]
        if kind == "History" and len(phrase.split()) <= 6 and not _NO_HISTORY.search(phrase):
            items.setdefault((start, end), GoldItem(start, end, {"historical"}))
    for event, tid in event_of.items():
        if tid not in spans or event in negated:
            continue
        kind, start, end = spans[tid]
        if kind in _MACCROBAT_FINDINGS:
            for mod in modifiers.get(event, []):
                mod_kind, m0, m1 = spans.get(event_of.get(mod, mod), ("", 0, 0))
                days = duration_days(text[m0:m1]) if mod_kind in {"Duration", "Date"} else None
                if days is None or (mod_kind == "Date" and not _RELATIVE_PAST.search(text[m0:m1])):
                    continue
                items.setdefault((start, end), GoldItem(start, end, {"historical"} if days > 14 else set()))
    return GoldDoc(txt.stem, text, sorted(items.values(), key=lambda i: (i.start, i.end)))


def read_maccrobat_time(folder: Path) -> list[GoldDoc]:
    """MACCROBAT spans with a time trait that follows from its annotations (see the module docstring)."""
    docs = [_maccrobat_doc(txt) for txt in sorted(folder.glob("*.txt")) if txt.with_suffix(".ann").is_file()]
    return [d for d in docs if d.items]


def _chia_gold(temporal: list[str], moods: list[str], history: bool) -> set[str] | None:
    """The gold traits of one Chia concept from its temporal words, mood words and "history of", or ``None``."""
    gold: set[str] = set()
    known = history
    for word in temporal:
        if word in CHIA_PAST or (re.search(r"\bago\b", word) and (duration_days(word) or 0) > 14):
            gold.add("historical")
            known = True
        elif word in CHIA_FUTURE:
            gold.add("hypothetical")
            known = True
        elif word in CHIA_CURRENT:
            known = True
    for word in moods:
        for trait, words in CHIA_MOOD.items():
            if word in words:
                known = True
                if trait != "present":
                    gold.add(trait)
    if history:
        gold.add("historical")
    if "historical" in gold and len(gold) > 1:
        return None  # "previous planned surgery": the words disagree, leave the span out
    return gold if known else None


def _chia_doc(txt: Path) -> GoldDoc:
    text, rows = read_brat(txt)
    entities: dict[str, tuple[str, int, int]] = {}
    relations: list[tuple[str, str, str]] = []
    for row in rows:
        if row[0].startswith("T") and len(row) >= 2:
            kind, _, offsets = row[1].partition(" ")
            frags = [[int(x) for x in f.split()] for f in offsets.split(";")]
            entities[row[0]] = (kind, frags[0][0], frags[-1][1])
        elif row[0].startswith("R") and len(row) >= 2 and len(row[1].split()) == 3:
            name, arg1, arg2 = row[1].split()
            relations.append((name, arg1.partition(":")[2], arg2.partition(":")[2]))
    words = {t: _norm(text[e[1] : e[2]]) for t, e in entities.items()}
    negated = {a for name, a, _ in relations if name == "Has_negation"}
    temporal: dict[str, list[str]] = {}
    moods: dict[str, list[str]] = {}
    history: set[str] = set()
    for name, a, b in relations:
        if name == "Has_temporal":
            temporal.setdefault(a, []).append(words.get(b, ""))
        elif name == "Has_mood":
            moods.setdefault(a, []).append(words.get(b, ""))
        elif name == "AND" and entities.get(a, ("",))[0] == "Observation" and words.get(a) in CHIA_HISTORY_OBSERVATIONS:
            history.add(b)
    scopes = [(entities[t][1], entities[t][2]) for t in negated if entities.get(t, ("",))[0] == "Scope"]
    items: dict[tuple[int, int], GoldItem] = {}
    for tid, (kind, start, end) in entities.items():
        if kind not in CHIA_TYPES or tid in negated or not 0 <= start < end <= len(text):
            continue
        if any(s <= start and end <= e for s, e in scopes):
            continue
        gold = _chia_gold(temporal.get(tid, []), moods.get(tid, []), tid in history)
        if gold is not None:
            items.setdefault((start, end), GoldItem(start, end, gold))
    return GoldDoc(txt.stem, text, sorted(items.values(), key=lambda i: (i.start, i.end)))


def read_chia_time(folder: Path) -> list[GoldDoc]:
    """Chia concepts with a time or mood trait that follows from its annotations (see the module docstring)."""
    docs = [_chia_doc(txt) for txt in sorted(folder.glob("*.txt")) if txt.with_suffix(".ann").is_file()]
    return [d for d in docs if d.items]
