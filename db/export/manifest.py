"""What an export wrote: the manifest, the hashing writers behind it, the counts it reports, the train/dev split."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from db.models import utcnow

SCHEMA_VERSION = 1


@dataclass(slots=True)
class Manifest:
    """What an export wrote: format, filters, counts and hashes."""

    format: str
    filters: dict[str, Any]
    split: float | None
    seed: int
    text_mode: str = "deidentified"
    """``deidentified``: every text de-identified (the default); ``original``: notes stored with their original
    text exported as they are (``export_dataset(..., deidentify=False)``, ``--original-text``)."""
    counts: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    sha256: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    """``include_silver`` and ``conflicts`` as the export was asked for (entity formats)."""
    notes: dict[str, list[int]] = field(default_factory=dict)
    """Analysis ids by what the export did with them: ``gold`` (fully reviewed), ``silver`` (not, exported with
    ``include_silver``), ``conflict_flagged`` (exported with open conflicts) and ``conflict_excluded`` (left out)."""
    created_at: str = field(default_factory=lambda: utcnow().isoformat())
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


class HashingWriter:
    """Writes text as UTF-8 to a binary file or a text stream, hashing and counting what it writes."""

    def __init__(self, target: IO[bytes] | IO[str], binary: bool) -> None:
        self._target = target
        self._binary = binary
        self.hash = hashlib.sha256()
        self.bytes = 0
        self.lines = 0

    def write(self, text: str) -> None:
        """Write ``text`` (counted in UTF-8 bytes and lines)."""
        data = text.encode("utf-8")
        self.hash.update(data)
        self.bytes += len(data)
        self.lines += text.count("\n")
        if self._binary:
            self._target.write(data)  # type: ignore[arg-type]
        else:
            self._target.write(text)  # type: ignore[arg-type]

    def info(self) -> dict[str, Any]:
        """The manifest entry of what was written."""
        return {"sha256": self.hash.hexdigest(), "bytes": self.bytes, "lines": self.lines}


class Outputs:
    """One writer per split (files ``<stem>.<ext>`` or ``<split>.<ext>``, or the caller's stream)."""

    def __init__(self, out_dir: Path | None, stream: IO[str] | None, stem: str, ext: str, split: float | None) -> None:
        self.out_dir, self.stream, self.stem, self.ext, self.split = out_dir, stream, stem, ext, split
        self.writers: dict[str, HashingWriter] = {}
        self._files: list[IO[bytes]] = []

    def name(self, split: str | None) -> str:
        """The file name of a split's output."""
        return f"{self.stem}.{self.ext}" if split is None else f"{split}.{self.ext}"

    def get(self, split: str | None) -> HashingWriter:
        """The writer of a split (opened on first use)."""
        name = "<stream>" if self.stream is not None else self.name(split)
        writer = self.writers.get(name)
        if writer is None:
            if self.stream is not None:
                writer = HashingWriter(self.stream, binary=False)
            else:
                assert self.out_dir is not None
                handle = (self.out_dir / name).open("wb")
                self._files.append(handle)
                writer = HashingWriter(handle, binary=True)
            self.writers[name] = writer
        return writer

    def close(self) -> dict[str, dict[str, Any]]:
        """Close the files; the manifest entries by file name."""
        # An export that matched nothing still writes its (empty) files, so consumers find what they expect.
        if self.stream is None:
            for name in ("train", "dev") if self.split is not None else (None,):
                self.get(name)
        for handle in self._files:
            handle.close()
        return {name: w.info() for name, w in sorted(self.writers.items())}


def combined_hash(files: dict[str, dict[str, Any]]) -> str:
    """One SHA-256 over every file's name and hash (the manifest's ``sha256``)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\t{files[name]['sha256']}\n".encode())
    return digest.hexdigest()


def split_of(note_sha256: str, split: float | None, seed: int) -> str | None:
    """``dev`` for about a ``split`` fraction of notes, else ``train``; ``None`` without a split. Deterministic."""
    if split is None:
        return None
    value = int.from_bytes(hashlib.sha256(f"{seed}:{note_sha256}".encode()).digest()[:8], "big") / 2**64
    return "dev" if value < split else "train"


def count_document(doc: dict[str, Any], counts: Counter[str]) -> None:
    """Add a document record's entities, decisions and gold spans to the manifest counts."""
    counts["documents"] += 1
    if doc["split"] is not None:
        counts[f"documents_{doc['split']}"] += 1
    counts["entities"] += len(doc["entities"])
    for entity in doc["entities"]:
        counts["decisions"] += len(entity["decisions"])
        for d in entity["decisions"]:
            counts[f"decision_{d['target']}_{d['decision']}"] += 1
    counts[f"documents_{doc.get('status', 'gold')}"] += 1
    counts["conflicts_unresolved"] += len(doc.get("conflicts") or [])
    counts["gold_entities"] += len(doc["gold"])
    counts["silver_entities"] += len(doc.get("silver") or [])
    for g in doc["gold"]:
        counts[f"gold_{g['label']}"] += 1


def count_summary(record: dict[str, Any], counts: Counter[str]) -> None:
    """Add a summary record's sentences and their decisions to the manifest counts."""
    counts["summaries"] += 1
    counts["sentences"] += len(record["sentences"])
    for s in record["sentences"]:
        counts["sentence_decisions"] += len(s["decisions"])
        counts[f"label_{s['label']}"] += 1
