"""NER tokens/s on a GPU at large batch, against the compute bound of the model.

Two measurements, both on the engine's NER model (``<model-dir>/ner``: the backbone plus the trained delta):

1. the model's forward pass on full windows of ``--seq`` tokens (128 by default) at large batch, in the precision
   variants the engine can run (fp32 weights under bf16 autocast, as ``NerStage`` does; bf16 weights; bf16 weights
   with ``torch.compile``), each as tokens/s and as a fraction of the bound: the H100's ~800 TFLOP/s bf16 over the
   model's FLOP per token (counted from its config: ~0.022 GFLOP for MiniLM-L6 at 128 tokens);
2. the engine end to end (``NerStage.predict`` on real notes: tokenising, windowing, forward, decoding), tokens/s.

On a machine without the packaged MiniLM (the device machine), give the backbone folder with ``--backbone``.

    python bench/bench_gpu_ner.py --backbone .gpubench/backbone --notes .gpubench/notes
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import REPO, emit_json, print_header, verdict

TARGET_TOKENS_PER_S = 10e6
PEAK_TFLOPS_BF16 = {"H100": 800.0, "H200": 790.0, "A100": 312.0, "L4": 121.0}


def flops_per_token(config: object, seq: int) -> float:
    """Forward FLOP per token of a BERT-style encoder plus a token-classification head.

    Per layer: the Q, K, V and output projections (4 h^2 multiply-adds), the feed-forward (2 h i), and attention
    (scores and weighted sum: 2 seq h); times 2 FLOP per multiply-add.
    """
    h = int(config.hidden_size)
    i = int(config.intermediate_size)
    layers = int(config.num_hidden_layers)
    labels = int(getattr(config, "num_labels", 11))
    per_layer = 2 * (4 * h * h + 2 * h * i + 2 * seq * h)
    return layers * per_layer + 2 * h * labels


def peak_tflops(gpu_name: str, override: float | None) -> float:
    """The GPU's dense bf16 peak (TFLOP/s), from ``--peak-tflops`` or a small table of known parts."""
    if override:
        return override
    for key, value in PEAK_TFLOPS_BF16.items():
        if key in gpu_name:
            return value
    return 800.0


