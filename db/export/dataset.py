"""The one entry point of an export: check the options, pick the records and the writer, write the manifest.

Exports read in batches and write as they go, so the memory needed does not grow with the number of decisions. A
``manifest.json`` beside the files records the filters, counts and SHA-256 of everything written. With ``split``
the documents are divided into ``train`` and ``dev`` deterministically by a hash of the note text and the seed, so
one note never lands in both.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from db.errors import FeedbackCode, FeedbackError
from db.export.brat import write_brat
from db.export.codesets import write_codesets
from db.export.conll import write_conll
from db.export.docbin import write_docbin
from db.export.jsonl import write_jsonl
from db.export.manifest import Manifest, combined_hash, count_document, count_summary
from db.export.options import ExportOptions
from db.export.selection import iter_documents
from db.export.summaries import iter_summaries
from db.repository import ExportFilters

FORMATS = ("jsonl", "conll", "docbin", "brat", "summary_jsonl")
STREAMABLE = ("jsonl", "conll", "summary_jsonl")
"""Formats that write one text file, so they can go to a stream instead of a folder."""


def _check_options(
    fmt: str, out_dir: object, stream: object, filters: ExportFilters, split: float | None
) -> None:
    if fmt not in FORMATS:
        raise FeedbackError(FeedbackCode.BAD_EXPORT, f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if (out_dir is None) == (stream is None):
        raise FeedbackError(FeedbackCode.BAD_EXPORT, "give exactly one of out_dir and stream")
    if stream is not None and fmt not in STREAMABLE:
        raise FeedbackError(FeedbackCode.BAD_EXPORT, f"{fmt} writes several files: give out_dir")
    if split is not None and not 0.0 < split < 1.0:
        raise FeedbackError(FeedbackCode.BAD_EXPORT, f"split must be a fraction in (0, 1), got {split}")
    if fmt == "summary_jsonl":
        if filters.label is not None:
            raise FeedbackError(FeedbackCode.BAD_EXPORT, "summary exports take no label filter")
        filters.sentence_conditions()  # refuses a decision other than keep/drop before any file is opened
    else:
        filters.decision_conditions()


def export_dataset(
    session: Session,
    fmt: str,
    out_dir: Path | str | None = None,
    *,
    stream: IO[str] | None = None,
    filters: ExportFilters | None = None,
    split: float | None = None,
    seed: int = 13,
    batch: int = 50,
    include_silver: bool = False,
    conflicts: str = "exclude",
    deidentify: bool = True,
    **keywords: Any,
) -> Manifest:
    """Export selected decisions in one format, streaming, and describe the export in a manifest.

    Args:
        session: An open session (use ``session_scope(engine, write=False)`` on SQLite, so writers are not held).
        fmt: ``jsonl``, ``conll``, ``docbin``, ``brat`` or ``summary_jsonl``.
        out_dir: Folder for the files and ``manifest.json`` (created).
        stream: Instead of ``out_dir``, a text stream (``jsonl``, ``conll``, ``summary_jsonl`` only); no manifest
            file is written then, the returned manifest still describes the output.
        filters: Which decisions (:class:`~db.repository.filters.ExportFilters`; ``decision`` is keep/drop for
            summaries, which take no ``label``).
        split: Fraction of notes for the ``dev`` split (files ``train.*`` and ``dev.*``); ``None``: one file.
        seed: Seed of the deterministic split.
        batch: Documents per database page.
        include_silver: Besides the notes marked fully reviewed (gold), export the others as ``silver`` notes,
            each span labelled ``gold`` (a reviewer decided) or ``silver`` (the model's); not for summaries.
        conflicts: ``exclude`` (default) leaves out notes whose reviewers disagree on an item no adjudicator
            resolved; ``flag`` exports them with their ``conflicts`` listed. Counted in the manifest either way.
        deidentify: True (default): every exported text is de-identified (notes stored with their original text
            are redacted at export); False: such notes are exported with their original text. Recorded in the
            manifest as ``text_mode`` (``deidentified`` or ``original``).
        **keywords: Instead of ``filters``, its fields (``since``, ``until``, ``reviewer``, ``model_version``,
            ``decision``, ``label``; times naive = UTC, ISO strings accepted).

    Returns:
        The :class:`Manifest`.

    Raises:
        FeedbackError: ``bad_export`` for an unknown format or an impossible combination of options, and the
            filters' own errors (bad decision or label, unreadable time).
    """
    filters = ExportFilters.from_keywords(filters, keywords)
    _check_options(fmt, out_dir, stream, filters, split)
    options = ExportOptions(split=split, seed=seed, batch=batch, deidentify=deidentify,
                            include_silver=include_silver, conflicts=conflicts)
    out_path = None
    if out_dir is not None:
        out_path = Path(out_dir)
        out_path.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(format=fmt, filters=filters.to_dict(), split=split, seed=seed,
                        text_mode="deidentified" if deidentify else "original")
    counts: Counter[str] = Counter()
    tally: dict[str, list[int]] = {}
    if fmt == "summary_jsonl":
        summaries = iter_summaries(session, filters, options)
        files = write_jsonl(summaries, out_path, stream, "summaries", counts, split, count_summary)
    else:
        docs = iter_documents(session, filters, options, tally=tally)
        files = _write_documents(docs, fmt, out_path, stream, counts, split)
        counts[f"notes_conflict_{'excluded' if conflicts == 'exclude' else 'flagged'}"] += len(
            tally[f"conflict_{'excluded' if conflicts == 'exclude' else 'flagged'}"])
        manifest.notes = tally
        manifest.options = {"include_silver": include_silver, "conflicts": conflicts}
    files.update(write_codesets(session, fmt, out_path, filters, counts, split, seed))  # issue 19: code sets
    manifest.counts = dict(sorted(counts.items()))
    manifest.files = files
    manifest.sha256 = combined_hash(files)
    if out_path is not None:
        (out_path / "manifest.json").write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", "utf-8")
    return manifest


def _write_documents(
    docs: Any, fmt: str, out_path: Path | None, stream: Any, counts: Counter[str], split: float | None
) -> dict[str, dict[str, Any]]:
    """Write the note documents in one of the span formats; the files written, by name, with their hashes."""
    if fmt == "jsonl":
        return write_jsonl(docs, out_path, stream, "data", counts, split, count_document)
    if fmt == "conll":
        return write_conll(docs, out_path, stream, counts, split)
    assert out_path is not None
    if fmt == "docbin":
        return write_docbin(docs, out_path, counts)
    return write_brat(docs, out_path, counts)
