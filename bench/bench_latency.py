"""Per-note latency of ``Pipeline.analyze`` (warm, CPU) over the MTSamples reports: the default (``fast``) NER
model, the ``accurate`` one and the ``transformers`` token-classification pipeline on the accurate model's
weights, side by side in one run.

Every note goes through the three in turn, the order rotating from note to note, so a change in the shared
machine's load hits all of them alike. Prints, per variant, p50/p95/p99 wall ms per note, CPU ms, the NER
stage's own ms (``timings_ms.ner``), the ratios to the accurate model, the load average, and the verdict against
the targets of issue #21 (p95 <= 300 ms, p50 <= 120 ms, 2 cores). The transformers row is the NER step alone
(the pipeline call on the note; it has no sections, assertion or ICD): compare it with the ``ner ms`` columns.

    .venv/bin/python bench/bench_latency.py --threads 2 --limit 100
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    emit_json,
    notes_parser,
    start_on_notes,
    summary,
    verdict,
)

TARGET_P95_MS = 300.0
TARGET_P50_MS = 120.0


def transformers_ner(stage: Any) -> Callable[[str], Any]:
    """The ``transformers`` token-classification pipeline on ``stage``'s weights, covering whole notes."""
    import torch
    import transformers

    from engine.backbone import load_tokenizer
    from engine.encoder import to_transformers

    return transformers.pipeline(
        "token-classification",
        model=to_transformers(stage.hf_model),
        tokenizer=load_tokenizer(Path(stage.tokenizer.name_or_path), use_transformers=True),
        aggregation_strategy="simple",
        stride=stage.window_overlap,
        device=torch.device("cpu"),
    )


def build_variants(model_dir: str | None, with_hf: bool) -> list[tuple[str, Callable[[str], dict[str, float]]]]:
    """``(name, run one note -> {"ner": ms, "total": ms})`` of each variant, loaded and warmed."""
    from engine.pipeline import ANALYSIS_STAGES, load_pipeline

    variants: list[tuple[str, Callable[[str], dict[str, float]]]] = []
    accurate_stage = None
    for name in ("fast", "accurate"):
        pipeline = load_pipeline(model_dir=model_dir, device="cpu", ner_model=name)
        pipeline.warm(ANALYSIS_STAGES)
        stage = pipeline.stage("ner")
        print(f"{name:<9} NER {stage.version}: {len(stage.hf_model.base_model.encoder.layer)} layers, windows "
              f"{stage.window_tokens}/{stage.window_overlap}, {'int8' if stage.quantized else 'fp32'}")
        accurate_stage = stage if name == "accurate" else accurate_stage

        def run(text: str, pipeline: Any = pipeline) -> dict[str, float]:
            timings = pipeline.analyze(text).timings_ms
            return {"ner": float(timings.get("ner", 0.0)), "total": float(timings.get("total", 0.0))}

        variants.append((name, run))
    if with_hf and accurate_stage is not None:
        hf = transformers_ner(accurate_stage)

        def run_hf(text: str) -> dict[str, float]:
            t = time.perf_counter()
            hf(text)
            ms = (time.perf_counter() - t) * 1000.0
            return {"ner": ms, "total": ms}

        variants.append(("transformers(accurate)", run_hf))
    return variants


def time_variants(variants: list[tuple[str, Callable[[str], dict[str, float]]]], notes: list[tuple[str, str]],
                  warmup: int) -> dict[str, dict[str, list[float]]]:
    """Wall, CPU and NER ms per note of each variant, the order rotating from note to note."""
    for _, run in variants:
        for _, text in notes[:warmup]:
            run(text)
    out: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": [], "ner": []} for name, _ in variants}
    for i, (_, text) in enumerate(notes):
        for name, run in variants[i % len(variants):] + variants[: i % len(variants)]:
            t, c = time.perf_counter(), time.process_time()
            timings = run(text)
            out[name]["wall"].append((time.perf_counter() - t) * 1000.0)
            out[name]["cpu"].append((time.process_time() - c) * 1000.0)
            out[name]["ner"].append(timings["ner"])
    return out


def main() -> None:
    parser = notes_parser(__doc__, limit=100, threads=2)  # 2 threads: the target's machine
    parser.add_argument("--warmup", type=int, default=3, help="untimed notes first (default 3)")
    parser.add_argument("--model-dir", help="model set (default: the committed one)")
    parser.add_argument("--no-transformers", action="store_true", help="skip the transformers pipeline row")
    args = parser.parse_args()

    title = "analyze latency per note (warm, CPU): fast vs accurate vs transformers"
    threads, info, notes = start_on_notes(args, title)
    t0 = time.perf_counter()
    variants = build_variants(args.model_dir, not args.no_transformers)
    print(f"loaded and warmed in {time.perf_counter() - t0:.1f} s")
    times = time_variants(variants, notes, args.warmup)
    load = os.getloadavg()
    chars = [len(t) for _, t in notes]
    print(f"notes: {len(notes)} (chars per note: mean {sum(chars) / len(chars):.0f}, max {max(chars)}), "
          f"torch threads: {threads}, load average {load[0]:.2f} / {load[1]:.2f} (1/5 min)")
    base = {k: summary(v) for k, v in times["accurate"].items()}
    rows: dict[str, Any] = {}
    for name, _ in variants:
        s = {k: summary(v) for k, v in times[name].items()}
        rows[name] = s
        print(f"{name:<23} wall p50 {s['wall']['p50']:7.1f}  p95 {s['wall']['p95']:7.1f}  p99 {s['wall']['p99']:7.1f}"
              f"  mean {s['wall']['mean']:7.1f} ms | CPU p50 {s['cpu']['p50']:7.1f} | ner p50 {s['ner']['p50']:7.1f}"
              f"  p95 {s['ner']['p95']:7.1f} ms | x{base['wall']['p50'] / s['wall']['p50']:.2f} faster p50, "
              f"x{base['wall']['p95'] / s['wall']['p95']:.2f} p95 than accurate")
    fast = rows["fast"]["wall"]
    print(f"default (fast) p95 {fast['p95']:.1f} ms: {verdict(fast['p95'], TARGET_P95_MS, higher_is_better=False)}")
    print(f"default (fast) p50 {fast['p50']:.1f} ms: {verdict(fast['p50'], TARGET_P50_MS, higher_is_better=False)}")
    emit_json(args.json, {"machine": info, "notes": len(notes), "threads": threads, "load_average": load,
                          "variants": rows, "target_p95_ms": TARGET_P95_MS, "target_p50_ms": TARGET_P50_MS})


if __name__ == "__main__":
    main()