def sync(device: str) -> None:
    """Wait for the GPU's queued work (no-op on CPU)."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_forward(model, input_ids, mask, iters: int, ctx, device: str = "cuda") -> float:
    """Seconds per forward pass (synchronised mean of ``iters`` after 3 warm-up passes)."""
    import torch

    with torch.inference_mode(), ctx():
        for _ in range(3):
            model(input_ids=input_ids, attention_mask=mask)
        sync(device)
        t = time.perf_counter()
        for _ in range(iters):
            model(input_ids=input_ids, attention_mask=mask)
        sync(device)
    return (time.perf_counter() - t) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", help="local backbone folder (default: what the NER config names)")
    parser.add_argument("--model-dir", default=str(REPO / "assets" / "models"), help="model set (default: committed)")
    parser.add_argument("--notes", help="folder of .txt notes for the end-to-end figure (default: MTSamples)")
    parser.add_argument("--limit", type=int, default=0, help="notes for the end-to-end figure (0 = all)")
    parser.add_argument("--seq", type=int, default=128, help="tokens per window for the forward figure")
    parser.add_argument("--batches", default="512,2048,8192", help="batch sizes (windows) to try")
    parser.add_argument("--iters", type=int, default=20, help="timed forward passes per configuration")
    parser.add_argument("--compile-batch", type=int, default=2048, help="batch for the torch.compile variant (0: skip)")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak (default: by its name)")
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu only checks the script, at tiny sizes")
    parser.add_argument("--e2e", default="512:256,128:1024", help="window:batch pairs for the end-to-end figure")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    import contextlib
    import copy

    import torch

    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: this benchmark needs one (--device cpu only checks the script, tiny sizes)")
    info = print_header("NER tokens/s on GPU vs the model's compute bound", device=device)
    from engine.backbone import load_tokenizer, resolve_backbone
    from engine.ner import NerStage, build_model, load_delta, read_config

    folder = Path(args.model_dir) / "ner"
    config = read_config(folder)
    backbone = resolve_backbone(args.backbone or config.get("backbone"))
    id2label = [str(config["id2label"][str(i)]) for i in range(len(config["id2label"]))]
    model = build_model(backbone, id2label)
    load_delta(model, folder / config.get("weights", "weights.safetensors"))
    model = model.to(device).eval()
    tokenizer = load_tokenizer(backbone)

    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (CPU check run)"
    peak = peak_tflops(gpu, args.peak_tflops)
    fpt = flops_per_token(model.config, args.seq)
    bound = peak * 1e12 / fpt
    print(
        f"model: {config.get('version', '?')} on {backbone.name}; {fpt / 1e9:.4f} GFLOP per token at {args.seq} "
        f"tokens; bound at {peak:.0f} TFLOP/s: {bound / 1e6:.1f} M tokens/s"
    )
    print(f"attention implementation: {getattr(model.config, '_attn_implementation', '?')}")

    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    variants: list[tuple[str, torch.nn.Module, object]] = [
        ("fp32 weights + bf16 autocast", model, lambda: torch.autocast(device, dtype=torch.bfloat16)),
        ("bf16 weights (the engine on CUDA)", bf16, contextlib.nullcontext),
    ]
    runs = [(int(b), name, net, ctx) for b in args.batches.split(",") if b for name, net, ctx in variants]
    results: list[dict] = []
    best = 0.0

    def measure(runs: list) -> None:
        nonlocal best
        shape = None
        for batch, name, net, ctx in runs:
            if shape != batch:
                ids = torch.randint(1000, int(model.config.vocab_size), (batch, args.seq), device=device)
                mask = torch.ones_like(ids)
                shape = batch
            try:
                secs = time_forward(net, ids, mask, args.iters, ctx, device)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                print(f"  batch {batch:6d}  {name:<40} out of memory")
                continue
            except Exception as exc:
                print(f"  batch {batch:6d}  {name:<40} failed: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            tps = batch * args.seq / secs
            best = max(best, tps)
            results.append({"batch": batch, "variant": name, "tokens_per_s": tps, "fraction_of_bound": tps / bound})
            print(
                f"  batch {batch:6d}  {name:<40} {tps / 1e6:8.2f} M tokens/s  "
                f"({100 * tps / bound:5.1f}% of bound, {tps * fpt / 1e12:6.1f} TFLOP/s)"
            )

    measure(runs)
    print(
        f"best forward: {best / 1e6:.2f} M tokens/s: {verdict(best / 1e6, TARGET_TOKENS_PER_S / 1e6, True)} "
        f"(M tokens/s)"
    )

    payload = {
        "machine": info,
        "gpu": gpu,
        "flops_per_token": fpt,
        "bound_tokens_per_s": bound,
        "forward": results,
        "best_tokens_per_s": best,
    }

    # The engine end to end on real notes: what the batch job gets from a GPU actor.
    notes_dir = Path(args.notes) if args.notes else None
    if notes_dir is None:
        from common import default_mtsamples

        notes_dir = default_mtsamples()
    paths = sorted(notes_dir.glob("*.txt"))[: args.limit or None]
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in paths]
    if texts:
        for pair in filter(None, args.e2e.split(",")):
            window, batch_size = (int(x) for x in pair.split(":"))
            stage = NerStage(
                model,
                tokenizer,
                config,
                torch.device(device),
                window_tokens=window,
                window_overlap=min(128, window // 4),
                batch_size=batch_size,
            )
            stage.predict(texts[:4])
            tokens = sum(len(stage.encode(t)) for t in texts)
            sync(device)
            t = time.perf_counter()
            t_enc = time.perf_counter()
            encodings = [stage.encode(t) for t in texts]
            enc_s = time.perf_counter() - t_enc
            t_fwd = time.perf_counter()
            probs = stage.token_probs(encodings)
            sync(device)
            fwd_s = time.perf_counter() - t_fwd
            t_dec = time.perf_counter()
            from engine.ner import annotate

            spans = [annotate(e, p, stage.id2label, stage.decoder) for e, p in zip(encodings, probs, strict=True)]
            dec_s = time.perf_counter() - t_dec
            total = time.perf_counter() - t
            print(
                f"engine NerStage.predict, window {window}, batch {batch_size}: {len(texts)} notes, {tokens} tokens "
                f"in {total:.2f} s = {tokens / total / 1e6:.2f} M tokens/s ({len(texts) / total:.0f} notes/s; "
                f"tokenise {enc_s:.2f} s, windows+forward {fwd_s:.2f} s, decode {dec_s:.2f} s; "
                f"{sum(len(s) for s in spans)} entities)"
            )
            payload[f"engine_predict_w{window}"] = {
                "tokens": tokens,
                "seconds": total,
                "tokenise_s": enc_s,
                "forward_s": fwd_s,
                "decode_s": dec_s,
            }
    payload["forward"] = results
    payload["best_tokens_per_s"] = best
    emit_json(args.json, payload)  # written now too, in case compiling outlasts the time given to the run
    if args.compile_batch:
        # Last, as it is the slowest to set up: compiled once for one shape (a batch job keeps its shape fixed).
        compiled = torch.compile(bf16, dynamic=False)
        t = time.perf_counter()
        measure([(args.compile_batch, "bf16 weights + torch.compile", compiled, contextlib.nullcontext)])
        print(f"  (torch.compile variant, compile included: {time.perf_counter() - t:.0f} s)")
        print(f"best forward with compile: {best / 1e6:.2f} M tokens/s")
    payload["forward"] = results
    payload["best_tokens_per_s"] = best
    emit_json(args.json, payload)


if __name__ == "__main__":
    main()
