"""The NER stage on the plain-PyTorch encoder (``engine.encoder``, what the engine runs) against its
``transformers`` twin (same weights, same tokenizer, same windows), one process, alternating rounds.

Shows that dropping the ``transformers`` import (cold start, issue #9) costs nothing per note: CPU and wall time
per note of each, their ratio, and whether the entities are identical.

    .venv/bin/python bench/bench_encoder.py --threads 2 --limit 12 --rounds 3
"""

from __future__ import annotations

import time

from common import emit_json, notes_parser, start_on_notes


def main() -> None:
    parser = notes_parser(__doc__, limit=12, threads=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of both (default 3)")
    args = parser.parse_args()
    threads, info, notes = start_on_notes(args, "NER per note: plain-PyTorch encoder vs its transformers twin")

    import torch

    from engine.encoder import to_transformers
    from engine.ner import NerStage, load_folder
    from engine.settings import DEFAULT_MODEL_DIR, Settings

    plain = load_folder(DEFAULT_MODEL_DIR / "ner", Settings(device="cpu"))
    twin = NerStage(to_transformers(plain.hf_model), plain.tokenizer, plain.config, torch.device("cpu"))
    texts = [text for _, text in notes]
    print(f"notes: {len(texts)}, torch threads: {threads}, model: {plain.version} ({type(plain.hf_model).__name__})")
    stages = {"plain": plain, "transformers": twin}
    for stage in stages.values():  # first calls allocate and pick kernels
        stage.predict(texts[:2])
    wall = dict.fromkeys(stages, 0.0)
    cpu = dict.fromkeys(stages, 0.0)
    spans: dict[str, list] = {}
    for r in range(max(1, args.rounds)):
        order = list(stages) if r % 2 == 0 else list(reversed(stages))
        for name in order:
            t, c = time.perf_counter(), time.process_time()
            spans[name] = stages[name].predict(texts)
            wall[name] += time.perf_counter() - t
            cpu[name] += time.process_time() - c
    n = max(1, args.rounds) * len(texts)
    payload: dict = {"machine": info}
    for name in stages:
        print(f"{name:>12}: {wall[name] / n * 1000:7.0f} ms wall, {cpu[name] / n * 1000:7.0f} ms CPU per note")
        payload[name] = {"wall_ms": wall[name] / n * 1000, "cpu_ms": cpu[name] / n * 1000}
    same = [[(s.start, s.end, s.label) for s in doc] for doc in spans["plain"]] == [
        [(s.start, s.end, s.label) for s in doc] for doc in spans["transformers"]
    ]
    ratio_cpu, ratio_wall = cpu["transformers"] / cpu["plain"], wall["transformers"] / wall["plain"]
    print(f"ratio transformers / plain (time per note): CPU {ratio_cpu:.3f}x, wall {ratio_wall:.3f}x")
    print(f"entities identical: {same} ({sum(len(d) for d in spans['plain'])} entities)")
    payload.update({"ratio_cpu": ratio_cpu, "ratio_wall": ratio_wall, "identical": same})
    emit_json(args.json, payload)


if __name__ == "__main__":
    main()
