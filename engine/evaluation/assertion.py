"""Assertion evaluation: our ConText rules side by side with medspaCy's default ConText and negspacy.

``python -m engine evaluate assertion [--data DIR] [--limit N] [--part all|tune|check] [--json OUT]``
``python -m engine evaluate assertion --jsonl FILE [--jsonl FILE2 ...] [--errors N]``
``python -m engine evaluate assertion --datasets mts-test,mts-dev,mts-test-note``

Gold spans come from the shared BRAT corpora, the project's span-judgment files and the labelled MTSamples spans
(:mod:`engine.evaluation.assertion_data`), and every system judges exactly those spans in their documents
(:mod:`engine.evaluation.assertion_systems`).

Traits compared: ``negated``; on Chia also ``negated-clin``, the same without the spans negated only through
an eligibility exception cue; and on MACCROBAT ``uncertain``, which a system predicts with ``possible`` or
``hypothetical`` (medspaCy: ``is_uncertain`` or ``is_hypothetical``; negspacy has no such trait).
``sentences`` (no shared data needed) scores the five traits, as the one-word assertion, on the project's
hand-written test sentences: in-sample for our rules (they were written with them), a check for the others.
``--jsonl FILE`` scores a file of span judgments written like the ``assert`` verb's input plus gold. Our stage judges
each line through :meth:`engine.pipeline.Pipeline.assert_span`, the ``assert`` verb's own code path (section
detection, then one span); medSpaCy and negspacy judge the same span in the same text. Each of the five traits is
scored on its own (a span can carry several), plus ``assertion``: accuracy and macro F1 of the one-word assertion.
``mts-test`` / ``mts-dev`` are the blind and dev parts of the labelled MTSamples spans, each judged in its sentence
alone (as a sentence-level kit gives them); ``mts-test-note`` / ``mts-dev-note`` judge the same spans in their whole
report, ``mts-test-wrap`` / ``mts-dev-wrap`` in their whole report hard-wrapped at 72 columns (as fixed-width EHR
exports store notes). ``mts-blind8`` (``-note``, ``-wrap``) are the same three views of blind8, labelled spans in 23
other reports (``tests/fixtures/assertion/mtsamples_blind8.jsonl``); ``mts-dev9`` (``-note``, ``-wrap``) a dev set in 93
more (``mtsamples_dev9.jsonl``, hypothetical and historical weighted). ``--part tune`` / ``check`` take the even /
odd documents in sorted order: the rules were tuned looking only at errors on the ``tune`` half, so ``check`` is
the fairer figure for unseen text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.errors import EngineError, ErrorCode
from engine.evaluation.assertion_data import (
    EXCEPTION_CUES,
    MTSAMPLES_BLIND8,
    MTSAMPLES_DEV9,
    MTSAMPLES_REFS,
    SENTENCES_FILE,
    GoldDoc,
    GoldItem,
    read_chia,
    read_jsonl,
    read_maccrobat,
    read_mtsamples,
    read_sentences,
    select,
)
from engine.evaluation.assertion_derived import read_chia_time, read_maccrobat_time
from engine.evaluation.assertion_scoring import ASSERTIONS, error_examples, format_table, score, score_assertion
from engine.evaluation.assertion_systems import (
    Judge,
    combined,
    learned,
    medspacy_default,
    negspacy_default,
    ours,
    ours_verb,
    rules_only,
)
from engine.settings import REPO_ROOT, Settings
from engine.types import TRAITS, assertion_from_traits, sort_traits

__all__ = [
    "ASSERTIONS",
    "DATASETS",
    "EXCEPTION_CUES",
    "JSONL_PREFIX",
    "MTS_DATASETS",
    "SYSTEMS",
    "GoldDoc",
    "GoldItem",
    "evaluate",
    "format_table",
    "main",
    "medspacy_default",
    "negspacy_default",
    "ours",
    "read_chia",
    "read_chia_time",
    "read_jsonl",
    "read_maccrobat",
    "read_maccrobat_time",
    "read_mtsamples",
    "read_sentences",
    "score",
    "score_assertion",
]

DATASETS = ("maccrobat", "chia", "sentences")
DERIVED_DATASETS = ("maccrobat-time", "chia-time")
"""Time and mood traits derived from the corpora's own annotations (:mod:`engine.evaluation.assertion_derived`)."""
MTS_DATASETS = ("mts-test", "mts-dev", "mts-test-note", "mts-dev-note", "mts-test-wrap", "mts-dev-wrap",
                "mts-blind8", "mts-blind8-note", "mts-blind8-wrap", "mts-dev9", "mts-dev9-note", "mts-dev9-wrap")
