"""Gold spans for the assertion evaluation: readers for the shared corpora and the project's span-judgment files.

- MACCROBAT: every event (``E<n> Type:T<m>``) on a ``Disease_disorder``, ``Sign_symptom``, ``Medication``,
  ``Therapeutic_procedure`` or ``Diagnostic_procedure`` entity with a continuous span. ``A<k> POLARITY E<n> NEG``
  is gold ``negated``; ``UNCERTAIN``, ``MAYBE_POS`` and ``MAYBE_NEG`` are gold ``uncertain``.
- Chia: every ``Condition``, ``Drug``, ``Procedure``, ``Measurement``, ``Observation`` and ``Device`` entity
  (a discontinuous one judged over its whole extent). It is gold ``negated`` when it is ``Arg1`` of a
  ``Has_negation`` relation, or lies inside a ``Scope`` that is.
- ``sentences``: the hand-written test sentences (``tests/fixtures/assertion/sentences.tsv``).
- span-judgment JSONL files (``{"id", "text", "start", "end", "assertion", "traits"}``).
- MTSamples references (:func:`read_mtsamples`): labels on spans of the shared MTSamples reports, stored as file
  name, offsets and a hash of the sentence, never the text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import EngineError, ErrorCode
from engine.types import TRAITS, assertion_from_traits, sort_traits

MACCROBAT_TYPES = frozenset(
    {"Disease_disorder", "Sign_symptom", "Medication", "Therapeutic_procedure", "Diagnostic_procedure"}
)
CHIA_TYPES = frozenset({"Condition", "Drug", "Procedure", "Measurement", "Observation", "Device"})
UNCERTAIN_VALUES = frozenset({"UNCERTAIN", "MAYBE_POS", "MAYBE_NEG"})
SENTENCES_FILE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "assertion" / "sentences.tsv"
"""The project's hand-written test sentences (one span each, with its expected one-word assertion)."""
EXCEPTION_CUES = frozenset(
    {
        *("other than", "other", "except", "except for", "unless", "with the exception of", "excluding"),
        *("exception", "excepting", "besides", "allowed", "allowable", "is allowable", "are eligible", "permitted"),
        *("acceptable", "in addition to", "preclude", "precludes", "precluding", "prevent", "preventing", "excluded"),
        *("but", "instead of", "rather than", "apart from", "aside from", "outside"),
    }
)
"""Chia Negation cues that mark an eligibility exception rather than a clinical negation; ``negated-clin`` scores
Chia without the spans negated only through these (clinical notes use "except" the other way round:
"ROS negative except for cough" asserts the cough)."""


@dataclass(slots=True)
class GoldItem:
    """One span to judge and its gold traits."""

    start: int
    end: int
    gold: set[str]
    exception_cue: bool = False
    """Chia: negated only through an eligibility exception ("other than", "except", "unless"), not a clinical cue."""


@dataclass(slots=True)
class GoldDoc:
    """A document with the spans to judge."""

    id: str
    text: str
    items: list[GoldItem] = field(default_factory=list)


def read_brat(txt: Path) -> tuple[str, list[list[str]]]:
    """A BRAT document: its text and its annotation rows split at tabs."""
    # newline="" keeps "\r\n" as two characters, as BRAT offsets count them (Chia has such files).
    with open(txt, encoding="utf-8", newline="") as handle:
        text = handle.read()
    ann = txt.with_suffix(".ann")
    rows = [line.rstrip("\r\n").split("\t") for line in ann.read_text(encoding="utf-8").splitlines()]
    return text, rows


def annotated_documents(folder: Path) -> Iterator[tuple[Path, str, list[list[str]]]]:
    """``(txt path, text, annotation rows)`` of every BRAT document in ``folder`` that has its ``.ann``, by name."""
    for txt in sorted(folder.glob("*.txt")):
        if txt.with_suffix(".ann").is_file():
            yield txt, *read_brat(txt)


def _offsets(field_: str) -> tuple[str, list[tuple[int, int]]]:
    kind, _, offsets = field_.partition(" ")
    frags = [tuple(int(x) for x in frag.split()) for frag in offsets.split(";")]
    return kind, [(f[0], f[1]) for f in frags if len(f) == 2]


