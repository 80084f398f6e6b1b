"""Monitoring statistics of a batch job: ``OUTPUT.stats.jsonl`` beside the results, one line per written note.

Each line is :func:`engine.monitoring.profile.stats_record` of one analysed note (its id and numbers only: entity
counts by label, confidence sums, token entropy and ``O`` share, a hashed bag of words; never the note's text).
The engine cannot write the database, so the batch writes this file and ``python -m engine monitor ingest --db URL
OUTPUT.stats.jsonl`` stores it (source ``batch``) for the ``monitor`` report and the Monitoring page.

Lines are appended after the batch's results are written, so a resumed run (which skips the ids already in the
output) adds the statistics of the new notes only; a line cut by a crash is dropped before appending again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO


def stats_path(output: Path) -> Path:
    """Where a run's monitoring statistics go: ``OUTPUT.stats.jsonl`` beside the output."""
    return output.with_name(output.name + ".stats.jsonl")


class StatsLog:
    """Appends statistics lines to ``OUTPUT.stats.jsonl`` (opened on the first line, so a run that writes nothing
    leaves no file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._handle: TextIO | None = None

    def write(self, lines: Sequence[dict[str, Any] | None]) -> None:
        """Append the given lines (``None`` entries, failed notes, are skipped) and flush."""
        lines = [line for line in lines if line is not None]
        if not lines:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _drop_cut_line(self.path)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
        self._handle.flush()
        self.count += len(lines)

    def close(self) -> None:
        """Close the file (if anything was written)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _drop_cut_line(path: Path) -> None:
    """Truncate ``path`` after its last complete line (a crash may have cut the last one)."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)
