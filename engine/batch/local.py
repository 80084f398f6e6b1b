"""The batch job in this process: NER batched across notes, one failing note isolated, counts and an error log.

:class:`RunStats`, :class:`ErrorLog` and :func:`analyze_batch` are shared with the Ray runner and the app.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from engine.batch.options import RunOptions
from engine.batch.outputs import JsonlWriter, ParquetWriter, done_ids, errors_path, open_writer
from engine.batch.stats import StatsLog, stats_path
from engine.errors import EngineError
from engine.inputs import BadNote, Note, count_notes, iter_notes
from engine.monitoring.profile import LOW_CONFIDENCE, stats_record

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RunStats:
    """Counts of one run."""

    written: int = 0
    skipped: int = 0
    failed: int = 0
    chars: int = 0
    seconds: float = 0.0
    monitored: int = 0

    def line(self) -> str:
        """One summary line for a person."""
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.written} notes written, {self.skipped} already done (skipped), {self.failed} failed, "
            f"in {self.seconds:.1f} s ({rate:.2f} notes/s)"
        )


class ErrorLog:
    """Reports failed notes: a line on standard error and a JSON line in ``OUTPUT.errors.jsonl``."""

    def __init__(self, path: Path, stderr: TextIO, bar: Any = None) -> None:
        self.path = path
        self.stderr = stderr
        self.bar = bar
        self.count = 0
        self._handle: TextIO | None = None

    def report(self, note_id: str, error: str) -> None:
        """Record one failed note."""
        self.count += 1
        message = f"error: note {note_id}: {error}"
        if self.bar is not None and not self.bar.disable:
            self.bar.write(message, file=self.stderr)  # above the progress bar, not through it
        else:
            self.stderr.write(message + "\n")
            self.stderr.flush()
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(json.dumps({"id": note_id, "error": error}, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Close the log file (if any note failed)."""
        if self._handle is not None:
            self._handle.close()


def analyze_results(pipeline: Any, notes: Sequence[Note]) -> list[Any]:
    """Analyse notes together (NER batched across them); a failing note is isolated, never the whole batch.

    When the batched call raises, the notes are analysed one by one so only the note at fault becomes a
    :class:`BadNote` (with the exception as its error).

    Returns:
        One :class:`~engine.types.AnalysisResult` or :class:`BadNote` per note, in input order.
    """
    if not notes:
        return []
    try:
        return list(pipeline.analyze_many([(n.id, n.text) for n in notes]))
    except Exception:
        if len(notes) == 1:
            return [_analyze_one(pipeline, notes[0])]
    return [_analyze_one(pipeline, note) for note in notes]


def analyze_batch(pipeline: Any, notes: Sequence[Note]) -> list[dict[str, Any] | BadNote]:
    """:func:`analyze_results` as the contract's result dicts (or :class:`BadNote`), in input order."""
    return [r if isinstance(r, BadNote) else r.to_dict() for r in analyze_results(pipeline, notes)]


def analyze_with_stats(
    pipeline: Any, notes: Sequence[Note], low_confidence: float
) -> tuple[list[dict[str, Any] | BadNote], list[dict[str, Any] | None]]:
    """:func:`analyze_batch` plus each good note's monitoring line (:func:`~engine.monitoring.profile.stats_record`;
    ``None`` for a failed note), taken from the engine's own results, which carry the NER token statistics that
    the contract's dict leaves out."""
    results = analyze_results(pipeline, notes)
    stats = [None if isinstance(r, BadNote) else stats_record(n.id, n.text, r, low_confidence)
             for n, r in zip(notes, results, strict=True)]
    return [r if isinstance(r, BadNote) else r.to_dict() for r in results], stats


def _analyze_one(pipeline: Any, note: Note) -> Any:
    try:
        return pipeline.analyze(note.text, note.id)
    except EngineError as exc:
        return BadNote(note.id, exc.message)
    except Exception as exc:  # one note's unexpected failure must not stop a million-note run
        log.debug("note %s failed", note.id, exc_info=True)
        return BadNote(note.id, f"{type(exc).__name__}: {exc}")


