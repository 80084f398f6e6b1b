"""The summariser trainer's hyper-parameters (:class:`SummarizerTrainConfig`) and the scorer config they give."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.settings import PACKAGED_BACKBONE
from engine.summarizer import DEFAULT_CONFIG, FEATURES

SHAPE_KEYS = ("backbone", "trainable_layers", "encoder_layers", "freeze_top_kv", "max_length", "max_sentence_tokens")
"""Scorer config keys that a run continuing from ``init_dir`` takes from that model (with its ``features``)."""


@dataclass
class SummarizerTrainConfig:
    """Hyper-parameters of one summariser training run (:func:`engine.training.summarizer.train`).

    Attributes:
        backbone: ``all-MiniLM-L6-v2`` or a local encoder folder.
        trainable_layers: Top encoder layers trained (the rest and the embeddings stay frozen).
        freeze_top_kv: With one trained layer, keep its key/value projections frozen so that they are computed once
            per note and each step runs only the ``[CLS]`` path (much cheaper on CPU).
        encoder_layers: Keep only the first N encoder layers (a faster, shallower scorer); ``None`` keeps all.
        epochs: Passes over the training notes.
        lr: Learning rate of the trained encoder layers.
        head_lr: Learning rate of the head.
        weight_decay: AdamW weight decay.
        max_length: Encoder window (tokens).
        max_sentence_tokens: Word pieces kept per sentence.
        max_trigram_overlap: Trigram-blocking tolerance written to the config and used for early stopping (see
            :func:`engine.summarizer.select`); ``None`` keeps ``init_dir``'s, else 0.
        features: Document features the head reads (see :func:`engine.summarizer.sentence_features`); with
            ``init_dir`` its features are kept.
        k: Summary length used for early stopping.
        seed: Random seed.
        init_dir: Start from this trained summariser folder instead of the bare backbone.
        device: ``cpu``, ``cuda`` or ``auto``.
        version: Version string written in ``config.json`` (default: a UTC timestamp).
        extra_config: More keys for ``config.json`` (for example the data used).
        cache_file: Keep the frozen layers' states of every note in this file and reuse them in later runs with
            the same backbone and windowing (saves the most expensive part of a rerun).
        command: The command line that ran this training, recorded in ``config.json``.
    """

    backbone: str = PACKAGED_BACKBONE
    trainable_layers: int = 2
    freeze_top_kv: bool = False
    encoder_layers: int | None = None
    epochs: int = 6
    lr: float = 5e-5
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    max_length: int = 512
    max_sentence_tokens: int = 80
    max_trigram_overlap: float | None = None
    features: Sequence[str] = FEATURES
    k: int = 7
    seed: int = 13
    init_dir: str | Path | None = None
    device: str = "cpu"
    version: str | None = None
    extra_config: dict[str, Any] | None = None
    cache_file: str | Path | None = None
    command: str | None = None

    def scorer_config(self) -> dict[str, Any]:
        """The scorer's ``config.json`` keys for this run; ``init_dir``'s model fixes its shape and features."""
        config: dict[str, Any] = {
            **DEFAULT_CONFIG,
            "backbone": self.backbone,
            "trainable_layers": self.trainable_layers,
            "encoder_layers": self.encoder_layers,
            "freeze_top_kv": self.freeze_top_kv,
            "max_length": self.max_length,
            "max_sentence_tokens": self.max_sentence_tokens,
            "max_trigram_overlap": 0.0 if self.max_trigram_overlap is None else self.max_trigram_overlap,
            "features": list(self.features),
        }
        if self.init_dir is not None:
            from engine.summarizer import read_config

            init_config = read_config(Path(self.init_dir))
            for key in (*SHAPE_KEYS, "features"):
                config[key] = init_config[key]
            if self.max_trigram_overlap is None:
                config["max_trigram_overlap"] = init_config["max_trigram_overlap"]
        return config
