"""Learned assertion classifier: the backbone encoder reads a finding marked in its sentence and scores five traits.

Input for one finding: ``[CLS] section words [SEP] left context [unused0] finding [unused1] right context [SEP]``,
wordpieces of the finding's sentence (the same sentence the rules judge) and of its section's name, so "Hypertension"
under "PAST MEDICAL HISTORY" reads differently from the same word under "ASSESSMENT". ``[unused0]`` / ``[unused1]``
are unused rows of the backbone's vocabulary, so the entity markers need no new embeddings. The encoder is the first
``layers`` layers of the backbone (all-MiniLM-L6-v2 by default: a 3-layer copy costs half of the 6 layers); the
head reads the ``[CLS]`` vector, the opening marker's vector and the mean over the finding's wordpieces, and gives one
independent probability per trait (sigmoid), so a finding can be both ``negated`` and ``family``.

The model folder (``assets/models/assertion/``) holds ``config.json`` (version, labels, backbone, layers, window and
the combination with the rules), ``metrics.json``, ``MODEL_CARD.md`` and ``weights.safetensors`` with only what
training changed (the encoder layers and the head, fp16); the embeddings come from the packaged backbone.
:class:`CombinedAssertionStage` is how the pipeline uses it: the rules judge first, and the model adds a trait the
rules did not find where its probability reaches the configured threshold.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.types import TRAITS, Judgement, Section, sort_traits

MODEL_SUBDIR = "assertion"
START_MARKER = "[unused0]"
END_MARKER = "[unused1]"


@dataclass(frozen=True, slots=True)
class Window:
    """How much context the encoder reads around a finding, in wordpieces."""

    left: int = 48
    span: int = 24
    right: int = 48
    section: int = 6


class AssertionNet(nn.Module):
    """A truncated encoder and a five-trait head over ``[CLS]``, the opening marker and the finding's mean vector.

    Args:
        encoder: A :class:`engine.encoder.BertModel` (its pooler is dropped).
        layers: Encoder layers kept from the bottom.
        dropout: Dropout before the head.
    """

    def __init__(self, encoder: nn.Module, layers: int, dropout: float = 0.1) -> None:
        super().__init__()
        encoder.pooler = None
        encoder.encoder.layer = nn.ModuleList(list(encoder.encoder.layer)[:layers])
        encoder.config.num_hidden_layers = layers
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(3 * hidden, len(TRAITS))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, marker: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
        """Logits ``[batch, 5]`` for input ids, padding mask, opening-marker positions and a finding mask."""
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        rows = torch.arange(ids.shape[0], device=ids.device)
        weights = span.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        features = torch.cat([hidden[:, 0], hidden[rows, marker], mean], dim=-1)
        return self.head(self.dropout(features))


class Encoder:
    """Turns ``(text, start, end, sentence bounds, section)`` into the model's wordpiece input."""

    def __init__(self, tokenizer: Any, window: Window) -> None:
        self.backend = tokenizer.backend_tokenizer
        self.window = window
        ids = {name: self.backend.token_to_id(name) for name in ("[CLS]", "[SEP]", "[PAD]", START_MARKER, END_MARKER)}
        if None in ids.values():
            missing = [k for k, v in ids.items() if v is None]
            raise ValueError(f"backbone vocabulary lacks {missing}")
        self.cls, self.sep, self.pad = ids["[CLS]"], ids["[SEP]"], ids["[PAD]"]
        self.start, self.end = ids[START_MARKER], ids[END_MARKER]
        self._sections: dict[str, list[int]] = {}

    def _section_ids(self, section: str | None) -> list[int]:
        key = section or ""
        if key not in self._sections:
            words = self.backend.encode(key, add_special_tokens=False).ids if key else []
            self._sections[key] = words[: self.window.section]
        return self._sections[key]

    def encode(self, text: str, start: int, end: int, bounds: tuple[int, int], section: str | None) -> tuple[
        list[int], int, int, int
    ]:
        """Wordpiece ids, the opening marker's position and the finding's first/last-plus-one positions."""
        s0, s1 = bounds
        enc = self.backend.encode(text[s0:s1], add_special_tokens=False)
        left: list[int] = []
        inside: list[int] = []
        right: list[int] = []
        a, b = start - s0, end - s0
        for tid, (t0, t1) in zip(enc.ids, enc.offsets, strict=True):
            if t1 <= a:
                left.append(tid)
            elif t0 >= b:
                right.append(tid)
            else:
                inside.append(tid)
        w = self.window
        head = [self.cls, *self._section_ids(section), self.sep, *left[-w.left :]]
        marker = len(head)
        ids = [*head, self.start, *inside[: w.span], self.end, *right[: w.right], self.sep]
        return ids, marker, marker + 1, marker + 1 + len(inside[: w.span])

    def batch(self, rows: Sequence[tuple[list[int], int, int, int]]) -> tuple[torch.Tensor, ...]:
        """Pad encoded rows into ``ids, mask, marker, span`` tensors."""
        width = max(len(r[0]) for r in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        span = torch.zeros((len(rows), width), dtype=torch.long)
        marker = torch.zeros(len(rows), dtype=torch.long)
        for k, (row, mk, s0, s1) in enumerate(rows):
            ids[k, : len(row)] = torch.tensor(row)
            mask[k, : len(row)] = 1
            span[k, s0 : max(s1, s0 + 1)] = 1
            marker[k] = mk
        return ids, mask, marker, span


def build_net(config: dict[str, Any]) -> tuple[AssertionNet, Encoder]:
    """The network and its input encoder from a model ``config.json`` (backbone weights, no trained part yet)."""
    from engine.backbone import load_encoder, load_tokenizer, resolve_backbone

    backbone = resolve_backbone(config.get("backbone"))
    net = AssertionNet(load_encoder(backbone), int(config["layers"]), float(config.get("dropout", 0.1)))
    return net, Encoder(load_tokenizer(backbone), Window(**config.get("window", {})))


class LearnedAssertion:
    """The trained classifier, ready to score findings (CPU or GPU, batched).

    Args:
        folder: The model folder (``config.json`` and ``weights.safetensors``).
        device: Torch device to run on.
    """

    def __init__(self, folder: Path, device: str | torch.device = "cpu") -> None:
        from engine.backbone import load_delta, read_model_config

        self.folder = Path(folder)
        self.config = read_model_config(self.folder, "assertion")
        self.version = str(self.config["version"])
        self.net, self.encoder = build_net(self.config)
        load_delta(self.net, self.folder / str(self.config.get("weights", "weights.safetensors")))
        self.device = torch.device(device)
        self.net.to(self.device).eval()
        self.batch_size = int(self.config.get("batch_size", 64))

    def predict(self, items: Sequence[tuple[str, int, int, tuple[int, int], str | None]]) -> list[dict[str, float]]:
        """Trait probabilities for ``(text, start, end, sentence bounds, section)`` items, in order."""
        rows = [self.encoder.encode(*item) for item in items]
        order = sorted(range(len(rows)), key=lambda k: len(rows[k][0]))
        out: list[dict[str, float]] = [{} for _ in rows]
        with torch.inference_mode():
            for i in range(0, len(order), self.batch_size):
                chunk = order[i : i + self.batch_size]
                tensors = [t.to(self.device) for t in self.encoder.batch([rows[k] for k in chunk])]
                probs = torch.sigmoid(self.net(*tensors).float()).cpu().tolist()
                for k, p in zip(chunk, probs, strict=True):
                    out[k] = dict(zip(TRAITS, p, strict=True))
        return out


class CombinedAssertionStage:
    """Rules first; the classifier adds a trait the rules did not set where it is confident.

    Args:
        rules: The ConText rules stage (:class:`engine.assertion.AssertionStage`).
        model: The trained classifier.
        fill: ``trait -> threshold``: the model adds ``trait`` to a finding the rules left without it when its
            probability is at least the threshold (never to a finding the rules negated or gave to a relative).
        gate: Where it may: ``any``, ``uncued`` or ``cued`` (:func:`gate_allows`); only the findings the gate
            leaves open are scored, so a narrow gate costs little.
    """

    def __init__(self, rules: Any, model: LearnedAssertion, fill: dict[str, float], gate: str = "any") -> None:
        self.rules = rules
        self.model = model
        self.fill = {t: float(v) for t, v in fill.items() if t in TRAITS}
        self.gate = gate
        self.version = f"{rules.version}+{model.version}"
        self.section_traits = rules.section_traits

    def judge(
        self, text: str, spans: Sequence[tuple[int, int]], sections: Sequence[Section] | None = None
    ) -> list[Judgement]:
        """Judge each span as :meth:`engine.assertion.AssertionStage.judge` does, then let the model fill in.

        A trait the model adds has no trigger word: when it becomes the first trait, ``trigger`` is ``None``; a
        rule decision keeps its trigger.
        """
        judgements = self.rules.judge(text, spans, sections)
        if not self.fill:
            return judgements
        open_ = [k for k, j in enumerate(judgements) if needs_model(j.traits, set(), self.fill, "any")]
        if not open_:
            return judgements
        items = self.rules.model_inputs(text, [spans[k] for k in open_], sections)
        cues = [self._cues(item) if self.gate != "any" else set() for item in items]
        todo = [(k, item, cue) for k, item, cue in zip(open_, items, cues, strict=True)
                if needs_model(judgements[k].traits, cue, self.fill, self.gate)]
        if not todo:
            return judgements
        for (k, _, cue), probs in zip(todo, self.model.predict([item for _, item, _ in todo]), strict=True):
            old = judgements[k]
            added = [t for t, threshold in self.fill.items()
                     if t not in old.traits and probs[t] >= threshold and gate_allows(self.gate, t, cue)]
            if added:
                traits = sort_traits([*old.traits, *added])
                trigger = old.trigger if old.traits and traits[0] == old.traits[0] else None
                judgements[k] = Judgement(traits=traits, trigger=trigger)
        return judgements

    def _cues(self, item: tuple[str, int, int, tuple[int, int], str | None]) -> set[str]:
        """Traits a rule cue in the finding's sentence (or its section's trait) could give.

        An instructions section's hypothetical is left out: the rules already give it wherever the finding's clause
        does not say otherwise, and where it does ("You have [heart failure]") the model should not bring it back.
        """
        section = self.section_traits.get(item[4] or "")
        cued = {section} if section and section != "hypothetical" else set()
        return self.rules.sentence_cues(item[0], item[3]) | cued


def gate_allows(gate: str, trait: str, cues: set[str]) -> bool:
    """Whether the combination's ``gate`` lets the model add ``trait`` to a finding whose sentence (or section)
    holds rule cues for ``cues``: ``any`` always, ``uncued`` only where no cue of the trait is there (the rules
    weighed one and said no), ``cued`` only where one is (the model judges that cue's scope)."""
    if gate == "uncued":
        return trait not in cues
    if gate == "cued":
        return trait in cues
    return True


def needs_model(traits: set[str] | Sequence[str], cues: set[str], fill: dict[str, float], gate: str) -> bool:
    """Whether a finding the rules judged ``traits`` must be scored by the model at all under ``fill``/``gate``."""
    if {"negated", "family"} & set(traits):
        return False
    return any(t not in traits and gate_allows(gate, t, cues) for t in fill)


def model_folder(model_dir: Path) -> Path | None:
    """The assertion model folder of a model set, or ``None`` when it has none."""
    folder = Path(model_dir) / MODEL_SUBDIR
    return folder if (folder / "config.json").is_file() else None


def combination(folder: Path) -> dict[str, float]:
    """The ``combine.fill`` thresholds a model folder's ``config.json`` asks for (empty: rules alone)."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return dict(config.get("combine", {}).get("fill", {}))


def combination_gate(folder: Path) -> str:
    """The ``combine.gate`` a model folder's ``config.json`` asks for (``any`` when it names none)."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return str(config.get("combine", {}).get("gate", "any"))


def save_model(net: AssertionNet, config: dict[str, Any], folder: Path) -> int:
    """Write ``config.json`` (labels and the settings that rebuild the network) and the trained weights.

    Returns:
        Size of the weights file in bytes.
    """
    from engine.backbone import save_delta

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {**config, "labels": list(TRAITS), "weights": "weights.safetensors"}
    size = save_delta(net, folder / "weights.safetensors")
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return size