def _batches(items: Iterable[Note], size: int, max_chars: int) -> Iterator[list[Note]]:
    """Group notes into batches of at most ``size`` notes and about ``max_chars`` characters."""
    batch: list[Note] = []
    chars = 0
    for item in items:
        batch.append(item)
        chars += len(item.text)
        if len(batch) >= size or chars >= max_chars:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def progress_bar(total: int | None, disable: bool, stderr: TextIO) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total, unit="note", desc="analyze", file=stderr, disable=disable, dynamic_ncols=True, smoothing=0.1
    )


@contextmanager
def run_outputs(
    output: Path, fmt: str, total: int | None, options: RunOptions, stats: RunStats, started: float
) -> Iterator[tuple[JsonlWriter | ParquetWriter, ErrorLog, Any, StatsLog]]:
    """The writer, error log, progress bar and monitoring statistics log (``OUTPUT.stats.jsonl``) of one run,
    closed (and ``stats`` completed) however it ends."""
    stderr = options.stream()
    writer = open_writer(output, fmt, options.rows_per_file)
    bar = progress_bar(total, not options.progress, stderr)
    errors = ErrorLog(errors_path(output), stderr, bar)
    monitor = StatsLog(stats_path(output))
    try:
        yield writer, errors, bar, monitor
    finally:
        writer.close()
        errors.close()
        monitor.close()
        bar.close()
        stats.failed = errors.count
        stats.monitored = monitor.count
        stats.seconds = time.perf_counter() - started


def _new_notes(
    notes: Iterable[Note | BadNote], done: set[str], errors: ErrorLog, bar: Any, stats: RunStats
) -> Iterator[Note]:
    """The notes still to analyse: bad inputs and repeated ids are reported, ids already written are skipped."""
    seen: set[str] = set()
    for item in notes:
        if isinstance(item, BadNote):
            errors.report(item.id, item.error)
            bar.update(1)
            continue
        if item.id in done:
            stats.skipped += 1
            bar.update(1)
            continue
        if item.id in seen:
            errors.report(item.id, "duplicate id in the input (first one kept)")
            bar.update(1)
            continue
        seen.add(item.id)
        yield item


def run_local(
    input_path: Path,
    output: Path,
    fmt: str,
    pipeline: Any,
    options: RunOptions | None = None,
    *,
    max_batch_chars: int = 200_000,
    low_confidence: float = LOW_CONFIDENCE,
) -> RunStats:
    """Analyse every note of ``input_path`` not yet in ``output``, in this process.

    Args:
        input_path: A folder of ``.txt`` or a ``.csv``/``.jsonl``/``.parquet`` file.
        output: The JSON lines file or Parquet dataset folder (appended to).
        fmt: ``jsonl`` or ``parquet``.
        pipeline: A :class:`~engine.pipeline.Pipeline` (anything with ``analyze_many``/``analyze``).
        options: Reading, batching, progress and output settings (default :class:`RunOptions`).
        max_batch_chars: A batch is also closed once its notes hold this many characters.
        low_confidence: The low-confidence threshold of those statistics (``MonitorSettings.low_confidence``).

    Returns:
        The run's counts.

    Raises:
        InputError: The input or output as a whole is unusable (nothing was analysed).
    """
    opts = options or RunOptions()
    started = time.perf_counter()
    done = done_ids(output, fmt)
    # An unusable input raises here, before OUTPUT is created.
    notes = iter_notes(input_path, opts.id_column, opts.text_column)
    stats = RunStats()
    with run_outputs(output, fmt, count_notes(input_path), opts, stats, started) as (writer, errors, bar, monitor):
        todo = _new_notes(notes, done, errors, bar, stats)
        for batch in _batches(todo, opts.batch_size, max_batch_chars):
            if opts.monitor_stats:
                out, lines = analyze_with_stats(pipeline, batch, low_confidence)
            else:
                out, lines = analyze_batch(pipeline, batch), []
            good = []
            for note, result in zip(batch, out, strict=True):
                if isinstance(result, BadNote):
                    errors.report(result.id, result.error)
                else:
                    good.append(result)
                    stats.chars += len(note.text)
            writer.write(good)
            monitor.write(lines)  # after the results: a resumed run never counts a note twice
            stats.written += len(good)
            bar.update(len(batch))
            bar.set_postfix(failed=errors.count, skipped=stats.skipped, refresh=False)
    return stats
