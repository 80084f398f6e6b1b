"""BRAT standoff (``<id>.txt`` + ``<id>.ann``): the reader used for MACCROBAT and Chia, and the fragments a
writer needs (BRAT shows no entity across a line break)."""

from __future__ import annotations

import re
from pathlib import Path

from engine.corpora.document import Document, GoldSpan, parse_label_map, resolve_overlaps
from engine.errors import EngineError, ErrorCode


def parse_ann(ann: str, label_map: dict[str, str] | None, *, join_fragments: bool = False) -> list[GoldSpan]:
    """Mapped text-bound spans of one ``.ann`` file, in file order (overlaps not yet resolved).

    Args:
        ann: The ``.ann`` text.
        label_map: Corpus type -> product label (unmapped types are skipped); ``None`` keeps every type as is.
        join_fragments: Read a discontinuous span (``start end;start end``) as its first fragment's start to its
            last fragment's end (what :func:`fragments` splits); by default such spans are skipped.
    """
    spans: list[GoldSpan] = []
    for line in ann.splitlines():
        if not line.startswith("T"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        kind, _, offsets = parts[1].partition(" ")
        if (label_map is not None and kind not in label_map) or (";" in offsets and not join_fragments):
            continue
        try:
            pieces = [[int(x) for x in fragment.split()] for fragment in offsets.split(";")]
            (start, _), (_, end) = pieces[0], pieces[-1]
        except ValueError:
            continue
        spans.append((start, end, kind if label_map is None else label_map[kind]))
    return spans


def fragments(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A span as BRAT fragments: split at line breaks, each fragment stripped of edge whitespace."""
    found = []
    for match in re.finditer(r"[^\n]+", text[start:end]):
        s, e = start + match.start(), start + match.end()
        piece = text[s:e]
        s += len(piece) - len(piece.lstrip())
        e -= len(piece) - len(piece.rstrip())
        if s < e:
            found.append((s, e))
    return found or [(start, end)]


def read_document(txt: Path, label_map: dict[str, str]) -> Document:
    """Read one ``.txt`` and its ``.ann`` (an absent ``.ann`` means no entities)."""
    # newline="" keeps "\r\n" as two characters, as BRAT offsets count them.
    with open(txt, encoding="utf-8", newline="") as handle:
        text = handle.read()
    ann_path = txt.with_suffix(".ann")
    ann = ann_path.read_text(encoding="utf-8") if ann_path.is_file() else ""
    spans = [s for s in parse_ann(ann, label_map) if 0 <= s[0] < s[1] <= len(text)]
    return Document(id=txt.stem, text=text, spans=resolve_overlaps(spans))


def read_brat(path: str | Path, label_map: dict[str, str] | str | None = "maccrobat") -> list[Document]:
    """Read a BRAT folder (or a single ``.txt`` file).

    Args:
        path: Folder of ``.txt``/``.ann`` pairs, or one ``.txt``.
        label_map: Corpus type -> product label, or the name of one in
            :data:`~engine.corpora.document.LABEL_MAPS`.

    Raises:
        EngineError: ``DATA_NOT_FOUND`` when the path holds no ``.txt`` files.
    """
    mapping = label_map if isinstance(label_map, dict) else parse_label_map(label_map, "maccrobat")
    root = Path(path)
    files = [root] if root.is_file() else sorted(root.glob("*.txt")) if root.is_dir() else []
    if not files:
        raise EngineError(ErrorCode.DATA_NOT_FOUND, f"no BRAT .txt files at {root}")
    return [read_document(f, mapping) for f in files]
