"""Per-note latency of ``Pipeline.analyze`` (warm), on CPU, over the MTSamples reports.

Prints the machine, then p50/p95/p99 per note (wall clock around ``analyze``), the stages' own timings
(``timings_ms``), the slowest notes with their length, and the verdict against the target (p95 <= 250 ms on
2 cores).

    .venv/bin/python bench/bench_latency.py --threads 2 --limit 200
"""

from __future__ import annotations

import argparse
import os
import time

from common import (
    default_mtsamples,
    emit_json,
    load_ner_stage,
    load_notes,
    print_header,
    set_threads,
    summary,
    verdict,
)

TARGET_P95_MS = 250.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="MTSamples folder or the shared data folder (default: Settings().data_dir)")
    parser.add_argument("--limit", type=int, default=200, help="notes to time, in name order (default 200; 0 = all)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2, the target's machine)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed notes first (default 5)")
    parser.add_argument("--model-dir", help="model set (default: the committed one)")
    parser.add_argument("--ner-only", action="store_true", help="time the NER stage alone (predict on one note)")
    parser.add_argument(
        "--backbone", help="backbone folder (a machine without the packaged MiniLM); implies --ner-only"
    )
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    threads = set_threads(args.threads)
    info = print_header("analyze latency per note (warm, CPU)", device="cpu")
    from engine.pipeline import ANALYSIS_STAGES, load_pipeline
    from engine.types import AnalysisResult

    notes = load_notes(default_mtsamples(args.data), args.limit or None)
    t0 = time.perf_counter()
    if args.ner_only or args.backbone:
        stage = load_ner_stage(args.model_dir, args.backbone, "cpu")

        class NerOnly:  # the NER stage alone, timed like the full analysis
            def analyze(self, text: str, note_id: str | None = None) -> AnalysisResult:
                t = time.perf_counter()
                spans = stage.predict([text])[0]
                ms = (time.perf_counter() - t) * 1000.0
                return AnalysisResult(note_id, spans, {"ner": stage.version}, {"ner": ms, "total": ms})

        pipeline = NerOnly()
        print("timing the NER stage alone (stage.predict on one note)")
    else:
        pipeline = load_pipeline(model_dir=args.model_dir, device="cpu")
        pipeline.warm(ANALYSIS_STAGES)
    print(f"engine loaded and warmed in {time.perf_counter() - t0:.2f} s")
    for _, text in notes[: args.warmup]:
        pipeline.analyze(text)

    wall: list[float] = []
    cpu: list[float] = []
    stages: dict[str, list[float]] = {}
    per_note: list[tuple[float, str, int, int]] = []
    for note_id, text in notes:
        t, c = time.perf_counter(), time.process_time()
        result = pipeline.analyze(text, note_id)
        ms = (time.perf_counter() - t) * 1000.0
        wall.append(ms)
        cpu.append((time.process_time() - c) * 1000.0)
        for key, value in result.timings_ms.items():
            stages.setdefault(key, []).append(value)
        per_note.append((ms, note_id, len(text), len(result.entities)))

    chars = [n[2] for n in per_note]
    print(
        f"notes: {len(notes)} (chars per note: mean {sum(chars) / len(chars):.0f}, max {max(chars)}), "
        f"torch threads: {threads}"
    )
    s = summary(wall)
    print(
        f"analyze wall ms per note: p50 {s['p50']:.1f}  p95 {s['p95']:.1f}  p99 {s['p99']:.1f}  "
        f"mean {s['mean']:.1f}  max {s['max']:.1f}"
    )
    sc = summary(cpu)
    # CPU ms (all threads) beside wall ms: on a shared machine wall time grows with the others' load.
    print(f"analyze CPU ms per note:  p50 {sc['p50']:.1f}  p95 {sc['p95']:.1f}  mean {sc['mean']:.1f}")
    load = os.getloadavg()
    print(f"load average during the run: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min)")
    for key, values in stages.items():
        ss = summary(values)
        print(f"  timings_ms.{key:<10} p50 {ss['p50']:8.1f}  p95 {ss['p95']:8.1f}  mean {ss['mean']:8.1f}")
    print("slowest notes (ms, chars, entities, id):")
    for ms, note_id, n_chars, n_ents in sorted(per_note, reverse=True)[:5]:
        print(f"  {ms:8.1f}  {n_chars:6d}  {n_ents:4d}  {note_id}")
    per_kchar = [ms / max(n / 1000.0, 0.001) for ms, _, n, _ in per_note]
    print(f"ms per 1000 chars: p50 {summary(per_kchar)['p50']:.1f}")
    print(f"p95 {s['p95']:.1f} ms: {verdict(s['p95'], TARGET_P95_MS, higher_is_better=False)}")
    emit_json(
        args.json,
        {
            "machine": info,
            "notes": len(notes),
            "wall_ms": s,
            "cpu_ms": sc,
            "load_average": load,
            "stages_ms": {k: summary(v) for k, v in stages.items()},
            "target_p95_ms": TARGET_P95_MS,
        },
    )


if __name__ == "__main__":
    main()
