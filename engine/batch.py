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
notes are still written, and the exit status is then 2 (as for the per-note verbs).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from engine.errors import EngineError, ErrorCode
from engine.pipeline import ANALYSIS_STAGES
from engine.settings import REPO_ROOT

log = logging.getLogger(__name__)

INPUT_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


# ----- notes in ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Note:
    """One note to analyse."""

    id: str
    text: str


@dataclass(slots=True)
class BadNote:
    """An input row that cannot become a note: reported and skipped."""

    id: str
    error: str


class InputError(Exception):
    """The input as a whole cannot be read (missing, unknown format, no ``text`` column)."""


def input_kind(path: Path) -> str:
    """``folder``, ``csv``, ``jsonl`` or ``parquet``.

    Raises:
        InputError: The path does not exist or has an unknown suffix.
    """
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    kind = INPUT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown input type; give a folder of .txt, or a .csv, .jsonl or .parquet file")
    return kind


def _cell(value: Any) -> str | None:
    """A CSV/Parquet/JSON cell as a string id or text (``None`` when missing)."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value if isinstance(value, str) else str(value)


def _row_note(raw_id: Any, raw_text: Any, where: str) -> Note | BadNote:
    note_id = _cell(raw_id)
    if note_id is None or note_id == "":
        return BadNote(where, "missing id")
    if raw_text is None or (isinstance(raw_text, float) and raw_text != raw_text):
        return BadNote(note_id, "missing text")
    if not isinstance(raw_text, str):
        return BadNote(note_id, f"text must be a string, got {type(raw_text).__name__}")
    return Note(note_id, raw_text)


def decode_note(note_id: str, data: bytes) -> Note | BadNote:
    """A ``.txt`` file's bytes as a note (UTF-8, as the contract says), or the reason it is not one."""
    try:
        return Note(note_id, data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return BadNote(note_id, f"not valid UTF-8 (byte {exc.start})")


def folder_note_id(folder: Path, path: Path) -> str:
    """A note's id in a folder input: its path relative to the folder, ``/``-separated, without ``.txt``."""
    rel = path.relative_to(folder).as_posix()
    return rel[: -len(".txt")] if rel.lower().endswith(".txt") else rel


def iter_folder(folder: Path) -> Iterator[Note | BadNote]:
    """Notes of every ``*.txt`` under ``folder``, in path order."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".txt"):
        note_id = folder_note_id(folder, path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield BadNote(note_id, f"cannot read file ({exc.strerror or exc})")
            continue
        yield decode_note(note_id, data)


def iter_jsonl(path: Path, id_column: str, text_column: str) -> Iterator[Note | BadNote]:
    """Notes of a JSON lines file; a line that is not a JSON object with id and text is a :class:`BadNote`."""
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            where = f"{path.name}:{lineno}"
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield BadNote(where, f"not valid UTF-8 (byte {exc.start})")
                continue
            except json.JSONDecodeError as exc:
                yield BadNote(where, f"invalid JSON ({exc.msg})")
                continue
            if not isinstance(obj, dict):
                yield BadNote(where, "expected a JSON object")
                continue
            yield _row_note(obj.get(id_column), obj.get(text_column), where)


def iter_csv(path: Path, id_column: str, text_column: str) -> Iterator[Note | BadNote]:
    """Notes of a CSV file with a header row (quoted fields may span lines)."""
    csv.field_size_limit(sys.maxsize)
    try:
        handle = path.open("r", encoding="utf-8", newline="")
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 (byte {exc.start})") from exc
    with handle:
        missing = [c for c in (id_column, text_column) if c not in header]
        if missing:
            raise InputError(f"{path}: no {' or '.join(repr(c) for c in missing)} column (columns: {header})")
        row_no = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, csv.Error) as exc:
                # The reader cannot resynchronise after a broken record: report it and stop reading this file.
                yield BadNote(f"{path.name}:row {row_no + 1}", f"unreadable CSV from here on ({exc})")
                return
            row_no += 1
            yield _row_note(row.get(id_column), row.get(text_column), f"{path.name}:row {row_no}")


def iter_parquet(path: Path, id_column: str, text_column: str, rows_per_batch: int = 1024) -> Iterator[Note | BadNote]:
    """Notes of a Parquet file, read a row group slice at a time."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    names = parquet.schema_arrow.names
    missing = [c for c in (id_column, text_column) if c not in names]
    if missing:
        raise InputError(f"{path}: no {' or '.join(repr(c) for c in missing)} column (columns: {names})")
    row = 0
    for batch in parquet.iter_batches(batch_size=rows_per_batch, columns=[id_column, text_column]):
        ids = batch.column(0).to_pylist()
        texts = batch.column(1).to_pylist()
        for raw_id, raw_text in zip(ids, texts, strict=True):
            row += 1
            yield _row_note(raw_id, raw_text, f"{path.name}:row {row}")


def iter_notes(path: Path, id_column: str = "id", text_column: str = "text") -> Iterator[Note | BadNote]:
    """Every note of ``path`` (see the module docstring for the formats), in input order.

    Raises:
        InputError: The input as a whole is unusable.
    """
    kind = input_kind(path)
    if kind == "folder":
        return iter_folder(path)
    if kind == "jsonl":
        return iter_jsonl(path, id_column, text_column)
    if kind == "csv":
        return iter_csv(path, id_column, text_column)
    return iter_parquet(path, id_column, text_column)


def validate_input(path: Path, id_column: str = "id", text_column: str = "text") -> str:
    """Check that ``path`` can be read as notes at all (type, and the id/text columns of a table) before any
    model is loaded; returns its kind.

    Raises:
        InputError: The input as a whole is unusable.
    """
    kind = input_kind(path)
    if kind == "csv":
        try:
            with path.open("r", encoding="utf-8", newline="") as handle:
                header = next(csv.reader(handle), [])
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not valid UTF-8 (byte {exc.start})") from exc
        except csv.Error as exc:
            raise InputError(f"{path}: unreadable CSV header ({exc})") from exc
    elif kind == "parquet":
        import pyarrow.parquet as pq

        try:
            header = pq.ParquetFile(path).schema_arrow.names
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    else:
        return kind
    missing = [c for c in (id_column, text_column) if c not in header]
    if missing:
        raise InputError(f"{path}: no {' or '.join(repr(c) for c in missing)} column (columns: {header})")
    return kind


def count_notes(path: Path) -> int | None:
    """The number of input rows when it is cheap to know (for the progress bar), else ``None``."""
    kind = input_kind(path)
    try:
        if kind == "folder":
            return sum(1 for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".txt")
        if kind == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if kind == "jsonl":
            with path.open("rb") as handle:
                return sum(1 for line in handle if line.strip())
    except Exception:  # only a progress-bar nicety; the reader reports real problems
        return None
    return None


# ----- results out -----------------------------------------------------------------------------------------------
def output_format(path: Path, requested: str | None = None) -> str:
    """``jsonl`` or ``parquet``: as requested, else Parquet when ``path`` ends in ``.parquet``."""
    if requested:
        return requested
    return "parquet" if path.suffix.lower() == ".parquet" else "jsonl"


def errors_path(output: Path) -> Path:
    """Where failed notes are logged: ``OUTPUT.errors.jsonl`` beside the output."""
    return output.with_name(output.name + ".errors.jsonl")


def _parquet_schema() -> Any:
    import pyarrow as pa

    code = pa.struct(
        [
            ("code", pa.string()),
            ("description", pa.string()),
            ("score", pa.float64()),
            ("billable", pa.bool_()),
            ("evidence", pa.string()),
        ]
    )
    entity = pa.struct(
        [
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("text", pa.string()),
            ("label", pa.string()),
            ("score", pa.float64()),
            ("assertion", pa.string()),
            ("traits", pa.list_(pa.string())),
            ("trigger", pa.string()),
            ("section", pa.string()),
            ("codes", pa.list_(code)),
            ("note", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("id", pa.string()),
            ("entities", pa.list_(entity)),
            ("models", pa.map_(pa.string(), pa.string())),
            ("timings_ms", pa.map_(pa.string(), pa.float64())),
        ]
    )


def _parquet_row(result: dict[str, Any]) -> dict[str, Any]:
    """A contract result as a row of :func:`_parquet_schema` (maps as key/value pairs; optional fields filled)."""
    entities = []
    for entity in result["entities"]:
        row = {**entity, "note": entity.get("note")}
        row["codes"] = [{**c, "evidence": c.get("evidence")} for c in entity.get("codes", [])]
        entities.append(row)
    return {
        "id": result["id"],
        "entities": entities,
        "models": list(result.get("models", {}).items()),
        "timings_ms": [(k, float(v)) for k, v in result.get("timings_ms", {}).items()],
    }


def parquet_to_result(row: dict[str, Any]) -> dict[str, Any]:
    """A row read back from the Parquet output as the contract's result (drops unset optional fields)."""
    entities = []
    for entity in row["entities"] or []:
        out = {k: v for k, v in entity.items() if not (k == "note" and v is None)}
        out["codes"] = [{k: v for k, v in c.items() if not (k == "evidence" and v is None)} for c in entity["codes"]]
        entities.append(out)
    return {
        "id": row["id"],
        "entities": entities,
        "models": dict(row["models"] or []),
        "timings_ms": dict(row["timings_ms"] or []),
    }


class JsonlWriter:
    """Appends results to a JSON lines file, one flushed batch at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: TextIO = path.open("a", encoding="utf-8")

    def write(self, results: Sequence[dict[str, Any]]) -> None:
        """Append ``results`` and flush them to disk (so a crash loses at most the batch in flight)."""
        if results:
            self._handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results))
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Close the file."""
        self._handle.close()


class ParquetWriter:
    """Writes results as ``part-*.parquet`` files in a dataset folder, each written whole then renamed in place.

    Args:
        folder: The dataset folder.
        rows_per_file: Results buffered before a part file is written (a crash loses at most these).
    """

    def __init__(self, folder: Path, rows_per_file: int = 1000) -> None:
        self.folder = folder
        self.rows_per_file = max(1, rows_per_file)
        self._rows: list[dict[str, Any]] = []
        self._run = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self._parts = 0
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, results: Sequence[dict[str, Any]]) -> None:
        """Buffer ``results``; write a part file once enough are buffered."""
        self._rows.extend(_parquet_row(r) for r in results)
        if len(self._rows) >= self.rows_per_file:
            self.flush()

    def flush(self) -> None:
        """Write the buffered results as one part file (atomically: temporary name, then rename)."""
        if not self._rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self._rows, schema=_parquet_schema())
        name = f"part-{self._run}-{self._parts:05d}.parquet"
        tmp = self.folder / f".{name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, self.folder / name)
        self._parts += 1
        self._rows = []

    def close(self) -> None:
        """Write what is still buffered."""
        self.flush()


