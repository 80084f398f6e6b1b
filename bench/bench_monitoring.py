"""Monitoring costs: per-note overhead of the statistics, and the report over 100,000 stored analyses on SQLite.

Run from the repository root::

    .venv/bin/python bench/bench_monitoring.py [--rows 100000] [--notes 20]

1. Per note: ``token_summary`` (NER probabilities -> entropy, O share), ``profile_analysis``, and the app's store
   transaction (note + analysis, committed to a real SQLite file) with and without ``db.stats.record_analysis``,
   interleaved on the same real analyses of MTSamples notes (fixture text when the shared data is absent), beside
   the analysis itself. Monitoring's cost = summary + profile + (with - without). Target: <= 5 ms per note.
2. Report: ``ROWS`` synthetic statistics rows (resampled from the committed reference profile's notes, with
   Poisson noise) are bulk-inserted into a temporary SQLite file; then ``python -m engine monitor``'s report
   (``db.monitor.build``) is timed with the default 10,000-note window, and with a 40-point time series over
   all rows, beside just loading the window's rows (the baseline). Target: <= 5 s.
3. ``--kl-bias``: the plain plug-in KL (the baseline) beside the excess KL, on same-distribution splits and
   one-specialty windows of MTSamples, at window sizes 40, 100 and 400.
   ``--time-build URL --points N --tree OLD --tree .``: only ``db.monitor.build``'s report + series on an existing
   store, one process per source tree (e.g. an old commit's ``git archive`` beside this one): wall, CPU, peak RSS.
4. ``--drift [--analyse]``: MTSamples specialty switches and same-distribution splits replayed through the
   monitor (window 40), on the text statistic, or with ``--analyse`` on the engine's output too (analyses cached
   without text under the cache dir; about 15 minutes the first time on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))




def _notes(count: int) -> list[str]:
    from engine.settings import Settings

    folder = Settings().data_dir / "mtsamples"
    if folder.is_dir():
        return [p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob("*.txt"))[:count]]
    print(f"(no MTSamples at {folder}: one repeated fixture sentence instead; set CLINICAL_DATA_DIR)")
    return ["Patient with chest pain and hypertension, on lisinopril. ECG normal. " * 20] * count


def _clock() -> tuple[float, float]:
    """(wall, this process's CPU) seconds: CPU time is what the work costs when other processes share the cores."""
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clock()
    return (wall - start[0]) * 1000, (cpu - start[1]) * 1000


def per_note(count: int, reps: int = 3) -> None:
    """Per-note costs of the monitoring statistics beside the analysis, and the app's store transaction with and
    without the statistics row, interleaved on the same notes in the same run (the with-vs-without figure). Each
    figure is given as wall time and as this process's CPU time (robust when other jobs load the machine)."""
    import torch

    from db.session import init_db
    from engine import load_pipeline
    from engine.monitoring.profile import profile_analysis, token_summary

    torch.set_num_threads(1)
    texts = _notes(count)
    pipeline = load_pipeline(device="cpu")
    pipeline.warm(("sections", "ner", "history", "assertion", "icd"), freeze=False)
    ner = pipeline.stage("ner")
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in (
        "analysis (once per note)", "token_summary", "profile_analysis", "store WITHOUT stats (baseline)",
        "store WITH stats", "  record_analysis inside it")}
    with tempfile.TemporaryDirectory() as tmp:
        engine = init_db(f"sqlite:///{tmp}/bench.sqlite")
        for text in texts:
            t0 = _clock()
            result = pipeline.analyze(text)
            rows["analysis (once per note)"].append(_since(t0))
            probs = ner.predict_with_probs([text])[1][0]
            as_dict = result.to_dict()
            for rep in range(reps):
                t0 = _clock()
                token_summary(probs)
                rows["token_summary"].append(_since(t0))
                t0 = _clock()
                stats = profile_analysis(text, result)
                rows["profile_analysis"].append(_since(t0))
                for with_stats in ((True, False) if rep % 2 else (False, True)):  # alternate which goes first
                    whole, inside = _store(engine, f"{text}\n{rep}{with_stats}", as_dict, stats if with_stats else None)
                    rows["store WITH stats" if with_stats else "store WITHOUT stats (baseline)"].append(whole)
                    if with_stats:
                        rows["  record_analysis inside it"].append(inside)
    pairs = zip(rows["store WITH stats"], rows["store WITHOUT stats (baseline)"], strict=True)
    rows["  with - without (paired)"] = [(w[0] - b[0], w[1] - b[1]) for w, b in pairs]
    rows["monitoring total (summary + profile + with-without)"] = [
        (a[0] + b[0] + c[0], a[1] + b[1] + c[1]) for a, b, c in zip(
            rows["token_summary"], rows["profile_analysis"], rows["  with - without (paired)"], strict=True)]
    chars = statistics.mean(len(t) for t in texts)
    print(f"per note, {len(texts)} notes x {reps} (mean {chars:,.0f} chars), load average {os.getloadavg()[0]:.2f}, "
          "milliseconds:")
    print(f"  {'':52} {'wall mean':>10} {'median':>8} {'CPU mean':>10} {'median':>8}")
    for name, values in rows.items():
        wall, cpu = [v[0] for v in values], [v[1] for v in values]
        print(f"  {name:52} {statistics.mean(wall):10.2f} {statistics.median(wall):8.2f} "
              f"{statistics.mean(cpu):10.2f} {statistics.median(cpu):8.2f}")
    total = rows["monitoring total (summary + profile + with-without)"]
    analysis = rows["analysis (once per note)"]
    share = statistics.mean(v[1] for v in total) / statistics.mean(v[1] for v in analysis)
    print(f"  monitoring / analysis (CPU means): {share:.2%}")