def read_maccrobat(folder: Path) -> list[GoldDoc]:
    """MACCROBAT events of the product's clinical types with their POLARITY (see the module docstring)."""
    docs: list[GoldDoc] = []
    for txt, text, rows in annotated_documents(folder):
        spans: dict[str, tuple[int, int]] = {}
        events: dict[str, str] = {}
        polarity: dict[str, str] = {}
        for row in rows:
            if row[0].startswith("T") and len(row) >= 2:
                kind, frags = _offsets(row[1])
                if kind in MACCROBAT_TYPES and len(frags) == 1:
                    spans[row[0]] = frags[0]
            elif row[0].startswith("E") and len(row) >= 2:
                _, _, target = row[1].split()[0].partition(":")
                events[row[0]] = target
            elif row[0].startswith("A") and len(row) >= 2:
                parts = row[1].split()
                if len(parts) == 3 and parts[0] == "POLARITY":
                    polarity[parts[1]] = parts[2]
        items: dict[tuple[int, int], GoldItem] = {}
        for event, target in events.items():
            if target not in spans:
                continue
            start, end = spans[target]
            if not (0 <= start < end <= len(text)):
                continue
            item = items.setdefault((start, end), GoldItem(start, end, set()))
            value = polarity.get(event)
            if value == "NEG":
                item.gold.add("negated")
            elif value in UNCERTAIN_VALUES:
                item.gold.add("uncertain")
        docs.append(GoldDoc(txt.stem, text, sorted(items.values(), key=lambda i: (i.start, i.end))))
    return docs


def read_chia(folder: Path) -> list[GoldDoc]:
    """Chia concept entities with Has_negation (directly or through a negated Scope)."""
    docs: list[GoldDoc] = []
    for txt, text, rows in annotated_documents(folder):
        entities: dict[str, tuple[str, int, int]] = {}
        negated: dict[str, list[str]] = {}
        for row in rows:
            if row[0].startswith("T") and len(row) >= 2:
                kind, frags = _offsets(row[1])
                if frags:
                    entities[row[0]] = (kind, frags[0][0], frags[-1][1])
            elif row[0].startswith("R") and len(row) >= 2:
                parts = row[1].split()
                if len(parts) == 3 and parts[0] == "Has_negation":
                    negated.setdefault(parts[1].partition(":")[2], []).append(parts[2].partition(":")[2])
        cue_text = {
            t: " ".join(text[e[1] : e[2]].lower().split()) for t, e in entities.items() if e[0] == "Negation"
        }

        exception_only = {
            t: all(cue_text.get(c, "") in EXCEPTION_CUES for c in cues) for t, cues in negated.items()
        }
        scopes = [(e[1], e[2], t) for t in negated if (e := entities.get(t)) is not None and e[0] == "Scope"]
        items: dict[tuple[int, int], GoldItem] = {}
        for tid, (kind, start, end) in entities.items():
            if kind not in CHIA_TYPES or not (0 <= start < end <= len(text)):
                continue
            item = items.setdefault((start, end), GoldItem(start, end, set()))
            via = [tid] if tid in negated else []
            via += [t for s, e, t in scopes if s <= start and end <= e]
            if via:
                item.gold.add("negated")
                item.exception_cue = all(exception_only[t] for t in via)
        if items:
            docs.append(GoldDoc(txt.stem, text, sorted(items.values(), key=lambda i: (i.start, i.end))))
    return docs


def read_sentences(path: Path) -> list[GoldDoc]:
    """The hand-written sentences: each is a document with one ``[[span]]`` and its expected assertion."""
    docs: list[GoldDoc] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        _, assertion, _, sentence = line.split("\t")
        start, end = sentence.index("[["), sentence.index("]]") - 2
        gold = set() if assertion == "present" else {assertion}
        docs.append(GoldDoc(f"line {lineno}", sentence.replace("[[", "").replace("]]", ""),
                            [GoldItem(start, end, gold)]))
    return docs


def read_jsonl(path: Path) -> list[GoldDoc]:
    """Span judgments, one JSON object a line: ``{"id", "text", "start", "end", "traits"}`` (``assertion`` is
    derived from ``traits`` by the contract and checked when given). Each line is its own document, as the
    ``assert`` verb sees it.

    Raises:
        EngineError: ``BAD_INPUT`` naming the line when a line is not such an object or its span does not fit.
    """
    docs: list[GoldDoc] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, start, end = row["text"], row["start"], row["end"]
            gold = set(row.get("traits", []))
        except (ValueError, KeyError, TypeError) as exc:
            raise EngineError(ErrorCode.BAD_INPUT, f"{path}:{lineno}: not a span judgment ({exc})") from exc
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise EngineError(ErrorCode.BAD_INPUT, f"{path}:{lineno}: span [{start}, {end}) does not fit the text")
        if gold - set(TRAITS):
            raise EngineError(ErrorCode.BAD_INPUT, f"{path}:{lineno}: unknown traits {sorted(gold - set(TRAITS))}")
        if "assertion" in row and row["assertion"] != assertion_from_traits(sort_traits(gold)):
            raise EngineError(ErrorCode.BAD_INPUT, f"{path}:{lineno}: assertion does not follow from traits")
        docs.append(GoldDoc(str(row.get("id", f"line {lineno}")), text, [GoldItem(start, end, gold)]))
    return docs