def _line_id(raw: bytes, decoder: json.JSONDecoder) -> str | None:
    """The ``id`` of one complete JSON line of our output, or ``None`` when the line is not a JSON object.

    Lines this job writes start with the id (``{"id": ...``), which is read without parsing the whole result, so a
    resume over millions of results is quick; other lines are parsed whole.
    """
    try:
        text = raw.decode("utf-8")
        if text.startswith('{"id": ') and text.rstrip().endswith("}"):
            value, _ = decoder.raw_decode(text, len('{"id": '))
        else:
            obj = json.loads(text)
            if not isinstance(obj, dict):
                return None
            value = obj.get("id")
    except ValueError:  # includes UnicodeDecodeError
        return None
    return "" if value is None else str(value)


def done_ids(output: Path, fmt: str) -> set[str]:
    """Ids already written to ``output`` (empty when it does not exist yet).

    A JSON lines file whose last line was cut by a crash is truncated to its last complete line first, so the
    appended results start on a line of their own.

    Raises:
        InputError: ``output`` exists but is not what ``fmt`` says (for example a file where a folder is expected).
    """
    ids: set[str] = set()
    if not output.exists():
        return ids
    if fmt == "parquet":
        if not output.is_dir():
            raise InputError(f"{output}: exists and is not a Parquet dataset folder")
        import pyarrow.parquet as pq

        for part in sorted(output.glob("*.parquet")):
            try:
                column = pq.read_table(part, columns=["id"]).column("id")
            except Exception as exc:
                raise InputError(f"{part}: unreadable part file ({exc}); move it away and run again") from exc
            ids.update(str(v) for v in column.to_pylist() if v is not None)
        return ids
    if output.is_dir():
        raise InputError(f"{output}: is a folder; JSON lines output must be a file (or end the name in .parquet)")
    good_end = 0
    size = output.stat().st_size
    decoder = json.JSONDecoder()
    with output.open("rb") as handle:
        for raw in handle:
            line_end = good_end + len(raw)
            note_id = _line_id(raw, decoder) if raw.endswith(b"\n") else None
            if note_id is None and raw.strip():
                if line_end >= size:
                    break  # the last line, cut by a crash: dropped below
                log.warning("%s: skipping an unreadable line at byte %d", output, good_end)
            elif note_id:
                ids.add(note_id)
            good_end = line_end
    if good_end < size:
        log.warning("%s: dropping a partial last line (interrupted run)", output)
        with output.open("r+b") as handle:
            handle.truncate(good_end)
    return ids


