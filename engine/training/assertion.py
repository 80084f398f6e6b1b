"""Training data and training of the learned assertion classifier (:mod:`engine.assertion_learned`).

``python -m engine.training.assertion silver [--data DIR] [--out FILE]``
    runs the NER stage over the shared MTSamples reports that are *not* in the labelled reference set and writes
    the found spans (offsets only, no text) for rule labelling.
``python -m engine.training.assertion train [--data DIR] [--silver FILE] [--out DIR] [--layers 3] [--epochs 2]
[--cap N]`` builds the examples and fine-tunes the classifier on CPU (one thread, progress in the log); ``--cap``
    keeps at most N examples of any one source (its time/mood/family positives first, see :func:`cap_sources`),
    so a CPU run stays short.

Examples carry one label and one mask per trait (a trait a source does not annotate is masked out of the loss):

- MACCROBAT, the ``tune`` half (even reports): ``negated`` from POLARITY NEG; ``UNCERTAIN``/``MAYBE_*`` leave
  possible/hypothetical unknown, otherwise both are 0. Its conventions differ from clinical notes (it negates what
  resolved), which is why the rules, not the model, decide negation in the combined system.
- Chia, the ``tune`` half: ``negated``, unknown where only an eligibility exception negates.
- ``maccrobat-time`` / ``chia-time`` (``tune`` halves, :mod:`engine.evaluation.assertion_derived`): historical, and
  hypothetical/possible where a mood word says so.
- The project's own hand-written sentences: ``sentences.tsv`` and ``clinical_blind.jsonl`` to ``clinical_blind3``
  (all five traits). ``clinical_blind4``-``6``, the MTSamples ``dev`` part and every ``check`` half stay out for
  choosing the combination; the MTSamples ``test`` part is never used.
- Rule-labelled MTSamples (silver): NER spans of unlabelled reports; a trait the rules set is 1, a trait the rules
  did not set *and* for which the sentence holds no trigger at all is 0 (a confident no), anything else is unknown.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.settings import REPO_ROOT, Settings
from engine.types import TRAITS

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "assertion"
TRAIN_SETS = ("clinical_blind.jsonl", "clinical_blind2.jsonl", "clinical_blind3.jsonl")
HOLD_OUT_SETS = ("clinical_blind4.jsonl", "clinical_blind5.jsonl", "clinical_blind6.jsonl")


@dataclass(slots=True)
class Example:
    """One finding to learn from: the model input and a label and mask per trait (in :data:`TRAITS` order)."""

    item: tuple[str, int, int, tuple[int, int], str | None]
    labels: list[float]
    mask: list[float]
    source: str


def _known(gold: set[str], known: Sequence[str]) -> tuple[list[float], list[float]]:
    return [float(t in gold) for t in TRAITS], [float(t in known) for t in TRAITS]


def _examples(docs: Sequence, stage, sections, source: str, labeller) -> Iterator[Example]:
    for doc in docs:
        detected = sections.detect(doc.text)
        items = stage.model_inputs(doc.text, [(i.start, i.end) for i in doc.items], detected)
        for gold, item in zip(doc.items, items, strict=True):
            labelled = labeller(gold)
            if labelled is not None:
                yield Example(item, *labelled, source)


def gold_examples(data_dir: Path, stage, sections) -> list[Example]:
    """Examples from the corpora's tune halves and the project's own training sentences (see the module docs)."""
    from engine.evaluation.assertion_data import read_chia, read_jsonl, read_maccrobat, read_sentences, select
    from engine.evaluation.assertion_derived import read_chia_time, read_maccrobat_time

    out: list[Example] = []
    rng = random.Random(20)

    def maccrobat(item):
        if "uncertain" in item.gold:
            return _known(item.gold, ("negated",))
        return _known(item.gold, ("negated", "possible", "hypothetical"))

    def chia(item):
        if not item.gold and rng.random() > 0.3:  # most Chia spans are plain: keep a third of them
            return None
        return _known(item.gold, () if item.exception_cue else ("negated",))

    def chia_time(item):
        return _known(item.gold, ("historical", *sorted(item.gold)))

    def full(item):
        return _known(item.gold, TRAITS)

    folders = {"maccrobat": data_dir / "maccrobat", "chia": data_dir / "chia"}
    if folders["maccrobat"].is_dir():
        out += _examples(select(read_maccrobat(folders["maccrobat"]), "tune", None), stage, sections, "maccrobat",
                         maccrobat)
        out += _examples(select(read_maccrobat_time(folders["maccrobat"]), "tune", None), stage, sections,
                         "maccrobat-time", lambda i: _known(i.gold, ("historical",)))
    if folders["chia"].is_dir():
        out += _examples(select(read_chia(folders["chia"]), "tune", None), stage, sections, "chia", chia)
        out += _examples(select(read_chia_time(folders["chia"]), "tune", None), stage, sections, "chia-time",
                         chia_time)
    out += _examples(read_sentences(FIXTURES / "sentences.tsv"), stage, sections, "sentences", full)
    for name in TRAIN_SETS:
        out += _examples(read_jsonl(FIXTURES / name), stage, sections, name, full)
    return out


def silver_examples(silver: Path, data_dir: Path, stage, sections, keep_plain: float = 0.25) -> list[Example]:
    """Rule-labelled examples on the NER spans of unlabelled MTSamples reports (see the module docs)."""
    rng = random.Random(21)
    out: list[Example] = []
    labels_of = {"DIAG", "PROC", "TEST"}
    for line in silver.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        path = data_dir / "mtsamples" / row["file"]
        if not path.is_file():
            continue
        text = _read(path)
        spans = [(s, e) for s, e, label in row["spans"] if label in labels_of and not text[s:e].isupper()]
        if not spans:
            continue
        detected = sections.detect(text)
        judgements = stage.judge(text, spans, detected)
        items = stage.model_inputs(text, spans, detected)
        for judgement, item in zip(judgements, items, strict=True):
            cues = stage.sentence_cues(text, item[3]) | {stage.section_traits.get(item[4] or "")} - {None}
            labels = [float(t in judgement.traits) for t in TRAITS]
            mask = [float(t in judgement.traits or t not in cues) for t in TRAITS]
            if not judgement.traits and rng.random() > keep_plain:
                continue
            out.append(Example(item, labels, mask, "silver"))
    return out


RARE_TRAITS = ("family", "hypothetical", "possible", "historical")
"""Traits with few positives: a capped source keeps its examples of these first."""


def cap_sources(examples: list[Example], cap: int | None, seed: int = 22) -> list[Example]:
    """At most ``cap`` examples of each source, original order kept; all when ``None``.

    Within a source, examples with a positive :data:`RARE_TRAITS` label are kept first, then a seeded random sample
    of the rest fills the cap (so capping a large source drops its plain and negated-only examples first).
    """
    if cap is None:
        return examples
    rare = [TRAITS.index(t) for t in RARE_TRAITS]
    by_source: dict[str, list[int]] = {}
    for k, ex in enumerate(examples):
        by_source.setdefault(ex.source, []).append(k)
    rng = random.Random(seed)
    keep: set[int] = set()
    for ks in by_source.values():
        shuffled = rng.sample(ks, len(ks))
        shuffled.sort(key=lambda k: -max(examples[k].labels[i] * examples[k].mask[i] for i in rare))
        keep.update(shuffled[:cap])
    return [ex for k, ex in enumerate(examples) if k in keep]


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as handle:  # offsets count "\r\n" as two characters
        return handle.read()


def run_silver(data_dir: Path, out: Path, settings: Settings) -> int:
    """Write NER spans of the unlabelled MTSamples reports to ``out`` (one JSON object a report, offsets only)."""
    from engine.evaluation.assertion_data import MTSAMPLES_LABELLED
    from engine.registry import load_stage

    labelled = {json.loads(line)["file"] for refs in MTSAMPLES_LABELLED
                for line in refs.read_text(encoding="utf-8").splitlines() if line}
    folder = data_dir / "mtsamples"
    names = [p.name for p in sorted(folder.glob("*.txt")) if p.name not in labelled]
    ner = load_stage("ner", settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as handle:
        for i in range(0, len(names), 8):
            batch = names[i : i + 8]
            texts = [_read(folder / n) for n in batch]
            for name, spans in zip(batch, ner.predict(texts), strict=True):
                handle.write(json.dumps({"file": name, "spans": [[s.start, s.end, s.label] for s in spans]}) + "\n")
            print(f"silver: {i + len(batch)}/{len(names)} reports", file=sys.stderr, flush=True)
    return 0


def train(examples: list[Example], config: dict, epochs: int, log=print):
    """Fine-tune a fresh classifier on ``examples``: masked binary cross-entropy per trait, AdamW, CPU friendly.

    Returns:
        The trained :class:`~engine.assertion_learned.AssertionNet` and its input encoder.
    """
    import torch

    from engine.assertion_learned import build_net

    torch.manual_seed(20)
    net, encoder = build_net(config)
    for p in net.encoder.embeddings.parameters():
        p.requires_grad = False  # stored weights stay small: the embeddings come from the packaged backbone
    rows = [encoder.encode(*ex.item) for ex in examples]
    labels = torch.tensor([ex.labels for ex in examples])
    masks = torch.tensor([ex.mask for ex in examples])
    pos = (labels * masks).sum(0)
    neg = ((1 - labels) * masks).sum(0)
    pos_weight = (neg / pos.clamp(min=1)).clamp(max=float(config.get("max_pos_weight", 4.0)))
    head = list(net.head.parameters())
    body = [p for n, p in net.named_parameters() if p.requires_grad and not n.startswith("head.")]
    optim = torch.optim.AdamW([{"params": body, "lr": config.get("lr", 5e-5)},
                               {"params": head, "lr": config.get("head_lr", 1e-3)}], weight_decay=0.01)
    batch = int(config.get("train_batch", 32))
    order = sorted(range(len(rows)), key=lambda k: len(rows[k][0]))
    chunks = [order[i : i + batch] for i in range(0, len(order), batch)]
    steps, step, t0 = epochs * len(chunks), 0, time.time()
    schedule = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: min(1.0, (s + 1) / 100) * max(0.0, 1 - s / steps))
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none", pos_weight=pos_weight)
    net.train()
    for epoch in range(epochs):
        random.Random(epoch).shuffle(chunks)
        total = 0.0
        for chunk in chunks:
            logits = net(*encoder.batch([rows[k] for k in chunk]))
            loss = (loss_fn(logits, labels[chunk]) * masks[chunk]).sum() / masks[chunk].sum().clamp(min=1)
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optim.step()
            schedule.step()
            step += 1
            total += float(loss.detach())
            if step % 100 == 0:
                log(f"epoch {epoch + 1} step {step}/{steps} loss {total / 100:.4f} {time.time() - t0:.0f}s")
                total = 0.0
    net.eval()
    return net, encoder


DEFAULT_CONFIG = {
    "backbone": "all-MiniLM-L6-v2",
    "layers": 3,
    "dropout": 0.1,
    "window": {"left": 48, "span": 24, "right": 48, "section": 6},
    "lr": 5e-5,
    "head_lr": 1e-3,
    "train_batch": 32,
    "batch_size": 64,
    "max_pos_weight": 4.0,
}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.training.assertion silver|train``."""
    parser = argparse.ArgumentParser(prog="python -m engine.training.assertion", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["silver", "train"])
    parser.add_argument("--data", type=Path, default=None, help="shared data folder (default: Settings().data_dir)")
    parser.add_argument("--silver", type=Path, default=REPO_ROOT / "runs" / "assertion_silver.jsonl")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "assets" / "models" / "assertion")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cap", type=int, default=None, help="at most N examples per source (default: all)")
    parser.add_argument("--version", default=time.strftime("assertion-minilm-%Y.%m.%d"))
    args = parser.parse_args(list(argv if argv is not None else sys.argv[1:]))
    import torch

    torch.set_num_threads(1)
    settings = Settings(device="cpu")
    data_dir = Path(args.data or settings.data_dir)
    if args.command == "silver":
        return run_silver(data_dir, args.silver, settings)
    from engine.assertion import load_rules
    from engine.assertion_learned import save_model
    from engine.sections import load as load_sections

    stage, sections = load_rules(settings), load_sections(settings)
    examples = gold_examples(data_dir, stage, sections)
    if args.silver.is_file():
        examples += silver_examples(args.silver, data_dir, stage, sections)
    examples = cap_sources(examples, args.cap)
    counts: dict[str, int] = {}
    for ex in examples:
        counts[ex.source] = counts.get(ex.source, 0) + 1
    print(f"examples: {len(examples)} {counts}", flush=True)
    config = {**DEFAULT_CONFIG, "layers": args.layers, "version": args.version, "epochs": args.epochs, "cap": args.cap}
    net, _ = train(examples, config, args.epochs, log=lambda m: print(m, flush=True))
    positives = {t: int(sum(ex.labels[k] * ex.mask[k] for ex in examples)) for k, t in enumerate(TRAITS)}
    config["training"] = {"examples": counts, "positives": positives}
    save_model(net, config, args.out)
    print(f"saved {args.out}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
