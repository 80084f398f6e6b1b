"""Named-entity recognition: a transformer token classifier with the five contract labels in BIO.

Predicting and annotating are separate steps:

- *predicting* (:meth:`NerStage.token_probs`): notes are tokenised with character offsets, cut into overlapping
  windows (``window_tokens`` with ``window_overlap`` shared), and the windows of all notes are run through the
  encoder in length-bucketed, dynamically padded batches. Each token keeps the probabilities of the one window in
  which it sits farthest from an edge, so only one ``(tokens, labels)`` fp16 array per note is ever held, however
  many windows it has.
- *annotating* (:func:`annotate`): a BIO-constrained Viterbi decode over those token probabilities, then tokens
  are turned back into exact character spans of the input (``text[start:end]`` is the entity) with a confidence:
  the lowest probability of the decoded labels over the entity's tokens, at a softmax temperature fitted on dev
  data (``config.json`` ``"temperature"``) so that confidences match how often entities are exactly right.

Two model folders ship (:data:`NER_MODELS`, chosen by ``Settings.ner_model`` / ``CLINICAL_NLP_NER_MODEL``):
``fast`` (``<model_dir>/ner``, the default) and ``accurate`` (``<model_dir>/ner_accurate``). Each describes itself:
``config.json`` (version, backbone, id2label, encoder layers kept, windowing, CPU quantisation, training
configuration), ``weights.safetensors`` (only the trained parameters, fp16, applied on top of the backbone),
``metrics.json`` and ``MODEL_CARD.md``. Decoding lives in :mod:`engine.ner_decode`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.backbone import autocast, load_delta, load_tokenizer, read_model_config, resolve_backbone, resolve_device
from engine.errors import EngineError, ErrorCode
from engine.ner_decode import (
    BIO_LABELS,
    Encoding,
    allowed_transitions,
    annotate,
    greedy,
    snap_to_words,
    temper,
    viterbi,
)
from engine.settings import Settings
from engine.types import LABELS, Span

__all__ = [
    "BIO_LABELS",
    "NER_MODELS",
    "Encoding",
    "NerStage",
    "Window",
    "allowed_transitions",
    "annotate",
    "build_model",
    "encode",
    "greedy",
    "load",
    "load_folder",
    "make_windows",
    "model_folder",
    "read_config",
    "snap_to_words",
    "temper",
    "viterbi",
]

WEIGHTS_FILE = "weights.safetensors"
TOKENIZE_CHUNK_CHARS = 50_000
"""Very long notes are tokenised in pieces of about this many characters, cut at whitespace."""
NER_MODELS: dict[str, str] = {"fast": "ner", "accurate": "ner_accurate"}
"""``Settings.ner_model`` -> the model folder's name inside the model set."""
INT8 = "int8-dynamic"
"""``config.json`` ``cpu_quantization`` value: linear layers dynamically quantised to int8 on CPU."""

log = logging.getLogger(__name__)



@dataclass(slots=True)
class Window:
    """One encoder window: tokens ``[start, end)`` of note ``doc``; it owns tokens ``[keep_start, keep_end)``."""

    doc: int
    start: int
    end: int
    keep_start: int
    keep_end: int


def encode(tokenizer: Any, text: str, chunk_chars: int = TOKENIZE_CHUNK_CHARS) -> Encoding:
    """Tokenise ``text`` with character offsets into it, in whitespace-cut pieces for very long texts.

    Tokens whose offsets are empty (characters the tokenizer drops) are left out.
    """
    ids: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    pos = 0
    while pos < len(text):
        end = min(len(text), pos + chunk_chars)
        if end < len(text):
            cut = max(text.rfind(" ", pos, end), text.rfind("\n", pos, end))
            end = cut + 1 if cut > pos else end
        piece = text[pos:end]
        enc = tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        piece_ids = np.asarray(enc["input_ids"], dtype=np.int64)
        piece_offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2) + pos
        keep = piece_offsets[:, 1] > piece_offsets[:, 0]
        ids.append(piece_ids[keep])
        offsets.append(piece_offsets[keep])
        pos = end
    if not ids:
        return Encoding(np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.int64))
    return Encoding(np.concatenate(ids), np.concatenate(offsets))


