"""Extractive summariser: a BERTSum-style sentence scorer with chronological output.

Every sentence gets a ``[CLS]`` marker before it and a ``[SEP]`` after it, sentences alternate token type 0/1
("interval segment embeddings"), and a linear head scores each sentence from its ``[CLS]`` state, together with a few
cheap document features (position, length, centrality) that matter a lot when training data is scarce. Notes longer
than the encoder window are packed into several windows of whole sentences, so late sentences are scored too.

The top ``k`` sentences are chosen by score with trigram blocking (a sentence repeating a trigram of one already
chosen is skipped while others remain), then returned in note order with their rank.

Predicting lives here; training (``engine.training.summarizer``) builds the same :class:`SentenceScorer`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine import backbone as bb
from engine.errors import EngineError, ErrorCode
from engine.sentences import split_sentences
from engine.settings import PACKAGED_BACKBONE, Settings
from engine.summarizer_features import (
    FEATURES,
    STOPWORDS_FILE,
    default_k,
    select,
    sentence_features,
    stopwords,
    textrank_scores,
    trigrams,
)
from engine.summarizer_sections import SectionPriors, load_priors
from engine.types import SummarySentence

# Names of engine.summarizer_features are re-exported: training, evaluation and tests import them from here.
__all__ = [
    "DEFAULT_CONFIG",
    "FEATURES",
    "STOPWORDS_FILE",
    "WEIGHTS_FILE",
    "NoteEncoding",
    "SentenceScorer",
    "Summarizer",
    "build_scorer",
    "default_k",
    "encode_sentences",
    "layer_kv",
    "load",
    "pad_windows",
    "read_config",
    "score_encoding",
    "select",
    "sentence_features",
    "sentence_vectors",
    "stopwords",
    "textrank_scores",
    "trigrams",
]

WEIGHTS_FILE = "weights.safetensors"

DEFAULT_CONFIG: dict[str, Any] = {
    "backbone": PACKAGED_BACKBONE,
    "max_length": 512,
    "max_sentence_tokens": 80,
    "trainable_layers": 2,
    "encoder_layers": None,
    "freeze_top_kv": False,
    "features": list(FEATURES[:8]),  # a config without the key predates the TextRank features
    "trigram_blocking": True,
    "max_trigram_overlap": 0.0,
    "default_k": {"ratio": 0.15, "min": 3, "max": 12},
}

_WORD = re.compile(r"\w+")


@dataclass
class NoteEncoding:
    """A note packed into encoder windows of whole sentences.

    Attributes:
        windows: Per window ``(input_ids, token_type_ids, cls_positions, sentence_indices)``.
        n_sentences: Sentences in the note.
        word_counts: Words per sentence.
        sentences: The sentences themselves (for the TextRank features).
    """

    windows: list[tuple[list[int], list[int], list[int], list[int]]] = field(default_factory=list)
    n_sentences: int = 0
    word_counts: list[int] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)


def encode_sentences(
    tokenizer: Any, sentences: Sequence[str], max_length: int, max_sentence_tokens: int
) -> NoteEncoding:
    """Pack sentences into ``[CLS] s1 [SEP] [CLS] s2 [SEP] ...`` windows of at most ``max_length`` tokens.

    Each sentence is cut to ``max_sentence_tokens`` word pieces (its ``[CLS]`` still sees its opening, the part
    that says the most); token types alternate 0/1 per sentence within a window.
    """
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    per_sentence = max(1, min(max_sentence_tokens, max_length - 2))
    pieces = tokenizer(list(sentences), add_special_tokens=False, truncation=False)["input_ids"] if sentences else []
    enc = NoteEncoding(
        n_sentences=len(sentences), word_counts=[len(_WORD.findall(s)) for s in sentences], sentences=list(sentences)
    )
    ids: list[int] = []
    types: list[int] = []
    cls_pos: list[int] = []
    idx: list[int] = []
    for i, toks in enumerate(pieces):
        toks = toks[:per_sentence]
        need = len(toks) + 2
        if ids and len(ids) + need > max_length:
            enc.windows.append((ids, types, cls_pos, idx))
            ids, types, cls_pos, idx = [], [], [], []
        t = len(cls_pos) % 2
        cls_pos.append(len(ids))
        idx.append(i)
        ids.extend([cls_id, *toks, sep_id])
        types.extend([t] * need)
    if ids:
        enc.windows.append((ids, types, cls_pos, idx))
    return enc


def pad_windows(
    windows: Sequence[tuple[list[int], list[int], list[int], list[int]]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad windows into ``(input_ids, token_type_ids, attention_mask)`` tensors."""
    width = max(len(w[0]) for w in windows)
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
    types = torch.zeros((len(windows), width), dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    for r, (i, t, _, _) in enumerate(windows):
        ids[r, : len(i)] = torch.tensor(i)
        types[r, : len(t)] = torch.tensor(t)
        mask[r, : len(i)] = 1
    return ids, types, mask


def _extended_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def layer_kv(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values of one window ``x`` ``[t, hidden]`` as ``[heads, t, head size]``."""
    att = layer.attention.self
    heads, size = att.num_attention_heads, att.attention_head_size
    k = att.key(x).view(x.shape[0], heads, size).transpose(0, 1)
    v = att.value(x).view(x.shape[0], heads, size).transpose(0, 1)
    return k, v


def _layer_at(
    layer: nn.Module,
    h: torch.Tensor,
    ext: torch.Tensor,
    positions: list[int],
    kv: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """One BERT layer evaluated only at ``positions`` of a single window ``h`` ``[1, t, hidden]``."""
    att = layer.attention.self
    heads, size = att.num_attention_heads, att.attention_head_size
    x = h[0]
    q_in = x[positions]
    q = att.query(q_in).view(len(positions), heads, size).transpose(0, 1)
    k, v = kv if kv is not None else layer_kv(layer, x)
    scores = q @ k.transpose(1, 2) * size**-0.5 + ext[0]
    probs = att.dropout(torch.softmax(scores, dim=-1))
    ctx = (probs @ v).transpose(0, 1).reshape(len(positions), heads * size)
    attn = layer.attention.output(ctx, q_in)
    return layer.output(layer.intermediate(attn), attn)


class SentenceScorer(nn.Module):
    """Encoder plus a per-sentence head on ``[CLS]`` states and document features.

    The encoder is split at ``frozen_layers``: the lower part (embeddings and the first layers) is frozen, so its
    output can be cached during training; the upper layers and the head are trained.

    Args:
        encoder: A BERT-style ``AutoModel``.
        trainable_layers: How many top transformer layers are trained.
        n_features: Width of the document features.
        freeze_top_kv: With one trained layer, keep its key and value projections frozen.
        feature_names: Names of the features (see :func:`sentence_features`); default the first ``n_features``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        trainable_layers: int,
        n_features: int,
        freeze_top_kv: bool = False,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.feature_names = tuple(feature_names) if feature_names is not None else FEATURES[:n_features]
        layers = self.layers
        self.frozen_layers = max(0, len(layers) - trainable_layers)
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(hidden, 1)
        self.feature_head = nn.Linear(n_features, 1, bias=False)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        nn.init.zeros_(self.feature_head.weight)
        for p in self.encoder.parameters():
            p.requires_grad = False
        for layer in layers[self.frozen_layers :]:
            for p in layer.parameters():
                p.requires_grad = True
        if freeze_top_kv and trainable_layers == 1 and len(layers):
            # With the top layer's keys/values frozen, training computes them once per note (see
            # engine.training.summarizer) and each step only runs the [CLS] path: about ten times cheaper on CPU.
            att = layers[-1].attention.self
            for p in [*att.key.parameters(), *att.value.parameters()]:
                p.requires_grad = False

    @property
    def layers(self) -> nn.ModuleList:
        """The encoder's transformer layers."""
        return self.encoder.encoder.layer

    def lower(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Embeddings and frozen layers: ``[b, t, hidden]``."""
        h = self.encoder.embeddings(input_ids=ids, token_type_ids=types)
        ext = _extended_mask(mask, h.dtype)
        for layer in self.layers[: self.frozen_layers]:
            out = layer(h, ext)
            h = out[0] if isinstance(out, tuple) else out
        return h

    def upper(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Trained layers on top of :meth:`lower`'s output: ``[b, t, hidden]``."""
        ext = _extended_mask(mask, h.dtype)
        for layer in self.layers[self.frozen_layers :]:
            out = layer(h, ext)
            h = out[0] if isinstance(out, tuple) else out
        return h

    def upper_at(
        self,
        h: torch.Tensor,
        mask: torch.Tensor,
        positions: Sequence[Sequence[int]],
        kv: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> list[torch.Tensor]:
        """Trained layers, but the last one only at ``positions`` (the ``[CLS]`` tokens) of each window.

        The head reads nothing else, so the top layer's queries, attention output and feed-forward are computed for
        one token per sentence instead of all of them (keys and values still see every token): the same result
        as :meth:`upper` at those positions, several times cheaper.

        Args:
            h: :meth:`lower`'s output.
            mask: Attention mask of the windows.
            positions: Per window, the token positions to compute.
            kv: Per window, precomputed keys and values of the top layer (training with them frozen).

        Returns:
            Per window, ``[len(positions[w]), hidden]``.
        """
        layers = self.layers[self.frozen_layers :]
        if len(layers) == 0:
            return [h[w, list(p)] for w, p in enumerate(positions)]
        ext = _extended_mask(mask, h.dtype)
        for layer in layers[:-1]:
            out = layer(h, ext)
            h = out[0] if isinstance(out, tuple) else out
        return [
            _layer_at(layers[-1], h[w : w + 1], ext[w : w + 1], list(p), None if kv is None else kv[w])
            for w, p in enumerate(positions)
        ]

    def score(self, cls_states: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Logit per sentence from its ``[CLS]`` state ``[n, hidden]`` and features ``[n, f]``."""
        return self.head(self.dropout(cls_states)).squeeze(-1) + self.feature_head(features).squeeze(-1)


def sentence_vectors(
    windows: Sequence[tuple[list[int], list[int], list[int], list[int]]], lower: torch.Tensor
) -> torch.Tensor:
    """Mean of each sentence's word-piece states in ``lower`` ``[len(windows), t, hidden]``, in sentence order."""
    rows = []
    for w, (ids, _, cls_pos, _) in enumerate(windows):
        ends = [*cls_pos[1:], len(ids)]
        for p, e in zip(cls_pos, ends, strict=True):
            rows.append(lower[w, p + 1 : max(p + 2, e - 1)].mean(0))
    return torch.stack(rows)


def read_config(model_dir: Path) -> dict[str, Any]:
    """The model folder's ``config.json`` merged over :data:`DEFAULT_CONFIG`."""
    config = bb.read_model_config(model_dir, "summarizer")
    return {**DEFAULT_CONFIG, **config}


def build_scorer(config: dict[str, Any]) -> tuple[Any, SentenceScorer]:
    """Tokenizer and an untrained :class:`SentenceScorer` for ``config`` (backbone weights loaded)."""
    backbone = bb.resolve_backbone(config.get("backbone"))
    tokenizer = bb.load_tokenizer(backbone)
    encoder = bb.load_encoder(backbone)
    keep = config.get("encoder_layers")
    if keep:  # a shallower encoder: the first ``keep`` layers (faster on CPU)
        encoder.encoder.layer = encoder.encoder.layer[: int(keep)]
        encoder.config.num_hidden_layers = int(keep)
    if int(getattr(encoder.config, "type_vocab_size", 1)) < 2:
        raise EngineError(ErrorCode.MODEL_INVALID, f"backbone {backbone} has no segment (token type) embeddings")
    names = list(config.get("features", DEFAULT_CONFIG["features"]))
    model = SentenceScorer(
        encoder,
        int(config["trainable_layers"]),
        len(names),
        freeze_top_kv=bool(config.get("freeze_top_kv", False)),
        feature_names=names,
    )
    return tokenizer, model


class Summarizer:
    """The summariser stage.

    Args:
        model_dir: A folder with ``config.json`` and ``weights.safetensors``.
        device: Where to run.
        max_length: Upper bound on the encoder window (tokens).
        batch_size: Windows per forward pass on a GPU (on CPU windows run one at a time, unpadded).
        priors: Section priors for clinical notes (:mod:`engine.summarizer_sections`); ``None`` scores every
            sentence by the model alone.
    """

    def __init__(
        self,
        model_dir: Path,
        device: torch.device,
        max_length: int = 512,
        batch_size: int = 16,
        priors: SectionPriors | None = None,
    ) -> None:
        self.priors = priors
        self.config = read_config(model_dir)
        self.version = str(self.config.get("version", "unknown"))
        self.device = device
        self.tokenizer, self.model = build_scorer(self.config)
        bb.load_delta(self.model, model_dir / WEIGHTS_FILE)
        self.model.to(device).eval()
        limit = int(getattr(self.model.encoder.config, "max_position_embeddings", 512))
        self.max_length = min(int(self.config["max_length"]), max_length, limit)
        # On CPU a padded position costs as much as a real one and batching windows buys no speed, so each window
        # runs alone at its own length (the last window of a note is often far shorter than the others).
        self.batch_size = 1 if device.type == "cpu" else max(1, batch_size)

    def score_sentences(self, sentences: Sequence[str]) -> list[float]:
        """Salience logits, one per sentence."""
        if not sentences:
            return []
        enc = encode_sentences(self.tokenizer, sentences, self.max_length, int(self.config["max_sentence_tokens"]))
        return score_encoding(self.model, enc, self.tokenizer.pad_token_id, self.device, self.batch_size).tolist()

    def summarize(self, text: str, k: int | None = None) -> list[SummarySentence]:
        """The ``k`` most salient sentences of ``text``, verbatim, in note order.

        Args:
            text: The note.
            k: Sentences wanted; ``None`` for :func:`default_k` of the note's length. More than the note has
                returns them all; ``0`` returns none.
        """
        spans = split_sentences(text)
        if not spans:
            return []
        texts = [text[s:e] for s, e in spans]
        if k is None:
            dk = self.config.get("default_k", {})
            k = default_k(len(spans), float(dk.get("ratio", 0.15)), int(dk.get("min", 3)), int(dk.get("max", 12)))
        k = max(0, min(int(k), len(spans)))
        if k == 0:
            return []
        logits = self.score_sentences(texts)
        adjusted = self.priors.adjust(text, spans, logits) if self.priors is not None else list(logits)
        allowed = [i for i, x in enumerate(adjusted) if x is not None]
        picked = select(
            [adjusted[i] for i in allowed],
            [texts[i] for i in allowed],
            min(k, len(allowed)),
            bool(self.config.get("trigram_blocking", True)),
            float(self.config.get("max_trigram_overlap", 0.0)),
        )
        chosen = [allowed[j] for j in picked]
        out = [
            SummarySentence(
                start=spans[i][0],
                end=spans[i][1],
                text=texts[i],
                score=1.0 / (1.0 + math.exp(-float(adjusted[i]))),
                rank=rank,
            )
            for rank, i in enumerate(chosen, start=1)
        ]
        return sorted(out, key=lambda s: s.start)


def score_encoding(
    model: SentenceScorer, enc: NoteEncoding, pad_id: int, device: torch.device, batch_size: int = 16
) -> torch.Tensor:
    """Logits for every sentence of an encoded note (inference)."""
    cls_parts: list[torch.Tensor] = []
    vec_parts: list[torch.Tensor] = []
    with bb.inference_mode(model), bb.autocast(device):
        for b in range(0, len(enc.windows), batch_size):
            windows = enc.windows[b : b + batch_size]
            ids, types, mask = (t.to(device) for t in pad_windows(windows, pad_id))
            low = model.lower(ids, types, mask)
            cls_parts.extend(s.float() for s in model.upper_at(low, mask, [w[2] for w in windows]))
            vec_parts.append(sentence_vectors(windows, low.float()))
        feats = sentence_features(enc.word_counts, torch.cat(vec_parts).cpu(), enc.sentences, model.feature_names)
        feats = feats.to(device)
        return model.score(torch.cat(cls_parts), feats).float().cpu()


def load(settings: Settings) -> Summarizer:
    """Stage factory: the summariser in ``settings.model_dir / "summarizer"``."""
    from engine.sections import load as load_sections

    device = bb.resolve_device(settings.device)
    return Summarizer(
        Path(settings.model_dir) / "summarizer",
        device,
        max_length=settings.window_tokens,
        batch_size=settings.batch_size,
        priors=load_priors(Path(settings.rules_dir), load_sections(settings)),
    )
