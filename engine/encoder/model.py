"""The plain-PyTorch BERT modules: configuration, embeddings, attention, layers, encoder, token classifier.

Module, attribute and parameter names mirror ``transformers``' ``BertModel`` / ``BertForTokenClassification``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict, Unpack

import torch
from torch import nn
from torch.nn import functional as F

BERT_MODEL_TYPES = frozenset({"bert"})
"""``config.json`` ``model_type`` values this module runs natively."""

_ACTIVATIONS: dict[str, Any] = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}

_CONFIG_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "classifier_dropout": None,
    "is_decoder": False,
    "add_cross_attention": False,
}


class BertConfig:
    """The folder's ``config.json`` as attributes, with ``transformers``' BERT defaults for absent keys.

    Attributes are plain and writable (the summariser shortens ``num_hidden_layers``); :meth:`to_dict` gives the
    dictionary back, e.g. for ``transformers.BertConfig(**config.to_dict())``.
    """

    def __init__(self, **values: Any) -> None:
        for key, value in {**_CONFIG_DEFAULTS, **values}.items():
            setattr(self, key, value)
        self.model_type = str(values.get("model_type", "bert"))
        id2label = values.get("id2label")
        if id2label:
            self.id2label = {int(k): str(v) for k, v in dict(id2label).items()}
            self.label2id = {v: k for k, v in self.id2label.items()}

    @classmethod
    def from_folder(cls, folder: Path) -> BertConfig:
        """Read ``folder/config.json``."""
        return cls(**json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")))

    @property
    def num_labels(self) -> int:
        """Number of token labels (``len(id2label)``; 2 when there are none, as in ``transformers``)."""
        return len(getattr(self, "id2label", {})) or 2

    def to_dict(self) -> dict[str, Any]:
        """All attributes as a JSON-able dictionary."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        return f"BertConfig({self.to_dict()!r})"


class ModelOutput(dict):
    """Named outputs readable as attributes (``out.logits``) or, like ``transformers``' outputs, by position."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int):
            return [v for v in self.values() if v is not None][key]
        return super().__getitem__(key)


# ----- the model ------------------------------------------------------------------------------------------------
_LOADING = threading.local()


class Linear(nn.Linear):
    """``nn.Linear`` that skips its random initialisation while a checkpoint is being loaded into it."""

    def reset_parameters(self) -> None:
        if not getattr(_LOADING, "active", False):
            super().reset_parameters()


class Embedding(nn.Embedding):
    """``nn.Embedding`` that skips its random initialisation while a checkpoint is being loaded into it."""

    def reset_parameters(self) -> None:
        if not getattr(_LOADING, "active", False):
            super().reset_parameters()


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` that skips its initialisation while a checkpoint is being loaded into it."""

    def reset_parameters(self) -> None:
        if not getattr(_LOADING, "active", False):
            super().reset_parameters()


@contextlib.contextmanager
def _loading() -> Iterator[None]:
    # Random initialisation of weights the checkpoint overwrites anyway costs most of a second on 2 cores
    # (and the meta device, the usual way round it, imports torch._dynamo: seconds). Thread-local: a model
    # built meanwhile in another thread is initialised as usual.
    previous = getattr(_LOADING, "active", False)
    _LOADING.active = True
    try:
        yield
    finally:
        _LOADING.active = previous


class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, LayerNorm, dropout."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[batch, tokens, hidden]`` embeddings (token types default to 0, positions to ``0..tokens-1``)."""
        embeds = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        length = embeds.shape[1]
        if position_ids is None:
            position_ids = torch.arange(length, device=embeds.device)[None, :]
        if token_type_ids is None:
            types = self.token_type_embeddings.weight[0]
        else:
            types = self.token_type_embeddings(token_type_ids)
        embeddings = embeds + types + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertSelfAttention(nn.Module):
    """Multi-head self-attention: ``query``/``key``/``value`` projections and scaled dot-product attention."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"hidden size {config.hidden_size} is not a multiple of {config.num_attention_heads}")
        self.num_attention_heads = int(config.num_attention_heads)
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.scaling = self.attention_head_size**-0.5
        self.query = Linear(config.hidden_size, self.all_head_size)
        self.key = Linear(config.hidden_size, self.all_head_size)
        self.value = Linear(config.hidden_size, self.all_head_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, None]:
        """Context ``[batch, tokens, all_head_size]`` (and ``None`` for the weights, as ``transformers``' SDPA path).

        Args:
            hidden_states: ``[batch, tokens, hidden]``.
            attention_mask: Broadcastable to ``[batch, heads, tokens, tokens]``: boolean (``True`` attends) or
                additive (``0`` / a large negative number), or ``None`` for no padding.
        """
        shape = (*hidden_states.shape[:-1], self.num_attention_heads, self.attention_head_size)
        q = self.query(hidden_states).view(shape).transpose(1, 2)
        k = self.key(hidden_states).view(shape).transpose(1, 2)
        v = self.value(hidden_states).view(shape).transpose(1, 2)
        if attention_mask is not None and attention_mask.dtype != torch.bool:
            attention_mask = attention_mask.to(q.dtype)
        ctx = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attention_mask,
            dropout_p=self.dropout.p if self.training else 0.0,
            scale=self.scaling,
        )
        return ctx.transpose(1, 2).reshape(*hidden_states.shape[:-1], self.all_head_size), None


class BertSelfOutput(nn.Module):
    """Projection back to the hidden size, dropout, residual and LayerNorm: ``forward(x, layer_input)``.

    Serves both places ``transformers`` has it (``attention.output`` from the hidden size, ``output`` from the
    feed-forward size), so parameter names stay ``dense`` and ``LayerNorm`` in both.
    """

    def __init__(self, config: BertConfig, in_features: int | None = None) -> None:
        super().__init__()
        self.dense = Linear(in_features or config.hidden_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BertAttention(nn.Module):
    """``self`` (:class:`BertSelfAttention`) then ``output`` (:class:`BertSelfOutput`)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, None]:
        ctx, weights = self.self(hidden_states, attention_mask)
        return self.output(ctx, hidden_states), weights


