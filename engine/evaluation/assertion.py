"""Assertion evaluation: our ConText rules side by side with medspaCy's default ConText and negspacy.

``python -m engine evaluate assertion [--data DIR] [--limit N] [--part all|tune|check] [--json OUT]``
``python -m engine evaluate assertion --jsonl FILE [--jsonl FILE2 ...] [--errors N]``

Gold spans come from the shared BRAT corpora, and every system judges exactly those spans in their documents:

- MACCROBAT: every event (``E<n> Type:T<m>``) on a ``Disease_disorder``, ``Sign_symptom``, ``Medication``,
  ``Therapeutic_procedure`` or ``Diagnostic_procedure`` entity with a continuous span. ``A<k> POLARITY E<n> NEG``
  is gold ``negated``; ``UNCERTAIN``, ``MAYBE_POS`` and ``MAYBE_NEG`` are gold ``uncertain``.
- Chia: every ``Condition``, ``Drug``, ``Procedure``, ``Measurement``, ``Observation`` and ``Device`` entity
  (a discontinuous one judged over its whole extent). It is gold ``negated`` when it is ``Arg1`` of a
  ``Has_negation`` relation, or lies inside a ``Scope`` that is.

Traits compared: ``negated``; on Chia also ``negated-clin``, the same without the spans negated only through
an eligibility exception cue (:data:`EXCEPTION_CUES`); and on MACCROBAT ``uncertain``, which a system predicts with
``possible`` or ``hypothetical`` (medspaCy: ``is_uncertain`` or ``is_hypothetical``; negspacy has no such trait).
``sentences`` (no shared data needed) scores the five traits, as the one-word assertion, on the project's
hand-written test sentences: in-sample for our rules (they were written with them), a check for the others.
``--jsonl FILE`` scores a file of span judgments written like the ``assert`` verb's input plus gold, one JSON object
a line: ``{"id", "text", "start", "end", "assertion", "traits"}`` (for example the clinical-note style
``tests/fixtures/assertion/clinical_blind.jsonl``). Our stage judges each line through
:meth:`engine.pipeline.Pipeline.assert_span`, the ``assert`` verb's own code path (section detection, then one
span); medSpaCy and negspacy judge the same span in the same text. Each of the five traits is scored on its own
(a span can carry several), plus ``assertion``: accuracy and macro F1 of the contract's one-word assertion.
``--part tune`` / ``check`` take the even / odd documents in sorted order: the rules were tuned looking only at
errors on the ``tune`` half, so ``check`` is the fairer figure for unseen text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError, ErrorCode
from engine.settings import Settings
from engine.types import TRAITS, assertion_from_traits, sort_traits

MACCROBAT_TYPES = frozenset(
    {"Disease_disorder", "Sign_symptom", "Medication", "Therapeutic_procedure", "Diagnostic_procedure"}
)
CHIA_TYPES = frozenset({"Condition", "Drug", "Procedure", "Measurement", "Observation", "Device"})
UNCERTAIN_VALUES = frozenset({"UNCERTAIN", "MAYBE_POS", "MAYBE_NEG"})
DATASETS = ("maccrobat", "chia", "sentences")
JSONL_PREFIX = "jsonl:"
"""Dataset names of ``--jsonl`` files are this prefix and the file path."""
ASSERTIONS = ("present", "negated", "family", "hypothetical", "possible", "historical")
SENTENCES_FILE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "assertion" / "sentences.tsv"
"""The project's hand-written test sentences (one span each, with its expected one-word assertion)."""
SYSTEMS = ("ours", "medspacy", "negspacy")
EVAL_TRAITS = {
    "maccrobat": ("negated", "uncertain"),
    "chia": ("negated", "negated-clin"),
    "sentences": ("negated", "family", "hypothetical", "possible", "historical"),
    "jsonl": ("negated", "family", "hypothetical", "possible", "historical", "assertion"),
}
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


def _read(txt: Path) -> tuple[str, list[list[str]]]:
    # newline="" keeps "\r\n" as two characters, as BRAT offsets count them (Chia has such files).
    with open(txt, encoding="utf-8", newline="") as handle:
        text = handle.read()
    ann = txt.with_suffix(".ann")
    rows = [line.rstrip("\r\n").split("\t") for line in ann.read_text(encoding="utf-8").splitlines()]
    return text, rows


