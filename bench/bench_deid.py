"""De-identification speed on one CPU core: ms per 1,000 characters, ours next to Presidio's pattern recognizers.

Usage: ``python bench/bench_deid.py [--rounds R] [--synthetic N] [--five-mb]``

The notes are the hand-written dev set plus N synthetic dev notes (templates only, so no shared data is
needed). Ours (patterns + cue rules + CRF tagger, ``find`` only and ``deidentify`` with surrogates) and Presidio's
default pattern recognizers run interleaved in each round, so machine load hits all alike; the best round counts.
``--five-mb`` also times one 5 MB note once (``deidentify``, surrogates). Target: <= 20 ms per 1,000 characters.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.deid import Deidentifier  # noqa: E402
from engine.evaluation.deid import load_handwritten  # noqa: E402
from engine.evaluation.deid_presidio import presidio_finder  # noqa: E402
from engine.settings import Settings  # noqa: E402
from engine.training.deid import build_examples  # noqa: E402


def _time(fn, texts: list[str]) -> float:  # fn: any text -> result callable
    t0 = time.perf_counter()
    for text in texts:
        fn(text)
    return time.perf_counter() - t0


def main() -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synthetic", type=int, default=200)
    parser.add_argument("--five-mb", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    texts = [ex["text"] for ex in load_handwritten()]
    texts += [ex["text"] for ex in build_examples(Path("/nonexistent"), n_train=0, n_dev=args.synthetic)["dev"]]
    chars = sum(len(t) for t in texts)
    deid = Deidentifier(Settings())
    systems = {"ours find": deid.find, "ours deidentify": deid.deidentify}
    presidio = presidio_finder()
    if presidio is not None:
        systems["presidio patterns"] = presidio
    for fn in systems.values():
        fn(texts[0])  # warm caches and lazy imports
    best = {name: float("inf") for name in systems}
    for _ in range(args.rounds):
        for name, fn in systems.items():
            best[name] = min(best[name], _time(fn, texts))
    print(f"{len(texts)} notes, {chars:,} characters; load average {os.getloadavg()[0]:.2f}; best of {args.rounds}")
    for name, secs in best.items():
        print(f"{name:20s} {1000 * secs / chars * 1000:7.2f} ms per 1,000 chars")
    if presidio is None:
        print("presidio patterns    not installed (pip install presidio-analyzer==2.2.366)")
    if args.five_mb:
        big = ("\n\n".join(texts) + "\n\n") * (5_000_000 // (chars + 2 * len(texts)) + 1)
        big = big[:5_000_000]
        t0 = time.perf_counter()
        out = deid.deidentify(big, "big")
        secs = time.perf_counter() - t0
        print(f"5 MB note: {secs:.1f} s ({1000 * secs / len(big) * 1000:.2f} ms per 1,000 chars), "
              f"{len(out.phi):,} PHI spans")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
