"""IOB2 token-file reader (``token<TAB>tag``, blank line between sentences): BC5CDR, NCBI-disease, AnatEM.

A sentence becomes text by joining its tokens with single spaces; entity offsets are computed on that text, so
IOB corpora train the same character-span model as BRAT ones.
"""

from __future__ import annotations

from pathlib import Path

from engine.corpora.document import Document, GoldSpan, parse_label_map
from engine.errors import EngineError, ErrorCode


def sentence_to_document(doc_id: str, tokens: list[str], tags: list[str], label_map: dict[str, str]) -> Document:
    """Join tokens with spaces and turn their IOB tags into character spans (unmapped types are dropped)."""
    spans: list[GoldSpan] = []
    pieces: list[str] = []
    pos = 0
    current: list[object] | None = None  # [start, end, type]
    for token, tag in zip(tokens, tags, strict=True):
        if pieces:
            pos += 1
        start, end = pos, pos + len(token)
        pieces.append(token)
        pos = end
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and current is not None and current[2] == kind:
            current[1] = end
            continue
        if current is not None:
            spans.append((int(current[0]), int(current[1]), str(current[2])))  # type: ignore[call-overload]
            current = None
        if prefix in {"B", "I"}:
            current = [start, end, kind]
    if current is not None:
        spans.append((int(current[0]), int(current[1]), str(current[2])))  # type: ignore[call-overload]
    mapped = [(s, e, label_map[k]) for s, e, k in spans if k in label_map]
    return Document(id=doc_id, text=" ".join(pieces), spans=mapped)


def read_iob(
    path: str | Path, label_map: dict[str, str] | str | None = None, sentences_per_doc: int = 8
) -> list[Document]:
    """Read an IOB2 file into documents of a few consecutive sentences (joined by newlines).

    Args:
        path: The ``.tsv`` file (or a folder: every ``*.tsv`` inside).
        label_map: Corpus type -> product label, or a named map; ``None`` guesses from the file's folder name.
        sentences_per_doc: Consecutive sentences grouped into one document (more context per window).

    Raises:
        EngineError: ``DATA_NOT_FOUND`` when nothing is there.
    """
    root = Path(path)
    files = sorted(root.glob("*.tsv")) if root.is_dir() else [root] if root.is_file() else []
    if not files:
        raise EngineError(ErrorCode.DATA_NOT_FOUND, f"no IOB .tsv files at {root}")
    if isinstance(label_map, dict):
        mapping = label_map
    else:
        mapping = parse_label_map(label_map or (root if root.is_dir() else root.parent).name, "identity")
    documents: list[Document] = []
    for file in files:
        sentences: list[Document] = []
        tokens: list[str] = []
        tags: list[str] = []
        for line in [*file.read_text(encoding="utf-8").splitlines(), ""]:
            if not line.strip():
                if tokens:
                    sentences.append(sentence_to_document("", tokens, tags, mapping))
                tokens, tags = [], []
                continue
            token, _, tag = line.rpartition("\t")
            tokens.append(token or line)
            tags.append(tag.strip() if token else "O")
        for i in range(0, len(sentences), sentences_per_doc):
            group = sentences[i : i + sentences_per_doc]
            text_parts: list[str] = []
            spans: list[GoldSpan] = []
            offset = 0
            for sentence in group:
                spans += [(s + offset, e + offset, lab) for s, e, lab in sentence.spans]
                text_parts.append(sentence.text)
                offset += len(sentence.text) + 1
            documents.append(Document(id=f"{file.stem}#{i // sentences_per_doc}", text="\n".join(text_parts),
                                      spans=spans))
    return documents
