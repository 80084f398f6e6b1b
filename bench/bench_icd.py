"""ICD-10-CM linker: index first build, load, and milliseconds per mention on CPU.

1. First build: a fresh temporary cache folder, ``engine.icd.load`` builds the index from the tabular list
   (package parse included) and caches it. Target: 60 s.
2. Load: a new Python process loads the cached index (``engine.icd.load``), as a restarted app would.
   Target: 3 s. The figure includes the process's own imports of numpy and the engine, not the interpreter start.
3. Latency: ``link`` over a few hundred mentions (the dev set's phrases plus lateralised, misspelled and
   abbreviated variants), after one untimed pass. Target: p50 10 ms per mention.

    .venv/bin/python bench/bench_icd.py [--rounds 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, emit_json, print_header, summary, verdict

LOAD_SNIPPET = """
import time, sys
t0 = time.perf_counter()
from engine.settings import Settings
from engine import icd
linker = icd.load(Settings(cache_dir=sys.argv[1], device="cpu"))
print(f"{time.perf_counter() - t0:.3f}")
"""


def mentions() -> list[str]:
    """A few hundred mentions: the dev phrases and variants of them."""
    from engine.evaluation.icd import DEFAULT_DEV, read_dev

    base = [p for p, _, _ in read_dev(DEFAULT_DEV)]
    out = list(base)
    out += [f"left {p}" for p in base[:60]]
    out += [f"{p}, acute" for p in base[60:120]]
    out += [p.replace("e", "", 1) for p in base[120:180]]  # misspellings
    out += ["", "   ", "x" * 10_000, "CHF exacerbation", "h/o MI", "FHx breast ca"]
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="timed passes over the mentions")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    info = print_header("ICD-10-CM linker (CPU)", device="cpu")

    from engine import icd
    from engine.settings import Settings

    with tempfile.TemporaryDirectory(prefix="icd-bench-") as cache:
        settings = Settings(cache_dir=Path(cache), device="cpu")
        t0, c0 = time.perf_counter(), time.process_time()
        linker = icd.load(settings)
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"first build: {build_s:.1f} s wall, {build_cpu:.1f} s CPU  {verdict(build_s, 60, False)}")
        print(f"  {linker.data.meta}")

        env = dict(os.environ, PYTHONPATH=str(REPO))
        loads = []
        for _ in range(3):
            out = subprocess.run(
                [sys.executable, "-c", LOAD_SNIPPET, cache], capture_output=True, text=True, env=env, check=True
            )
            loads.append(float(out.stdout.strip().splitlines()[-1]))
        print(
            f"load (new process, cached index): best {min(loads):.2f} s, runs {loads}  {verdict(min(loads), 3, False)}"
        )

        items = mentions()
        for m in items:
            linker.link(m)
        times = []
        c0 = time.process_time()
        for _ in range(args.rounds):
            for m in items:
                t = time.perf_counter()
                linker.link(m)
                times.append((time.perf_counter() - t) * 1000)
        cpu_ms = (time.process_time() - c0) * 1000 / len(times)
        stats = summary(times)
        print(
            f"link: {len(items)} mentions x {args.rounds} rounds: "
            f"p50 {stats['p50']:.2f} ms, p95 {stats['p95']:.2f} ms, "
            f"mean {stats['mean']:.2f} ms wall, {cpu_ms:.2f} ms CPU per mention  {verdict(stats['p50'], 10, False)}"
        )
        history = [linker.link(m, "DIAG", ["family"]) for m in items[:100]]
        del history
    emit_json(
        args.json,
        {
            "machine": info,
            "build_s": build_s,
            "build_cpu_s": build_cpu,
            "load_s": loads,
            "link_ms": stats,
            "link_cpu_ms": cpu_ms,
            "mentions": len(items),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
