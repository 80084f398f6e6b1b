"""``python -m engine deidentify``: the contract's second-round verb (``../shared/CONTRACT.md``).

Input objects ``{"id", "text"}`` (note files, ``-``, or ``--jsonl FILE``), output ``{"id", "text": <redacted>,
"phi": [{"start", "end", "label"}]}`` per line with offsets into the input. The input rules are those of the other
note verbs: :mod:`engine.cli` passes its input reader in (this module never imports the command line). A bad
input gets one line on standard error naming it and exit status 2; the other inputs are still processed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from engine.errors import EngineError, ErrorCode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine deidentify")
    parser.add_argument("files", nargs="*", help="note files (one note per file; '-' is standard input)")
    parser.add_argument("--jsonl", help="a JSON lines file of input objects ('-' is standard input)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="ignored: CPU only")
    parser.add_argument("--model-dir", help="another trained model set (its deid/ folder holds the tagger)")
    parser.add_argument("--mode", choices=["surrogate", "mask"], help="redaction (default: settings.deid_mode)")
    return parser


Inputs = Callable[[Sequence[str], str | None], Iterable[tuple[str, Any]]]
"""``(files, jsonl) -> (input name, {"id", "text"} or a bad-input exception)`` in input order."""


def run_deidentify(argv: Sequence[str], stdout: TextIO, stderr: TextIO, inputs: Inputs,
                   bad_input: type[Exception]) -> int:
    """Run the verb; returns the exit status (0, 1 when the stage cannot load, 2 after any bad input).

    Args:
        argv: The verb's arguments.
        stdout: Where the output lines go.
        stderr: Where the error lines go.
        inputs: The command line's input reader (``engine.cli.iter_inputs`` for this verb).
        bad_input: The exception type ``inputs`` yields for a bad input.
    """
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
    for name, item in inputs(args.files, args.jsonl):
        if isinstance(item, bad_input):
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