# ----- the run ---------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class RunStats:
    """Counts of one run."""

    written: int = 0
    skipped: int = 0
    failed: int = 0
    chars: int = 0
    seconds: float = 0.0

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


def analyze_batch(pipeline: Any, notes: Sequence[Note]) -> list[dict[str, Any] | BadNote]:
    """Analyse notes together (NER batched across them); a failing note is isolated, never the whole batch.

    When the batched call raises, the notes are analysed one by one so only the note at fault becomes a
    :class:`BadNote` (with the exception as its error).

    Returns:
        One contract result dict or :class:`BadNote` per note, in input order.
    """
    if not notes:
        return []
    try:
        results = pipeline.analyze_many([(n.id, n.text) for n in notes])
        return [r.to_dict() for r in results]
    except Exception:
        if len(notes) == 1:
            return [_analyze_one(pipeline, notes[0])]
    return [_analyze_one(pipeline, note) for note in notes]


def _analyze_one(pipeline: Any, note: Note) -> dict[str, Any] | BadNote:
    try:
        return pipeline.analyze(note.text, note.id).to_dict()
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


def _progress(total: int | None, disable: bool, stderr: TextIO) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total, unit="note", desc="analyze", file=stderr, disable=disable, dynamic_ncols=True, smoothing=0.1
    )


