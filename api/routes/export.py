"""``GET /export``: the app's export formats, streamed.

``jsonl``, ``conll`` and ``summary_jsonl`` stream as they are written: :func:`db.export.export_dataset` runs on a
thread in a read-only (lock-free) transaction and writes into a bounded queue the response drains, so memory stays
flat however large the export is and a slow client only slows the export down. ``docbin`` and ``brat`` are sets of
files: they are written to a temporary folder and streamed as one zip (with ``manifest.json``), the same files
the app's Export page offers. The only call site of :mod:`db.export` is :func:`_export`.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Key
from api.routes.predict import ERRORS
from api.schemas.text import Label
from db import export as db_export
from db.session import session_scope

router = APIRouter(tags=["feedback"])
Format = Literal["jsonl", "conll", "docbin", "brat", "summary_jsonl"]
MEDIA = {"jsonl": "application/x-ndjson", "summary_jsonl": "application/x-ndjson", "conll": "text/plain"}
_END = object()


class _QueueStream:
    """A text stream whose writes go to a bounded queue (the export thread blocks when the client is slow)."""

    def __init__(self, chunks: queue.Queue) -> None:
        self.chunks = chunks

    def write(self, text: str) -> int:
        self.chunks.put(text.encode("utf-8"))
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered here."""


def _export(engine: Any, fmt: str, filters: dict[str, Any], out_dir: Path | None = None, stream: Any = None) -> Any:
    with session_scope(engine, write=False) as session:
        return db_export.export_dataset(session, fmt, out_dir, stream=stream, **filters)


def _streamed(engine: Any, fmt: str, filters: dict[str, Any]) -> Iterator[bytes]:
    chunks: queue.Queue = queue.Queue(maxsize=64)

    def run() -> None:
        try:
            _export(engine, fmt, filters, stream=_QueueStream(chunks))
        except Exception as exc:  # the stream has started: end it; the type alone is logged (no note text)
            import logging

            logging.getLogger("api").error("export failed: %s", type(exc).__name__)
        finally:
            chunks.put(_END)

    threading.Thread(target=run, name="export", daemon=True).start()
    while (chunk := chunks.get()) is not _END:
        yield chunk


def _zipped(engine: Any, fmt: str, filters: dict[str, Any]) -> Path:
    """The export's files as one zip in a temporary folder (removed by the caller)."""
    tmp = Path(tempfile.mkdtemp(prefix="api-export-"))
    out = tmp / "export"
    _export(engine, fmt, filters, out_dir=out)
    archive = tmp / f"feedback-{fmt}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            zf.write(path, str(path.relative_to(out)))
    return archive


def _file_chunks(archive: Path, size: int = 1 << 16) -> Iterator[bytes]:
    try:
        with archive.open("rb") as fh:
            while chunk := fh.read(size):
                yield chunk
    finally:
        shutil.rmtree(archive.parent, ignore_errors=True)


@router.get("/export", responses={**ERRORS, 200: {"content": {"application/x-ndjson": {}, "text/plain": {},
                                                              "application/zip": {}}}},
            response_class=StreamingResponse, summary="Reviewed data as jsonl, conll, docbin or brat, streamed")
async def export(
    request: Request,
    _key: Key,
    format: Format = "jsonl",
    since: Annotated[datetime | None, Query(description="Decisions at or after (ISO 8601; naive = UTC).")] = None,
    until: Annotated[datetime | None, Query(description="Decisions before.")] = None,
    reviewer: Annotated[str | None, Query(max_length=200)] = None,
    model_version: Annotated[str | None, Query(max_length=200)] = None,
    decision: Literal["accept", "reject", "correct", "add", "keep", "drop"] | None = None,
    label: Label | None = None,
    split: Annotated[float | None, Query(gt=0, lt=1, description="Fraction of notes for a dev split.")] = None,
    include_silver: Annotated[bool, Query(description="Also notes not marked fully reviewed (spans gold/silver).")]
    = False,
    conflicts: Annotated[Literal["exclude", "flag"], Query(description="Notes with an unresolved conflict.")]
    = "exclude",
) -> StreamingResponse:
    """The same files as the app's Export page; filters as ``python -m db export``."""
    from api.errors import ApiError

    if format == "summary_jsonl" and (label is not None or decision in ("accept", "reject", "correct", "add")):
        raise ApiError(422, "invalid_request", "summary exports take decision keep/drop and no label", "label")
    if format != "summary_jsonl" and decision in ("keep", "drop"):
        raise ApiError(422, "invalid_request", "keep/drop are summary decisions (format=summary_jsonl)", "decision")
    if split is not None and format in MEDIA:
        raise ApiError(422, "invalid_request", "a split writes two files: use docbin or brat", "split")
    filters = {"since": since, "until": until, "reviewer": reviewer, "model_version": model_version,
               "decision": decision, "label": label, "split": split}
    if format != "summary_jsonl":
        filters.update(include_silver=include_silver, conflicts=conflicts)
    engine = request.app.state.db
    if format in MEDIA:
        return StreamingResponse(_streamed(engine, format, filters), media_type=MEDIA[format])
    archive = await run_in_threadpool(_zipped, engine, format, filters)
    return StreamingResponse(_file_chunks(archive), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{archive.name}"'})
