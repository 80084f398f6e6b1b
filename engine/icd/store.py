"""The built ICD index on disk: cache key, atomic save, memory-mapped load, build on first use.

The cache holds plain numpy arrays and JSON lists, so loading takes a fraction of a second and never imports the
(slow to parse) tabular-list package. The key covers everything the index is built from: the index format, the
package version and data year, the rule files, and the Alphabetic Index file (or its absence).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from engine.errors import EngineError, ErrorCode
from engine.icd.alphabetic import AlphaEntry, AlphaIndexError, parse
from engine.icd.tabular import IndexData, build
from engine.settings import Settings

INDEX_FORMAT = 11
"""Bump when the cached layout or the term processing changes (part of the cache key)."""
RULE_FILES = ("icd_synonyms.tsv", "abbreviations.tsv", "icd_history.tsv")
_ARRAYS = (
    "billable",
    "extension",
    "parent",
    "default_leaf",
    "doc_code",
    "doc_kind",
    "doc_den",
    "idf",
    "post_ptr",
    "post_doc",
    "post_w",
    "word_stem",
)
_LISTS = ("codes", "descriptions", "doc_text", "vocab", "words", "classifiable")


def rules_hash(rules_dir: Path) -> str:
    """Hash of the rule files that shape the index and the query rewriting."""
    h = hashlib.sha256()
    for name in RULE_FILES:
        p = rules_dir / name
        h.update(name.encode())
        h.update(p.read_bytes() if p.is_file() else b"-")
    return h.hexdigest()[:16]


def package_fingerprint() -> tuple[str, str]:
    """``(package version, data year)`` of simple-icd-10-cm, read without importing (parsing) the package."""
    from importlib import metadata
    from importlib.util import find_spec

    version = metadata.version("simple-icd-10-cm")
    spec = find_spec("simple_icd_10_cm")
    year = ""
    if spec is not None and spec.origin:
        data_dir = Path(spec.origin).parent / "data"
        for p in sorted(data_dir.glob("code-list-*.txt")):
            m = re.search(r"(20\d\d)", p.name)
            if m:
                year = m.group(1)
    return version, year


def read_alpha_bytes(path: Path | None) -> bytes | None:
    """The Index file's bytes (``.gz`` decompressed), or ``None`` when there is none to read."""
    if path is None:
        return None
    try:
        raw = Path(path).read_bytes()
        return gzip.decompress(raw) if str(path).endswith(".gz") else raw
    except (OSError, EOFError, gzip.BadGzipFile):
        return None


def load_alpha(path: Path | None) -> tuple[list[AlphaEntry] | None, str | None, str]:
    """``(entries, notice, content hash)``: the parsed Index, or ``None`` and a one-line notice why not."""
    raw = read_alpha_bytes(path)
    if raw is None:
        return None, f"ICD-10-CM Alphabetic Index not found at {path}: codes come from the tabular list only", "-"
    digest = hashlib.sha256(raw).hexdigest()[:16]
    try:
        entries = parse(raw.decode("utf-8-sig"))
    except (AlphaIndexError, UnicodeDecodeError) as exc:
        return None, f"ICD-10-CM Alphabetic Index at {path} is malformed ({exc}): tabular list only", digest
    return entries, None, digest


def cache_key(settings: Settings, alpha_digest: str) -> str:
    """Cache folder name: index format, package version and year, rules hash, Index file hash."""
    version, year = package_fingerprint()
    return f"icd-{INDEX_FORMAT}-{version}-{year}-{rules_hash(settings.rules_dir)}-{alpha_digest}"


def save(data: IndexData, folder: Path) -> None:
    """Write the index to ``folder`` atomically (a temporary sibling renamed into place)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + f".tmp{time.time_ns()}")
    tmp.mkdir(parents=True)
    for name in _ARRAYS:
        np.save(tmp / f"{name}.npy", getattr(data, name))
    (tmp / "lists.json").write_text(json.dumps({k: getattr(data, k) for k in _LISTS}), encoding="utf-8")
    (tmp / "meta.json").write_text(json.dumps(data.meta, indent=1), encoding="utf-8")
    try:
        tmp.rename(folder)
    except OSError:
        # Another process finished first; its copy is equivalent.
        shutil.rmtree(tmp, ignore_errors=True)


def load_folder(folder: Path) -> IndexData:
    """Load a saved index (arrays memory-mapped).

    Raises:
        EngineError: ``INDEX_ERROR`` when files are missing or unreadable.
    """
    try:
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
        lists = json.loads((folder / "lists.json").read_text(encoding="utf-8"))
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineError(ErrorCode.INDEX_ERROR, f"cannot read ICD index in {folder}: {exc}") from exc
    return IndexData(**arrays, **{k: lists[k] for k in _LISTS}, meta=meta)


def index_folder(settings: Settings) -> tuple[Path, str | None]:
    """The cache folder for these settings and the notice about the Alphabetic Index (``None`` when read).

    Reading the Index file only to hash it would cost as much as parsing it, so the digest is the file's
    content hash, computed from the bytes (3 MB, a few milliseconds).
    """
    raw = read_alpha_bytes(settings.icd_index_path)
    if raw is None:
        digest = "-"
        notice = f"ICD-10-CM Alphabetic Index not found at {settings.icd_index_path}: tabular list only"
    else:
        digest, notice = hashlib.sha256(raw).hexdigest()[:16], None
    return Path(settings.cache_dir) / cache_key(settings, digest), notice


def load_or_build(settings: Settings, progress: bool = True) -> tuple[IndexData, bool, str | None]:
    """The cached index for these settings, building and caching it first when needed.

    Returns:
        ``(index, built, notice)``: ``built`` says whether this call built it; ``notice`` is a one-line note
        when the Alphabetic Index could not be used (the index is then the tabular list's alone), else ``None``.
    """
    folder, notice = index_folder(settings)
    if (folder / "meta.json").is_file():
        try:
            data = load_folder(folder)
            return data, False, notice or data.meta.get("notice")
        except EngineError:
            shutil.rmtree(folder, ignore_errors=True)
    alpha, notice, _ = load_alpha(settings.icd_index_path)
    data = build(settings, progress=progress, alpha=alpha, meta={"format": INDEX_FORMAT, "notice": notice})
    try:
        save(data, folder)
    except OSError as exc:
        sys.stderr.write(f"warning: could not cache the ICD index in {folder}: {exc}\n")
        return data, True, notice
    _remove_stale(folder)
    return load_folder(folder), True, notice


def _remove_stale(current: Path) -> None:
    """Delete complete indexes of other keys (older rules or package data) so the cache does not grow forever.

    A process that still has one memory-mapped keeps reading it (the files live until it closes them).
    """
    for other in current.parent.glob("icd-*"):
        # Only builds of the same Index file: the tabular-only and the Index linker may be cached side by side.
        same_index = other.name.rsplit("-", 1)[-1] == current.name.rsplit("-", 1)[-1]
        stale = other != current and same_index and ".tmp" not in other.name and (other / "post_doc.npy").is_file()
        if stale and (other / "meta.json").is_file():
            shutil.rmtree(other, ignore_errors=True)