def make_windows(doc: int, n_tokens: int, content: int, overlap: int) -> list[Window]:
    """Overlapping windows over ``n_tokens`` tokens, each owning the tokens nearest its centre.

    Args:
        doc: Index of the note the windows belong to.
        n_tokens: Tokens in the note.
        content: Tokens per window, special tokens excluded.
        overlap: Tokens shared by consecutive windows.
    """
    if n_tokens == 0:
        return []
    overlap = min(max(overlap, 0), content - 1)
    stride = content - overlap
    starts = [0]
    while starts[-1] + content < n_tokens:
        starts.append(starts[-1] + stride)
    windows: list[Window] = []
    for i, start in enumerate(starts):
        end = min(start + content, n_tokens)
        # A shared stretch is split at its middle: each token is kept from the window where it has most context.
        keep_start = 0 if i == 0 else (start + min(starts[i - 1] + content, n_tokens)) // 2
        keep_end = n_tokens if i == len(starts) - 1 else (starts[i + 1] + end) // 2
        windows.append(Window(doc, start, end, keep_start, keep_end))
    return windows




class NerStage:
    """The NER stage: ``predict(texts) -> list[list[Span]]``.

    Attributes:
        version: The model version from the folder's ``config.json``.
        tokenizer: The backbone's fast tokenizer (:func:`engine.backbone.load_tokenizer`).
        hf_model: The token classifier: :class:`engine.encoder.BertForTokenClassification` for BERT-family
            backbones (MiniLM), else a ``transformers`` ``*ForTokenClassification``; same parameter names either way.
            :func:`engine.encoder.to_transformers` gives its ``transformers`` twin, e.g. for
            ``transformers.pipeline("token-classification", ...)`` (of an unquantised stage: ``quantize=False``).
        config: The model folder's configuration.
        device: Where the model runs.
        quantized: Whether the linear layers run in dynamic int8 (CPU only; on CUDA the weights are bf16).
        batch_size: Windows per forward pass at most (halved on GPU out-of-memory).
        batch_tokens: Tokens per forward pass at most (``None``: no token budget).
    """

    def __init__(
        self,
        hf_model: torch.nn.Module,
        tokenizer: Any,
        config: dict[str, Any],
        device: torch.device,
        window_tokens: int = 512,
        window_overlap: int = 128,
        batch_size: int = 16,
        batch_tokens: int | None = None,
        quantize: bool = False,
    ) -> None:
        self.hf_model = hf_model.to(device)
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            # Inference only: bf16 weights halve the memory traffic that fp32 weights under autocast still pay
            # (docs/benchmarks.md: 7.9M -> 10.8M tokens/s for MiniLM-L6 on an H100). CPU stays fp32.
            self.hf_model = self.hf_model.to(torch.bfloat16)
        elif device.type == "cpu" and quantize:
            from engine.encoder.quantize import quantize_linear_int8

            self.hf_model = quantize_linear_int8(self.hf_model.eval(), inplace=True)
        self.hf_model.eval()
        self.quantized = device.type == "cpu" and quantize
        self.tokenizer = tokenizer
        self.config = config
        self.device = device
        self.version = str(config.get("version", "unknown"))
        self.id2label = [str(config["id2label"][str(i)]) for i in range(len(config["id2label"]))]
        self.decoder = str(config.get("decoder", "viterbi"))
        self.temperature = float(config.get("temperature", 1.0))
        self.aggregate = str(config.get("score_aggregate", "min"))
        max_positions = int(getattr(hf_model.config, "max_position_embeddings", 512))
        self.window_tokens = min(window_tokens, max_positions)
        self.window_overlap = window_overlap
        self.batch_size = max(1, batch_size)
        self.batch_tokens = batch_tokens
        self.cls_id = int(tokenizer.cls_token_id)
        self.sep_id = int(tokenizer.sep_token_id)
        self.pad_id = int(tokenizer.pad_token_id or 0)

    # ----- predicting -------------------------------------------------------------------------------------------
    def _forward(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        """Label probabilities (fp16) of each window's own tokens; one padded forward pass."""
        width = max(len(ids) for ids in batch) + 2
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            n = len(ids)
            input_ids[row, 0] = self.cls_id
            input_ids[row, 1 : n + 1] = torch.from_numpy(ids)
            input_ids[row, n + 1] = self.sep_id
            mask[row, : n + 2] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        with torch.inference_mode(), autocast(self.device):
            logits = self.hf_model(input_ids=input_ids, attention_mask=mask).logits
        probs = torch.softmax(logits.float(), dim=-1).to("cpu", torch.float16).numpy()
        return [probs[row, 1 : len(ids) + 1] for row, ids in enumerate(batch)]

    def _forward_with_retry(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        """:meth:`_forward`, halving the batch on GPU out-of-memory until it fits (or one window fails)."""
        try:
            return self._forward(batch)
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(batch) // 2
            self.batch_size = max(1, min(self.batch_size, half))
            log.warning("CUDA out of memory: batch size lowered to %d", self.batch_size)
            return self._forward_with_retry(batch[:half]) + self._forward_with_retry(batch[half:])

    def iter_window_probs(
        self, encodings: Sequence[Encoding]
    ) -> Iterator[tuple[Window, np.ndarray]]:
        """Yield ``(window, probabilities of its tokens)`` for all windows of all notes, batched by length.

        Windows are sorted by length so a batch pads little (on CPU, not at all); only one batch of logits exists
        at a time.
        """
        self.hf_model.eval()
        content = self.window_tokens - 2
        windows = [
            w for doc, enc in enumerate(encodings) for w in make_windows(doc, len(enc), content, self.window_overlap)
        ]
        windows.sort(key=lambda w: w.end - w.start, reverse=True)
        i = 0
        while i < len(windows):
            chunk = self._next_batch(windows, i)
            ids = [encodings[w.doc].ids[w.start : w.end] for w in chunk]
            yield from zip(chunk, self._forward_with_retry(ids), strict=True)
            i += len(chunk)

    def _next_batch(self, windows: Sequence[Window], i: int) -> Sequence[Window]:
        """The windows of the next forward pass, from ``windows[i]`` on (sorted longest first).

        At most ``batch_size`` windows, and at most ``batch_tokens`` tokens when set (a token budget: long windows
        go in smaller batches). On CPU a padded position costs as much as a real one and batching buys little,
        so a batch holds windows of one length only: a note's short last window runs alone at its own length.
        """
        width = windows[i].end - windows[i].start + 2
        count = self.batch_size
        if self.batch_tokens:
            count = max(1, min(count, self.batch_tokens // width))
        chunk = windows[i : i + count]
        if self.device.type == "cpu":
            chunk = [w for w in chunk if w.end - w.start + 2 == width]
        return chunk

    def token_probs(self, encodings: Sequence[Encoding]) -> list[np.ndarray]:
        """Merged ``(tokens, labels)`` fp16 probabilities per note: each token from the window that owns it."""
        merged = [np.zeros((len(enc), len(self.id2label)), dtype=np.float16) for enc in encodings]
        for window, probs in self.iter_window_probs(encodings):
            lo, hi = window.keep_start - window.start, window.keep_end - window.start
            merged[window.doc][window.keep_start : window.keep_end] = probs[lo:hi]
        return merged

    # ----- the stage API ----------------------------------------------------------------------------------------
    def encode(self, text: str) -> Encoding:
        """Tokenise one note with character offsets (see :func:`encode`)."""
        return encode(self.tokenizer, text)

    def predict(self, texts: Sequence[str]) -> list[list[Span]]:
        """Entities of each text (exact character offsets, labels DIAG/PROC/MED/TEST/ANAT, score in [0, 1]).

        Args:
            texts: Notes, used exactly as given; an empty or blank note has no entities.

        Returns:
            One list of spans per text, in input order, each sorted by start.
        """
        return self.predict_with_probs(texts)[0]

    def predict_with_probs(self, texts: Sequence[str]) -> tuple[list[list[Span]], list[np.ndarray]]:
        """:meth:`predict`, also returning each note's ``(tokens, labels)`` probabilities (for monitoring: the
        pipeline reduces them to token statistics at once, ``engine.monitoring.profile.token_summary``)."""
        encodings = [self.encode(text) for text in texts]
        probs = self.token_probs(encodings)
        spans = [
            snap_to_words(text, annotate(enc, p, self.id2label, self.decoder, self.temperature, self.aggregate))
            for text, enc, p in zip(texts, encodings, probs, strict=True)
        ]
        return spans, probs


def read_config(folder: Path) -> dict[str, Any]:
    """The model folder's ``config.json``.

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when absent, ``MODEL_INVALID`` when unreadable or without labels.
    """
    config = read_model_config(folder, "NER")
    if "id2label" not in config:
        raise EngineError(ErrorCode.MODEL_INVALID, f"{folder / 'config.json'}: no id2label")
    return config


def build_model(
    backbone: Path,
    id2label: Sequence[str],
    dropout: float | None = None,
    use_transformers: bool = False,
    num_layers: int | None = None,
) -> torch.nn.Module:
    """A fresh token classifier on a local backbone (its head newly initialised), fp32.

    BERT-family backbones get :class:`engine.encoder.BertForTokenClassification` (plain PyTorch, the parameter
    names of ``transformers``' class, so stored deltas fit both); other backbones, or ``use_transformers=True``,
    get ``transformers``' ``AutoModelForTokenClassification``.

    Args:
        backbone: Local Hugging Face encoder folder.
        id2label: Token labels in id order.
        dropout: Optional classifier dropout.
        use_transformers: Build the ``transformers`` model even where the plain one would do.
        num_layers: Keep only the first ``num_layers`` encoder layers (a distilled student's depth: its stored
            delta holds all of them); ``None`` keeps the backbone's depth.
    """
    model = _new_classifier(backbone, id2label, dropout, use_transformers)
    if num_layers is not None and num_layers < len(model.base_model.encoder.layer):
        if num_layers < 1:
            raise EngineError(ErrorCode.MODEL_INVALID, f"num_hidden_layers {num_layers}: at least one is needed")
        model.base_model.encoder.layer = torch.nn.ModuleList(list(model.base_model.encoder.layer)[:num_layers])
        model.config.num_hidden_layers = num_layers
    return model


def _new_classifier(
    backbone: Path, id2label: Sequence[str], dropout: float | None, use_transformers: bool
) -> torch.nn.Module:
    if not use_transformers:
        from engine.encoder import load_token_classifier

        native = load_token_classifier(backbone, id2label, dropout)
        if native is not None:
            return native
    import transformers
    from transformers import AutoModelForTokenClassification

    kwargs: dict[str, Any] = {}
    if dropout is not None:
        kwargs["classifier_dropout"] = dropout
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the "newly initialised head" notice is expected here
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            str(backbone),
            local_files_only=True,
            num_labels=len(id2label),
            id2label=dict(enumerate(id2label)),
            label2id={label: i for i, label in enumerate(id2label)},
            **kwargs,
        )
    finally:
        transformers.logging.set_verbosity(verbosity)
    return model.float()


def load_folder(
    folder: Path,
    settings: Settings | None = None,
    device: str | torch.device | None = None,
    quantize: bool | None = None,
    backbone: str | Path | None = None,
) -> NerStage:
    """Load a NER model folder into a :class:`NerStage`.

    Args:
        folder: The model folder (``config.json`` + ``weights.safetensors``).
        settings: Device, windowing and batch settings (defaults when ``None``). Windows: the settings'
            ``ner_window_tokens``/``ner_window_overlap`` when set, else the folder's ``window_tokens``/
            ``window_overlap``, else the settings' ``window_tokens``/``window_overlap``.
        device: Overrides ``settings.device``.
        quantize: Dynamic int8 linear layers on CPU; ``None``: as the folder's ``cpu_quantization`` says.
        backbone: A backbone folder overriding the one the config names (a machine without the packaged MiniLM).
    """
    settings = settings or Settings()
    config = read_config(folder)
    id2label = [str(config["id2label"][str(i)]) for i in range(len(config["id2label"]))]
    unknown = [lab for lab in id2label if lab != "O" and lab[2:] not in LABELS]
    if unknown:
        raise EngineError(ErrorCode.MODEL_INVALID, f"{folder}: labels outside the contract: {unknown}")
    backbone = resolve_backbone(backbone or config.get("backbone"))
    layers = config.get("num_hidden_layers")
    model = build_model(backbone, id2label, num_layers=int(layers) if layers is not None else None)
    load_delta(model, folder / config.get("weights", WEIGHTS_FILE))
    window = settings.ner_window_tokens or int(config.get("window_tokens", settings.window_tokens))
    overlap = settings.ner_window_overlap
    if overlap is None:
        overlap = int(config.get("window_overlap", settings.window_overlap))
    return NerStage(
        model,
        load_tokenizer(backbone),
        config,
        resolve_device(device if device is not None else settings.device),
        window_tokens=window,
        window_overlap=overlap,
        batch_size=settings.batch_size,
        batch_tokens=config.get("batch_tokens"),
        quantize=config.get("cpu_quantization") == INT8 if quantize is None else quantize,
    )


def model_folder(settings: Settings) -> Path:
    """The NER model folder ``settings.ner_model`` names (:data:`NER_MODELS`) in ``settings.model_dir``.

    Raises:
        EngineError: ``BAD_INPUT`` for a name that is not in :data:`NER_MODELS`.
    """
    name = settings.ner_model
    if name not in NER_MODELS:
        raise EngineError(
            ErrorCode.BAD_INPUT, f"unknown NER model {name!r} (CLINICAL_NLP_NER_MODEL): use {' or '.join(NER_MODELS)}"
        )
    return Path(settings.model_dir) / NER_MODELS[name]


def load(settings: Settings) -> NerStage:
    """Stage factory (see :mod:`engine.registry`): the model ``settings.ner_model`` selects (``fast``:
    ``<model_dir>/ner``, ``accurate``: ``<model_dir>/ner_accurate``).

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when the folder or its weights are missing; ``BAD_INPUT`` for an unknown
            model name.
    """
    folder = model_folder(settings)
    if not folder.is_dir():
        raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"no NER model folder at {folder} ({settings.ner_model} model)")
    return load_folder(folder, settings)
