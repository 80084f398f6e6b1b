"""A plain-PyTorch BERT encoder and fast tokenizer for inference, without importing ``transformers``.

Importing ``transformers`` and building its BERT classes cost about 4.5 s of the engine's 7.9 s cold start on the
2-core CPU (issue #9). The engine only ever runs BERT-family encoders (all-MiniLM-L6-v2, SciBERT,
BioClinicalBERT, PubMedBERT are all ``model_type: bert``), so this module implements exactly that: embeddings,
post-LayerNorm self-attention layers (``scaled_dot_product_attention``), GELU feed-forward, an optional pooler
and a token-classification head, built from a local Hugging Face folder's ``config.json`` and weights
(``model.safetensors``, or ``pytorch_model.bin`` read with ``weights_only=True``). The tokenizer is the folder's
``tokenizer.json`` (or ``vocab.txt``) run by the ``tokenizers`` library directly.

Module, attribute and parameter names mirror ``transformers``' ``BertModel`` / ``BertForTokenClassification``
exactly (``bert.encoder.layer.0.attention.self.query.weight``, ``layer.attention.self.num_attention_heads``,
``layer.attention.output(ctx, input)``, ...), so stored deltas (:func:`engine.backbone.load_delta`), the
summariser's per-layer code and state dicts move between the two unchanged; :func:`to_transformers` builds the
``transformers`` twin of a model when one is needed (``transformers.pipeline``, comparisons).

A folder this module does not cover (another ``model_type``, another position embedding, an unknown activation,
weights with other names) makes the loaders return ``None``; :mod:`engine.backbone` then uses ``transformers``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

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
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> ModelOutput:
        hidden = self.embeddings(
            input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids, inputs_embeds=inputs_embeds
        )
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

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> ModelOutput:
        hidden = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
        ).last_hidden_state
        logits = self.classifier(self.dropout(hidden))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return ModelOutput(loss=loss, logits=logits)


# ----- loading --------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        return {}


def supports(folder: Path) -> bool:
    """Whether the encoder in ``folder`` can run natively here (BERT family, absolute positions, known
    activation, an encoder not a decoder, weights present)."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    return (
        config.get("model_type") in BERT_MODEL_TYPES
        and config.get("position_embedding_type", "absolute") == "absolute"
        and isinstance(config.get("hidden_act", "gelu"), str)
        and config.get("hidden_act", "gelu") in _ACTIVATIONS
        and not config.get("is_decoder", False)
        and not config.get("add_cross_attention", False)
        and _weights_file(folder) is not None
    )


def _weights_file(folder: Path) -> Path | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors under ``transformers``' current names (old ``gamma``/``beta`` LayerNorm names
    renamed), without the ``bert.`` prefix of checkpoints saved from a task model."""
    path = _weights_file(Path(folder))
    if path is None:
        raise FileNotFoundError(f"{folder} has neither model.safetensors nor pytorch_model.bin")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        raw = load_file(str(path))
    else:
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in raw.items():
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        out[key] = tensor
    return out


def _split_state(raw: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(encoder tensors without prefix, task-head tensors)`` of a checkpoint."""
    encoder: dict[str, torch.Tensor] = {}
    head: dict[str, torch.Tensor] = {}
    prefixed = any(k.startswith("bert.") for k in raw)
    for key, tensor in raw.items():
        if prefixed:
            if key.startswith("bert."):
                encoder[key[len("bert.") :]] = tensor
            else:
                head[key] = tensor
        else:
            encoder[key] = tensor
    return encoder, head


def _load_state(model: nn.Module, state: Mapping[str, torch.Tensor], allowed_missing: Sequence[str]) -> list[str]:
    """Load ``state`` (fp32) into ``model`` built under :func:`_loading`; return the parameters it lacks.

    Raises:
        KeyError: A parameter outside the ``allowed_missing`` prefixes is missing, or a shape differs.
    """
    own = dict(model.named_parameters())
    for name, tensor in state.items():
        if name in own and own[name].shape != tensor.shape:
            raise KeyError(f"shape mismatch for {name}: {tuple(tensor.shape)} vs {tuple(own[name].shape)}")
    result = model.load_state_dict({k: v.float() for k, v in state.items() if k in own}, strict=False, assign=True)
    bad = [name for name in result.missing_keys if not name.startswith(tuple(allowed_missing))]
    if bad:
        raise KeyError(f"checkpoint lacks {bad[:3]}")
    return list(result.missing_keys)


