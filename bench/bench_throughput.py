"""Batch NER throughput: the default (``fast``) model, the ``accurate`` model and the ``transformers``
token-classification pipeline on the accurate model's weights, side by side in one run.

The transformers pipeline runs the SAME weights as the accurate engine stage (its ``transformers`` twin from
``engine.encoder.to_transformers``, with the backbone's ``transformers`` tokenizer) on the SAME notes with the
same threads, and covers each whole note (``stride`` = the engine's window overlap). The three alternate over
``--repeats`` rounds so a change in the shared machine's load hits all alike. Figures: notes/s and tokens/s (word
pieces of the notes, special tokens not counted) of each, CPU seconds, and each engine model's ratio to the
transformers pipeline (target of issue #21: the default >= 4x). The full ``Pipeline.analyze_many`` (NER +
sections + assertion + ICD) of the default model is timed too, for the batch job's own rate.

    .venv/bin/python bench/bench_throughput.py --threads 2 --limit 100
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench_latency import transformers_ner
from common import (
    emit_json,
    notes_parser,
    start_on_notes,
    verdict,
)

TARGET_RATIO = 4.0


def main() -> None:
    parser = notes_parser(__doc__, limit=100, threads=2)
    parser.add_argument("--batch-size", type=int, default=32, help="batch size for all (default 32)")
    parser.add_argument("--model-dir", help="model set (default: the committed one)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating rounds of the three (default 1)")
    parser.add_argument("--skip-analyze", action="store_true", help="do not time the full analyze_many")
    args = parser.parse_args()

    threads, info, notes = start_on_notes(args, "batch NER throughput: fast vs accurate vs transformers pipeline")
    from engine.pipeline import ANALYSIS_STAGES, load_pipeline

    texts = [text for _, text in notes]
    pipelines = {name: load_pipeline(model_dir=args.model_dir, device="cpu", batch_size=args.batch_size,
                                     ner_model=name) for name in ("fast", "accurate")}
    stages = {name: p.stage("ner") for name, p in pipelines.items()}
    hf = transformers_ner(stages["accurate"])
    tokens = sum(len(stages["accurate"].encode(t)) for t in texts)
    print(f"notes: {len(texts)}, word pieces: {tokens} ({tokens / len(texts):.0f} per note), "
          f"torch threads: {threads}, batch size: {args.batch_size}")
    runners: dict[str, Any] = {
        f"engine {name}": stage.predict for name, stage in stages.items()
    }
    runners["transformers(accurate)"] = lambda batch: hf(batch, batch_size=args.batch_size)
    for name, stage in stages.items():
        print(f"engine {name}: {stage.version}, {len(stage.hf_model.base_model.encoder.layer)} layers, windows "
              f"{stage.window_tokens}/{stage.window_overlap}, {'int8' if stage.quantized else 'fp32'}")
    for run in runners.values():  # warm: first calls allocate and pick kernels
        run(texts[:2])
    wall = dict.fromkeys(runners, 0.0)
    cpu = dict.fromkeys(runners, 0.0)
    ents = dict.fromkeys(runners, 0)
    rounds = max(1, args.repeats)
    names = list(runners)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t, c = time.perf_counter(), time.process_time()
            out = runners[name](texts)
            wall[name] += (time.perf_counter() - t) / rounds
            cpu[name] += (time.process_time() - c) / rounds
            ents[name] = sum(len(s) for s in out)
    load = os.getloadavg()
    print(f"load average after the run: {load[0]:.2f} / {load[1]:.2f} (1/5 min)")
    hf_s, hf_cpu = wall["transformers(accurate)"], cpu["transformers(accurate)"]
    payload: dict[str, Any] = {"machine": info, "notes": len(texts), "tokens": tokens, "batch_size": args.batch_size,
                               "repeats": rounds, "load_average": load, "runs": {}}
    for name in names:
        ratio, ratio_cpu = hf_s / wall[name], hf_cpu / cpu[name]
        print(f"{name:<23} {wall[name]:8.2f} s  {len(texts) / wall[name]:7.2f} notes/s  "
              f"{tokens / wall[name]:8.0f} tokens/s  (CPU {cpu[name]:7.2f} s)  {ents[name]:6d} entities  "
              f"x{ratio:.2f} the transformers pipeline (CPU x{ratio_cpu:.2f})")
        payload["runs"][name] = {"seconds": wall[name], "cpu_seconds": cpu[name],
                                 "notes_per_s": len(texts) / wall[name], "tokens_per_s": tokens / wall[name],
                                 "ratio_vs_transformers": ratio, "ratio_cpu_vs_transformers": ratio_cpu}
    ratio = hf_s / wall["engine fast"]
    print(f"default (fast) / transformers pipeline (throughput, wall): {ratio:.2f}x: "
          f"{verdict(ratio, TARGET_RATIO, higher_is_better=True)}")
    payload["ratio"] = ratio
    if not args.skip_analyze:
        pipeline = pipelines["fast"]
        pipeline.warm(ANALYSIS_STAGES)
        t = time.perf_counter()
        for i in range(0, len(notes), args.batch_size):
            pipeline.analyze_many(notes[i : i + args.batch_size])
        full_s = time.perf_counter() - t
        print(f"{'engine fast analyze_many':<23} {full_s:8.2f} s  {len(texts) / full_s:7.2f} notes/s")
        payload["engine_analyze"] = {"seconds": full_s, "notes_per_s": len(texts) / full_s}
    emit_json(args.json, payload)


if __name__ == "__main__":
    main()