def _offsets(field_: str) -> tuple[str, list[tuple[int, int]]]:
    kind, _, offsets = field_.partition(" ")
    frags = [tuple(int(x) for x in frag.split()) for frag in offsets.split(";")]
    return kind, [(f[0], f[1]) for f in frags if len(f) == 2]


def read_maccrobat(folder: Path) -> list[GoldDoc]:
    """MACCROBAT events of the product's clinical types with their POLARITY (see the module docstring)."""
    docs: list[GoldDoc] = []
    for txt in sorted(folder.glob("*.txt")):
        if not txt.with_suffix(".ann").is_file():
            continue
        text, rows = _read(txt)
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
    for txt in sorted(folder.glob("*.txt")):
        if not txt.with_suffix(".ann").is_file():
            continue
        text, rows = _read(txt)
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


# ---- systems: each maps a document to one set of predicted traits per item
Judge = Callable[[GoldDoc], list[set[str]]]


def ours(settings: Settings) -> Judge:
    """Our stage (engine.assertion with engine.sections)."""
    from engine.assertion import load as load_assertion
    from engine.sections import load as load_sections

    stage, sections = load_assertion(settings), load_sections(settings)

    def judge(doc: GoldDoc) -> list[set[str]]:
        results = stage.judge(doc.text, [(i.start, i.end) for i in doc.items], sections.detect(doc.text))
        out = []
        for r in results:
            traits = set(r.traits)
            if traits & {"possible", "hypothetical"}:
                traits.add("uncertain")
            out.append(traits)
        return out

    return judge


def ours_verb(settings: Settings) -> Judge:
    """Our stage through :meth:`engine.pipeline.Pipeline.assert_span`, exactly as the ``assert`` verb runs it."""
    from engine.pipeline import Pipeline

    pipeline = Pipeline(settings)

    def judge(doc: GoldDoc) -> list[set[str]]:
        return [set(pipeline.assert_span(doc.text, i.start, i.end, doc.id)["traits"]) for i in doc.items]

    return judge


def _layers(spans: list[Any]) -> list[list[Any]]:
    """Split token spans into layers of non-overlapping spans (``doc.ents`` cannot overlap)."""
    layers: list[list[Any]] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        for layer in layers:
            if layer[-1].end <= span.start:
                layer.append(span)
                break
        else:
            layers.append([span])
    return layers


def _spacy_judge(nlp: Any, components: list[Any], read: Callable[[Any], set[str]]) -> Judge:
    def judge(doc: GoldDoc) -> list[set[str]]:
        sdoc = nlp.make_doc(doc.text)
        for name, proc in nlp.pipeline:
            if name not in components:
                sdoc = proc(sdoc)
        spans: list[tuple[int, Any]] = []
        for k, item in enumerate(doc.items):
            span = sdoc.char_span(item.start, item.end, label="FINDING", alignment_mode="expand")
            if span is not None and len(span):
                spans.append((k, span))
        items_at: dict[tuple[int, int], list[int]] = {}
        for k, span in spans:
            items_at.setdefault((span.start, span.end), []).append(k)
        out: list[set[str]] = [set() for _ in doc.items]
        unique = [sdoc[a:b] for a, b in items_at]
        for layer in _layers(unique):
            sdoc.ents = [sdoc.char_span(s.start_char, s.end_char, label="FINDING") for s in layer]
            for name, proc in nlp.pipeline:
                if name in components:
                    sdoc = proc(sdoc)
            for ent in sdoc.ents:
                for k in items_at.get((ent.start, ent.end), []):
                    out[k] = read(ent)
        return out

    return judge


def medspacy_default() -> Judge:
    """medspaCy 1.x: its PyRuSH sentence splitter and ConText with the default rules, nothing changed."""
    try:
        from loguru import logger

        logger.remove()  # PyRuSH logs every sentence at DEBUG level
    except ImportError:  # pragma: no cover - loguru comes with PyRuSH
        pass
    import medspacy

    nlp = medspacy.load(medspacy_enable=["medspacy_pyrush", "medspacy_context"])

    def read(ent: Any) -> set[str]:
        traits = set()
        for trait, flag in (("negated", ent._.is_negated), ("possible", ent._.is_uncertain),
                            ("hypothetical", ent._.is_hypothetical), ("historical", ent._.is_historical),
                            ("family", ent._.is_family)):
            if flag:
                traits.add(trait)
        if traits & {"possible", "hypothetical"}:
            traits.add("uncertain")
        return traits

    return _spacy_judge(nlp, ["medspacy_context"], read)