def _init_linear(linear: nn.Linear, std: float) -> None:
    # transformers' BERT initialisation of a new linear layer: N(0, initializer_range), zero bias.
    with torch.no_grad():
        linear.weight.normal_(0.0, std)
        linear.bias.zero_()


def load_bert(folder: Path) -> BertModel | None:
    """The bare pretrained encoder of a local folder (fp32, eval mode), or ``None`` when not supported here.

    The pooler is kept when the checkpoint has one (as ``transformers``' ``AutoModel`` does).
    """
    folder = Path(folder)
    if not supports(folder):
        return None
    config = BertConfig.from_folder(folder)
    encoder_state, _ = _split_state(read_weights(folder))
    has_pooler = any(k.startswith("pooler.") for k in encoder_state)
    with _loading():
        model = BertModel(config, add_pooling_layer=has_pooler)
    try:
        _load_state(model, encoder_state, ())
    except KeyError:
        return None
    return model.eval()


def load_token_classifier(
    folder: Path, id2label: Sequence[str], classifier_dropout: float | None = None
) -> BertForTokenClassification | None:
    """A token classifier on the pretrained encoder of ``folder`` with a new head for ``id2label`` (fp32, eval
    mode), or ``None`` when not supported here.

    The head is initialised as ``transformers`` does (normal with ``initializer_range``, zero bias), unless the
    checkpoint already holds a classifier of the right shape.
    """
    folder = Path(folder)
    if not supports(folder):
        return None
    values = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    values["id2label"] = dict(enumerate(id2label))
    if classifier_dropout is not None:
        values["classifier_dropout"] = classifier_dropout
    config = BertConfig(**values)
    encoder_state, head_state = _split_state(read_weights(folder))
    state = {f"bert.{k}": v for k, v in encoder_state.items() if not k.startswith("pooler.")}
    classifier = {k: v for k, v in head_state.items() if k.startswith("classifier.")}
    if classifier.get("classifier.weight") is not None and classifier["classifier.weight"].shape[0] == len(id2label):
        state.update(classifier)
    with _loading():
        model = BertForTokenClassification(config)
    try:
        missing = _load_state(model, state, ("classifier.",))
    except KeyError:
        return None
    if missing:
        _init_linear(model.classifier, float(config.initializer_range))
    return model.eval()


def to_transformers(model: nn.Module) -> nn.Module:
    """The ``transformers`` twin of a plain model (same class name, configuration and weights), e.g. for
    ``transformers.pipeline``. A ``transformers`` model is returned as it is."""
    if not isinstance(model, BertModel | BertForTokenClassification):
        return model
    import transformers

    config = transformers.BertConfig(**model.config.to_dict())
    if isinstance(model, BertForTokenClassification):
        twin = transformers.BertForTokenClassification(config)
    else:
        twin = transformers.BertModel(config, add_pooling_layer=model.pooler is not None)
    twin.load_state_dict(model.state_dict(), strict=True)
    first = next(model.parameters())
    return twin.to(first.device, first.dtype).train(model.training)


# ----- the tokenizer ---------------------------------------------------------------------------------------------
_SPECIAL_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_BERT_SPECIALS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
_TOKENIZER_CLASSES = {None, "BertTokenizer", "BertTokenizerFast"}


