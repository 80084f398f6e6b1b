"""Assertion throughput on one CPU core: span judgments per second, ours next to medspaCy and negspacy.

Usage: ``python bench/bench_assertion.py [--data DIR] [--docs N] [--repeat R] [--model DIR]``

Spans are the gold MACCROBAT event spans (the same the evaluation judges) when the shared data is there, else the
spans of the repository's hand-written fixture sentences. Three ways of judging are timed:

- ``note``: a note's spans judged in one call, with section detection (how ``analyze`` uses the stage);
- ``single``: one call per span, section detection included each time (how the ``assert`` verb works); the
  stages remember the last notes, so spans of one note in a row are cheap; ``caches cleared`` times the worst
  case, every call a note never seen before (here a whole case report of about 2,700 characters);
- medspaCy (PyRuSH + default ConText) and negspacy (sentencizer + NegEx) per note, the same spans as entities;
- when a trained assertion model is there (``--model``, default the model set's ``assertion/``): the learned
  classifier alone and the combination (rules, then the model fills in) under each gate (``any``, ``uncued``,
  ``cued``: which findings the model scores), per note, batched.

Each row gives spans per second, milliseconds per note and per span.

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
    combined,
    learned,
    medspacy_default,
    negspacy_default,
    read_maccrobat,
)
from engine.evaluation.assertion_systems import rules_only  # noqa: E402
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


def _rate(fn, docs: list[GoldDoc], repeat: int) -> tuple[float, float, float]:
    spans = sum(len(d.items) for d in docs) * repeat
    fn(docs[0])  # warm caches
    t0 = time.perf_counter()
    for _ in range(repeat):
        for doc in docs:
            fn(doc)
    seconds = time.perf_counter() - t0
    return spans / seconds, seconds, 1000.0 * seconds / (len(docs) * repeat)


def main(argv: list[str] | None = None) -> int:
    """Print the machine, then judgments per second per system and the ratios to ours."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Settings().data_dir)
    parser.add_argument("--docs", type=int, default=30, help="MACCROBAT reports to use")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the documents for our stage")
    parser.add_argument("--model", type=Path, default=None, help="assertion model folder (default: the model set's)")
    args = parser.parse_args(argv)

    pinned = _pin_one_core()
    folder = args.data / "maccrobat"
    docs = read_maccrobat(folder)[: args.docs] if folder.is_dir() else _fixture_docs()
    source = f"MACCROBAT gold spans, {len(docs)} reports" if folder.is_dir() else "fixture sentences"
    n_spans = sum(len(d.items) for d in docs)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, {pinned}")
    print(
        f"python {platform.python_version()}, torch {_version('torch')} (1 thread), device cpu, "
        f"medspacy {_version('medspacy')}, negspacy {_version('negspacy')}, spacy {_version('spacy')}"
    )
    print(f"data: {source}, {n_spans} spans")

    settings = Settings(device="cpu")
    note_judge = rules_only(settings)
    from engine.assertion import load_rules
    from engine.assertion_learned import model_folder

    torch_threads()
    stage, sections = load_rules(settings), load_sections(settings)
    folder = args.model or model_folder(settings.model_dir)

    def single(doc: GoldDoc) -> None:
        for item in doc.items:
            stage.judge(doc.text, [(item.start, item.end)], sections.detect(doc.text))

    def single_cold(doc: GoldDoc) -> None:
        for item in doc.items:
            stage._sentence_cache.clear()  # as if every call brought a note never seen before
            sections._cache.clear()
            stage.judge(doc.text, [(item.start, item.end)], sections.detect(doc.text))

    results: list[tuple[str, float, float, float]] = []
    results.append(("rules (note: all spans per call)", *_rate(note_judge, docs, args.repeat)))
    results.append(("rules (single: one span per call)", *_rate(single, docs, 1)))
    results.append(("rules (single, caches cleared)", *_rate(single_cold, docs, 1)))
    if folder is not None and Path(folder, "config.json").is_file():
        results.append(("learned alone (note, batched)", *_rate(learned(settings, folder), docs, 1)))
        for gate in ("any", "uncued", "cued"):
            judge = combined(settings, folder, gate=gate)
            results.append((f"combined, gate {gate} (note, batched)", *_rate(judge, docs, 1)))
        results.append(("rules again (note, interleaved check)", *_rate(note_judge, docs, args.repeat)))
    for name, build in (("medspaCy ConText default", medspacy_default), ("negspacy", negspacy_default)):
        results.append((name, *_rate(build(), docs, 1)))

    best = results[0][1]
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n{'system':<40} {'spans/s':>10} {'seconds':>9} {'ms/note':>9} {'ms/span':>9} {'rules/this':>11}")
    for name, rate, seconds, per_note in results:
        print(f"{name:<40} {rate:>10.0f} {seconds:>9.2f} {per_note:>9.1f} {1000 / rate:>9.3f} {best / rate:>10.1f}x")
    return 0


def torch_threads() -> None:
    """One torch thread, like the rest of the process."""
    import torch

    torch.set_num_threads(1)


if __name__ == "__main__":
    raise SystemExit(main())