def negspacy_default() -> Judge:
    """negspacy 1.0: NegEx with its ``en_clinical`` termset on a blank English pipeline with a sentencizer."""
    import spacy
    from negspacy.negation import Negex  # noqa: F401  (registers the "negex" factory)

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("negex")

    def read(ent: Any) -> set[str]:
        return {"negated"} if ent._.negex else set()

    return _spacy_judge(nlp, ["negex"], read)


# ---- scoring
def score(
    gold: list[set[str]], pred: list[set[str]], trait: str, keep: list[bool] | None = None
) -> dict[str, float | int]:
    """Accuracy, precision, recall and F1 of one binary trait over the judged spans (those ``keep`` marks)."""
    tp = fp = fn = tn = 0
    keep = keep or [True] * len(gold)
    for g, p, k in zip(gold, pred, keep, strict=True):
        if not k:
            continue
        gi, pi = trait in g, trait in p
        tp += gi and pi
        fp += pi and not gi
        fn += gi and not pi
        tn += not gi and not pi
    n = tp + fp + fn + tn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": round((tp + tn) / n, 4) if n else 0.0,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "gold": tp + fn,
        "n": n,
    }


def score_assertion(gold: list[set[str]], pred: list[set[str]]) -> dict[str, float | int]:
    """Accuracy and macro F1 (over the assertions present in gold) of the contract's one-word assertion."""
    g = [assertion_from_traits(sort_traits(x & set(TRAITS))) for x in gold]
    p = [assertion_from_traits(sort_traits(x & set(TRAITS))) for x in pred]
    f1s = []
    for label in ASSERTIONS:
        if label not in g:
            continue
        tp = sum(a == label and b == label for a, b in zip(g, p, strict=True))
        fp = sum(a != label and b == label for a, b in zip(g, p, strict=True))
        fn = sum(a == label and b != label for a, b in zip(g, p, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    correct = sum(a == b for a, b in zip(g, p, strict=True))
    n = len(g)
    return {
        "accuracy": round(correct / n, 4) if n else 0.0,
        "precision": 0.0,
        "recall": 0.0,
        "f1": round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
        "tp": correct,
        "fp": n - correct,
        "fn": n - correct,
        "gold": n,
        "n": n,
    }


def _kind(dataset: str) -> str:
    return "jsonl" if dataset.startswith(JSONL_PREFIX) else dataset


def evaluate(
    data_dir: Path,
    datasets: Sequence[str] = DATASETS,
    systems: Sequence[str] = SYSTEMS,
    limit: int | None = None,
    part: str = "all",
    settings: Settings | None = None,
    errors: int = 0,
) -> dict[str, Any]:
    """Run every system on every dataset and score it.

    Returns:
        ``{dataset: {"documents", "spans", "systems": {system: {trait: scores}, "seconds"}, "errors": [...]}}``.
    """
    from tqdm import tqdm

    settings = settings or Settings()
    builders: dict[str, Callable[[], Judge]] = {
        "ours": lambda: ours(settings),
        "medspacy": medspacy_default,
        "negspacy": negspacy_default,
    }
    judges = {name: builders[name]() for name in systems}
    verb_judge = ours_verb(settings) if "ours" in systems else None
    report: dict[str, Any] = {}
    for dataset in datasets:
        kind = _kind(dataset)
        if kind == "jsonl":
            folder = Path(dataset[len(JSONL_PREFIX) :])
        else:
            folder = SENTENCES_FILE if dataset == "sentences" else Path(data_dir) / dataset
        if not folder.exists():
            raise EngineError(ErrorCode.DATA_NOT_FOUND, f"no {dataset} data at {folder}")
        readers = {"maccrobat": read_maccrobat, "chia": read_chia, "sentences": read_sentences, "jsonl": read_jsonl}
        docs = select(readers[kind](folder), part, limit)
        if not docs:
            raise EngineError(ErrorCode.DATA_NOT_FOUND, f"no annotated documents in {folder}")
        gold = [item.gold for doc in docs for item in doc.items]
        clinical = [not item.exception_cue for doc in docs for item in doc.items]
        entry: dict[str, Any] = {"documents": len(docs), "spans": len(gold), "systems": {}, "errors": []}
        for name, judge in judges.items():
            if kind == "jsonl" and name == "ours" and verb_judge is not None:
                judge = verb_judge
            t0 = time.perf_counter()
            preds: list[set[str]] = []
            for doc in tqdm(docs, desc=f"{dataset}/{name}", file=sys.stderr, leave=False):
                preds.extend(judge(doc))
            if dataset == "sentences":  # scored like the contract's one-word assertion
                preds = [{assertion_from_traits(sort_traits(p & set(TRAITS)))} for p in preds]
            seconds = time.perf_counter() - t0
            traits = [t for t in EVAL_TRAITS[kind] if name != "negspacy" or t.startswith("negated")]
            entry["systems"][name] = {
                t: score(gold, preds, "negated", clinical) if t == "negated-clin"
                else score_assertion(gold, preds) if t == "assertion"
                else score(gold, preds, t)
                for t in traits
            }
            entry["systems"][name]["seconds"] = round(seconds, 2)
            if name == "ours" and errors:
                checked = [t for t in EVAL_TRAITS[kind] if t in TRAITS or t == "uncertain"]
                entry["errors"] = _errors(docs, preds, errors, checked)
        report[dataset] = entry
    return report


def _errors(
    docs: list[GoldDoc], preds: list[set[str]], limit: int, traits: Sequence[str] = ("negated", "uncertain")
) -> list[str]:
    out: list[str] = []
    k = 0
    for doc in docs:
        for item in doc.items:
            pred = preds[k]
            k += 1
            for trait in traits:
                if (trait in item.gold) != (trait in pred) and len(out) < limit:
                    kind = "FN" if trait in item.gold else "FP"
                    left = doc.text[max(0, item.start - 90) : item.start].split("\n")[-1]
                    right = doc.text[item.end : item.end + 50].split("\n")[0]
                    out.append(f"{kind} {trait} {doc.id}: {left}[[{doc.text[item.start:item.end]}]]{right}")
    return out


def format_table(report: dict[str, Any]) -> str:
    """One side-by-side table per dataset: a row per trait and system."""
    lines: list[str] = []
    for dataset, entry in report.items():
        lines.append(f"\n{dataset}: {entry['documents']} documents, {entry['spans']} spans judged")
        lines.append(f"{'trait':<12} {'system':<10} {'acc':>7} {'prec':>7} {'rec':>7} {'F1':>7} {'gold':>6} {'sec':>7}")
        traits = EVAL_TRAITS[_kind(dataset)]
        for trait in traits:
            for system, scores in entry["systems"].items():
                if trait not in scores:
                    continue
                s = scores[trait]
                # the one-word assertion has accuracy and macro F1 only
                pr = f"{'-':>7} {'-':>7}" if trait == "assertion" else f"{s['precision']:>7.4f} {s['recall']:>7.4f}"
                lines.append(
                    f"{trait:<12} {system:<10} {s['accuracy']:>7.4f} {pr} "
                    f"{s['f1']:>7.4f} {s['gold']:>6} {scores['seconds']:>7.2f}"
                )
        for error in entry.get("errors", []):
            lines.append("  " + error)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine evaluate assertion``: print the side-by-side table (and write ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m engine evaluate assertion", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="shared data folder (default: Settings().data_dir)")
    parser.add_argument("--limit", type=int, default=None, help="first N documents per dataset")
    parser.add_argument("--datasets", default=None,
                        help="comma-separated: maccrobat,chia,sentences (default: all three, or none with --jsonl)")
    parser.add_argument("--jsonl", type=Path, action="append", default=[],
                        help="also score this span-judgment JSONL ({id,text,start,end,assertion,traits}); repeatable")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: ours,medspacy,negspacy")
    parser.add_argument("--part", choices=["all", "tune", "check"], default="all", help="even/odd document halves")
    parser.add_argument("--errors", type=int, default=0, help="print N of our errors per dataset")
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    args = parser.parse_args(list(argv or []))
    if args.datasets is None:
        args.datasets = "" if args.jsonl else ",".join(DATASETS)
    datasets = [d for d in args.datasets.split(",") if d]
    systems = [s for s in args.systems.split(",") if s]
    unknown = [d for d in datasets if d not in DATASETS] + [s for s in systems if s not in SYSTEMS]
    if unknown:
        parser.error(f"unknown dataset or system: {', '.join(unknown)}")
    for path in args.jsonl:
        if not path.is_file():
            parser.error(f"no such file: {path}")
    datasets += [f"{JSONL_PREFIX}{path}" for path in args.jsonl]
    settings = Settings()
    report = evaluate(args.data or settings.data_dir, datasets, systems, args.limit, args.part, settings, args.errors)
    sys.stdout.write(format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0
