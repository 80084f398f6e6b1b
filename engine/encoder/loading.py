"""Building the plain-PyTorch BERT from a local Hugging Face folder, and its ``transformers`` twin."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.encoder.model import (
    _ACTIVATIONS,
    BERT_MODEL_TYPES,
    BertConfig,
    BertForTokenClassification,
    BertModel,
    _loading,
)


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

