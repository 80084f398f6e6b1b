"""Dynamic int8 quantisation of a model's linear layers, for CPU inference.

The linear layers are about 80% of a MiniLM forward pass on CPU. ``torch.ao.quantization.quantize_dynamic``
stores their weights in int8 and quantises activations per batch on the fly; on the development machine's AVX2
CPU (no VNNI) it gives about 1.5x on the linear layers (docs/ner.md). Weights are quantised per output
channel. It recognises only ``torch.nn.Linear``
itself, not subclasses, so the plain encoder's :class:`engine.encoder.model.Linear` (which only skips random
initialisation while loading) is turned back into ``nn.Linear`` first.

CPU only: on CUDA the model runs in bf16 instead (:class:`engine.ner.NerStage`).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
from torch import nn

from engine.encoder.model import Linear

SKIP_DEFAULT: tuple[str, ...] = ("classifier",)
"""Modules left in fp32: the token head is tiny, and its logits are what the decode and the confidences read."""


def quantize_linear_int8(model: nn.Module, skip: Iterable[str] = SKIP_DEFAULT, inplace: bool = False) -> nn.Module:
    """The model with its linear layers (outside ``skip``) dynamically quantised to int8.

    Args:
        model: A CPU fp32 model (eval mode for inference).
        skip: Names of top-level or dotted sub-modules left as they are.
        inplace: Quantise ``model`` itself rather than a copy.

    Raises:
        ValueError: The model is not on the CPU.
    """
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("dynamic int8 quantisation runs on CPU only")
    target = model if inplace else copy.deepcopy(model)
    skipped = tuple(skip)
    names: set[str] = set()
    for name, module in target.named_modules():
        if type(module) is Linear:
            module.__class__ = nn.Linear
        if isinstance(module, nn.Linear) and not any(name == s or name.startswith(s + ".") for s in skipped):
            names.add(name)
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which is not a dependency here; the eager API
        # still ships with torch 2.13 and is what runs.
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        # Per output channel: one scale per weight row. Per-tensor scales cost a distilled 3-layer student 3.3
        # points of dev F1 (0.640 -> 0.607), per-channel 0.8 (0.632; docs/ner.md).
        spec = dict.fromkeys(names, per_channel_dynamic_qconfig)
        return quantize_dynamic(target, spec, dtype=torch.qint8, inplace=True)


def is_quantized(model: nn.Module) -> bool:
    """Whether any linear layer of ``model`` is a dynamically quantised one."""
    from torch.ao.nn.quantized.dynamic import Linear as QuantLinear

    return any(isinstance(m, QuantLinear) for m in model.modules())
