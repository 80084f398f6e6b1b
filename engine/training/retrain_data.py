"""The base training corpus of a retraining run: which documents it trains on and which it holds out as dev."""

from __future__ import annotations

import random
from pathlib import Path

from engine.corpora.document import Document, split_documents
from engine.settings import Settings


def load_base_data(
    spec: str | None, settings: Settings, parent_ner: Path, dev_count: int | None = None
) -> tuple[list[Document], list[Document]]:
    """Base training documents and the base dev set.

    Args:
        spec: ``none``; or ``FORMAT:PATH[:LABELMAP]`` (as ``train ner --data``) split like the NER trainer does
            (its recorded ``dev_count``), or ``None`` for MACCROBAT in the data folder when it exists.
        settings: For the data folder.
        parent_ner: The parent NER folder (its recorded dev split is reused so the dev set stays unseen).
        dev_count: Hold out this many documents (the last by sorted id) instead of the parent's split.
    """
    from engine.corpora.specs import load_data_specs
    from engine.ner import read_config

    if spec == "none":
        return [], []
    if spec is None:
        maccrobat = Path(settings.data_dir) / "maccrobat"
        if not maccrobat.is_dir():
            return [], []
        spec = f"brat:{maccrobat}:maccrobat"
    training = read_config(parent_ner).get("training", {})
    documents = load_data_specs([spec])
    if dev_count is not None:
        return split_documents(documents, dev_count=dev_count)
    # The exact documents the parent was early-stopped on when they are in this corpus, else its split rule.
    dev_ids = set(training.get("dev_ids") or [])
    if dev_ids and dev_ids <= {d.id for d in documents}:
        return [d for d in documents if d.id not in dev_ids], [d for d in documents if d.id in dev_ids]
    return split_documents(
        documents, dev_count=training.get("dev_count", 20), dev_fraction=training.get("dev_fraction") or 0.14
    )


def _sample(docs: list[Document], limit: int | None, seed: int) -> list[Document]:
    if limit is None or len(docs) <= limit:
        return docs
    return random.Random(seed).sample(docs, limit)
