"""Command line: ``python -m engine VERB`` (the public contract, ../shared/CONTRACT.md).

Per-note verbs (``analyze``, ``summarize``, ``assert``, ``link``) read files given as arguments (a note per file,
``-`` is standard input) or ``--jsonl FILE`` (one JSON object per line), and write one JSON object per line to
standard output in input order. A bad input gets a one-line message naming it on standard error; the others are
still processed, and the exit status is then 2.

Other verbs (``train``, ``evaluate``, ``batch``, ``retrain``, ``models``) are delegated to their modules, listed in
:data:`COMMANDS`; each takes its own ``--help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from engine.errors import EngineError, ErrorCode
from engine.inputs import BadNote, decode_note, json_line
from engine.registry import resolve

NOTE_VERBS = ("analyze", "summarize", "assert", "link", "code")

COMMANDS: dict[str, str] = {
    "train ner": "engine.training.ner:main",
    "train ner-student": "engine.training.distill:main",
    "train summarizer": "engine.training.summarizer:main",
    "train deid": "engine.training.deid:main",
    "evaluate ner": "engine.evaluation.ner:main",
    "evaluate assertion": "engine.evaluation.assertion:main",
    "evaluate icd": "engine.evaluation.icd:main",
    "evaluate summarizer": "engine.evaluation.summarizer:main",
    "evaluate coding": "engine.evaluation.coding:main",
    "evaluate deid": "engine.training.deid_evaluate:main",
    "batch": "engine.batch:main",
    "retrain": "engine.training.retrain:main",
    "models": "engine.versions:main",
    "monitor profile": "engine.monitoring.reference:main",
    "monitor": "db.monitor:main",  # needs the feedback store, so it lives in db/ (engine itself never imports db)
    "audit": "engine.audit.cli:main",
}
"""Delegated verbs: ``"verb [target]"`` -> ``module:main``, where ``main(argv: list[str]) -> int``."""

REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "analyze": ("text",),
    "summarize": ("text",),
    "assert": ("text", "start", "end"),
    "link": ("text",),
    "code": ("text",),
    "deidentify": ("text",),
}


class BadInput(Exception):
    """One input that cannot be processed; the message names it."""


def _read_text(name: str, stdin: TextIO) -> str:
    if name == "-":
        data = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode("utf-8")
    else:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise BadInput(f"{name}: cannot read file ({exc.strerror or exc})") from exc
    note = decode_note(name, data)
    if isinstance(note, BadNote):
        raise BadInput(f"{name}: {note.error}")
    return note.text


def iter_inputs(
    verb: str, files: Sequence[str], jsonl: str | None, stdin: TextIO
) -> Iterator[tuple[str, dict[str, Any] | BadInput]]:
    """Yield ``(input name, object or BadInput)`` in input order.

    A file argument is one note: its whole text is ``text`` and its path the ``id``. For ``assert`` (which needs a
    span) and for files ending in ``.json``, the file must hold one JSON object instead.
    """
    if jsonl is not None:
        try:
            text = _read_text(jsonl, stdin)
        except BadInput as exc:
            yield jsonl, exc
            return
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            name = f"{jsonl}:{lineno}"
            obj = json_line(line, name)
            yield name, BadInput(f"{name}: {obj.error}") if isinstance(obj, BadNote) else _check(verb, name, obj)
    for name in files:
        try:
            text = _read_text(name, stdin)
        except BadInput as exc:
            yield name, exc
            continue
        if verb == "assert" or name.endswith(".json"):
            obj = json_line(text, name)
            if isinstance(obj, BadNote):
                yield name, BadInput(f"{name}: {obj.error}")
                continue
        else:
            obj = {"id": name, "text": text}
        yield name, _check(verb, name, obj)


def _check(verb: str, name: str, obj: Any) -> dict[str, Any] | BadInput:
    if not isinstance(obj, dict):
        return BadInput(f"{name}: expected a JSON object")
    missing = [f for f in REQUIRED_FIELDS[verb] if f not in obj]
    if missing:
        return BadInput(f"{name}: missing field {', '.join(repr(m) for m in missing)}")
    if not isinstance(obj["text"], str):
        return BadInput(f"{name}: field 'text' must be a string")
    if verb == "assert" and not (isinstance(obj["start"], int) and isinstance(obj["end"], int)):
        return BadInput(f"{name}: fields 'start' and 'end' must be integers")
    return obj


def _note_parser(verb: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m engine {verb}")
    parser.add_argument("files", nargs="*", help="note files (one note per file; '-' is standard input)")
    parser.add_argument("--jsonl", help="a JSON lines file of input objects ('-' is standard input)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--model-dir", help="another trained model set (default: the committed one)")
    if verb in ("analyze", "code"):  # the encounter's code set (engine/encounter/service.py, docs/encounter.md)
        parser.add_argument("--setting", choices=["auto", "outpatient", "inpatient"],
                            default="auto" if verb == "code" else None, help="encounter setting (default: auto)")
    if verb == "analyze":
        parser.add_argument("--encounter", action="store_true", help="add the encounter's code set as 'encounter'")
    if verb == "summarize":
        parser.add_argument("--sentences", type=int, default=None, help="number of sentences (default: by length)")
    return parser


def run_note_verb(verb: str, argv: Sequence[str], stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """Run one of :data:`NOTE_VERBS`; returns the exit status."""
    args = _note_parser(verb).parse_args(argv)
    if not args.files and args.jsonl is None:
        stderr.write(f"python -m engine {verb}: give note files, '-' for standard input, or --jsonl FILE\n")
        return 2
    from engine.pipeline import load_pipeline

    try:
        pipeline = load_pipeline(model_dir=args.model_dir, device=args.device)
    except EngineError as exc:
        stderr.write(f"error: {exc}\n")
        return 1
    status = 0
    for name, item in iter_inputs(verb, args.files, args.jsonl, stdin):
        if isinstance(item, BadInput):
            stderr.write(f"error: [{ErrorCode.BAD_INPUT.value}] {item}\n")
            status = 2
            continue
        note_id = item.get("id")
        try:
            if verb == "code" or (verb == "analyze" and (args.encounter or args.setting)):
                from engine.encounter.service import encounter_verb

                out = encounter_verb(verb, pipeline, item, args)
            elif verb == "analyze":
                out = pipeline.analyze(item["text"], note_id).to_dict()
            elif verb == "summarize":
                out = pipeline.summarize(item["text"], args.sentences, note_id).to_dict()
            elif verb == "assert":
                out = pipeline.assert_span(item["text"], item["start"], item["end"], note_id)
            else:
                out = pipeline.link(item["text"], item.get("label") or "DIAG", note_id)
        except EngineError as exc:
            if exc.code in {ErrorCode.BAD_INPUT, ErrorCode.BAD_SPAN, ErrorCode.BAD_LABEL}:
                stderr.write(f"error: {name}: {exc}\n")
                status = 2
                continue
            stderr.write(f"error: {exc}\n")
            return 1
        stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        stdout.flush()
    return status


def usage() -> str:
    """The top-level help text."""
    lines = ["usage: python -m engine VERB [options]", "", "per-note verbs (contract):"]
    lines += [f"  {v}" for v in NOTE_VERBS] + ["  deidentify"]
    lines += ["", "other verbs:"] + [f"  {v}" for v in COMMANDS]
    lines += ["", "Every verb takes --device cpu|cuda|auto and --model-dir DIR; VERB --help for the rest."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m engine``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        sys.stdout.write(usage())
        return 0 if argv else 2
    verb = argv[0]
    if verb == "deidentify":
        from engine.deid.cli import run_deidentify

        return run_deidentify(argv[1:], sys.stdout, sys.stderr,
                              lambda files, jsonl: iter_inputs("deidentify", files, jsonl, sys.stdin), BadInput)
    if verb in NOTE_VERBS:
        return run_note_verb(verb, argv[1:], sys.stdout, sys.stderr, sys.stdin)
    if len(argv) > 1 and f"{verb} {argv[1]}" in COMMANDS:
        target, rest = COMMANDS[f"{verb} {argv[1]}"], argv[2:]
    elif verb in COMMANDS:
        target, rest = COMMANDS[verb], argv[1:]
    else:
        sys.stderr.write(f"unknown verb {' '.join(argv[:2])!r}\n" + usage())
        return 2
    try:
        return int(resolve(target)(rest) or 0)
    except EngineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
