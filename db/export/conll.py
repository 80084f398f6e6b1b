"""The ``conll`` writer: IOB2 tags, one token per line as ``token<TAB>start<TAB>end<TAB>tag``, a block per
document (read back by :func:`engine.corpora.iob.read_conll`)."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from db.export.manifest import Outputs, count_document
from db.export.spans import token_spans
from engine.corpora.iob import iob_tags


def write_conll(
    docs: Iterator[dict[str, Any]], out: Path | None, stream: IO[str] | None, counts: Counter[str], split: float | None
) -> dict[str, dict[str, Any]]:
    """Write document records as CoNLL blocks; the manifest's file entries."""
    outputs = Outputs(out, stream, "data", "conll", split)
    try:
        for doc in docs:
            count_document(doc, counts)
            spans = token_spans(doc, counts)
            buffer = io.StringIO()
            buffer.write(f"# doc_id = {doc['analysis_id']}\n# id = {doc['id']}\n# note_sha256 = {doc['note_sha256']}\n")
            text = doc["text"]
            for start, end, tag in iob_tags(text, spans):
                buffer.write(f"{text[start:end]}\t{start}\t{end}\t{tag}\n")
                counts["tokens"] += 1
            buffer.write("\n")
            outputs.get(doc["split"]).write(buffer.getvalue())
    finally:
        files = outputs.close()
    return files
