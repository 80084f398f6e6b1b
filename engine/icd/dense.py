"""Dense retrieval: the synonym encoder (a fine-tuned MiniLM bi-encoder) and its vector index.

The encoder is the backbone (``engine/backbone.py``, all-MiniLM-L6-v2) with the layers of
``assets/models/icd_encoder/`` (``config.json``: ``layers`` kept, ``max_length``; the fine-tuned parameters in
``model.safetensors``, fp16), mean-pooled and L2-normalised. Without the folder (or with ``plain=True``) it is the
plain backbone, the untrained baseline.

The vector index holds one vector per distinct string the linker can retrieve: code descriptions (not the
7th-character encounter variants), inclusion terms and Index paths in natural order, each pointing to its codes.
Vectors are stored as int8 (scaled by 127) in a ``usearch`` HNSW index cached on disk next to the lexical index;
memory stays near 60 MB for 150k strings.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.settings import ASSETS_DIR, Settings

MODEL_DIR = ASSETS_DIR / "models" / "icd_encoder"
DEFAULT_MAX_LENGTH = 32
DENSE_FORMAT = 1


def _torch():
    import torch

    return torch


@dataclass
class EncoderConfig:
    """What ``config.json`` of an encoder folder says (defaults: the plain backbone)."""

    version: str = "plain-all-MiniLM-L6-v2"
    layers: int = 6
    max_length: int = DEFAULT_MAX_LENGTH
    backbone: str = "all-MiniLM-L6-v2"

    @classmethod
    def read(cls, folder: Path) -> EncoderConfig:
        """The config of ``folder`` (keys other than the fields are ignored)."""
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return cls(**{k: raw[k] for k in ("version", "layers", "max_length", "backbone") if k in raw})


class SynonymEncoder:
    """Mean-pooled, L2-normalised sentence vectors of short clinical strings, on CPU.

    Args:
        folder: A fine-tuned encoder folder; ``None`` for the plain backbone.
        threads: torch threads for encoding (``None``: leave torch's setting).
    """

    def __init__(self, folder: Path | None = None, threads: int | None = None) -> None:
        from engine.backbone import load_delta, load_encoder, load_tokenizer, resolve_backbone

        torch = _torch()
        if threads:
            torch.set_num_threads(threads)
        self.config = EncoderConfig.read(folder) if folder is not None else EncoderConfig()
        backbone = resolve_backbone(self.config.backbone)
        self.tokenizer = load_tokenizer(backbone).backend_tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.config.max_length)
        model = load_encoder(backbone)
        model.encoder.layer = model.encoder.layer[: self.config.layers]
        model.pooler = None
        if folder is not None:
            load_delta(model, folder / "model.safetensors")
        self.model = model.eval()
        self.version = self.config.version

    def batch(self, texts: list[str]) -> tuple[object, object]:
        """``(input_ids, attention_mask)`` tensors of ``texts``, padded to the longest."""
        torch = _torch()
        encs = self.tokenizer.encode_batch([t.lower() for t in texts])
        width = max(len(e.ids) for e in encs)
        ids = torch.zeros((len(encs), width), dtype=torch.long)
        mask = torch.zeros((len(encs), width), dtype=torch.long)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            mask[i, : len(e.ids)] = 1
        return ids, mask

    def forward(self, ids: object, mask: object) -> object:
        """Pooled, normalised vectors (a tensor; gradients flow when the model trains)."""
        torch = _torch()
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-6)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def embed(self, texts: list[str], batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """Vectors (rows, float32) of ``texts``; batches sorted by length so padding stays short."""
        torch = _torch()
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        starts = range(0, len(order), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="ICD dense vectors", file=sys.stderr, mininterval=2.0, leave=False)
        with torch.inference_mode():
            for s in starts:
                idx = order[s : s + batch_size]
                ids, mask = self.batch([texts[i] for i in idx])
                out[idx] = self.forward(ids, mask).numpy()
        return out


def load_encoder_folder(settings: Settings, plain: bool = False) -> SynonymEncoder | None:
    """The shipped fine-tuned encoder (``None`` when its folder is absent), or the plain backbone."""
    if plain:
        return SynonymEncoder(None)
    folder = Path(getattr(settings, "icd_encoder_dir", MODEL_DIR))
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        return None
    return SynonymEncoder(folder)


class VectorIndex:
    """Strings as int8 vectors in an HNSW graph (``usearch``), each string pointing to its codes.

    Args:
        vectors: ``(n, d)`` float32, L2-normalised.
        owners: Per string, the code indexes it names (a CSR pair ``ptr``/``codes``).
    """

    def __init__(self, index: object, ptr: np.ndarray, codes: np.ndarray) -> None:
        self.index = index
        self.ptr = ptr
        self.codes = codes

    @staticmethod
    def create(vectors: np.ndarray, ptr: np.ndarray, codes: np.ndarray) -> VectorIndex:
        """Build the HNSW graph over ``vectors``."""
        from usearch.index import Index

        index = Index(ndim=vectors.shape[1], metric="cos", dtype="i8", connectivity=16, expansion_add=64,
                      expansion_search=64)
        index.add(np.arange(len(vectors), dtype=np.uint64), vectors, threads=1)
        return VectorIndex(index, ptr, codes)

    def save(self, folder: Path) -> None:
        """Write the graph and the owners to ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self.index.save(str(folder / "vectors.usearch"))
        np.save(folder / "ptr.npy", self.ptr)
        np.save(folder / "codes.npy", self.codes)

    @staticmethod
    def load(folder: Path) -> VectorIndex:
        """Load a saved index (the graph memory-mapped: pages are read on first use)."""
        from usearch.index import Index

        index = Index.restore(str(folder / "vectors.usearch"), view=True)
        return VectorIndex(index, np.load(folder / "ptr.npy"), np.load(folder / "codes.npy"))

    def search(self, vector: np.ndarray, k: int = 30) -> list[tuple[int, float]]:
        """``[(code index, cosine)]`` of the ``k`` nearest strings' codes, best first (a code once)."""
        hits = self.index.search(vector, k)
        best: dict[int, float] = {}
        for key, dist in zip(hits.keys.tolist(), hits.distances.tolist(), strict=True):
            sim = 1.0 - float(dist)
            for ci in self.codes[self.ptr[key] : self.ptr[key + 1]].tolist():
                if sim > best.get(ci, -2.0):
                    best[ci] = sim
        return sorted(best.items(), key=lambda kv: -kv[1])


def dense_strings(data: object, alpha_phrases: dict[str, set[int]] | None = None) -> tuple[list[str], list[list[int]]]:
    """Distinct strings to embed and the code indexes each names (see the module docstring)."""
    from engine.icd.tabular import KIND_DESCRIPTION, KIND_INDEX

    owners: dict[str, set[int]] = {}
    extension = np.asarray(data.extension)
    kinds = np.asarray(data.doc_kind).tolist()
    codes = np.asarray(data.doc_code).tolist()
    for text, kind, ci in zip(data.doc_text, kinds, codes, strict=True):
        if extension[ci] or kind == KIND_INDEX:
            continue
        if kind == KIND_DESCRIPTION or kind <= 2:
            owners.setdefault(text.lower(), set()).add(ci)
    for phrase, cis in (alpha_phrases or {}).items():
        owners.setdefault(phrase.lower(), set()).update(cis)
    strings = list(owners)
    return strings, [sorted(owners[s]) for s in strings]


def build_vector_index(encoder: SynonymEncoder, strings: list[str], owners: list[list[int]]) -> VectorIndex:
    """Embed ``strings`` and index them."""
    vectors = encoder.embed(strings, progress=True)
    ptr = np.zeros(len(owners) + 1, dtype=np.int64)
    np.cumsum([len(o) for o in owners], out=ptr[1:])
    flat = np.array([c for o in owners for c in o], dtype=np.int32)
    return VectorIndex.create(vectors, ptr, flat)


def strings_key(strings: list[str], encoder: SynonymEncoder) -> str:
    """Cache key of a vector index: the encoder version and the strings."""
    h = hashlib.sha256(encoder.version.encode())
    for s in strings:
        h.update(s.encode())
        h.update(b"\0")
    return f"icddense-{DENSE_FORMAT}-{h.hexdigest()[:16]}"


def load_or_build_vectors(
    settings: Settings, encoder: SynonymEncoder, strings: list[str], owners: list[list[int]]
) -> tuple[VectorIndex, bool]:
    """The cached vector index for these strings and this encoder, building it first when needed."""
    folder = Path(settings.cache_dir) / strings_key(strings, encoder)
    if (folder / "done").is_file():
        return VectorIndex.load(folder), False
    t0 = time.perf_counter()
    vi = build_vector_index(encoder, strings, owners)
    tmp = folder.with_name(folder.name + f".tmp{time.time_ns()}")
    vi.save(tmp)
    (tmp / "done").write_text(f"{len(strings)} strings, {time.perf_counter() - t0:.1f} s\n", encoding="utf-8")
    try:
        tmp.rename(folder)
    except OSError:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return VectorIndex.load(folder), True
