"""The base training corpus of a retraining run: which documents it trains on and which it holds out as dev.

Without a base corpus the run trains on the reviewed notes alone and the gate judges on the frozen feedback test
split only (:func:`base_corpus_status` says so before a run, so the app can warn).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from engine.corpora.document import Document, split_documents
from engine.errors import EngineError
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
        spec = default_base_spec(settings)
        if spec is None:
            return [], []
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


def default_base_spec(settings: Settings) -> str | None:
    """The base corpus a run without ``--base-data`` trains on: ``settings.base_corpus_dir`` when set (even when it
    is missing, so the run fails loudly rather than silently training without it), else MACCROBAT in the data
    folder when it exists, else ``None``."""
    if settings.base_corpus_dir is not None:
        return f"brat:{settings.base_corpus_dir}:{settings.base_corpus_labels}"
    maccrobat = Path(settings.data_dir) / "maccrobat"
    return f"brat:{maccrobat}:maccrobat" if maccrobat.is_dir() else None


def check_corpus_dir(path: str | Path) -> str | None:
    """Why ``path`` cannot be a base corpus (a BRAT folder of ``.txt`` files with their ``.ann``), or ``None``."""
    folder = Path(path).expanduser()
    if not str(path).strip():
        return "no folder given"
    if not folder.exists():
        return f"{folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.R_OK | os.X_OK):
        return f"{folder} cannot be read (permission denied)"
    try:
        texts = {p.stem for p in folder.glob("*.txt")}
        anns = {p.stem for p in folder.glob("*.ann")}
    except OSError as err:
        return f"{folder} cannot be read ({err.strerror or err})"
    if not texts & anns:
        return f"{folder} holds no BRAT documents (a .txt file with its .ann annotations)"
    return None


@dataclass(frozen=True, slots=True)
class BaseCorpusStatus:
    """What a retraining run would use as its base corpus, known before the run.

    Attributes:
        spec: The corpus spec (``brat:PATH:LABELMAP``), ``None`` when there is none.
        train_docs: Base documents the run would train on.
        dev_docs: Base documents held out as the gate's base dev set.
        problem: Why the given corpus cannot be used (missing, unreadable, empty), else ``None``.
    """

    spec: str | None
    train_docs: int
    dev_docs: int
    problem: str | None = None

    @property
    def found(self) -> bool:
        """Whether there are base documents to train on."""
        return self.problem is None and self.train_docs + self.dev_docs > 0

    def gate_sets(self) -> str:
        """What the gate compares the candidate with the active model on, in words."""
        if self.dev_docs:
            return f"the frozen test split of the reviewed notes and {self.dev_docs} base dev documents"
        return "the frozen test split of the reviewed notes only (about a fifth of them; no base dev set)"


def base_corpus_status(
    settings: Settings, parent_ner: Path, folder: str | Path | None = None, dev_count: int | None = None
) -> BaseCorpusStatus:
    """How many base documents a run would train and gate on (reads the corpus once).

    Args:
        settings: Where the default corpus is (``base_corpus_dir``, else MACCROBAT in ``data_dir``).
        parent_ner: The active NER folder (its recorded dev split decides the dev documents).
        folder: A BRAT folder to use instead of the default (labels: ``settings.base_corpus_labels``).
        dev_count: As :func:`load_base_data`.
    """
    if folder is not None and str(folder).strip():
        spec: str | None = f"brat:{Path(folder).expanduser()}:{settings.base_corpus_labels}"
        path: Path | None = Path(folder).expanduser()
    else:
        spec = default_base_spec(settings)
        path = settings.base_corpus_dir
    if spec is None:
        return BaseCorpusStatus(None, 0, 0)
    if path is not None and (problem := check_corpus_dir(path)):
        return BaseCorpusStatus(spec, 0, 0, problem)
    try:
        train, dev = load_base_data(spec, settings, parent_ner, dev_count)
    except (EngineError, OSError, ValueError) as err:
        return BaseCorpusStatus(spec, 0, 0, str(err))
    return BaseCorpusStatus(spec, len(train), len(dev))