def _store(engine, text: str, result: dict, stats: dict | None) -> tuple[tuple[float, float], tuple[float, float]]:
    """(wall, CPU) milliseconds of the app's store transaction (note + analysis [+ statistics], committed), and of
    the ``record_analysis`` call inside it (zeros without ``stats``)."""
    from db import repository
    from db.session import session_scope
    from db.stats import record_analysis

    inside = (0.0, 0.0)
    t0 = _clock()
    with session_scope(engine) as session:
        analysis = repository.save_analysis(session, repository.save_note(session, text), result)
        if stats is not None:
            t1 = _clock()
            record_analysis(session, stats, source="app", analysis_id=analysis.id)
            inside = _since(t1)
    return _since(t0), inside


def _synthetic(rows: int, seed: int = 0):
    import json

    from engine.monitoring.reference import PROFILE_FILE, read_reference
    from engine.settings import Settings

    notes = json.loads((Settings().model_dir / "ner" / PROFILE_FILE).read_text())["notes"]
    read_reference(Settings().model_dir / "ner" / PROFILE_FILE)  # the format is valid
    rng = np.random.default_rng(seed)
    for i in range(rows):
        base = notes[int(rng.integers(len(notes)))]
        counts = {k: int(rng.poisson(max(v, 0.1))) for k, v in base["label_counts"].items()}
        n = sum(counts.values())
        vocab = [[b, int(c)] for b, c in base["vocab"] if rng.random() > 0.1]
        yield {**base, "label_counts": counts, "n_entities": n, "n_scored": n,
               "score_sum": round(n * float(rng.uniform(0.6, 0.9)), 3), "vocab": vocab,
               "models": {"ner": "bench"}}, f"synthetic-{i}"


def _load_before(session, last: int | None):
    """The loader before this change (the baseline): ORM rows, one ``unpack_vocab`` per row, per-column lists."""
    from sqlalchemy import select

    from db.models import AnalysisStats
    from db.stats import _LABEL_COLUMNS
    from engine.monitoring.profile import unpack_vocab
    from engine.monitoring.table import NUMERIC_COLUMNS, from_columns

    names = [*_LABEL_COLUMNS.values(), *NUMERIC_COLUMNS[len(_LABEL_COLUMNS):]]
    stmt = select(*(getattr(AnalysisStats, n) for n in names), AnalysisStats.created_at, AnalysisStats.vocab)
    stmt = stmt.order_by(AnalysisStats.id.desc())
    rows = session.execute(stmt if last is None else stmt.limit(last)).all()[::-1]
    data = {name: [r[i] for r in rows] for i, name in enumerate(NUMERIC_COLUMNS)}
    vocab = [unpack_vocab(r[-1]) for r in rows]
    stamps = [r[-2].timestamp() for r in rows]
    return from_columns(data, [b for b, _ in vocab], [c for _, c in vocab], stamps)


