"""Time the ``code`` verb adds to ``analyze`` per note, on CPU, over the MTSamples reports (issue #19).

Each note is run twice, interleaved, in one process: ``analyze`` alone (the baseline), then ``analyze`` followed
by the encounter builder (what ``code`` and ``analyze --encounter`` do). The order alternates note by note so the
machine's load falls on both alike. Printed: the builder's own time per note (wall and CPU), the difference between
the two runs, the baseline beside it, the load average, and the verdict against the target (<= 20 ms added per
note). ``--cold-cache`` forgets the builder's re-linked mentions before every note (the first note of a process).

    .venv/bin/python bench/bench_encounter.py --limit 200 --threads 1
"""

from __future__ import annotations

import os
import time

from common import (
    emit_json,
    notes_parser,
    start_on_notes,
    summary,
    verdict,
)

TARGET_MS = 20.0


def _fmt(name: str, values: list[float]) -> str:
    s = summary(values)
    return f"{name:<34} p50 {s['p50']:7.1f}  p95 {s['p95']:7.1f}  mean {s['mean']:7.1f}  max {s['max']:7.1f}"


def main() -> None:
    parser = notes_parser(__doc__, limit=200, threads=1)
    parser.add_argument("--warmup", type=int, default=5, help="untimed notes first (default 5)")
    parser.add_argument("--setting", default="auto", choices=["auto", "outpatient", "inpatient"])
    parser.add_argument("--cold-cache", action="store_true", help="clear the builder's link cache before each note")
    args = parser.parse_args()

    threads, info, notes = start_on_notes(args, "encounter code set: ms added to analyze per note (CPU)")
    from engine.encounter import build_encounter
    from engine.pipeline import ANALYSIS_STAGES, load_pipeline

    t0 = time.perf_counter()
    pipeline = load_pipeline(device="cpu")
    pipeline.warm(ANALYSIS_STAGES)
    builder = pipeline.stage("encounter")
    print(f"engine loaded and warmed in {time.perf_counter() - t0:.2f} s (encounter stage: Tabular notes loaded)")
    for _, text in notes[: args.warmup]:
        build_encounter(pipeline, pipeline.analyze(text), text, args.setting)

    base, with_code, build_wall, build_cpu = [], [], [], []
    lines, conflicts, entities = [], [], []
    for n, (note_id, text) in enumerate(notes):
        runs = ("base", "code") if n % 2 == 0 else ("code", "base")
        for run in runs:
            if args.cold_cache:
                builder.clear_cache()
            t = time.perf_counter()
            analysis = pipeline.analyze(text, note_id)
            if run == "base":
                base.append((time.perf_counter() - t) * 1000.0)
                continue
            tb, cb = time.perf_counter(), time.process_time()
            enc = build_encounter(pipeline, analysis, text, args.setting)
            build_wall.append((time.perf_counter() - tb) * 1000.0)
            build_cpu.append((time.process_time() - cb) * 1000.0)
            with_code.append((time.perf_counter() - t) * 1000.0)
            lines.append(len(enc.codes))
            conflicts.append(len(enc.conflicts))
            entities.append(sum(e.label == "DIAG" for e in analysis.entities))

    print(f"notes: {len(notes)}, torch threads: {threads}, setting: {args.setting}, "
          f"cache: {'cleared before each note' if args.cold_cache else 'warm (process life)'}")
    print(f"per note: DIAG entities mean {sum(entities) / len(entities):.1f}, code lines mean "
          f"{sum(lines) / len(lines):.1f} (max {max(lines)}), notes with a conflict {sum(c > 0 for c in conflicts)}")
    print(_fmt("analyze alone, wall ms", base))
    print(_fmt("analyze + encounter, wall ms", with_code))
    print(_fmt("encounter builder, wall ms", build_wall))
    print(_fmt("encounter builder, CPU ms", build_cpu))
    diff = [b - a for a, b in zip(base, with_code, strict=True)]
    print(_fmt("difference of the two runs, ms", diff))
    ratio = summary(with_code)["mean"] / summary(base)["mean"]
    print(f"mean analyze+encounter / analyze alone: {ratio:.3f}")
    load = os.getloadavg()
    usable = len(os.sched_getaffinity(0))
    print(f"load average during the run: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")
    for what, values in (("CPU time", build_cpu), ("wall time", build_wall)):
        s = summary(values)
        print(f"builder {what} p95 {s['p95']:.1f} / mean {s['mean']:.1f} ms added per note (target <= "
              f"{TARGET_MS:.0f}): p95 {verdict(s['p95'], TARGET_MS, higher_is_better=False)}")
    if load[0] > usable:
        print(f"note: load {load[0]:.1f} on {usable} usable cores: wall time includes waiting for a core; the CPU "
              "time is what the builder itself costs")
    emit_json(args.json, {"machine": info, "notes": len(notes), "setting": args.setting,
                          "cold_cache": args.cold_cache, "analyze_ms": summary(base),
                          "analyze_encounter_ms": summary(with_code), "builder_wall_ms": summary(build_wall),
                          "builder_cpu_ms": summary(build_cpu), "difference_ms": summary(diff),
                          "load_average": load, "target_ms": TARGET_MS})


if __name__ == "__main__":
    main()
