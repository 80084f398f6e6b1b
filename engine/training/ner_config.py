"""The NER trainer's hyper-parameters (:class:`TrainConfig`), shared by the training loop and the command line."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.settings import PACKAGED_BACKBONE


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (all written to the model's ``config.json``)."""

    backbone: str = PACKAGED_BACKBONE
    backbone_name: str | None = None
    """Backbone name recorded in the model folder (default: ``backbone``), e.g. the packaged name when training
    ran on a copy of it."""
    epochs: int = 30
    lr: float = 1e-4
    head_lr: float | None = None
    batch_size: int = 16
    train_window: int = 256
    train_overlap: int = 64
    weight_decay: float = 0.01
    warmup: float = 0.1
    label_smoothing: float = 0.0
    dropout: float | None = None
    patience: int = 6
    seed: int = 13
    device: str = "auto"
    max_minutes: float | None = None
    pretrain_epochs: int = 0
    mlm_steps: int = 0
    mlm_lr: float = 1e-4
    mlm_text: list[str] = field(default_factory=list)
    experiments: str | None = None
    """A JSON file listing earlier runs (``name``, ``what``, ``dev_f1``) to record in metrics and the card."""
    dev_count: int | None = 20
    dev_fraction: float = 0.14
    decoder: str = "viterbi"
    version: str | None = None
    data: list[str] = field(default_factory=list)
    pretrain_data: list[str] = field(default_factory=list)
