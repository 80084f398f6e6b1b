"""Command line of the feedback store: ``python -m db init|export|import|stats|keys``.

Examples::

    python -m db init
    python -m db export --format jsonl --out exports/2026-11 --reviewer ann --since 2026-11-01 --split 0.1
    python -m db export --format conll --out -          # to standard output (jsonl, conll, summary_jsonl)
    python -m db export --format jsonl --out x --include-silver --conflicts flag  # notes not fully reviewed too
    python -m db import --jsonl exports/2026-11/data.jsonl --url sqlite:////tmp/copy.sqlite
    python -m db keys create --reviewer ann --name epic-hook   # prints the API key once
"""

from __future__ import annotations

import argparse
import json
import sys

from db.errors import FeedbackError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (public so the docs can show ``--help``)."""
    parser = argparse.ArgumentParser(prog="python -m db", description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="SQLAlchemy URL (default $CLINICAL_NLP_DB_URL or db/clinical_nlp.sqlite)")
    sub = parser.add_subparsers(dest="verb", required=True)
    sub.add_parser("init", help="create or upgrade the schema (idempotent)")
    sub.add_parser("stats", help="row counts of every table, as JSON")
    exp = sub.add_parser("export", help="export reviewed data with a manifest")
    exp.add_argument("--format", required=True, choices=("jsonl", "conll", "docbin", "brat", "summary_jsonl"))
    exp.add_argument("--out", required=True, help="output folder, or - for standard output (text formats)")
    exp.add_argument("--since", help="decisions at or after this ISO date/time (UTC)")
    exp.add_argument("--until", help="decisions before this ISO date/time (UTC)")
    exp.add_argument("--reviewer")
    exp.add_argument("--model-version")
    exp.add_argument("--decision", help="accept, reject, correct, add (keep, drop for summary_jsonl)")
    exp.add_argument("--label", help="DIAG, PROC, MED, TEST or ANAT")
    exp.add_argument("--split", type=float, help="fraction of notes for dev (writes train.* and dev.*)")
    exp.add_argument("--seed", type=int, default=13)
    exp.add_argument("--include-silver", action="store_true",
                     help="also export notes not marked fully reviewed, their undecided model spans as silver")
    exp.add_argument("--conflicts", choices=("exclude", "flag"), default="exclude",
                     help="notes with an unresolved reviewer conflict: leave out (default) or export them flagged")
    exp.add_argument("--original-text", action="store_true",
                     help="export notes stored with their original text as they are (default: de-identified)")
    imp = sub.add_parser("import", help="load a jsonl export into the database")
    imp.add_argument("--jsonl", required=True)
    from db.keys import add_keys_parser

    add_keys_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one verb; errors are one line on standard error and exit status 2."""
    args = build_parser().parse_args(argv)
    from db.session import init_db, session_scope

    try:
        engine = init_db(args.url)
        if args.verb == "init":
            print(json.dumps({"url": engine.url.render_as_string(hide_password=True), "status": "ok"}))
        elif args.verb == "stats":
            from db.repository import count_rows

            with session_scope(engine, write=False) as session:
                print(json.dumps(count_rows(session)))
        elif args.verb == "export":
            from db.export import export_dataset

            to_stdout = args.out == "-"
            with session_scope(engine, write=False) as session:
                manifest = export_dataset(
                    session,
                    args.format,
                    None if to_stdout else args.out,
                    stream=sys.stdout if to_stdout else None,
                    since=args.since,
                    until=args.until,
                    reviewer=args.reviewer,
                    model_version=args.model_version,
                    decision=args.decision,
                    label=args.label,
                    split=args.split,
                    seed=args.seed,
                    deidentify=not args.original_text,
                    **({} if args.format == "summary_jsonl" else
                       {"include_silver": args.include_silver, "conflicts": args.conflicts}),
                )
            print(json.dumps(manifest.to_dict()), file=sys.stderr if to_stdout else sys.stdout)
        elif args.verb == "keys":
            from db.keys import run_keys

            print("\n".join(json.dumps(row) for row in run_keys(args, engine)))
        elif args.verb == "import":
            from db.export import import_jsonl

            with session_scope(engine) as session:
                report = import_jsonl(session, args.jsonl)
            print(
                json.dumps(
                    {"documents": report.documents, "suggestions": report.suggestions, "decisions": report.decisions}
                )
            )
    except FeedbackError as exc:
        print(f"python -m db {args.verb}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"python -m db {args.verb}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
