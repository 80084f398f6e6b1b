"""BRAT standoff reader (``<id>.txt`` + ``<id>.ann``), used for MACCROBAT and Chia."""

from __future__ import annotations

from pathlib import Path

from engine.corpora.document import Document, GoldSpan, parse_label_map, resolve_overlaps
from engine.errors import EngineError, ErrorCode


def parse_ann(ann: str, label_map: dict[str, str]) -> list[GoldSpan]:
    """Mapped, continuous text-bound spans of one ``.ann`` file, in file order (overlaps not yet resolved).

    Discontinuous spans (``start end;start end``) are skipped, as are unmapped types.
    """
    spans: list[GoldSpan] = []
    for line in ann.splitlines():
        if not line.startswith("T"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        kind, _, offsets = parts[1].partition(" ")
        if kind not in label_map or ";" in offsets:
            continue
        try:
            start, end = (int(x) for x in offsets.split())
        except ValueError:
            continue
        spans.append((start, end, label_map[kind]))
    return spans


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