def run_local(
    input_path: Path,
    output: Path,
    fmt: str,
    pipeline: Any,
    batch_size: int = 32,
    max_batch_chars: int = 200_000,
    id_column: str = "id",
    text_column: str = "text",
    progress: bool = True,
    stderr: TextIO | None = None,
    rows_per_file: int = 1000,
) -> RunStats:
    """Analyse every note of ``input_path`` not yet in ``output``, in this process.

    Args:
        input_path: A folder of ``.txt`` or a ``.csv``/``.jsonl``/``.parquet`` file.
        output: The JSON lines file or Parquet dataset folder (appended to).
        fmt: ``jsonl`` or ``parquet``.
        pipeline: A :class:`~engine.pipeline.Pipeline` (anything with ``analyze_many``/``analyze``).
        batch_size: Notes per ``analyze_many`` call (NER forward passes are batched across them).
        max_batch_chars: A batch is also closed once its notes hold this many characters.
        id_column: The id field of table inputs.
        text_column: The text field of table inputs.
        progress: Show a progress bar (notes/s) on ``stderr``.
        stderr: Where messages go (default ``sys.stderr``).
        rows_per_file: Parquet results per part file.

    Returns:
        The run's counts.

    Raises:
        InputError: The input or output as a whole is unusable (nothing was analysed).
    """
    stderr = stderr or sys.stderr
    started = time.perf_counter()
    done = done_ids(output, fmt)
    notes = iter_notes(input_path, id_column, text_column)
    stats = RunStats()
    writer: JsonlWriter | ParquetWriter = (
        ParquetWriter(output, rows_per_file) if fmt == "parquet" else JsonlWriter(output)
    )
    bar = _progress(count_notes(input_path), not progress, stderr)
    errors = ErrorLog(errors_path(output), stderr, bar)
    seen: set[str] = set()

    def todo() -> Iterator[Note]:
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

    try:
        for batch in _batches(todo(), batch_size, max_batch_chars):
            out = analyze_batch(pipeline, batch)
            good = []
            for note, result in zip(batch, out, strict=True):
                if isinstance(result, BadNote):
                    errors.report(result.id, result.error)
                else:
                    good.append(result)
                    stats.chars += len(note.text)
            writer.write(good)
            stats.written += len(good)
            bar.update(len(batch))
            bar.set_postfix(failed=errors.count, skipped=stats.skipped, refresh=False)
    finally:
        writer.close()
        errors.close()
        bar.close()
        stats.failed = errors.count
        stats.seconds = time.perf_counter() - started
    return stats


