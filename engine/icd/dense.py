"""Dense retrieval: the synonym encoder (a fine-tuned MiniLM bi-encoder) and its vector index.

The encoder is the backbone (``engine/backbone.py``, all-MiniLM-L6-v2) with the layers of
``assets/models/icd_encoder/`` (``config.json``: ``layers`` kept, ``max_length``; the fine-tuned parameters in
``model.safetensors``, fp16), mean-pooled and L2-normalised. Without the folder (or with ``plain=True``) it is the
plain backbone, the untrained baseline.

The vector index holds one vector per distinct string the linker can retrieve: code descriptions (not the
7th-character encounter variants), inclusion terms and Index paths in natural order, each pointing to its codes.
Vectors are stored 8-bit scalar-quantised in a faiss HNSW graph (chosen over usearch and a flat faiss index by
``bench/bench_icd.py --vectors``: 0.18 ms per query, recall@10 0.971, ~60 MB for 124k strings), cached on disk
next to the lexical index.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.settings import ASSETS_DIR, Settings

MODEL_DIR = ASSETS_DIR / "models" / "icd_encoder"
DEFAULT_MAX_LENGTH = 32
DENSE_FORMAT = 1
"""Format of the cached embeddings (``icdemb-*``)."""
GRAPH_FORMAT = 2
"""Format of the cached vector index (``icddense-*``): 2 = faiss HNSW over 8-bit vectors."""


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
        layers: For the plain backbone, keep only its first ``layers`` layers (``None``: all six).
    """

    def __init__(self, folder: Path | None = None, threads: int | None = None, layers: int | None = None) -> None:
        from engine.backbone import load_delta, load_encoder, load_tokenizer, resolve_backbone

        torch = _torch()
        if threads:
            torch.set_num_threads(threads)
        self.config = EncoderConfig.read(folder) if folder is not None else EncoderConfig()
        if folder is None and layers and layers < self.config.layers:
            self.config = EncoderConfig(version=f"{self.config.version}-{layers}l", layers=layers)
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


def load_encoder_folder(settings: Settings, plain: bool = False, layers: int | None = None) -> SynonymEncoder | None:
    """The shipped fine-tuned encoder (``None`` when its folder is absent), or the plain backbone (``layers``)."""
    if plain:
        return SynonymEncoder(None, layers=layers)
    folder = Path(getattr(settings, "icd_encoder_dir", MODEL_DIR))
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        return None
    return SynonymEncoder(folder)


class VectorIndex:
    """Strings as 8-bit vectors in an HNSW graph (faiss), each string pointing to its codes.

    Args:
        index: The faiss index (ids are string positions).
        ptr: CSR pointers: string ``k`` names ``codes[ptr[k]:ptr[k + 1]]``.
        codes: Code indexes.
    """

    def __init__(self, index: object, ptr: np.ndarray, codes: np.ndarray, strings: list[str] | None = None) -> None:
        self.index = index
        self.ptr = ptr
        self.codes = codes
        self.strings = strings or []

    @staticmethod
    def create(
        vectors: np.ndarray, ptr: np.ndarray, codes: np.ndarray, strings: list[str], threads: int = 2
    ) -> VectorIndex:
        """Build the HNSW graph (16 links, 8-bit scalar-quantised vectors, inner product) over ``vectors``."""
        import faiss

        faiss.omp_set_num_threads(threads)
        index = faiss.IndexHNSWSQ(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, 16, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.add(vectors)
        index.hnsw.efSearch = 64
        faiss.omp_set_num_threads(1)
        return VectorIndex(index, ptr, codes, strings)

    def save(self, folder: Path) -> None:
        """Write the graph and the owners to ``folder``."""
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / "vectors.faiss"))
        np.save(folder / "ptr.npy", self.ptr)
        np.save(folder / "codes.npy", self.codes)
        (folder / "strings.json").write_text(json.dumps(self.strings), encoding="utf-8")

    @staticmethod
    def load(folder: Path) -> VectorIndex:
        """Load a saved index."""
        import faiss

        faiss.omp_set_num_threads(1)
        index = faiss.read_index(str(folder / "vectors.faiss"))
        index.hnsw.efSearch = 64
        strings = json.loads((folder / "strings.json").read_text(encoding="utf-8"))
        return VectorIndex(index, np.load(folder / "ptr.npy"), np.load(folder / "codes.npy"), strings)

    def description_keys(self, data: object) -> np.ndarray:
        """Per code index, the key of its description's string (an encounter variant: its parent's; -1: none)."""
        cached = getattr(self, "_desc_keys", None)
        if cached is not None and len(cached) == len(data.codes):
            return cached
        pos = {t: i for i, t in enumerate(self.strings)}
        parent = np.asarray(data.parent).tolist()
        keys = [pos.get(d.lower(), -1) for d in data.descriptions]
        for ci in range(len(keys)):
            p = ci
            while keys[ci] < 0 and parent[p] >= 0:
                p = parent[p]
                keys[ci] = keys[p]
        self._desc_keys = np.asarray(keys, dtype=np.int64)
        return self._desc_keys

    def vectors(self, keys: np.ndarray) -> np.ndarray:
        """The (8-bit decoded) vectors of string ``keys``, one row each."""
        return self.index.reconstruct_batch(np.asarray(keys, dtype=np.int64))

    def search_strings(self, vector: np.ndarray, k: int = 40) -> list[tuple[int, int, float]]:
        """``[(string key, code index, cosine)]`` of the ``k`` nearest strings, nearest first."""
        sims, keys = self.index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
        out = []
        for key, sim in zip(keys[0].tolist(), sims[0].tolist(), strict=True):
            if key < 0:
                continue
            for ci in self.codes[self.ptr[key] : self.ptr[key + 1]].tolist():
                out.append((key, ci, float(sim)))
        return out