class BertIntermediate(nn.Module):
    """Feed-forward up-projection and activation."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = _ACTIVATIONS[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class BertLayer(nn.Module):
    """One transformer layer; ``layer(hidden, mask)`` returns the new hidden states (a tensor, as in
    ``transformers`` 5)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertSelfOutput(config, config.intermediate_size)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        attention_output, _ = self.attention(hidden_states, attention_mask)
        return self.output(self.intermediate(attention_output), attention_output)


class BertEncoder(nn.Module):
    """The stack of layers, ``encoder.layer[i]``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> ModelOutput:
        for layer in self.layer:
            hidden_states = layer(hidden_states, attention_mask)
        return ModelOutput(last_hidden_state=hidden_states)


class BertPooler(nn.Module):
    """``tanh(dense(first token))``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))


def attention_bias(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """A ``[batch, 1, 1, tokens]`` boolean mask (``True`` attends) from a 0/1 padding mask; ``None`` without
    padding, which lets ``scaled_dot_product_attention`` take its fastest kernel."""
    if attention_mask is None:
        return None
    if attention_mask.dim() == 4:
        return attention_mask
    keep = attention_mask.bool()
    if bool(keep.all()):
        return None
    return keep[:, None, None, :]


class EmbeddingInputs(TypedDict, total=False):
    """The keyword inputs of :meth:`BertEmbeddings.forward` (``transformers``' names), which the encoder passes on."""

    input_ids: torch.Tensor | None
    token_type_ids: torch.Tensor | None
    position_ids: torch.Tensor | None
    inputs_embeds: torch.Tensor | None


class EncoderInputs(EmbeddingInputs, total=False):
    """The keyword inputs of :meth:`BertModel.forward`, which the token classifier passes on."""

    attention_mask: torch.Tensor | None


class BertModel(nn.Module):
    """The bare encoder (``transformers``' ``BertModel``): ``model(input_ids=..., attention_mask=...)`` gives
    ``last_hidden_state`` (and ``pooler_output`` when the model has a pooler)."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None

    def get_input_embeddings(self) -> nn.Embedding:
        """The word embeddings."""
        return self.embeddings.word_embeddings

    def forward(
        self, *, attention_mask: torch.Tensor | None = None, **inputs: Unpack[EmbeddingInputs]
    ) -> ModelOutput:
        # The other inputs pass through to the embeddings as they are: BertEmbeddings.forward defines them.
        hidden = self.embeddings(**inputs)
        hidden = self.encoder(hidden, attention_bias(attention_mask)).last_hidden_state
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return ModelOutput(last_hidden_state=hidden, pooler_output=pooled)


class BertForTokenClassification(nn.Module):
    """``bert`` (a :class:`BertModel` without pooler), ``dropout`` and a linear ``classifier``:
    ``model(input_ids=..., attention_mask=...).logits`` is ``[batch, tokens, num_labels]``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = Linear(config.hidden_size, config.num_labels)

    @property
    def base_model(self) -> BertModel:
        """The encoder (``transformers``' ``base_model``)."""
        return self.bert

    def get_input_embeddings(self) -> nn.Embedding:
        """The word embeddings."""
        return self.bert.get_input_embeddings()

    def forward(self, *, labels: torch.Tensor | None = None, **inputs: Unpack[EncoderInputs]) -> ModelOutput:
        # The encoder's inputs pass through as they are (EncoderInputs).
        hidden = self.bert(**inputs).last_hidden_state
        logits = self.classifier(self.dropout(hidden))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return ModelOutput(loss=loss, logits=logits)