# ----- Ray ---------------------------------------------------------------------------------------------------------
def _ray_normalize(batch: dict[str, Any], kind: str, id_column: str, text_column: str, folder: str) -> dict[str, Any]:
    """Ray map: raw rows of any input kind -> ``id``, ``text``, ``error`` columns (``error`` empty when fine)."""
    import numpy as np

    ids: list[str] = []
    texts: list[str] = []
    errs: list[str] = []

    def add(item: Note | BadNote) -> None:
        if isinstance(item, BadNote):
            ids.append(item.id)
            texts.append("")
            errs.append(item.error)
        else:
            ids.append(item.id)
            texts.append(item.text)
            errs.append("")

    if kind == "folder":
        for path, data in zip(batch["path"], batch["bytes"], strict=True):
            add(decode_note(folder_note_id(Path(folder), Path(str(path))), bytes(data)))
    elif kind == "jsonl":
        for line in batch["text"]:
            if not str(line).strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                add(BadNote(f"line {str(line)[:40]!r}", f"invalid JSON ({exc})"))
                continue
            if not isinstance(obj, dict):
                add(BadNote(f"line {str(line)[:40]!r}", "expected a JSON object"))
                continue
            add(_row_note(obj.get(id_column), obj.get(text_column), f"line {str(line)[:40]!r}"))
    else:
        for raw_id, raw_text in zip(batch[id_column], batch[text_column], strict=True):
            add(_row_note(raw_id, raw_text, "row without id"))
    return {
        "id": np.array(ids, dtype=object),
        "text": np.array(texts, dtype=object),
        "error": np.array(errs, dtype=object),
    }


def _ray_skip_done(batch: dict[str, Any], done_ref: list[Any]) -> dict[str, Any]:
    """Ray map: drop rows whose id is already in the output (the id set is fetched once per worker)."""
    import numpy as np
    import ray

    key = done_ref[0].hex()
    cache = _DONE_CACHE.get(key)
    if cache is None:
        cache = _DONE_CACHE[key] = ray.get(done_ref[0])
    keep = np.array([i not in cache for i in batch["id"]], dtype=bool)
    return {name: column[keep] for name, column in batch.items()}


_DONE_CACHE: dict[str, set[str]] = {}


class EngineActor:
    """A Ray actor holding one warm engine; called on batches of ``id``/``text``/``error`` columns.

    Returns the batch as ``id``, ``result`` (the contract's JSON, empty when the note failed) and ``error``.
    """

    def __init__(self, model_dir: str | None, device: str, overrides: dict[str, Any]) -> None:
        from engine.pipeline import load_pipeline

        self.pipeline = load_pipeline(model_dir=model_dir, device=device, **overrides)
        self.pipeline.warm(ANALYSIS_STAGES)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        ids = [str(i) for i in batch["id"]]
        errors = [str(e) for e in batch["error"]]
        notes = [Note(i, str(t)) for i, t, e in zip(ids, batch["text"], errors, strict=True) if not e]
        by_id = dict(zip([n.id for n in notes], analyze_batch(self.pipeline, notes), strict=True))
        results: list[str] = []
        out_errors: list[str] = []
        for note_id, error in zip(ids, errors, strict=True):
            result = by_id.get(note_id) if not error else None
            if isinstance(result, BadNote):
                error = result.error
                result = None
            results.append(json.dumps(result, ensure_ascii=False) if result is not None else "")
            out_errors.append(error)
        return {
            "id": np.array(ids, dtype=object),
            "result": np.array(results, dtype=object),
            "error": np.array(out_errors, dtype=object),
        }


def _ray_init(address: str | None, num_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    # Workers import the engine from this checkout; a remote cluster gets the code shipped as the job's working
    # directory (its nodes must have the same Python environment, models and rules).
    if address:
        runtime_env = {
            "working_dir": str(REPO_ROOT),
            "excludes": [".venv/", ".git/", "tests/", "docs/", "bench/", "**/__pycache__/", "*.parquet"],
        }
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
        )


