"""Notes in, for every way in: the ``analyze`` command line, ``batch`` and the app's uploads.

One reader per input kind, each yielding :class:`Note` or, for an input that cannot become one, a
:class:`BadNote` naming it (callers report it and go on; nothing else is lost):

- a folder: every ``*.txt`` below it is a note, its ``id`` the path relative to the folder without ``.txt``;
- ``.csv``, ``.jsonl`` (or ``.ndjson``), ``.parquet``: one note per row with ``id`` and ``text`` columns/fields
  (other names with ``id_column`` / ``text_column``);
- a ``.zip`` of ``.txt`` files (:func:`zip_texts`, the app's batch upload);
- single files and JSON lines (:func:`decode_note`, :func:`json_line`: the per-note verbs).

Text is kept exactly as read (UTF-8, as the contract says): the engine's offsets index into it. Size limits and
``.docx``/``.pdf`` extraction are the app's own (``ui/ingest.py``), on top of these readers.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

INPUT_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


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


def row_note(raw_id: Any, raw_text: Any, where: str) -> Note | BadNote:
    """A table row's id and text cells as a note, or why not (``where`` names the row when the id is missing)."""
    note_id = _cell(raw_id)
    if note_id is None or note_id == "":
        return BadNote(where, "missing id")
    if raw_text is None or (isinstance(raw_text, float) and raw_text != raw_text):
        return BadNote(note_id, "missing text")
    if not isinstance(raw_text, str):
        return BadNote(note_id, f"text must be a string, got {type(raw_text).__name__}")
    return Note(note_id, raw_text)


def decode_note(note_id: str, data: bytes, drop_bom: bool = False) -> Note | BadNote:
    """A ``.txt`` file's bytes as a note (UTF-8, as the contract says), or the reason it is not one.

    ``drop_bom`` drops a leading byte-order mark (the app's uploads; the engine keeps it, as offsets count it).
    """
    try:
        return Note(note_id, data.decode("utf-8-sig" if drop_bom else "utf-8"))
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


def json_line(raw: bytes | str, where: str) -> Any:
    """One JSON line parsed, or a :class:`BadNote` named ``where`` when it is not UTF-8 or not JSON."""
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except UnicodeDecodeError as exc:
        return BadNote(where, f"not valid UTF-8 (byte {exc.start})")
    except json.JSONDecodeError as exc:
        return BadNote(where, f"invalid JSON ({exc.msg})")


def json_note(raw: bytes | str, where: str, id_column: str, text_column: str) -> Note | BadNote:
    """One JSON line as a note: an object with an id and a string text, or the reason it is not one."""
    obj = json_line(raw, where)
    if isinstance(obj, BadNote):
        return obj
    if not isinstance(obj, dict):
        return BadNote(where, "expected a JSON object")
    return row_note(obj.get(id_column), obj.get(text_column), where)


def iter_jsonl(path: Path, id_column: str, text_column: str) -> Iterator[Note | BadNote]:
    """Notes of a JSON lines file; a line that is not a JSON object with id and text is a :class:`BadNote`."""
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if raw.strip():
                yield json_note(raw, f"{path.name}:{lineno}", id_column, text_column)


def csv_rows(handle: TextIO) -> csv.DictReader:
    """A CSV reader over ``handle`` (opened with ``newline=""``) by its header row; a note may be any length."""
    csv.field_size_limit(sys.maxsize)
    return csv.DictReader(handle)


def iter_csv(path: Path, id_column: str, text_column: str) -> Iterator[Note | BadNote]:
    """Notes of a CSV file with a header row (quoted fields may span lines)."""
    try:
        handle = path.open("r", encoding="utf-8", newline="")
        reader = csv_rows(handle)
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
            yield row_note(row.get(id_column), row.get(text_column), f"{path.name}:row {row_no}")


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
            yield row_note(raw_id, raw_text, f"{path.name}:row {row}")


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


def zip_texts(archive: zipfile.ZipFile) -> Iterator[tuple[str, bytes | Exception | None]]:
    """The members of a ``.zip`` archive (see :func:`zip_archive`) a note may come from, as ``(member name,
    content)``: the bytes of a ``.txt``, ``None`` for another type (so the caller can say it was skipped), or the
    exception met reading it. Folders, ``__MACOSX`` and hidden files are passed over."""
    for member in archive.infolist():
        path = PurePosixPath(member.filename)
        if member.is_dir() or "__MACOSX" in path.parts or path.name.startswith("."):
            continue
        if path.suffix.lower() != ".txt":
            yield member.filename, None
            continue
        try:
            yield member.filename, archive.read(member)
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:  # a bad CRC, an encrypted member
            yield member.filename, exc


def zip_archive(data: bytes) -> zipfile.ZipFile:
    """``data`` opened as a ``.zip`` archive.

    Raises:
        InputError: It is not a readable archive.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError("not a readable .zip archive") from exc
    return archive
