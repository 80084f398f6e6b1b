"""Results out: JSON lines or a Parquet dataset folder, each appendable, and the ids already written (resume).

The Parquet schema is derived from :mod:`engine.types`, so the columns follow the result's fields.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import types
import typing
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO, get_type_hints

from engine.inputs import InputError
from engine.types import AnalysisResult, Entity

log = logging.getLogger(__name__)


def output_format(path: Path, requested: str | None = None) -> str:
    """``jsonl`` or ``parquet``: as requested, else Parquet when ``path`` ends in ``.parquet``."""
    if requested:
        return requested
    return "parquet" if path.suffix.lower() == ".parquet" else "jsonl"


def errors_path(output: Path) -> Path:
    """Where failed notes are logged: ``OUTPUT.errors.jsonl`` beside the output."""
    return output.with_name(output.name + ".errors.jsonl")


def parquet_schema() -> Any:
    """The Parquet schema of an :class:`~engine.types.AnalysisResult`, read from its dataclasses' type hints (a
    field added there is a column here; derived properties such as ``assertion`` are columns too)."""
    import pyarrow as pa

    return pa.schema(_struct_fields(AnalysisResult))


def _struct_fields(cls: type) -> list[tuple[str, Any]]:
    hints = get_type_hints(cls)
    out = [(f.name, _arrow_type(hints[f.name])) for f in dataclasses.fields(cls)]
    for name, value in vars(cls).items():
        if isinstance(value, property) and value.fget is not None:
            after = "score" if "score" in hints else out[-1][0]  # the contract's order: assertion after score
            where = [n for n, _ in out].index(after) + 1
            out.insert(where, (name, _arrow_type(get_type_hints(value.fget)["return"])))
    return out


def _arrow_type(hint: Any) -> Any:
    import pyarrow as pa

    scalars = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_(), Any: pa.string()}
    if hint in scalars:  # an ``Any`` field (an object serialised by its own to_dict) is stored as its JSON
        return scalars[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _arrow_type(inner)
    if origin is list:
        return pa.list_(_arrow_type(args[0]))
    if origin is dict:
        return pa.map_(_arrow_type(args[0]), _arrow_type(args[1]))
    if dataclasses.is_dataclass(hint):
        return pa.struct(_struct_fields(hint))
    raise TypeError(f"no Parquet type for {hint!r}")


def _json_fields(cls: type) -> list[str]:
    """The fields of ``cls`` typed ``Any``: stored as JSON text."""
    return [name for name, hint in get_type_hints(cls).items() if hint is Any]


class _Stored:
    """An ``Any`` field read back from its JSON: serialises to the same dict again."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def to_dict(self) -> Any:
        return self.value


def _parquet_row(result: dict[str, Any]) -> dict[str, Any]:
    """A contract result as a row of :func:`parquet_schema` (maps as key/value pairs, ``Any`` fields as JSON)."""
    as_json = _json_fields(Entity)
    entities = [{**e, **{k: json.dumps(e[k], ensure_ascii=False) for k in as_json if e.get(k) is not None}}
                for e in result["entities"]]
    return {
        **result,
        "entities": entities,
        "models": list(result.get("models", {}).items()),
        "timings_ms": [(k, float(v)) for k, v in result.get("timings_ms", {}).items()],
    }


def parquet_to_result(row: dict[str, Any]) -> dict[str, Any]:
    """A row read back from the Parquet output as the contract's result, through the same
    :class:`~engine.types.AnalysisResult` serialisation as ``analyze`` (unset optional fields dropped)."""
    result = _from_row(AnalysisResult, {**row, "models": dict(row["models"] or []),
                                        "timings_ms": dict(row["timings_ms"] or [])})
    return result.to_dict()


def _from_row(cls: type, row: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = row.get(f.name)
        args = typing.get_args(hints[f.name])
        if typing.get_origin(hints[f.name]) is list and args and dataclasses.is_dataclass(args[0]):
            value = [_from_row(args[0], v) for v in value or []]
        elif value is None and f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        elif hints[f.name] is Any and value is not None:
            value = _Stored(json.loads(value))
        values[f.name] = value
    return cls(**values)


def open_writer(output: Path, fmt: str, rows_per_file: int = 1000) -> JsonlWriter | ParquetWriter:
    """The writer for ``fmt`` (``jsonl`` or ``parquet``) appending to ``output``."""
    return ParquetWriter(output, rows_per_file) if fmt == "parquet" else JsonlWriter(output)


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

        table = pa.Table.from_pylist(self._rows, schema=parquet_schema())
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
