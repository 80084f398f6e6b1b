"""A plain-PyTorch BERT encoder and fast tokenizer for inference, without importing ``transformers``.

Importing ``transformers`` and building its BERT classes cost about 4.5 s of the engine's 7.9 s cold start on the
2-core CPU (issue #9). The engine only ever runs BERT-family encoders (all-MiniLM-L6-v2, SciBERT,
BioClinicalBERT, PubMedBERT are all ``model_type: bert``), so this package implements exactly that: embeddings,
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

The package: :mod:`engine.encoder.model` (the modules), :mod:`engine.encoder.loading` (building them from a
folder, :func:`to_transformers`), :mod:`engine.encoder.tokenizer` (:class:`FastTokenizer`) and
:mod:`engine.encoder.quantize` (dynamic int8 linear layers for CPU inference).
"""

from __future__ import annotations

from engine.encoder.loading import load_bert, load_token_classifier, read_weights, supports, to_transformers
from engine.encoder.model import (
    BERT_MODEL_TYPES,
    BertConfig,
    BertEmbeddings,
    BertForTokenClassification,
    BertLayer,
    BertModel,
    Linear,
    ModelOutput,
    attention_bias,
)
from engine.encoder.tokenizer import BatchEncoding, FastTokenizer, load_tokenizer, supports_tokenizer

__all__ = [
    "BERT_MODEL_TYPES",
    "BatchEncoding",
    "BertConfig",
    "BertEmbeddings",
    "BertForTokenClassification",
    "BertLayer",
    "BertModel",
    "FastTokenizer",
    "Linear",
    "ModelOutput",
    "attention_bias",
    "load_bert",
    "load_token_classifier",
    "load_tokenizer",
    "read_weights",
    "supports",
    "supports_tokenizer",
    "to_transformers",
]
