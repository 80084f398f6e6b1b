"""Turn what a reviewer pastes or uploads into note text, refusing bad input with a clear one-line message.

Single notes come as pasted text or a ``.txt``, ``.docx`` or ``.pdf`` upload; batches as a ``.zip`` of ``.txt``
files, a ``.csv`` with ``id`` and ``text`` columns, or ``.jsonl`` with one ``{"id", "text"}`` object a line.
Text is returned exactly as read (the engine's offsets index into it), never stripped or normalised. The
readers are :mod:`engine.inputs` (the same as the command line's and ``batch``'s); this module adds only the
``.docx``/``.pdf`` extraction, the app's size limits and its messages.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from engine.inputs import BadNote, InputError, csv_rows, json_line, zip_archive, zip_texts

MAX_NOTE_BYTES = 2 * 1024 * 1024
"""Largest single-note upload (a long discharge summary is well under 200 kB)."""
MAX_NOTE_CHARS = 200_000
"""Longest note text accepted for analysis."""
MAX_BATCH_BYTES = 50 * 1024 * 1024
"""Largest batch upload, and the largest total uncompressed size of a batch ``.zip``."""
MAX_BATCH_NOTES = 5_000
NOTE_TYPES = ("txt", "docx", "pdf")
BATCH_TYPES = ("zip", "csv", "jsonl")


class IngestError(ValueError):
    """Input that cannot become a note; ``str(err)`` is the message to show."""


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _suffix(name: str) -> str:
    return PurePosixPath(name.lower()).suffix.lstrip(".")


def validate_text(text: str, source: str = "The note") -> str:
    """Return ``text`` unchanged if it can be analysed.

    Raises:
        IngestError: Empty or whitespace-only, longer than :data:`MAX_NOTE_CHARS`, or holding NUL characters.
    """
    if not text or not text.strip():
        raise IngestError(f"{source} is empty: paste a note or upload a .txt, .docx or .pdf file.")
    if len(text) > MAX_NOTE_CHARS:
        raise IngestError(f"{source} has {len(text):,} characters; the limit for one note is {MAX_NOTE_CHARS:,}.")
    if "\x00" in text:
        raise IngestError(f"{source} contains binary data (NUL characters), not text.")
    return text


def decode_text(data: bytes, name: str) -> str:
    """Decode a plain-text upload as UTF-8 (a byte-order mark is dropped).

    Raises:
        IngestError: Binary content or not UTF-8.
    """
    if b"\x00" in data[:65536]:
        raise IngestError(f"{name} looks like a binary file, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise IngestError(f"{name} is not UTF-8 text (byte {err.start} is invalid); save it as UTF-8.") from None


def decode_note_text(data: bytes, name: str) -> tuple[str, str]:
    """Decode one note's text file: UTF-8, else Windows-1252 / Latin-1 with a notice to show.

    Notes saved by older Windows editors are Windows-1252 (a superset of Latin-1's printable characters); refusing
    them lost the note, guessing silently could garble accents, so the guess is named.

    Returns:
        The text and a notice (``""`` when the file was UTF-8).

    Raises:
        IngestError: Binary content.
    """
    if b"\x00" in data[:65536]:
        raise IngestError(f"{name} looks like a binary file, not text.")
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError as err:
        bad = err.start
    try:
        text, label = data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:  # cp1252 leaves five bytes undefined; Latin-1 decodes every byte
        text, label = data.decode("latin-1"), "Latin-1"
    return text, (f"{name} is not UTF-8 (byte {bad} is invalid): it was read as {label}. Check that accented "
                  "characters look right; save the file as UTF-8 to avoid this notice.")


def _docx_text(data: bytes, name: str) -> str:
    import docx  # python-docx; imported here so the app starts without it being touched

    if not data.startswith(b"PK"):
        raise IngestError(f"{name} is not a Word .docx document (it may be corrupt or an old .doc).")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as err:  # python-docx raises many types for damaged packages
        raise IngestError(f"{name} could not be read as a Word document: {type(err).__name__}.") from None
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(lines)


def _pdf_text(data: bytes, name: str) -> str:
    import logging

    import pypdf

    if not data.lstrip()[:5] == b"%PDF-":
        raise IngestError(f"{name} is not a PDF file (no %PDF header); it may be corrupt.")
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged-file warnings become our one message
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise IngestError(f"{name} is password-protected; upload an unprotected PDF.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except IngestError:
        raise
    except Exception as err:  # pypdf raises many types for damaged files
        raise IngestError(f"{name} is a corrupt or unreadable PDF ({type(err).__name__}).") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise IngestError(f"{name} has no extractable text (a scanned PDF needs OCR first).")
    return text


def read_note(name: str, data: bytes) -> tuple[str, str]:
    """Text of one uploaded note and a notice about how it was read (``""`` when there is nothing to say).

    Args:
        name: The uploaded file's name (its extension picks the reader).
        data: The file's bytes.

    Raises:
        IngestError: Too large, unsupported type, corrupt, binary, or empty.
    """
    if len(data) > MAX_NOTE_BYTES:
        raise IngestError(f"{name} is {_mb(len(data))}; the limit for one note is {_mb(MAX_NOTE_BYTES)}.")
    kind = _suffix(name)
    notice = ""
    if kind == "txt":
        text, notice = decode_note_text(data, name)
    elif kind == "docx":
        text = _docx_text(data, name)
    elif kind == "pdf":
        text = _pdf_text(data, name)
    else:
        raise IngestError(f"{name}: unsupported file type; upload .txt, .docx or .pdf.")
    return validate_text(text, name), notice


def extract_note(name: str, data: bytes) -> str:
    """Text of one uploaded note (:func:`read_note` without its notice).

    Raises:
        IngestError: Too large, unsupported type, corrupt, binary, or empty.
    """
    return read_note(name, data)[0]


def find_occurrence(text: str, mention: str, occurrence: int = 1) -> int:
    """Start offset of the ``occurrence``-th (1-based) appearance of ``mention`` in ``text``, or -1."""
    if not mention or not mention.strip() or occurrence < 1:
        return -1
    start = -1
    for _ in range(occurrence):
        start = text.find(mention, start + 1)
        if start < 0:
            return -1
    return start


@dataclass
class Batch:
    """Notes read from a batch upload and the problems met on the way (one line each)."""

    notes: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, note_id: str, text: str, where: str) -> None:
        """Add a note, or a problem line when its text is unusable."""
        if len(self.notes) >= MAX_BATCH_NOTES:
            if not self.problems or not self.problems[-1].startswith("more than"):
                self.problems.append(f"more than {MAX_BATCH_NOTES:,} notes: the rest were skipped")
            return
        try:
            self.notes.append((note_id, validate_text(text, where)))
        except IngestError as err:
            self.problems.append(str(err))


def _read_zip(data: bytes, name: str, batch: Batch) -> None:
    try:
        archive = zip_archive(data)
    except InputError:
        raise IngestError(f"{name} is not a readable .zip archive.") from None
    if sum(m.file_size for m in archive.infolist()) > MAX_BATCH_BYTES:
        raise IngestError(f"{name} unpacks to more than {_mb(MAX_BATCH_BYTES)}; split it into smaller archives.")
    for member, raw in zip_texts(archive):
        if raw is None:
            batch.problems.append(f"{name}/{member}: skipped (only .txt files are read from a .zip)")
            continue
        if isinstance(raw, Exception):
            batch.problems.append(f"{name}/{member}: unreadable ({type(raw).__name__})")
            continue
        try:
            text = decode_text(raw, f"{name}/{member}")
        except IngestError as err:
            batch.problems.append(str(err))
            continue
        batch.add(str(PurePosixPath(member).with_suffix("")), text, f"{name}/{member}")


def _read_csv(data: bytes, name: str, batch: Batch) -> None:
    content = decode_text(data, name)
    reader = csv_rows(io.StringIO(content, newline=""))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "text" not in fields:
        raise IngestError(f"{name} needs a header row with a 'text' column (and optionally 'id').")
    reader.fieldnames = fields
    try:
        for row_no, row in enumerate(reader, start=1):
            note_id = (row.get("id") or "").strip() or f"row-{row_no}"
            batch.add(note_id, row.get("text") or "", f"{name} row {row_no} (line {reader.line_num})")
    except csv.Error as err:
        batch.problems.append(f"{name}: CSV error after line {reader.line_num}: {err}")


def _read_jsonl(data: bytes, name: str, batch: Batch) -> None:
    content = decode_text(data, name)
    for line_no, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        obj = json_line(line, f"{name} line {line_no}")
        if isinstance(obj, BadNote):
            batch.problems.append(f"{name} line {line_no}: invalid JSON")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            batch.problems.append(f"{name} line {line_no}: needs an object with a string 'text' field")
            continue
        batch.add(str(obj.get("id") or f"line-{line_no}"), obj["text"], f"{name} line {line_no}")


def read_batch(name: str, data: bytes) -> Batch:
    """Notes in a batch upload (``.zip`` of ``.txt``, ``.csv`` or ``.jsonl`` with ``id`` and ``text``).

    Unusable items are listed in :attr:`Batch.problems` and the rest are kept.

    Raises:
        IngestError: The upload as a whole is too large, of an unsupported type, unreadable, or has no notes.
    """
    if len(data) > MAX_BATCH_BYTES:
        raise IngestError(f"{name} is {_mb(len(data))}; the limit for a batch upload is {_mb(MAX_BATCH_BYTES)}.")
    batch = Batch()
    kind = _suffix(name)
    if kind == "zip":
        _read_zip(data, name, batch)
    elif kind == "csv":
        _read_csv(data, name, batch)
    elif kind == "jsonl":
        _read_jsonl(data, name, batch)
    else:
        raise IngestError(f"{name}: unsupported batch type; upload .zip (of .txt), .csv or .jsonl.")
    if not batch.notes:
        detail = f" ({batch.problems[0]})" if batch.problems else ""
        raise IngestError(f"{name} holds no usable notes{detail}.")
    seen: dict[str, int] = {}
    for i, (note_id, text) in enumerate(batch.notes):  # ids must be unique to join results back
        if note_id in seen:
            seen[note_id] += 1
            batch.notes[i] = (f"{note_id}#{seen[note_id]}", text)
        else:
            seen[note_id] = 1
    return batch
