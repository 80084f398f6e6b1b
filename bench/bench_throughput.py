"""Batch NER throughput of the engine against the ``transformers`` token-classification pipeline, same run.

Both run the SAME weights (the engine's NER stage ``hf_model``, plain PyTorch, and its ``transformers`` twin from
``engine.encoder.to_transformers``, with the backbone's ``transformers`` tokenizer) on the SAME notes with the
same threads, and both cover each whole note (the transformers pipeline with ``stride`` = the engine's window
overlap, so long notes are windowed on both sides). Figures: notes/s and tokens/s (word pieces of the notes,
special tokens not counted) of each, and their ratio. The full ``Pipeline.analyze_many`` (NER + sections +
assertion + ICD) is timed too, for the batch job's own rate.

    .venv/bin/python bench/bench_throughput.py --threads 2 --limit 100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import default_mtsamples, emit_json, load_ner_stage, load_notes, print_header, set_threads, verdict

TARGET_RATIO = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="MTSamples folder or the shared data folder (default: Settings().data_dir)")
    parser.add_argument("--limit", type=int, default=100, help="notes, in name order (default 100; 0 = all)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size for both (default 32)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model-dir", help="model set (default: the committed one)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating rounds of both (default 1)")
    parser.add_argument("--backbone", help="backbone folder (a machine without the packaged MiniLM); NER only")
    parser.add_argument("--skip-analyze", action="store_true", help="do not time the full analyze_many")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    threads = set_threads(args.threads)
    info = print_header("batch NER throughput: engine vs transformers pipeline", device=args.device)
    import torch
    import transformers

    from engine.pipeline import ANALYSIS_STAGES, load_pipeline

    notes = load_notes(default_mtsamples(args.data), args.limit or None)
    texts = [text for _, text in notes]
    if args.backbone:
        # NER alone on an explicit backbone: the rest of the engine may not be installable there.
        stage = load_ner_stage(args.model_dir, args.backbone, args.device, args.batch_size)
        args.skip_analyze = True
    else:
        pipeline = load_pipeline(model_dir=args.model_dir, device=args.device, batch_size=args.batch_size)
        stage = pipeline.stage("ner")
    tokens = sum(len(stage.encode(t)) for t in texts)
    print(
        f"notes: {len(texts)}, word pieces: {tokens} ({tokens / len(texts):.0f} per note), "
        f"torch threads: {threads}, batch size: {args.batch_size}"
    )
    print(f"engine windows: {stage.window_tokens} tokens, overlap {stage.window_overlap}")

    from engine.backbone import load_tokenizer
    from engine.encoder import to_transformers

    # The engine runs a plain-PyTorch BERT (engine.encoder); the pipeline gets its transformers twin, same weights.
    hf = transformers.pipeline(
        "token-classification",
        model=to_transformers(stage.hf_model),
        tokenizer=load_tokenizer(Path(stage.tokenizer.name_or_path), use_transformers=True),
        aggregation_strategy="simple",
        stride=stage.window_overlap,
        device=torch.device(args.device),
    )
    # Warm both (first calls allocate and pick kernels), on notes outside the timed set where possible.
    stage.predict(texts[:2])
    hf(texts[:2], batch_size=args.batch_size)

    # Alternate the two over --repeats rounds so a change in machine load hits both alike; CPU seconds (all
    # threads of this process) are printed beside wall seconds because a shared machine inflates wall time.
    engine_s = hf_s = engine_cpu = hf_cpu = 0.0
    for _ in range(max(1, args.repeats)):
        t, c = time.perf_counter(), time.process_time()
        engine_spans = stage.predict(texts)
        engine_s, engine_cpu = engine_s + time.perf_counter() - t, engine_cpu + time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        hf_out = hf(texts, batch_size=args.batch_size)
        hf_s, hf_cpu = hf_s + time.perf_counter() - t, hf_cpu + time.process_time() - c
    rounds = max(1, args.repeats)
    engine_s, hf_s, engine_cpu, hf_cpu = (x / rounds for x in (engine_s, hf_s, engine_cpu, hf_cpu))

    engine_ents = sum(len(s) for s in engine_spans)
    hf_ents = sum(len(s) for s in hf_out)
    rows = [
        ("engine NER (stage.predict)", engine_s, engine_cpu, engine_ents),
        ("transformers pipeline", hf_s, hf_cpu, hf_ents),
    ]
    for name, secs, cpu, ents in rows:
        print(
            f"{name:<28} {secs:8.2f} s  {len(texts) / secs:8.2f} notes/s  {tokens / secs:10.0f} tokens/s  "
            f"(CPU {cpu:7.2f} s)  {ents} entities"
        )
    ratio = hf_s / engine_s
    print(
        f"ratio engine / transformers pipeline (throughput, wall): {ratio:.2f}x: "
        f"{verdict(ratio, TARGET_RATIO, higher_is_better=True)}"
    )
    print(f"ratio by CPU seconds: {hf_cpu / engine_cpu:.2f}x")

    payload = {
        "machine": info,
        "notes": len(texts),
        "tokens": tokens,
        "batch_size": args.batch_size,
        "repeats": rounds,
        "engine_ner": {
            "seconds": engine_s,
            "cpu_seconds": engine_cpu,
            "notes_per_s": len(texts) / engine_s,
            "tokens_per_s": tokens / engine_s,
        },
        "hf_pipeline": {
            "seconds": hf_s,
            "cpu_seconds": hf_cpu,
            "notes_per_s": len(texts) / hf_s,
            "tokens_per_s": tokens / hf_s,
        },
        "ratio": ratio,
        "ratio_cpu": hf_cpu / engine_cpu,
    }
    if not args.skip_analyze:
        pipeline.warm(ANALYSIS_STAGES)
        t = time.perf_counter()
        for i in range(0, len(notes), args.batch_size):
            pipeline.analyze_many(notes[i : i + args.batch_size])
        full_s = time.perf_counter() - t
        print(
            f"{'engine analyze_many (all)':<28} {full_s:8.2f} s  {len(texts) / full_s:8.2f} notes/s  "
            f"{tokens / full_s:10.0f} tokens/s"
        )
        payload["engine_analyze"] = {"seconds": full_s, "notes_per_s": len(texts) / full_s}
    emit_json(args.json, payload)


if __name__ == "__main__":
    main()