"""The labelled MTSamples spans: blind ``test`` and ``dev`` parts, in the sentence alone, in the whole note, or in
the whole note hard-wrapped at 72 columns (:func:`engine.evaluation.assertion_data.hard_wrap`)."""
JSONL_PREFIX = "jsonl:"
"""Dataset names of ``--jsonl`` files are this prefix and the file path."""
SYSTEMS = ("ours", "medspacy", "negspacy", "rules", "learned", "combined")
"""``ours`` is the stage as configured (``settings.assertion``); ``rules``, ``learned`` and ``combined`` force one."""
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "assertion"
DEFAULT_SYSTEMS = ("ours", "medspacy", "negspacy")
DEV_SPLIT = (
    (("maccrobat", "chia", "maccrobat-time", "chia-time"), "check"),
    (("mts-dev", "mts-dev-note", "mts-dev-wrap", "mts-dev9", "mts-dev9-note", "mts-dev9-wrap",
      *(f"{JSONL_PREFIX}{FIXTURES / f'clinical_blind{k}.jsonl'}" for k in (4, 5, 6)),
      f"{JSONL_PREFIX}{FIXTURES / 'clinical_dev7.jsonl'}"), "all"),
)
"""The dev split (``--dev``): the corpora's ``check`` halves, the MTSamples dev parts and the hand-written sets 4-6 and
dev7, none of which the learned classifier trains on; the MTSamples ``test`` part stays blind."""
FIVE = ("negated", "family", "hypothetical", "possible", "historical")
EVAL_TRAITS = {
    "maccrobat": ("negated", "uncertain"),
    "chia": ("negated", "negated-clin"),
    "sentences": FIVE,
    "jsonl": (*FIVE, "assertion"),
    "mts": (*FIVE, "assertion"),
    "maccrobat-time": ("historical",),
    "chia-time": ("historical", "hypothetical", "possible"),
}


def _kind(dataset: str) -> str:
    if dataset.startswith(JSONL_PREFIX):
        return "jsonl"
    return "mts" if dataset.startswith("mts-") else dataset


def load_docs(dataset: str, data_dir: Path, part: str = "all", limit: int | None = None) -> list[GoldDoc]:
    """The gold documents of one dataset name (see :data:`DATASETS`, :data:`MTS_DATASETS`, :data:`JSONL_PREFIX`).

    Raises:
        EngineError: ``DATA_NOT_FOUND`` when its data is absent or holds no annotated document.
    """
    kind = _kind(dataset)
    if kind == "jsonl":
        folder = Path(dataset[len(JSONL_PREFIX) :])
    elif kind == "mts":
        folder = Path(data_dir) / "mtsamples"
    elif kind in DERIVED_DATASETS:
        folder = Path(data_dir) / kind.split("-")[0]
    else:
        folder = SENTENCES_FILE if dataset == "sentences" else Path(data_dir) / dataset
    if not folder.exists():
        raise EngineError(ErrorCode.DATA_NOT_FOUND, f"no {dataset} data at {folder}")
    if kind == "mts":
        _, mts_part, *note = dataset.split("-")
        refs = {"blind8": MTSAMPLES_BLIND8, "dev9": MTSAMPLES_DEV9}.get(mts_part, MTSAMPLES_REFS)
        docs = read_mtsamples(folder, mts_part, note[0] if note else "sentence", refs)
    else:
        readers = {"maccrobat": read_maccrobat, "chia": read_chia, "sentences": read_sentences, "jsonl": read_jsonl,
                   "maccrobat-time": read_maccrobat_time, "chia-time": read_chia_time}
        docs = readers[kind](folder)
    docs = select(docs, part, limit)
    if not docs:
        raise EngineError(ErrorCode.DATA_NOT_FOUND, f"no annotated documents in {folder}")
    return docs


def _score_system(name: str, kind: str, gold: list[set[str]], preds: list[set[str]],
                  clinical: list[bool]) -> dict[str, Any]:
    traits = [t for t in EVAL_TRAITS[kind] if name != "negspacy" or t.startswith("negated")]
    return {
        t: score(gold, preds, "negated", clinical) if t == "negated-clin"
        else score_assertion(gold, preds) if t == "assertion"
        else score(gold, preds, t)
        for t in traits
    }


