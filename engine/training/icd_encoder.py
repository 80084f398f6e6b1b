"""Fine-tune the ICD synonym encoder on CPU: SapBERT-style contrastive learning over synonym sets by code.

Data (dev protocol of :mod:`engine.evaluation.icd_split`: only ``build``-group codes, so the held-out codes'
Index wording and inclusion terms are never seen): for each billable code its tabular description, inclusion
terms and Alphabetic Index paths (natural and Index order), plus the abbreviation expansions of
``assets/rules/abbreviations.tsv``. A step draws ``batch`` anchors, each with one positive of the same code and one
hard negative (the description of a sibling code, same parent); the loss is InfoNCE (scale 20) of every anchor
against all positives and hard negatives of the batch, same-code candidates masked.

Small by design (2 shared CPU cores): the first ``--layers`` layers of the backbone, word embeddings frozen,
``--max-length`` 24 tokens. Writes ``config.json``, ``model.safetensors`` (fp16, the trained parameters only) and
``train_log.json`` to ``--out``.

    nice -n 10 .venv/bin/python -m engine.training.icd_encoder --steps 1500 --out assets/models/icd_encoder
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

from engine.backbone import save_delta
from engine.evaluation.icd_split import inclusion_terms, synonym_sets
from engine.icd.alphabetic import read_index
from engine.icd.dense import MODEL_DIR, SynonymEncoder
from engine.icd.tabular import read_tabular
from engine.icd.text import read_rules
from engine.settings import Settings


def training_data(settings: Settings) -> tuple[list[list[str]], list[str], list[int], list[int]]:
    """``(synonym sets, set codes, parent group per set, hard-negative description index per set)``."""
    tab = read_tabular()
    alpha = read_index(settings.icd_index_path)
    sets = synonym_sets(tab, alpha, inclusion_terms(tab), ("build",))
    codes = sorted(c for c, s in sets.items() if len(s) >= 2)
    groups = [sets[c] for c in codes]
    for abbreviation, expansion in read_rules(settings.rules_dir / "abbreviations.tsv"):
        groups.append([abbreviation, expansion])
        codes.append("")
    parents = [int(tab.parent[tab.pos[c]]) if c else -1 for c in codes]
    return groups, codes, parents, [tab.pos.get(c, -1) for c in codes]


def sibling_negatives() -> dict[int, list[str]]:
    """Descriptions of the billable codes under each parent (hard negatives come from there)."""
    tab = read_tabular()
    by_parent: dict[int, list[str]] = {}
    for i in range(len(tab.codes)):
        if tab.billable[i] and not tab.extension[i]:
            by_parent.setdefault(int(tab.parent[i]), []).append(tab.descriptions[i])
    return by_parent


def batches(groups: list[list[str]], parents: list[int], negatives: dict[int, list[str]], size: int, seed: int):
    """Endless ``(anchors, positives, negatives, set ids)`` batches, one anchor per set, sets shuffled."""
    rng = random.Random(seed)
    order = list(range(len(groups)))
    while True:
        rng.shuffle(order)
        for s in range(0, len(order) - size + 1, size):
            ids = order[s : s + size]
            anchors, positives, hard = [], [], []
            for g in ids:
                a, p = rng.sample(groups[g], 2)
                anchors.append(a)
                positives.append(p)
                pool = [d for d in negatives.get(parents[g], ()) if d not in groups[g]]
                hard.append(rng.choice(pool) if pool else rng.choice(groups[rng.randrange(len(groups))]))
            yield anchors, positives, hard, ids


def loss_of(
    enc: SynonymEncoder, anchors: list[str], positives: list[str], hard: list[str], scale: float
) -> torch.Tensor:
    """InfoNCE of anchors against the batch's positives and hard negatives."""
    a = enc.forward(*enc.batch(anchors))
    c = enc.forward(*enc.batch(positives + hard))
    logits = scale * a @ c.T
    target = torch.arange(len(anchors))
    return torch.nn.functional.cross_entropy(logits, target)


def main(argv: list[str] | None = None) -> int:
    """Train and write the model folder; prints progress lines to stderr and a log file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--max-length", type=int, default=24)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-minutes", type=float, default=100.0, help="stop (and save) after this long")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    settings = Settings(device="cpu")
    t0 = time.perf_counter()
    groups, _codes, parents, _ = training_data(settings)
    negatives = sibling_negatives()
    n_strings = sum(len(g) for g in groups)
    sys.stderr.write(f"{len(groups)} synonym sets, {n_strings} strings ({time.perf_counter() - t0:.0f} s)\n")
    enc = SynonymEncoder(None)
    enc.config.layers = args.layers
    enc.model.encoder.layer = enc.model.encoder.layer[: args.layers]
    enc.tokenizer.enable_truncation(args.max_length)
    enc.model.embeddings.word_embeddings.weight.requires_grad_(False)
    enc.model.train()
    params = [p for p in enc.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1 - s / max(args.steps, 1))
    )
    log: list[dict] = []
    t_train = time.perf_counter()
    running = 0.0
    step = 0
    for step, (anchors, positives, hard, _) in enumerate(batches(groups, parents, negatives, args.batch, args.seed), 1):
        loss = loss_of(enc, anchors, positives, hard, args.scale)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        value = float(loss.detach())
        running = 0.98 * running + 0.02 * value if step > 1 else value
        minutes = (time.perf_counter() - t_train) / 60
        if step % 25 == 0 or step == 1:
            log.append({"step": step, "loss": round(running, 4), "minutes": round(minutes, 2)})
            sys.stderr.write(f"step {step}/{args.steps} loss {running:.4f} {minutes:.1f} min\n")
            sys.stderr.flush()
        if step >= args.steps or minutes >= args.max_minutes:
            break
    enc.model.eval()
    size = save_delta(enc.model, args.out / "model.safetensors")
    config = {
        "version": f"icd-encoder-{time.strftime('%Y%m%d')}-s{step}",
        "stage": "icd_encoder",
        "labels": [],
        "backbone": "all-MiniLM-L6-v2",
        "layers": args.layers,
        "max_length": args.max_length,
        "pooling": "mean, L2-normalised",
        "trained_parameters": "all but the word embeddings (fp16 in model.safetensors)",
        "training": {**{k: v for k, v in vars(args).items() if k != "out"}, "steps_done": step,
                     "sets": len(groups), "strings": n_strings, "minutes": round(minutes, 1),
                     "protocol": "build-group codes only (engine/evaluation/icd_split.py)"},
    }
    (args.out / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (args.out / "train_log.json").write_text(json.dumps(log), encoding="utf-8")
    sys.stderr.write(f"saved {args.out} ({size / 1e6:.1f} MB), {step} steps in {minutes:.1f} min\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
