"""IOB2 tags both ways: the token-file reader (``token<TAB>tag``: BC5CDR, NCBI-disease, AnatEM), tags from spans
over a tokenisation that respects every span boundary, and spans from tags.

A corpus sentence becomes text by joining its tokens with single spaces; entity offsets are computed on that text,
so IOB corpora train the same character-span model as BRAT ones. The offset CoNLL format
(``token<TAB>start<TAB>end<TAB>tag``, ``# doc_id = ...`` before each document) is what the feedback export writes;
:func:`read_conll` reads it back.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from engine.corpora.document import Document, GoldSpan, parse_label_map
from engine.errors import EngineError, ErrorCode

TOKEN = re.compile(r"\w+|[^\w\s]")
"""A word or one punctuation character: the tokens of :func:`tokenize`."""


def tokenize(text: str, breaks: Iterable[int] = ()) -> list[tuple[int, int]]:
    """Word and punctuation tokens as ``(start, end)`` offsets, also split at every offset in ``breaks``.

    Splitting at entity boundaries guarantees every entity covers whole tokens, so IOB tags and spaCy spans
    reproduce its offsets exactly.
    """
    cuts = sorted(set(breaks))
    tokens: list[tuple[int, int]] = []
    for match in TOKEN.finditer(text):
        start, end = match.span()
        i = bisect.bisect_right(cuts, start)
        while i < len(cuts) and cuts[i] < end:
            tokens.append((start, cuts[i]))
            start = cuts[i]
            i += 1
        tokens.append((start, end))
    return tokens


def iob_tags(text: str, spans: Sequence[GoldSpan]) -> list[tuple[int, int, str]]:
    """``(start, end, tag)`` per token of ``text`` with IOB2 tags for non-overlapping ``spans``."""
    tokens = tokenize(text, [x for s, e, _ in spans for x in (s, e)])
    tagged = []
    ordered = sorted(spans)
    j = 0
    for start, end in tokens:
        while j < len(ordered) and ordered[j][1] <= start:
            j += 1
        if j < len(ordered) and ordered[j][0] <= start and end <= ordered[j][1]:
            prefix = "B" if start == ordered[j][0] else "I"
            tagged.append((start, end, f"{prefix}-{ordered[j][2]}"))
        else:
            tagged.append((start, end, "O"))
    return tagged


def spans_from_iob(rows: Iterable[tuple[int, int, str]]) -> list[GoldSpan]:
    """``(start, end, type)`` spans from ``(start, end, tag)`` token rows; ``I-`` after another type opens one."""
    spans: list[GoldSpan] = []
    current: list[int | str] | None = None  # [start, end, type]
    for start, end, tag in rows:
        if tag.startswith("B-") or (tag.startswith("I-") and (current is None or current[2] != tag[2:])):
            if current:
                spans.append((int(current[0]), int(current[1]), str(current[2])))
            current = [start, end, tag[2:]]
        elif tag.startswith("I-") and current is not None:
            current[1] = end
        else:
            if current:
                spans.append((int(current[0]), int(current[1]), str(current[2])))
            current = None
    if current:
        spans.append((int(current[0]), int(current[1]), str(current[2])))
    return spans


def read_conll(path_or_text: Path | str) -> dict[str, list[GoldSpan]]:
    """Read the offset CoNLL format (a :class:`~pathlib.Path`, or the text itself): document id to its spans."""
    text = Path(path_or_text).read_text("utf-8") if isinstance(path_or_text, Path) else path_or_text
    docs: dict[str, list[GoldSpan]] = {}
    doc_id: str | None = None
    rows: list[tuple[int, int, str]] = []
    for line in text.split("\n"):
        if line.startswith("# doc_id = "):
            if doc_id is not None:
                docs[doc_id] = spans_from_iob(rows)
            doc_id, rows = line[len("# doc_id = ") :], []
        elif line and not line.startswith("#"):
            _token, start, end, tag = line.split("\t")
            rows.append((int(start), int(end), tag))
    if doc_id is not None:
        docs[doc_id] = spans_from_iob(rows)
    return docs


def sentence_to_document(doc_id: str, tokens: list[str], tags: list[str], label_map: dict[str, str]) -> Document:
    """Join tokens with spaces and turn their IOB tags into character spans (unmapped types are dropped)."""
    rows: list[tuple[int, int, str]] = []
    pos = 0
    for token, tag in zip(tokens, tags, strict=True):
        rows.append((pos, pos + len(token), tag))
        pos += len(token) + 1
    mapped = [(s, e, label_map[k]) for s, e, k in spans_from_iob(rows) if k in label_map]
    return Document(id=doc_id, text=" ".join(tokens), spans=mapped)


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
