"""What both batch runners take alike: how notes are read, batched, reported and written.

The local and the Ray runner differ only in where the engine runs; everything else a run is told comes in one
:class:`RunOptions`, so the CLI builds it once and a new option reaches both runners at once.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Reading, batching, progress and output settings of one batch run.

    Attributes:
        batch_size: Notes per ``analyze_many`` call (NER forward passes are batched across them); for Ray, rows per
            actor call and per written batch.
        id_column: The id field of table inputs.
        text_column: The text field of table inputs.
        progress: Show a progress bar (notes/s) on ``stderr``.
        stderr: Where messages go (``None``: ``sys.stderr`` at run time, so a redirected stream is honoured).
        rows_per_file: Parquet results per part file.
        monitor_stats: Also append each written note's monitoring statistics (no text) to ``OUTPUT.stats.jsonl``
            (:mod:`engine.batch.stats`; stored with ``python -m engine monitor ingest``).
    """

    batch_size: int = 32
    id_column: str = "id"
    text_column: str = "text"
    progress: bool = True
    stderr: TextIO | None = None
    rows_per_file: int = 1000
    monitor_stats: bool = True

    def stream(self) -> TextIO:
        """Where this run's messages go."""
        return self.stderr or sys.stderr
