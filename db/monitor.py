"""``python -m engine monitor``: the monitoring report of a feedback store, as one JSON object.

The verb lives here, not in ``engine/``, because it reads the database, and the engine never imports ``db``
(``engine.cli`` only names this module by string; ``tests/test_engine_import.py`` checks the engine's imports).

Examples::

    python -m engine monitor --db sqlite:///db/clinical_nlp.sqlite --window 10000
    python -m engine monitor --db URL --series 40          # also the time series the Monitoring page plots
    python -m engine monitor ingest --db URL results.stats.jsonl   # a batch job's statistics (no note text)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.settings import Settings


def reference_path(model_dir: Path | None = None) -> tuple[Path, str | None]:
    """The reference profile to compare with, and a note when it is not the active model's own.

    The active model set's (as the engine would load it) when it has one, else the committed default's.
    """
    from engine.monitoring.reference import profile_path
    from engine.versions import active_model_dir

    settings = Settings()
    folder = model_dir or active_model_dir(settings) or settings.model_dir
    path = profile_path(folder, settings.ner_model)  # the profile of the NER model that runs (ner/ or ner_accurate/)
    if path.is_file() or model_dir is not None:
        return path, None
    default = profile_path(settings.model_dir, settings.ner_model)
    return default, f"{path} is missing: compared with the committed model's profile (write it with `python -m " \
                    f"engine monitor profile --model-dir {folder}`)"


def build(url: str | None, window: int | None = None, model_dir: Path | None = None, series_points: int = 0,
          ner_version: str | None = None) -> dict[str, Any]:
    """The report (and optionally its series) of the store at ``url``; ``window`` overrides the setting."""
    from db.session import init_db, session_scope
    from db.stats import count_stats, decision_rows, load_table
    from engine.monitoring.reference import read_reference
    from engine.monitoring.report import build_report, series

    started = time.perf_counter()
    settings = Settings().monitor
    if window:
        settings = replace(settings, window=window)
    path, note = reference_path(model_dir)
    header, reference = read_reference(path)
    engine = init_db(url)
    with session_scope(engine, write=False) as session:
        total = count_stats(session)
        table = load_table(session, None if series_points else settings.window, ner_version)
        decisions = decision_rows(session)
    loaded = time.perf_counter() - started
    info = {k: header[k] for k in ("source", "n_notes", "models", "created_at", "summary")}
    info["path"] = str(path)
    if note:
        info["note"] = note
    report = build_report(table, reference, decisions, settings, settings.window, info)
    report["n_analyses"] = total
    if series_points:
        report["series"] = series(table, reference, settings, settings.window, series_points)
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["seconds_loading"] = round(loaded, 3)
    return report


def _stats_lines(path: Path) -> Iterator[tuple[dict[str, Any], str | None]]:
    # the engine's JSON lines reader (blank lines skipped; "file:line" in the error of a line that is not a JSON
    # object), rather than a copy of its loop here (duplicates D13/D14)
    from engine.training.feedback_data import read_jsonl

    for _, obj in read_jsonl(path):
        yield obj, obj.get("id")


def ingest(url: str | None, path: Path) -> int:
    """Store a batch job's ``*.stats.jsonl`` lines (``{"id", ...profile}``) with source ``batch``.

    Raises:
        EngineError: ``DATA_NOT_FOUND`` for a missing file, ``BAD_INPUT`` for a line that is not a JSON object.
    """
    from db.session import init_db, session_scope
    from db.stats import record_many

    with session_scope(init_db(url)) as session:
        return record_many(session, _stats_lines(path), source="batch")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: print the report (or ingest a stats file); errors are one line and exit status 1 or 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m engine monitor", description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="SQLAlchemy URL (default $CLINICAL_NLP_DB_URL or db/clinical_nlp.sqlite)")
    if argv[:1] == ["ingest"]:
        parser.prog += " ingest"
        parser.add_argument("stats", type=Path, help="a batch job's OUTPUT.stats.jsonl")
        args = parser.parse_args(argv[1:])
        try:
            print(json.dumps({"stored": ingest(args.db, args.stats)}))
        except (OSError, ValueError, EngineError) as exc:
            sys.stderr.write(f"python -m engine monitor ingest: {exc}\n")
            return 2
        return 0
    parser.add_argument("--window", type=int, help="notes in the sliding window (default: the setting, 10,000)")
    parser.add_argument("--model-dir", type=Path, help="model set whose ner/reference_profile.json to compare with")
    parser.add_argument("--series", type=int, default=0, metavar="POINTS", help="also the time series at N points")
    parser.add_argument("--ner-version", help="only analyses made by this NER model version")
    parser.add_argument("--out", type=Path, help="write the JSON here instead of standard output")
    args = parser.parse_args(argv)
    if args.window is not None and args.window < 1:
        sys.stderr.write("python -m engine monitor: --window must be at least 1\n")
        return 2
    try:
        report = build(args.db, args.window, args.model_dir, args.series, args.ner_version)
    except EngineError as exc:
        sys.stderr.write(f"python -m engine monitor: {exc}\n")
        return 1
    text = json.dumps(report, indent=1, default=str) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