def evaluate(
    data_dir: Path,
    datasets: Sequence[str] = DATASETS,
    systems: Sequence[str] = SYSTEMS,
    limit: int | None = None,
    part: str = "all",
    settings: Settings | None = None,
    errors: int = 0,
    model: Path | None = None,
) -> dict[str, Any]:
    """Run every system on every dataset and score it.

    Returns:
        ``{dataset: {"documents", "spans", "traits", "systems": {system: {trait: scores}, "seconds"},
        "errors": [...]}}``.
    """
    from tqdm import tqdm

    settings = settings or Settings()
    builders: dict[str, Callable[[], Judge]] = {
        "ours": lambda: ours(settings),
        "medspacy": medspacy_default,
        "negspacy": negspacy_default,
        "rules": lambda: rules_only(settings),
        "learned": lambda: learned(settings, model),
        "combined": lambda: combined(settings, model),
    }
    judges = {name: builders[name]() for name in systems}
    verb_judge = ours_verb(settings) if "ours" in systems else None
    report: dict[str, Any] = {}
    for dataset in datasets:
        kind = _kind(dataset)
        docs = load_docs(dataset, data_dir, part, limit)
        gold = [item.gold for doc in docs for item in doc.items]
        clinical = [not item.exception_cue for doc in docs for item in doc.items]
        entry: dict[str, Any] = {"documents": len(docs), "spans": len(gold), "traits": list(EVAL_TRAITS[kind]),
                                 "systems": {}, "errors": []}
        for name, judge in judges.items():
            if kind in {"jsonl", "mts"} and name == "ours" and verb_judge is not None:
                judge = verb_judge  # the ``assert`` verb's own path
            t0 = time.perf_counter()
            preds: list[set[str]] = []
            for doc in tqdm(docs, desc=f"{dataset}/{name}", file=sys.stderr, leave=False):
                preds.extend(judge(doc))
            if dataset == "sentences":  # scored like the contract's one-word assertion
                preds = [{assertion_from_traits(sort_traits(p & set(TRAITS)))} for p in preds]
            seconds = time.perf_counter() - t0
            entry["systems"][name] = _score_system(name, kind, gold, preds, clinical)
            entry["systems"][name]["seconds"] = round(seconds, 2)
            if name == "ours" and errors:
                checked = [t for t in EVAL_TRAITS[kind] if t in TRAITS or t == "uncertain"]
                entry["errors"] = error_examples(docs, preds, errors, checked)
        report[dataset] = entry
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine evaluate assertion``: print the side-by-side table (and write ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m engine evaluate assertion", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="shared data folder (default: Settings().data_dir)")
    parser.add_argument("--limit", type=int, default=None, help="first N documents per dataset")
    parser.add_argument("--datasets", default=None,
                        help="comma-separated: maccrobat,chia,sentences, maccrobat-time,chia-time, mts-test,mts-dev,"
                             "mts-test-note,mts-dev-note, mts-test-wrap,mts-dev-wrap, mts-blind8(-note,-wrap), "
                             "mts-dev9(-note,-wrap) (default: the first three, or "
                             "none with --jsonl)")
    parser.add_argument("--jsonl", type=Path, action="append", default=[],
                        help="also score this span-judgment JSONL ({id,text,start,end,assertion,traits}); repeatable")
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                        help="comma-separated: ours,medspacy,negspacy,rules,learned,combined")
    parser.add_argument("--dev", action="store_true",
                        help="the dev split: corpora check halves, mts-dev, mts-dev9 (-note,-wrap), clinical 4-6, dev7")
    parser.add_argument("--model", type=Path, default=None,
                        help="assertion model folder for learned/combined (default: the model set's)")
    parser.add_argument("--part", choices=["all", "tune", "check"], default="all", help="even/odd document halves")
    parser.add_argument("--errors", type=int, default=0, help="print N of our errors per dataset")
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    args = parser.parse_args(list(argv or []))
    if args.datasets is None:
        args.datasets = "" if args.jsonl else ",".join(DATASETS)
    datasets = [d for d in args.datasets.split(",") if d]
    systems = [s for s in args.systems.split(",") if s]
    known = DATASETS + DERIVED_DATASETS + MTS_DATASETS
    unknown = [d for d in datasets if d not in known] + [s for s in systems if s not in SYSTEMS]
    if unknown:
        parser.error(f"unknown dataset or system: {', '.join(unknown)}")
    for path in args.jsonl:
        if not path.is_file():
            parser.error(f"no such file: {path}")
    datasets += [f"{JSONL_PREFIX}{path}" for path in args.jsonl]
    settings = Settings()
    data_dir = args.data or settings.data_dir
    if args.dev:
        report: dict[str, Any] = {}
        for names, part in DEV_SPLIT:
            for name, entry in evaluate(data_dir, names, systems, args.limit, part, settings, args.errors,
                                        args.model).items():
                report[f"{name} [{part}]"] = entry
    else:
        report = evaluate(data_dir, datasets, systems, args.limit, args.part, settings, args.errors, args.model)
    sys.stdout.write(format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0