def build_ray_dataset(
    input_path: Path,
    done: set[str],
    model_dir: str | None,
    device: str,
    overrides: dict[str, Any],
    batch_size: int,
    actors: int | None,
    id_column: str = "id",
    text_column: str = "text",
) -> tuple[Any, dict[str, Any]]:
    """The Ray Data pipeline: read -> normalise -> skip done ids -> engine actor pool.

    GPU actors (one GPU each, one per GPU of the cluster) when the cluster has GPUs and ``device`` allows it, else
    CPU actors.

    Returns:
        The lazy dataset (``id``, ``result``, ``error`` columns) and a description of the actor pool.
    """
    import ray
    import ray.data

    kind = input_kind(input_path)
    src = str(input_path.resolve())
    if kind == "folder":
        ds = ray.data.read_binary_files(src, include_paths=True, file_extensions=["txt", "TXT"])
    elif kind == "jsonl":
        ds = ray.data.read_text(src)
    elif kind == "csv":
        import pyarrow as pa
        import pyarrow.csv as pacsv

        ds = ray.data.read_csv(
            src,
            convert_options=pacsv.ConvertOptions(
                column_types={id_column: pa.string(), text_column: pa.string()},
                include_columns=[id_column, text_column],
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
        )
    else:
        ds = ray.data.read_parquet(src).select_columns([id_column, text_column])
    ds = ds.map_batches(
        _ray_normalize,
        fn_kwargs={"kind": kind, "id_column": id_column, "text_column": text_column, "folder": src},
        batch_format="numpy",
    )
    if done:
        ds = ds.map_batches(_ray_skip_done, fn_kwargs={"done_ref": [ray.put(done)]}, batch_format="numpy")
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if device in {"auto", "cuda"} else 0
    if device == "cuda" and gpus == 0:
        raise EngineError(ErrorCode.DEVICE_UNAVAILABLE, "--device cuda asked for, but the Ray cluster has no GPU")
    if gpus:
        pool = {"actors": actors or gpus, "num_gpus": 1, "num_cpus": 1, "device": "cuda"}
    else:
        cpus = int(resources.get("CPU", 1))
        # One CPU stays free for reading and decoding; each actor runs torch on its own CPU.
        pool = {"actors": actors or max(1, cpus - 1), "num_gpus": 0, "num_cpus": 1, "device": "cpu"}
    ds = ds.map_batches(
        EngineActor,
        fn_constructor_kwargs={"model_dir": model_dir, "device": pool["device"], "overrides": overrides},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=pool["actors"]),
        num_cpus=pool["num_cpus"],
        num_gpus=pool["num_gpus"],
    )
    return ds, pool


def run_ray(
    input_path: Path,
    output: Path,
    fmt: str,
    address: str | None = None,
    model_dir: str | None = None,
    device: str = "auto",
    overrides: dict[str, Any] | None = None,
    batch_size: int = 32,
    actors: int | None = None,
    num_cpus: int | None = None,
    id_column: str = "id",
    text_column: str = "text",
    progress: bool = True,
    stderr: TextIO | None = None,
    rows_per_file: int = 1000,
) -> RunStats:
    """The batch job as a Ray Data pipeline; results stream back and are written (and resumable) as in
    :func:`run_local`.

    Args:
        address: A Ray cluster address (``ray://host:10001`` or ``auto``); ``None`` starts a local Ray instance.
        num_cpus: CPUs of the local instance (``None``: all).
        actors: Engine actors (default: one per GPU, else one per CPU but one).

    Other arguments as for :func:`run_local`.
    """
    import ray

    stderr = stderr or sys.stderr
    started = time.perf_counter()
    validate_input(input_path, id_column, text_column)
    done = done_ids(output, fmt)
    _ray_init(address, num_cpus)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours shows notes/s; Ray's per-operator bars would interleave with it
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ds, pool = build_ray_dataset(
        input_path, done, model_dir, device, overrides or {}, batch_size, actors, id_column, text_column
    )
    stderr.write(f"ray: {pool['actors']} engine actor(s) on {pool['device']}, cluster {ray.cluster_resources()}\n")
    stats = RunStats(skipped=len(done))
    writer: JsonlWriter | ParquetWriter = (
        ParquetWriter(output, rows_per_file) if fmt == "parquet" else JsonlWriter(output)
    )
    total = count_notes(input_path)
    bar = _progress(max(total - len(done), 0) if total is not None else None, not progress, stderr)
    errors = ErrorLog(errors_path(output), stderr, bar)
    seen: set[str] = set(done)
    try:
        for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
            good = []
            for note_id, result, error in zip(batch["id"], batch["result"], batch["error"], strict=True):
                note_id = str(note_id)
                if error:
                    errors.report(note_id, str(error))
                elif note_id in seen:
                    errors.report(note_id, "duplicate id in the input (first one kept)")
                else:
                    seen.add(note_id)
                    good.append(json.loads(result))
            writer.write(good)
            stats.written += len(good)
            bar.update(len(batch["id"]))
            bar.set_postfix(failed=errors.count, refresh=False)
    finally:
        writer.close()
        errors.close()
        bar.close()
        stats.failed = errors.count
        stats.seconds = time.perf_counter() - started
    return stats


