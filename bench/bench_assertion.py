"""Assertion throughput on one CPU core: span judgments per second, ours next to medspaCy and negspacy.

Usage: ``python bench/bench_assertion.py [--data DIR] [--docs N] [--repeat R]``

Spans are the gold MACCROBAT event spans (the same the evaluation judges) when the shared data is there, else the
spans of the repository's hand-written fixture sentences. Three ways of judging are timed:

- ``note``: a note's spans judged in one call, with section detection (how ``analyze`` uses the stage);
- ``single``: one call per span, section detection included each time (how the ``assert`` verb works); the
  stages remember the last notes, so spans of one note in a row are cheap; ``caches cleared`` times the worst
  case, every call a note never seen before (here a whole case report of about 2,700 characters);
- medspaCy (PyRuSH + default ConText) and negspacy (sentencizer + NegEx) per note, the same spans as entities.

The process is pinned to one core and BLAS/torch threads are set to 1 before anything is imported.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TOKENIZERS_PARALLELISM"):
    os.environ[_var] = "false" if _var == "TOKENIZERS_PARALLELISM" else "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.evaluation.assertion import (  # noqa: E402
    GoldDoc,
    GoldItem,
    medspacy_default,
    negspacy_default,
    ours,
    read_maccrobat,
)
from engine.sections import load as load_sections  # noqa: E402
from engine.settings import Settings  # noqa: E402


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity)"


def _fixture_docs() -> list[GoldDoc]:
    docs = []
    path = REPO / "tests" / "fixtures" / "assertion" / "sentences.tsv"
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip() or line.startswith("#"):
            continue
        sentence = line.split("\t")[3]
        start, end = sentence.index("[["), sentence.index("]]") - 2
        docs.append(GoldDoc(str(n), sentence.replace("[[", "").replace("]]", ""), [GoldItem(start, end, set())]))
    return docs


def _rate(fn, docs: list[GoldDoc], repeat: int) -> tuple[float, float]:
    spans = sum(len(d.items) for d in docs) * repeat
    fn(docs[0])  # warm caches
    t0 = time.perf_counter()
    for _ in range(repeat):
        for doc in docs:
            fn(doc)
    seconds = time.perf_counter() - t0
    return spans / seconds, seconds


def main(argv: list[str] | None = None) -> int:
    """Print the machine, then judgments per second per system and the ratios to ours."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Settings().data_dir)
    parser.add_argument("--docs", type=int, default=30, help="MACCROBAT reports to use")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the documents for our stage")
    args = parser.parse_args(argv)

    pinned = _pin_one_core()
    folder = args.data / "maccrobat"
    docs = read_maccrobat(folder)[: args.docs] if folder.is_dir() else _fixture_docs()
    source = f"MACCROBAT gold spans, {len(docs)} reports" if folder.is_dir() else "fixture sentences"
    n_spans = sum(len(d.items) for d in docs)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, {pinned}")
    print(
        f"python {platform.python_version()}, torch {_version('torch')} (not used), device cpu, "
        f"medspacy {_version('medspacy')}, negspacy {_version('negspacy')}, spacy {_version('spacy')}"
    )
    print(f"data: {source}, {n_spans} spans")

    settings = Settings()
    note_judge = ours(settings)
    from engine.assertion import load as load_assertion

    stage, sections = load_assertion(settings), load_sections(settings)

    def single(doc: GoldDoc) -> None:
        for item in doc.items:
            stage.judge(doc.text, [(item.start, item.end)], sections.detect(doc.text))

    def single_cold(doc: GoldDoc) -> None:
        for item in doc.items:
            stage._sentence_cache.clear()  # as if every call brought a note never seen before
            sections._cache.clear()
            stage.judge(doc.text, [(item.start, item.end)], sections.detect(doc.text))

    results: list[tuple[str, float, float]] = []
    rate, seconds = _rate(note_judge, docs, args.repeat)
    results.append(("ours (note: all spans per call)", rate, seconds))
    rate, seconds = _rate(single, docs, 1)
    results.append(("ours (single: one span per call)", rate, seconds))
    rate, seconds = _rate(single_cold, docs, 1)
    results.append(("ours (single, caches cleared)", rate, seconds))
    for name, build in (("medspaCy ConText default", medspacy_default), ("negspacy", negspacy_default)):
        rate, seconds = _rate(build(), docs, 1)
        results.append((name, rate, seconds))

    best = results[0][1]
    print(f"\n{'system':<36} {'spans/s':>10} {'seconds':>9} {'ours/this':>10}")
    for name, rate, seconds in results:
        print(f"{name:<36} {rate:>10.0f} {seconds:>9.2f} {best / rate:>9.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
