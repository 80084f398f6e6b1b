"""``python -m engine deidentify``: the contract's second-round verb (``../shared/CONTRACT.md``).

Input objects ``{"id", "text"}`` (note files, ``-``, or ``--jsonl FILE``), output ``{"id", "text": <redacted>,
"phi": [{"start", "end", "label"}]}`` per line with offsets into the input. The input rules are those of the other
note verbs (:func:`engine.cli.iter_inputs`): a bad input gets one line on standard error naming it and exit status
2, and the other inputs are still processed and written.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TextIO

from engine.cli import BadInput, iter_inputs
from engine.errors import EngineError, ErrorCode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine deidentify")
    parser.add_argument("files", nargs="*", help="note files (one note per file; '-' is standard input)")
    parser.add_argument("--jsonl", help="a JSON lines file of input objects ('-' is standard input)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="ignored: CPU only")
    parser.add_argument("--model-dir", help="another trained model set (its deid/ folder holds the tagger)")
    parser.add_argument("--mode", choices=["surrogate", "mask"], help="redaction (default: settings.deid_mode)")
    return parser


def run_deidentify(argv: Sequence[str], stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """Run the verb; returns the exit status (0, 1 when the stage cannot load, 2 after any bad input)."""
    args = _parser().parse_args(argv)
    if not args.files and args.jsonl is None:
        stderr.write("python -m engine deidentify: give note files, '-' for standard input, or --jsonl FILE\n")
        return 2
    from engine.deid.stage import Deidentifier
    from engine.settings import Settings

    try:
        deid = Deidentifier(Settings().with_overrides(model_dir=args.model_dir, deid_mode=args.mode))
    except EngineError as exc:
        stderr.write(f"error: {exc}\n")
        return 1
    status = 0
    for name, item in iter_inputs("deidentify", args.files, args.jsonl, stdin):
        if isinstance(item, BadInput):
            stderr.write(f"error: [{ErrorCode.BAD_INPUT.value}] {item}\n")
            status = 2
            continue
        if "\x00" in item["text"]:
            stderr.write(f"error: [{ErrorCode.BAD_INPUT.value}] {name}: binary input (NUL byte), not a note\n")
            status = 2
            continue
        stdout.write(json.dumps(deid.deidentify(item["text"], item.get("id")).to_dict(), ensure_ascii=False) + "\n")
        stdout.flush()
    return status