# ----- command line ------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``batch`` verb's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m engine batch",
        description="Analyse many notes into JSON lines or Parquet; resumable; failing notes are reported and skipped.",
    )
    parser.add_argument("input", help="a folder of .txt notes, or a .csv / .jsonl / .parquet file with id and text")
    parser.add_argument("output", help="JSON lines file, or a Parquet dataset folder when it ends in .parquet")
    parser.add_argument("--format", choices=["jsonl", "parquet"], help="output format (default: by OUTPUT's name)")
    parser.add_argument("--id-column", default="id", help="id column/field of table inputs (default: id)")
    parser.add_argument("--text-column", default="text", help="text column/field of table inputs (default: text)")
    parser.add_argument("--batch-size", type=int, default=32, help="notes per engine call (default: 32)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--model-dir", help="another trained model set (default: the committed one)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--rows-per-file", type=int, default=1000, help="Parquet results per part file")
    ray_group = parser.add_argument_group("Ray")
    ray_group.add_argument("--ray", action="store_true", help="run as a Ray Data pipeline")
    ray_group.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    ray_group.add_argument("--actors", type=int, help="engine actors (default: one per GPU, else CPUs - 1)")
    ray_group.add_argument("--num-cpus", type=int, help="CPUs of a local Ray instance (default: all)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m engine batch``; returns 0, 2 when some notes failed, 1 when the run could not
    start (unusable input or output, models missing)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.address and not args.ray:
        sys.stderr.write("python -m engine batch: --address needs --ray\n")
        return 2
    if args.batch_size < 1:
        sys.stderr.write("python -m engine batch: --batch-size must be at least 1\n")
        return 2
    input_path, output = Path(args.input), Path(args.output)
    fmt = output_format(output, args.format)
    try:
        # An unusable input or output is refused before any model is loaded (minutes on a cluster).
        validate_input(input_path, args.id_column, args.text_column)
        done_ids(output, fmt)
        if args.ray:
            stats = run_ray(
                input_path,
                output,
                fmt,
                address=args.address,
                model_dir=args.model_dir,
                device=args.device,
                batch_size=args.batch_size,
                actors=args.actors,
                num_cpus=args.num_cpus,
                id_column=args.id_column,
                text_column=args.text_column,
                progress=not args.no_progress,
                rows_per_file=args.rows_per_file,
            )
        else:
            from engine.pipeline import load_pipeline

            pipeline = load_pipeline(model_dir=args.model_dir, device=args.device)
            pipeline.warm(ANALYSIS_STAGES)
            stats = run_local(
                input_path,
                output,
                fmt,
                pipeline,
                batch_size=args.batch_size,
                id_column=args.id_column,
                text_column=args.text_column,
                progress=not args.no_progress,
                rows_per_file=args.rows_per_file,
            )
    except InputError as exc:
        sys.stderr.write(f"error: [{ErrorCode.BAD_INPUT.value}] {exc}\n")
        return 1
    except EngineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except Exception as exc:
        if not args.ray:
            raise
        # A Ray failure (actor could not start, cluster lost) arrives wrapped; what was written so far stays, and
        # running the same command again resumes after it.
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"error: the Ray pipeline failed: {first}\n")
        sys.stderr.write("(results written so far are kept; run the same command again to resume)\n")
        return 1
    sys.stderr.write(stats.line() + (f"; failures listed in {errors_path(output)}" if stats.failed else "") + "\n")
    return 2 if stats.failed else 0
