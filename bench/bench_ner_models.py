"""NER models side by side: ms per note (warm, CPU) and, with ``--dev``, MACCROBAT dev strict F1, in one run.

Each model spec is ``NAME=FOLDER`` with optional ``:window/overlap`` and ``:int8`` or ``:fp32`` (default: what
the folder's ``config.json`` says), e.g. ``teacher=assets/models/ner_accurate:512/128``. Every note is run
through every model in turn (the order rotating from note to note), so a change in the machine's load hits all of
them alike; the figures are p50/p95/mean ms per note and their ratio to the first model. The F1-vs-ms curve of
docs/ner.md comes from this script's ``--json`` (``bench/plot_ner_curve.py`` draws it).

    .venv/bin/python bench/bench_ner_models.py --threads 2 --limit 60 --dev \\
        accurate=assets/models/ner_accurate fast=assets/models/ner
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from common import default_mtsamples, emit_json, load_notes, print_header, set_threads, summary


def parse_spec(spec: str) -> tuple[str, Path, tuple[int, int] | None, bool | None]:
    """``NAME=FOLDER[:W/O][:int8|fp32]`` -> ``(name, folder, (window, overlap) or None, quantize or None)``."""
    name, _, rest = spec.partition("=")
    if not rest:
        name, rest = Path(spec.split(":")[0]).name, spec
    parts = rest.split(":")
    windows: tuple[int, int] | None = None
    quantize: bool | None = None
    for part in parts[1:]:
        if part in {"int8", "fp32"}:
            quantize = part == "int8"
        elif "/" in part:
            w, o = part.split("/")
            windows = (int(w), int(o))
        else:
            raise SystemExit(f"model spec {spec!r}: unknown option {part!r}")
    return name, Path(parts[0]), windows, quantize


def load_stage(spec: str, device: str) -> tuple[str, Any]:
    """The NER stage a spec describes."""
    from engine.ner import load_folder
    from engine.settings import Settings

    name, folder, windows, quantize = parse_spec(spec)
    settings = Settings()
    if windows:
        settings = settings.with_overrides(ner_window_tokens=windows[0], ner_window_overlap=windows[1])
    return name, load_folder(folder, settings, device=device, quantize=quantize)


def describe(stage: Any) -> str:
    layers = len(stage.hf_model.base_model.encoder.layer)
    return (f"{stage.version}: {layers} layers, windows {stage.window_tokens}/{stage.window_overlap}, "
            f"{'int8' if stage.quantized else 'fp32'}")


def time_notes(stages: list[tuple[str, Any]], notes: list[tuple[str, str]], warmup: int) -> dict[str, list[float]]:
    """Wall ms per note of each stage, the stages' order rotating from note to note."""
    for _, stage in stages:
        for _, text in notes[:warmup]:
            stage.predict([text])
    wall: dict[str, list[float]] = {name: [] for name, _ in stages}
    for i, (_, text) in enumerate(notes):
        order = stages[i % len(stages):] + stages[: i % len(stages)]
        for name, stage in order:
            t = time.perf_counter()
            stage.predict([text])
            wall[name].append((time.perf_counter() - t) * 1000.0)
    return wall


def dev_scores(stages: list[tuple[str, Any]], data_dir: Path) -> dict[str, dict[str, Any]]:
    """Strict scores of each stage on the MACCROBAT dev split (the teacher's: the last 20 reports by id), and each
    one's F1 difference to the first stage with a 95% interval from resampling the dev documents (paired)."""
    from engine.corpora.document import split_documents
    from engine.corpora.specs import load_data_specs
    from engine.evaluation.ner import paired_bootstrap, score

    _, dev = split_documents(load_data_specs([f"brat:{data_dir / 'maccrobat'}:maccrobat"]), dev_count=20)
    gold = [d.spans for d in dev]
    predicted = {name: stage.predict([d.text for d in dev]) for name, stage in stages}
    first = stages[0][0]
    out = {}
    for name, _ in stages:
        out[name] = score(gold, predicted[name])
        out[name]["vs_first"] = paired_bootstrap(gold, predicted[name], predicted[first])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="NAME=FOLDER[:W/O][:int8|fp32]")
    parser.add_argument("--data", help="shared data folder (default: Settings().data_dir)")
    parser.add_argument("--limit", type=int, default=60, help="MTSamples notes to time, in name order (default 60)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dev", action="store_true", help="also score each model on the MACCROBAT dev split")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    threads = set_threads(args.threads)
    info = print_header("NER models side by side (warm, CPU)", device="cpu")
    from engine.settings import Settings

    data_dir = Path(args.data) if args.data else Settings().data_dir
    stages = [load_stage(spec, "cpu") for spec in args.models]
    for name, stage in stages:
        print(f"{name}: {describe(stage)}")
    notes = load_notes(default_mtsamples(data_dir), args.limit or None)
    wall = time_notes(stages, notes, args.warmup)
    load = os.getloadavg()
    print(f"\nnotes: {len(notes)}, torch threads: {threads}, load average {load[0]:.2f} / {load[1]:.2f} (1/5 min)")
    first = summary(wall[stages[0][0]])
    scores = dev_scores(stages, data_dir) if args.dev else {}
    rows: dict[str, Any] = {}
    for name, stage in stages:
        s = summary(wall[name])
        line = (f"{name:<22} p50 {s['p50']:7.1f} ms  p95 {s['p95']:7.1f} ms  mean {s['mean']:7.1f} ms  "
                f"(x{s['p50'] / first['p50']:.2f} p50, x{s['p95'] / first['p95']:.2f} p95)")
        rows[name] = {"model": describe(stage), "ms": s}
        if name in scores:
            result = scores[name]
            per_type = " ".join(f"{k} {v['f1']:.3f}" for k, v in result["per_type"].items())
            boot = result["vs_first"]
            line += (f"  dev F1 {result['overall']['f1']:.4f} ({per_type}); vs {stages[0][0]} "
                     f"{boot['diff']:+.4f} [95% {boot['low']:+.4f}, {boot['high']:+.4f}]")
            rows[name]["dev"] = {"f1": result["overall"]["f1"], "per_type": {k: v["f1"] for k, v in
                                                                             result["per_type"].items()},
                              "vs_first": result["vs_first"]}
        print(line)
    emit_json(args.json, {"machine": info, "notes": len(notes), "threads": threads, "load_average": load,
                          "models": rows})


if __name__ == "__main__":
    main()
