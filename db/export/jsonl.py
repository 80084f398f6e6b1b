"""The ``jsonl`` and ``summary_jsonl`` writers: one JSON line per record."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from db.export.manifest import Outputs


def write_jsonl(
    records: Iterator[dict[str, Any]],
    out: Path | None,
    stream: IO[str] | None,
    stem: str,
    counts: Counter[str],
    split: float | None,
    count: Callable[[dict[str, Any], Counter[str]], None],
) -> dict[str, dict[str, Any]]:
    """Write ``records`` as JSON lines (``<stem>.jsonl`` or one file per split); the manifest's file entries."""
    outputs = Outputs(out, stream, stem, "jsonl", split)
    try:
        for record in records:
            count(record, counts)
            outputs.get(record["split"]).write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        files = outputs.close()
    return files
