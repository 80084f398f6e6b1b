"""Batch analysis at scale: ``python -m engine batch INPUT OUTPUT [--ray [--address ADDR]]``.

The same job runs on a laptop (one process, NER batched across notes) or on a Ray cluster (a Ray Data pipeline:
read, decode, ``map_batches`` with the engine in an actor pool, GPU actors where the cluster has GPUs, write).

Input (``INPUT``):

- a folder: every ``*.txt`` below it is a note, its ``id`` the path relative to the folder without ``.txt``;
- ``.csv``, ``.jsonl`` (or ``.ndjson``), ``.parquet``: one note per row with ``id`` and ``text`` columns/fields
  (other names with ``--id-column`` / ``--text-column``).

Output (``OUTPUT``): the contract's analysis result, one per note, as JSON lines (any name; ``.jsonl`` usual), or,
when ``OUTPUT`` ends in ``.parquet`` (or ``--format parquet``), a Parquet dataset folder of ``part-*.parquet`` files
with the same nested fields (``id``, ``entities``, ``models``, ``timings_ms``).

Resumable: ids already in ``OUTPUT`` are skipped, so a stopped run is continued by running the same command again
(a JSON lines file cut mid-line by a crash is repaired first). Error isolation: a note that cannot be read or
analysed is reported on standard error with its id, appended to ``OUTPUT.errors.jsonl`` and skipped; the other
notes are still written, and the exit status is then 2 (as for the per-note verbs). Monitoring: each written note's
statistics (numbers only) are appended to ``OUTPUT.stats.jsonl`` (``--no-stats`` to skip); ``python -m engine monitor
ingest --db URL OUTPUT.stats.jsonl`` stores them.

One module per job: notes in are :mod:`engine.inputs` (shared with the per-note verbs and the app),
:mod:`~engine.batch.outputs` (writers, the Parquet schema derived from :mod:`engine.types`, resume),
:mod:`~engine.batch.local` (this process), :mod:`~engine.batch.ray` (a Ray cluster), :mod:`~engine.batch.stats`
(``OUTPUT.stats.jsonl``: each written note's monitoring statistics, no text), :mod:`~engine.batch.cli`.
"""

from engine.batch.cli import build_parser, main
from engine.batch.local import ErrorLog, RunStats, analyze_batch, analyze_results, analyze_with_stats, run_local
from engine.batch.options import RunOptions
from engine.batch.outputs import (
    JsonlWriter,
    ParquetWriter,
    done_ids,
    errors_path,
    output_format,
    parquet_schema,
    parquet_to_result,
)
from engine.batch.ray import EngineActor, build_ray_dataset, run_ray
from engine.batch.stats import StatsLog, stats_path
from engine.inputs import BadNote, InputError, Note, iter_notes

__all__ = [
    "BadNote",
    "EngineActor",
    "ErrorLog",
    "InputError",
    "JsonlWriter",
    "Note",
    "ParquetWriter",
    "RunOptions",
    "RunStats",
    "StatsLog",
    "analyze_batch",
    "analyze_results",
    "analyze_with_stats",
    "build_parser",
    "build_ray_dataset",
    "done_ids",
    "errors_path",
    "iter_notes",
    "main",
    "output_format",
    "parquet_schema",
    "parquet_to_result",
    "run_local",
    "run_ray",
    "stats_path",
]