def _series_before(table, reference, settings, points: int) -> list[dict]:
    """The series before this change (the baseline): each window cut out by scipy (a copy) and summed alone."""
    from engine.monitoring.report import window_statistics

    n, window = len(table), settings.window
    ends = np.unique(np.linspace(window // 10, n, num=points).round().astype(int))
    out = []
    for end in ends:
        rows = table.rows(np.arange(max(0, end - window), end))  # an index array: scipy's copying path
        out.append({k: v["value"] for k, v in window_statistics(rows, reference, settings).items()})
    return out


def _timed(fn):
    """``(result, wall s, CPU s)`` of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def report(rows: int, points: int = 40, runs: int = 2) -> None:
    """Report and time-series time over ``rows`` stored analyses: the old path (baseline) beside the new one."""
    import subprocess

    from db.monitor import build, reference_path
    from db.session import dispose_engines, init_db, session_scope
    from db.stats import record_many
    from engine.monitoring.reference import read_reference
    from engine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite"
        t0 = time.perf_counter()
        with session_scope(init_db(url)) as session:
            stored = record_many(session, _synthetic(rows), source="batch")
        insert_s = time.perf_counter() - t0
        size_mb = Path(f"{tmp}/bench.sqlite").stat().st_size / 1e6
        print(f"report over {stored:,} stored analyses ({size_mb:.0f} MB SQLite, inserted in {insert_s:.1f} s), "
              f"load average at start {os.getloadavg()[0]:.2f}; seconds as wall / CPU of this process:")
        reference = read_reference(reference_path()[0])[1]
        settings = Settings().monitor
        for attempt in range(runs):
            dispose_engines()
            with session_scope(init_db(url), write=False) as session:
                table, old_load_w, old_load_c = _timed(lambda session=session: _load_before(session, None))
            old, old_w, old_c = _timed(lambda table=table: _series_before(table, reference, settings, points))
            del table
            dispose_engines()
            plain, rep_w, rep_c = _timed(lambda: build(url))
            new, new_w, new_c = _timed(lambda: build(url, series_points=points))
            same = all(abs((a[k] or 0) - (b[k] or 0)) <= 1e-4 * max(1.0, abs(a[k] or 0))
                       for a, b in zip(old, new["series"], strict=True) for k in ("input_drift", "mean_confidence"))
            print(f"  run {attempt + 1}: report, window 10,000: {rep_w:.2f} / {rep_c:.2f} s")
            print(f"         {points}-point series over all rows, BEFORE (baseline): load {old_load_w:.2f} / "
                  f"{old_load_c:.2f} s + series {old_w:.2f} / {old_c:.2f} s = {old_load_w + old_w:.2f} s wall")
            print(f"         {points}-point series over all rows, NOW (report + series, db.monitor.build): "
                  f"{new_w:.2f} / {new_c:.2f} s (loading {new['seconds_loading']:.2f} s); same values: {same}")
        cli = [sys.executable, "-m", "engine", "monitor", "--db", url, "--out", f"{tmp}/r.json"]
        for extra in ([], ["--series", str(points)]):
            _, cli_s, _ = _timed(lambda extra=extra: subprocess.run(cli + extra, check=True, cwd=REPO))
            print(f"  `python -m engine monitor --db URL {' '.join(extra)}` (whole process, imports included): "
                  f"{cli_s:.2f} s wall")
        print(f"  alerts: {plain['alerts']}; series points: {len(new['series'])}; "
              f"load average at end {os.getloadavg()[0]:.2f}")
        dispose_engines()


_BUILD_TIMER = """
import resource, sys, time
sys.path.insert(0, ".")
from db.monitor import build
import engine.monitoring.report  # imported before the clock starts
url, points = sys.argv[1], int(sys.argv[2])
for run in range(2):
    w, c = time.perf_counter(), time.process_time()
    r = build(url, series_points=points)
    print(f"  run {run + 1}: report + {points}-point series over {r['n_analyses']:,} rows: wall "
          f"{time.perf_counter() - w:.2f} s, CPU {time.process_time() - c:.2f} s "
          f"(loading {r['seconds_loading']:.2f} s)")
print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
"""


def time_build(url: str, points: int, trees: list[Path]) -> None:
    """``db.monitor.build(url, series_points=points)`` of each source tree (this one, and e.g. an old commit's
    ``git archive`` beside it), one process each on the same database: wall, CPU and peak memory."""
    import subprocess

    print(f"load average at start {os.getloadavg()[0]:.2f}")
    for tree in trees:
        print(f"=== {tree}, {points} points")
        subprocess.run([sys.executable, "-c", _BUILD_TIMER, url, str(points)], cwd=tree, check=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


def mtsamples_profiles(analyse: bool) -> tuple[list[dict], list[str]]:
    """Profiles of every MTSamples report (specialty header lines removed) and their specialties.

    With ``analyse`` the real engine analyses each report (cached, without text, under the cache dir per NER
    version); otherwise the profiles hold only the text statistics.
    """
    import json
    import re

    from engine import load_pipeline
    from engine.monitoring.profile import profile_analysis
    from engine.settings import Settings

    settings = Settings()
    header = re.compile(r"^(Medical Specialty|Sample Name|Keywords|Description):.*$", re.MULTILINE)
    paths = sorted((settings.data_dir / "mtsamples").glob("*.txt"))
    raw = [p.read_text(encoding="utf-8", errors="replace") for p in paths]
    specialties = [t.splitlines()[0].split(":", 1)[-1].strip() for t in raw]
    texts = [header.sub("", t) for t in raw]
    if not analyse:
        return [profile_analysis(t, {"entities": []}) for t in texts], specialties
    pipeline = load_pipeline(device="cpu")
    cache = settings.cache_dir / "monitoring" / f"mtsamples-{pipeline.models['ner']}.jsonl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in cache.read_text().splitlines()] if cache.is_file() else []
    with cache.open("a", encoding="utf-8") as handle:
        for i in range(len(done), len(texts), 8):
            for text, result in zip(texts[i : i + 8], pipeline.analyze_many([(None, t) for t in texts[i : i + 8]]),
                                    strict=True):
                done.append(profile_analysis(text, result))
                handle.write(json.dumps(done[-1]) + "\n")
            print(f"\ranalysed {len(done)}/{len(texts)}", end="", file=sys.stderr, flush=True)
    return done[: len(texts)], specialties


def drift(analyse: bool, window: int = 40, splits: int = 20) -> None:
    """Specialty switches and same-distribution splits of MTSamples, replayed as the tests do."""
    from engine.monitoring.report import stream_alerts
    from engine.monitoring.table import concat, from_profiles
    from engine.settings import MonitorSettings

    profiles, specialties = mtsamples_profiles(analyse)
    table, spec = from_profiles(profiles), np.array(specialties)
    names = ("input_drift", "prediction_drift") if analyse else ("input_drift",)
    settings = MonitorSettings(window=window)
    print(f"MTSamples drift, window {window}, a report every {window // 4} notes, statistics {names}:")
    rng = np.random.default_rng(3)
    for name in [s for s, _ in sorted(__import__("collections").Counter(specialties).items(), key=lambda kv: -kv[1])
                 if (spec == s).sum() >= window]:
        others = rng.permutation(np.flatnonzero(spec != name))
        stream = concat([table.rows(others[400 : 400 + 2 * window]), table.rows(np.flatnonzero(spec == name))])
        reports = stream_alerts(stream, table.rows(others[:400]), settings, window, window // 4, names)
        before = [r for r in reports if r[0] <= 2 * window and r[1]]
        first = next((r for r in reports if r[0] > 2 * window and r[1]), None)
        last = reports[-1][2]
        print(f"  {name:28} n={int((spec == name).sum()):3}  alerts before the switch: {len(before)}  first alert "
              f"{'-' if first is None else f'+{first[0] - 2 * window} notes {first[1]}'}  last window: "
              + ", ".join(f"{k} {v:.3g}" for k, v in last.items()))
    rng = np.random.default_rng(7)
    streams = reports_alerting = reports_total = 0
    per_stat = __import__("collections").Counter()
    for _ in range(splits):
        order = rng.permutation(len(table))
        reports = stream_alerts(table.rows(order[400:800]), table.rows(order[:400]), settings, window, window // 4,
                                names)
        streams += any(r[1] for r in reports)
        reports_alerting += sum(bool(r[1]) for r in reports)
        reports_total += len(reports)
        per_stat.update(a for r in reports for a in r[1])
    print(f"  same-distribution splits: {streams}/{splits} streams alerting, {reports_alerting}/{reports_total} "
          f"reports ({dict(per_stat)})")


def kl_bias(sizes: tuple[int, ...] = (40, 100, 400), splits: int = 20) -> None:
    """The plain plug-in KL (the baseline) beside the permutation-corrected excess KL on same-distribution splits
    of MTSamples (no drift: every alert is false) and on one-specialty windows against the other specialties
    (drift; a specialty smaller than the window gives all its reports), threshold 0.15."""
    from engine.monitoring.drift import input_drift
    from engine.monitoring.table import from_profiles

    profiles, specialties = mtsamples_profiles(False)
    table, spec = from_profiles(profiles), np.array(specialties)
    rng = np.random.default_rng(11)
    print(f"KL of hashed unigrams, MTSamples ({len(table)} reports), {splits} random draws per size, threshold 0.15:")
    for size in sizes:
        same, switch = [], []
        for _ in range(splits):
            order = rng.permutation(len(table))
            same.append(input_drift(table.rows(order[size : 2 * size]).vocab, table.rows(order[:size]).vocab))
            # a specialty of 40 or more reports; all of them when it has fewer than ``size``
            name = rng.choice(sorted(s for s in set(specialties) if (spec == s).sum() >= 40))
            mine = rng.permutation(np.flatnonzero(spec == name))[:size]
            rest = rng.permutation(np.flatnonzero(spec != name))[:size]
            switch.append(input_drift(table.rows(mine).vocab, table.rows(rest).vocab))
        for label, runs in (("same distribution", same), ("one specialty vs the rest", switch)):
            raw = np.array([r["kl"] for r in runs])
            excess = np.array([r["value"] for r in runs])
            print(f"  {size:4} vs {size:4} notes, {label:26} plain KL mean {raw.mean():.3f} (> 0.15: "
                  f"{(raw > 0.15).mean():.0%})  excess KL mean {excess.mean():.3f} "
                  f"(> 0.15: {(excess > 0.15).mean():.0%})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--notes", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3, help="store transactions per note, with and without stats")
    parser.add_argument("--per-note-only", action="store_true", help="skip the 100,000-row report timing")
    parser.add_argument("--report-only", action="store_true", help="only the 100,000-row report timing")
    parser.add_argument("--points", type=int, default=40, help="points of the timed series (the page's default: 30)")
    parser.add_argument("--drift", action="store_true", help="only the MTSamples drift replay (text statistics)")
    parser.add_argument("--analyse", action="store_true", help="with --drift: analyse MTSamples with the engine")
    parser.add_argument("--kl-bias", action="store_true", help="only plain vs excess KL on MTSamples splits")
    parser.add_argument("--make-db", metavar="URL", help="only store ROWS synthetic statistics rows at URL")
    parser.add_argument("--time-build", metavar="URL", help="only time db.monitor.build's series on this store")
    parser.add_argument("--tree", type=Path, action="append", help="with --time-build: source trees to time "
                        "(repeatable; default this one), e.g. an old commit's `git archive`")
    args = parser.parse_args()
    if args.make_db:
        from db.session import init_db, session_scope
        from db.stats import record_many

        with session_scope(init_db(args.make_db)) as session:
            print(f"stored {record_many(session, _synthetic(args.rows), source='batch'):,} rows in {args.make_db}")
        return 0
    if args.time_build:
        time_build(args.time_build, args.points, args.tree or [REPO])
        return 0
    if args.kl_bias:
        kl_bias()
        return 0
    if args.drift:
        drift(args.analyse)
        return 0
    if not args.report_only:
        per_note(args.notes, args.reps)
    if not args.per_note_only:
        report(args.rows, args.points)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