def dense_strings(data: object) -> tuple[list[str], list[list[int]]]:
    """Distinct strings to embed and the code indexes each names (see the module docstring).

    Descriptions, inclusion terms and includes notes of codes that are not encounter variants, and every Index
    path of the lexical index in natural order ("Index: Infarct, infarction > cerebral" -> "cerebral infarct").
    """
    from engine.icd.alphabetic import natural_phrase
    from engine.icd.tabular import KIND_INCLUDES, KIND_INDEX

    owners: dict[str, set[int]] = {}
    extension = np.asarray(data.extension)
    kinds = np.asarray(data.doc_kind).tolist()
    codes = np.asarray(data.doc_code).tolist()
    for text, kind, ci in zip(data.doc_text, kinds, codes, strict=True):
        if extension[ci]:
            continue
        if kind == KIND_INDEX:
            if " NEC" in text:
                # "Alzheimer's > specified NEC" names the residual code: the encoder reads it as "Alzheimer's".
                continue
            text = natural_phrase(text[len("Index: ") :].split(" > "))
        elif kind > KIND_INCLUDES:
            continue
        owners.setdefault(text.lower(), set()).add(ci)
    strings = list(owners)
    return strings, [sorted(owners[s]) for s in strings]


def _atomic_dir(folder: Path, write) -> None:
    tmp = folder.with_name(folder.name + f".tmp{time.time_ns()}")
    tmp.mkdir(parents=True)
    write(tmp)
    import shutil

    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    try:
        tmp.rename(folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def embed_cached(settings: Settings, encoder: SynonymEncoder, strings: list[str], progress: bool = True) -> np.ndarray:
    """Vectors of ``strings``, reusing those cached for this encoder version (fp16 on disk) and adding the rest."""
    folder = Path(settings.cache_dir) / f"icdemb-{DENSE_FORMAT}-{encoder.version}"
    known: dict[str, int] = {}
    stored = np.zeros((0, 384), dtype=np.float16)
    if (folder / "vectors.npy").is_file():
        try:
            names = json.loads((folder / "strings.json").read_text(encoding="utf-8"))
            stored = np.load(folder / "vectors.npy")
            known = {t: i for i, t in enumerate(names)}
        except (OSError, ValueError):
            known, stored = {}, stored
    missing = [t for t in dict.fromkeys(strings) if t not in known]
    if missing:
        new = encoder.embed(missing, progress=progress).astype(np.float16)
        names = [None] * len(known)
        for t, i in known.items():
            names[i] = t
        names += missing
        stored = np.concatenate([stored.reshape(-1, new.shape[1]), new]) if len(stored) else new
        known = {t: i for i, t in enumerate(names)}

        def write(tmp: Path) -> None:
            np.save(tmp / "vectors.npy", stored)
            (tmp / "strings.json").write_text(json.dumps(names), encoding="utf-8")

        try:
            _atomic_dir(folder, write)
        except OSError as exc:
            sys.stderr.write(f"warning: could not cache ICD vectors in {folder}: {exc}\n")
    return stored[[known[t] for t in strings]].astype(np.float32)


def owners_csr(owners: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """``(ptr, codes)`` of the owners lists."""
    ptr = np.zeros(len(owners) + 1, dtype=np.int64)
    np.cumsum([len(o) for o in owners], out=ptr[1:])
    return ptr, np.array([c for o in owners for c in o], dtype=np.int32)


def strings_key(strings: list[str], encoder: SynonymEncoder) -> str:
    """Cache key of a vector index: the encoder version and the strings."""
    h = hashlib.sha256(encoder.version.encode())
    for s in strings:
        h.update(s.encode())
        h.update(b"\0")
    return f"icddense-{GRAPH_FORMAT}-{h.hexdigest()[:16]}"


def vector_index(settings: Settings, encoder: SynonymEncoder, data: object, cache: bool = True) -> VectorIndex:
    """The vector index of ``data``'s strings for ``encoder``: loaded from the cache, else built (and cached)."""
    strings, owners = dense_strings(data)
    folder = Path(settings.cache_dir) / strings_key(strings, encoder)
    if cache and (folder / "done").is_file():
        try:
            return VectorIndex.load(folder)
        except (OSError, RuntimeError, ValueError):
            pass
    t0 = time.perf_counter()
    ptr, flat = owners_csr(owners)
    torch = _torch()
    threads = torch.get_num_threads()
    # The one-off build may use both cores of the 2-core target; linking afterwards uses the caller's setting.
    torch.set_num_threads(max(threads, min(2, os.cpu_count() or 1)))
    try:
        vectors = embed_cached(settings, encoder, strings)
    finally:
        torch.set_num_threads(threads)
    vi = VectorIndex.create(vectors, ptr, flat, strings)
    if not cache:
        return vi

    def write(tmp: Path) -> None:
        vi.save(tmp)
        (tmp / "done").write_text(f"{len(strings)} strings, {time.perf_counter() - t0:.1f} s\n", encoding="utf-8")

    try:
        _atomic_dir(folder, write)
        return VectorIndex.load(folder)
    except OSError as exc:
        sys.stderr.write(f"warning: could not cache the ICD vector index in {folder}: {exc}\n")
        return vi