class BatchEncoding(dict):
    """Tokenizer output: ``input_ids``, ``token_type_ids``, ``attention_mask`` (and ``offset_mapping`` when
    asked), as lists or, with ``return_tensors="pt"``, tensors; ``.to(device)`` moves the tensors."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def to(self, device: str | torch.device) -> BatchEncoding:
        """Move every tensor to ``device`` (in place); returns ``self``."""
        for key, value in self.items():
            if isinstance(value, torch.Tensor):
                self[key] = value.to(device)
        return self


class FastTokenizer:
    """A BERT word-piece tokenizer on the ``tokenizers`` library, called like ``transformers``' fast tokenizers
    for what the engine uses (single texts or lists, special tokens, padding, truncation, offsets, tensors).

    Attributes:
        backend_tokenizer: The ``tokenizers.Tokenizer``.
        model_max_length: Length ``truncation=True`` cuts to when no ``max_length`` is given.
        name_or_path: The folder it was loaded from.
    """

    def __init__(self, backend: Any, special_tokens: Mapping[str, str], model_max_length: int, name_or_path: str):
        self.backend_tokenizer = backend
        self.model_max_length = int(model_max_length)
        self.name_or_path = name_or_path
        self.padding_side = "right"
        for name in _SPECIAL_NAMES:
            setattr(self, name, special_tokens.get(name))
        self._lock = threading.Lock()
        # A tokenizer.json may carry padding/truncation settings (all-MiniLM-L6-v2's pads and cuts to 128):
        # transformers resets them on every call, here they are off unless a call asks for them.
        backend.no_padding()
        backend.no_truncation()
        self._truncation: int | None = None

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self.backend_tokenizer.token_to_id(token)

    @property
    def unk_token_id(self) -> int | None:
        return self._id(self.unk_token)

    @property
    def sep_token_id(self) -> int | None:
        return self._id(self.sep_token)

    @property
    def pad_token_id(self) -> int | None:
        return self._id(self.pad_token)

    @property
    def cls_token_id(self) -> int | None:
        return self._id(self.cls_token)

    @property
    def mask_token_id(self) -> int | None:
        return self._id(self.mask_token)

    @property
    def vocab_size(self) -> int:
        """Vocabulary size without added tokens."""
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int | None] | None:
        """Id of a token (or of each token); unknown tokens get the unknown token's id."""
        if isinstance(tokens, str):
            found = self._id(tokens)
            return self.unk_token_id if found is None else found
        return [self.convert_tokens_to_ids(t) for t in tokens]  # type: ignore[misc]

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str | None] | None:
        """Token of an id (or of each id)."""
        if isinstance(ids, int):
            return self.backend_tokenizer.id_to_token(ids)
        return [self.backend_tokenizer.id_to_token(int(i)) for i in ids]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of token ids (word pieces joined)."""
        return self.backend_tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of ``text`` (no special tokens)."""
        return self.backend_tokenizer.encode(text, add_special_tokens=False).tokens

    def __call__(
        self,
        text: str | Sequence[str],
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_offsets_mapping: bool = False,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Tokenise one text or a list of texts.

        Args:
            text: A string, or a list of strings (a batch).
            add_special_tokens: Add ``[CLS]`` ... ``[SEP]``.
            padding: ``True``/``"longest"`` pads a batch to its longest row; ``"max_length"`` to ``max_length``.
            truncation: ``True``/``"longest_first"`` cuts rows to ``max_length`` (or ``model_max_length``),
                special tokens included.
            max_length: See ``padding`` and ``truncation``.
            return_tensors: ``"pt"`` for ``torch`` tensors, ``None`` for lists.
            return_offsets_mapping: Also return each token's ``(start, end)`` character offsets.
            return_token_type_ids: Include ``token_type_ids`` (default yes).
            return_attention_mask: Include ``attention_mask`` (default yes).
            verbose: Accepted for compatibility; nothing is logged.

        Raises:
            ValueError: Tensors asked for rows of unequal length without padding, or unknown options.
        """
        del verbose
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors={return_tensors!r} is not supported (use 'pt' or None)")
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        cut: int | None = None
        if truncation not in (None, False, "do_not_truncate"):
            if truncation not in (True, "longest_first", "only_first"):
                raise ValueError(f"truncation={truncation!r} is not supported")
            cut = int(max_length if max_length is not None else self.model_max_length)
        with self._lock:
            if cut != self._truncation:
                if cut is None:
                    self.backend_tokenizer.no_truncation()
                else:
                    self.backend_tokenizer.enable_truncation(cut)
                self._truncation = cut
            encodings = (
                [self.backend_tokenizer.encode(texts[0], add_special_tokens=add_special_tokens)]
                if len(texts) == 1
                else self.backend_tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
            )
        rows_ids = [e.ids for e in encodings]
        rows_types = [e.type_ids for e in encodings]
        rows_offsets = [e.offsets for e in encodings]
        rows_mask = [[1] * len(r) for r in rows_ids]
        width: int | None = None
        if padding in (True, "longest"):
            width = max((len(r) for r in rows_ids), default=0)
        elif padding == "max_length":
            width = int(max_length if max_length is not None else self.model_max_length)
        elif padding not in (False, None, "do_not_pad"):
            raise ValueError(f"padding={padding!r} is not supported")
        if width is not None:
            pad_id = self.pad_token_id
            if pad_id is None:
                raise ValueError(f"{self.name_or_path}: no pad token to pad with")
            for row in range(len(rows_ids)):
                extra = width - len(rows_ids[row])
                if extra > 0:
                    rows_ids[row] = rows_ids[row] + [pad_id] * extra
                    rows_types[row] = rows_types[row] + [0] * extra
                    rows_mask[row] = rows_mask[row] + [0] * extra
                    rows_offsets[row] = rows_offsets[row] + [(0, 0)] * extra
        out = BatchEncoding(input_ids=rows_ids)
        if return_token_type_ids is not False:
            out["token_type_ids"] = rows_types
        if return_attention_mask is not False:
            out["attention_mask"] = rows_mask
        if return_offsets_mapping:
            out["offset_mapping"] = rows_offsets
        if return_tensors == "pt":
            lengths = {len(r) for r in rows_ids}
            if len(lengths) > 1:
                raise ValueError("rows of unequal length: pass padding=True to get tensors")
            for key, rows in list(out.items()):
                out[key] = torch.tensor(rows, dtype=torch.long)
                if key == "offset_mapping":
                    out[key] = out[key].reshape(len(rows), -1, 2)
        elif single:
            for key, rows in list(out.items()):
                out[key] = rows[0]
        return out


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return None if value is None else str(value)


def supports_tokenizer(folder: Path) -> bool:
    """Whether ``folder``'s tokenizer can be run here: a BERT-family word-piece tokenizer with a
    ``tokenizer.json`` or ``vocab.txt``."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    tok_config = _read_json(folder / "tokenizer_config.json")
    return (
        config.get("model_type") in BERT_MODEL_TYPES
        and tok_config.get("tokenizer_class") in _TOKENIZER_CLASSES
        and ((folder / "tokenizer.json").is_file() or (folder / "vocab.txt").is_file())
    )


def load_tokenizer(folder: Path) -> FastTokenizer | None:
    """The folder's word-piece tokenizer, built as ``transformers`` 5 builds ``BertTokenizer``: the vocabulary
    and post-processor of ``tokenizer.json`` (else ``vocab.txt``), a ``BertNormalizer`` set from
    ``tokenizer_config.json`` (``do_lower_case``, ``strip_accents``, ``tokenize_chinese_chars``), the special
    tokens of ``special_tokens_map.json``. ``None`` when not supported here (see :func:`supports_tokenizer`)."""
    folder = Path(folder)
    if not supports_tokenizer(folder):
        return None
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    tok_config = _read_json(folder / "tokenizer_config.json")
    special_map = _read_json(folder / "special_tokens_map.json")
    specials = {
        name: _token_text(special_map.get(name, tok_config.get(name, _BERT_SPECIALS[name]))) or _BERT_SPECIALS[name]
        for name in _SPECIAL_NAMES
    }
    if (folder / "tokenizer.json").is_file():
        backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        if backend.model.__class__.__name__ != "WordPiece":
            return None
    else:
        vocab: dict[str, int] = {}
        for index, line in enumerate((folder / "vocab.txt").read_text(encoding="utf-8").split("\n")):
            if line or index == 0:
                vocab[line] = index
        backend = Tokenizer(WordPiece(vocab, unk_token=specials["unk_token"]))
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix="##")
        backend.add_special_tokens([AddedToken(specials[n], special=True, normalized=False) for n in _SPECIAL_NAMES])
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=bool(tok_config.get("tokenize_chinese_chars", True)),
        strip_accents=tok_config.get("strip_accents"),
        lowercase=bool(tok_config.get("do_lower_case", True)),
    )
    if backend.post_processor is None:
        cls, sep = specials["cls_token"], specials["sep_token"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))],
        )
    max_len = tok_config.get("model_max_length")
    if not isinstance(max_len, int | float) or max_len > 1_000_000:
        max_len = _read_json(folder / "config.json").get("max_position_embeddings", 512)
    return FastTokenizer(backend, specials, int(max_len), str(folder))


__all__ = [
    "BertConfig",
    "BertForTokenClassification",
    "BertModel",
    "FastTokenizer",
    "load_bert",
    "load_token_classifier",
    "load_tokenizer",
    "supports",
    "supports_tokenizer",
    "to_transformers",
]
