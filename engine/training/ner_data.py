"""NER training data: BIO labels per token, training windows, length-bucketed batches, and masked-LM texts."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.corpora.document import Document
from engine.corpora.iob import read_iob
from engine.ner import BIO_LABELS, encode, make_windows


def token_labels(offsets: np.ndarray, spans: Sequence[tuple[int, int, str]]) -> np.ndarray:
    """BIO label id per token: a token overlapping a span is inside it, the first such token is ``B``."""
    label2id = {label: i for i, label in enumerate(BIO_LABELS)}
    labels = np.zeros(len(offsets), dtype=np.int64)
    if not len(offsets):
        return labels
    starts, ends = offsets[:, 0], offsets[:, 1]
    for s, e, lab in spans:
        idx = np.nonzero((starts < e) & (ends > s))[0]
        if idx.size:
            labels[idx] = label2id[f"I-{lab}"]
            labels[idx[0]] = label2id[f"B-{lab}"]
    return labels


def make_examples(tokenizer: Any, documents: Sequence[Document], window: int, overlap: int) -> list[tuple]:
    """Training windows ``(token ids, label ids)`` of all documents."""
    examples = []
    for doc in documents:
        enc = encode(tokenizer, doc.text)
        labels = token_labels(enc.offsets, doc.spans)
        for w in make_windows(0, len(enc), window - 2, overlap):
            examples.append((enc.ids[w.start : w.end], labels[w.start : w.end]))
    return examples


def batches(examples: list[tuple], batch_size: int, rng: random.Random) -> list[list[tuple]]:
    """Length-bucketed batches in random order: similar lengths together so padding stays small."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i][0]), rng.random()))
    groups = [[examples[i] for i in order[j : j + batch_size]] for j in range(0, len(order), batch_size)]
    rng.shuffle(groups)
    return groups


def collate(batch: list[tuple], cls_id: int, sep_id: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch dynamically to its longest window, adding ``[CLS]``/``[SEP]`` (labelled -100, ignored)."""
    width = max(len(ids) for ids, _ in batch) + 2
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for row, (ids, labs) in enumerate(batch):
        n = len(ids)
        input_ids[row, 0], input_ids[row, n + 1] = cls_id, sep_id
        input_ids[row, 1 : n + 1] = torch.from_numpy(np.asarray(ids))
        labels[row, 1 : n + 1] = torch.from_numpy(np.asarray(labs))
        mask[row, : n + 2] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def read_mlm_texts(paths: Sequence[str]) -> list[str]:
    """Unlabelled texts for continued pre-training: ``.txt`` files, Cohan-style ``.jsonl`` articles
    (``article_text``), IOB ``.tsv`` files (tokens joined), or folders of these."""
    texts: list[str] = []
    for raw in paths:
        root = Path(raw).expanduser()
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for file in files:
            if file.suffix == ".txt":
                texts.append(file.read_text(encoding="utf-8", errors="replace"))
            elif file.suffix in {".jsonl", ".json"}:
                for line in file.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        texts.append(" ".join(json.loads(line).get("article_text", [])))
            elif file.suffix == ".tsv":
                texts += [d.text for d in read_iob(file, "identity")]
    return [t for t in texts if t.strip()]
