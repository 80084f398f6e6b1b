"""The ``brat`` writer: BRAT standoff ``.txt``/``.ann`` pairs per split folder, traits as attributes, codes as
annotator notes, and the folder's ``annotation.conf``."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from db.export.manifest import count_document
from db.export.spans import labelled_spans
from engine.corpora.brat import fragments
from engine.types import LABELS

BRAT_TRAITS = {
    "negated": "Negated",
    "family": "Family",
    "hypothetical": "Hypothetical",
    "possible": "Possible",
    "historical": "Historical",
}
"""Trait -> BRAT attribute name."""


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:100]


def ann_text(doc: dict[str, Any]) -> str:
    """The ``.ann`` of a document record: its gold spans, their traits and codes."""
    lines = []
    a = n = 0
    by_suggestion = {e["suggestion_id"]: e for e in doc["entities"]}
    for t, g in enumerate(labelled_spans(doc), 1):
        frags = fragments(doc["text"], g["start"], g["end"])
        offsets = ";".join(f"{s} {e}" for s, e in frags)
        shown = " ".join(doc["text"][s:e] for s, e in frags)
        lines.append(f"T{t}\t{g['label']} {offsets}\t{shown}")
        entity = by_suggestion.get(g["suggestion_id"], {})
        for trait in entity.get("traits", []):
            a += 1
            lines.append(f"A{a}\t{BRAT_TRAITS[trait]} T{t}")
        note = " ".join([*g["codes"], *(["silver"] if g.get("source") == "silver" else [])])
        if note:
            n += 1
            lines.append(f"#{n}\tAnnotatorNotes T{t}\t{note}")
    return ("\n".join(lines) + "\n") if lines else ""


def annotation_conf() -> str:
    """The ``annotation.conf`` naming the five labels and the trait attributes."""
    return (
        "[entities]\n"
        + "\n".join(LABELS)
        + "\n[relations]\n[events]\n[attributes]\n"
        + "\n".join(f"{name} Arg:<ENTITY>" for name in BRAT_TRAITS.values())
        + "\n"
    )


def write_brat(docs: Iterator[dict[str, Any]], out: Path, counts: Counter[str]) -> dict[str, dict[str, Any]]:
    """Write document records as BRAT pairs in ``<split or data>/``; one manifest entry per folder."""
    combined: dict[str | None, Any] = {}
    sizes: Counter[str | None] = Counter()
    n_files: Counter[str | None] = Counter()
    for doc in docs:
        count_document(doc, counts)
        split = doc["split"]
        folder = out / (split or "data")
        folder.mkdir(exist_ok=True)
        stem = f"{doc['analysis_id']:08d}_{_safe(str(doc['id']))}"
        digest = combined.setdefault(split, hashlib.sha256())
        for suffix, content in ((".txt", doc["text"]), (".ann", ann_text(doc))):
            data = content.encode("utf-8")
            (folder / f"{stem}{suffix}").write_bytes(data)
            digest.update(f"{stem}{suffix}\t{hashlib.sha256(data).hexdigest()}\n".encode())
            sizes[split] += len(data)
            n_files[split] += 1
    files = {}
    for split, digest in combined.items():
        folder = out / (split or "data")
        (folder / "annotation.conf").write_text(annotation_conf(), "utf-8")
        files[f"{split or 'data'}/"] = {"sha256": digest.hexdigest(), "bytes": sizes[split], "files": n_files[split]}
    return dict(sorted(files.items()))