def select(docs: list[GoldDoc], part: str, limit: int | None) -> list[GoldDoc]:
    """The ``tune`` (even) or ``check`` (odd) half, or all, then the first ``limit`` documents."""
    if part == "tune":
        docs = docs[0::2]
    elif part == "check":
        docs = docs[1::2]
    return docs[:limit] if limit else docs


MTSAMPLES_REFS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "assertion" / "mtsamples_refs.jsonl"
"""Labels on spans of the shared MTSamples reports (references only); ``part`` is ``test`` (blind) or ``dev``."""
MTSAMPLES_BLIND8 = MTSAMPLES_REFS.with_name("mtsamples_blind8.jsonl")
"""blind8: the same format, ``part`` ``blind8``, in 23 other MTSamples reports (written before the fifth session's
changes, scored once at its end)."""
MTSAMPLES_DEV9 = MTSAMPLES_REFS.with_name("mtsamples_dev9.jsonl")
"""dev9: the same format, ``part`` ``dev9``, in 93 other MTSamples reports, chosen for hypothetical and historical
findings (risks discussed, return precautions, ``p.r.n.`` reasons, past-history sections); a dev set, read while
tuning (seventh session)."""
MTSAMPLES_LABELLED = (MTSAMPLES_REFS, MTSAMPLES_BLIND8, MTSAMPLES_DEV9)
"""Every reference file: their reports are kept out of the learned classifier's silver training data."""


def _mts_text(folder: Path, name: str, cache: dict[str, str]) -> str:
    if name not in cache:
        path = folder / name
        if not path.is_file():
            raise EngineError(ErrorCode.DATA_NOT_FOUND, f"MTSamples report {name!r} is not in {folder}")
        with open(path, encoding="utf-8", newline="") as handle:  # offsets count "\r\n" as two characters
            cache[name] = handle.read()
    return cache[name]


WRAP_WIDTH = 72
"""Column at which :func:`hard_wrap` breaks lines (the fixed width of many EHR text exports)."""


def hard_wrap(text: str, width: int = WRAP_WIDTH) -> str:
    """``text`` with every line longer than ``width`` broken at its last space before the column, greedily.

    A space becomes a newline, so every character offset stays where it was: the gold spans need no shifting.
    """
    chars = list(text)
    line_start = 0
    last_space = -1
    for i, char in enumerate(chars):
        if char == "\n":
            line_start, last_space = i + 1, -1
        elif i - line_start >= width and last_space > line_start:
            chars[last_space] = "\n"
            line_start, last_space = last_space + 1, -1
        if char == " " and chars[i] == " ":
            last_space = i
    return "".join(chars)


def read_mtsamples(folder: Path, part: str = "test", context: str = "sentence",
                   refs: Path = MTSAMPLES_REFS) -> list[GoldDoc]:
    """The labelled MTSamples spans of one part, with their text read from the shared reports.

    Args:
        folder: The shared ``mtsamples/`` folder.
        part: ``test`` (the blind part), ``dev`` or ``all``.
        context: ``sentence``: each span is judged in its sentence alone, as a sentence-level assertion kit gives
            it; ``note``: each span is judged in its whole report (section headers and all); ``wrap``: the whole
            report hard-wrapped at :data:`WRAP_WIDTH` columns (:func:`hard_wrap`), as EHR discharge and radiology
            notes are stored, so a sentence runs over several lines.
        refs: The reference file (one JSON object a line: ``file``, ``start``, ``end``, ``sent_start``,
            ``sent_end``, ``sha1`` of the sentence, ``traits``, ``part``).

    Raises:
        EngineError: ``DATA_NOT_FOUND`` when a report is missing, ``BAD_INPUT`` when a sentence's text no longer
            matches its hash (the shared copy changed).
    """
    cache: dict[str, str] = {}
    docs: list[GoldDoc] = []
    by_file: dict[str, GoldDoc] = {}
    for lineno, line in enumerate(refs.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if part != "all" and row["part"] != part:
            continue
        text = _mts_text(folder, row["file"], cache)
        s0, s1 = row["sent_start"], row["sent_end"]
        if hashlib.sha1(text[s0:s1].encode("utf-8")).hexdigest()[:12] != row["sha1"]:
            raise EngineError(ErrorCode.BAD_INPUT, f"{refs.name}:{lineno}: {row['file']} changed (sentence hash)")
        gold = set(row["traits"])
        if context == "sentence":
            item = GoldItem(row["start"] - s0, row["end"] - s0, gold)
            docs.append(GoldDoc(row["id"], text[s0:s1], [item]))
        else:
            doc = by_file.get(row["file"])
            if doc is None:
                doc = by_file[row["file"]] = GoldDoc(row["file"], hard_wrap(text) if context == "wrap" else text)
                docs.append(doc)
            doc.items.append(GoldItem(row["start"], row["end"], gold))
    return docs
