"""ICD-10-CM linker: first build, load, milliseconds per mention and added memory, new and previous side by side.

1. First build: an empty temporary cache; ``engine.icd.load`` builds the lexical index (tabular list + Alphabetic
   Index) and, for the hybrid linker, embeds every string with the synonym encoder and builds the vector index.
   Target: 10 min.
2. Load: a new process loads the cached linker (as a restarted app would) and reports the seconds and the resident
   memory it added (RSS after load minus RSS after the interpreter's own imports of numpy). Targets: 3 s, 300 MB.
3. Latency: ``link`` over a few hundred mentions (the dev phrases plus lateralised, misspelled and abbreviated
   variants), after one untimed pass, for the hybrid linker and the previous release's method (lexical, tabular
   list only) interleaved mention by mention. Target: p95 10 ms.
4. ``--vectors``: usearch (int8 HNSW) against faiss (flat int8, HNSW over int8) on the cached vectors: build time,
   query time, memory, recall@10 of the exact cosine neighbours.

    .venv/bin/python bench/bench_icd.py [--rounds 2] [--cache DIR] [--vectors] [--json FILE]
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
import resource, sys, time
import numpy
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2**20
r0, t0 = rss(), time.perf_counter()
from engine.settings import Settings
from engine import icd
linker = icd.load(Settings(cache_dir=sys.argv[1], device="cpu"), hybrid=sys.argv[2] == "1")
linker.link("acute myocardial infarction")
print(f"{time.perf_counter() - t0:.3f} {rss() - r0:.1f}")
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


def load_in_new_process(cache: str, hybrid: bool) -> tuple[float, float]:
    """``(seconds, added MB)`` of loading the cached linker in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", LOAD_SNIPPET, cache, "1" if hybrid else "0"], capture_output=True,
                         text=True, env=env, check=True)
    seconds, mb = out.stdout.strip().splitlines()[-1].split()
    return float(seconds), float(mb)


def latency(linkers: dict[str, object], items: list[str], rounds: int) -> dict[str, dict]:
    """p50/p95 per linker, interleaved mention by mention so both see the same machine load."""
    for linker in linkers.values():
        for m in items:
            linker.link(m)
    times: dict[str, list[float]] = {name: [] for name in linkers}
    for _ in range(rounds):
        for m in items:
            for name, linker in linkers.items():
                t = time.perf_counter()
                linker.link(m)
                times[name].append((time.perf_counter() - t) * 1000)
    return {name: summary(v) for name, v in times.items()}


def compare_vector_libraries(cache: Path) -> dict[str, dict]:
    """usearch against faiss on the cached synonym-encoder vectors."""
    import numpy as np

    from engine.settings import Settings

    folders = sorted(cache.glob("icdemb-*")) or sorted(Path(Settings().cache_dir).glob("icdemb-*"))
    if not folders:
        print("no cached vectors; run the build first")
        return {}
    vectors = np.load(folders[-1] / "vectors.npy").astype(np.float32)
    rng = np.random.default_rng(0)
    queries = vectors[rng.choice(len(vectors), 300, replace=False)] + rng.normal(0, 0.02, (300, vectors.shape[1]))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    out = {}
    import faiss
    from usearch.index import Index

    faiss.omp_set_num_threads(1)

    def record(name: str, build_s: float, search, size_mb: float) -> None:
        t = time.perf_counter()
        found = [search(q) for q in queries]
        ms = (time.perf_counter() - t) * 1000 / len(queries)
        recall = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)]))
        out[name] = {"build_s": round(build_s, 1), "query_ms": round(ms, 3), "memory_mb": round(size_mb, 1),
                     "recall@10": round(recall, 3)}
        print(f"  {name:28} build {build_s:6.1f} s  query {ms:6.3f} ms  memory {size_mb:6.1f} MB  "
              f"recall@10 {recall:.3f}")

    t = time.perf_counter()
    u = Index(ndim=vectors.shape[1], metric="cos", dtype="i8", connectivity=16, expansion_add=64, expansion_search=64)
    u.add(np.arange(len(vectors), dtype=np.uint64), vectors, threads=1)
    record("usearch HNSW int8", time.perf_counter() - t, lambda q: u.search(q, 10).keys.tolist(),
           u.memory_usage / 2**20)
    t = time.perf_counter()
    flat = faiss.IndexScalarQuantizer(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    flat.train(vectors)
    flat.add(vectors)
    record("faiss flat int8", time.perf_counter() - t, lambda q: flat.search(q[None], 10)[1][0].tolist(),
           vectors.size / 2**20)
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWSQ(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, 16, faiss.METRIC_INNER_PRODUCT)
    hnsw.train(vectors)
    hnsw.add(vectors)
    hnsw.hnsw.efSearch = 64
    record("faiss HNSW int8", time.perf_counter() - t, lambda q: hnsw.search(q[None], 10)[1][0].tolist(),
           (vectors.size + len(vectors) * 32 * 4) / 2**20)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="timed passes over the mentions")
    parser.add_argument("--cache", type=Path, help="use (and keep) this cache folder instead of a fresh one")
    parser.add_argument("--vectors", action="store_true", help="also compare vector index libraries")
    parser.add_argument("--hybrid", action="store_true", help="also time the learned hybrid ranker (off by default)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    info = print_header("ICD-10-CM linker (CPU, 1 torch thread)", device="cpu")
    import torch

    torch.set_num_threads(1)
    from engine import icd
    from engine.settings import Settings

    with tempfile.TemporaryDirectory(prefix="icd-bench-") as tmp:
        cache = args.cache or Path(tmp)
        settings = Settings(cache_dir=cache, device="cpu")
        t0 = time.perf_counter()
        linker = icd.load(settings)
        build_s = time.perf_counter() - t0
        print(f"first build (or cached load with --cache): {build_s:.1f} s  {verdict(build_s, 600, False)}")
        print(f"  {linker.data.meta}; hybrid: {linker.hybrid is not None}")
        timed = {"new (default)": linker}
        if args.hybrid:
            from engine.icd.ranker import load_hybrid

            t0 = time.perf_counter()
            ranker = load_hybrid(settings, linker.data, force=True)
            print(f"hybrid ranker + vector index build/load: {time.perf_counter() - t0:.1f} s")
            timed["hybrid"] = icd.IcdLinker(settings, linker.data, hybrid=ranker)
        previous = icd.IcdLinker(
            settings, icd.store.load_or_build(settings.with_overrides(icd_index_path=Path("/nonexistent")))[0]
        )
        loads = [load_in_new_process(str(cache), True) for _ in range(2)]
        best = min(loads)
        print(f"load (new process, cached, default linker): best {best[0]:.2f} s, added RSS {best[1]:.0f} MB  "
              f"{verdict(best[0], 3, False)} {verdict(best[1], 300, False)}")
        stats = latency({**timed, "previous (tabular only)": previous}, mentions(), args.rounds)
        for name, s in stats.items():
            print(f"link {name}: p50 {s['p50']:.2f} ms, p95 {s['p95']:.2f} ms, mean {s['mean']:.2f} ms  "
                  f"{verdict(s['p95'], 10, False)}")
        vectors = compare_vector_libraries(cache) if args.vectors else {}
    print(f"load average: {os.getloadavg()}")
    emit_json(args.json, {"machine": info, "build_s": build_s, "load": loads, "link_ms": stats, "vectors": vectors})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
