"""Reading the plain-data rule files under ``assets/rules/``.

Every rule file is UTF-8 text, one rule per line, fields separated by tabs; blank lines and lines starting with
``#`` (after leading spaces) are comments. Each stage parses its own fields; this module owns the shared format.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from engine.errors import EngineError, ErrorCode


def rule_rows(path: Path, *, required: bool = True, what: str = "rule file") -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, tab-separated fields)`` for each rule line of ``path``.

    Args:
        path: The rule file.
        required: Raise when the file cannot be read; otherwise a missing file yields nothing.
        what: How the file is named in the error message (for example ``"section header file"``).

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when a required file cannot be read.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        if not required:
            return
        raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"{what} {path} cannot be read ({exc})") from exc
    for lineno, line in enumerate(lines, start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield lineno, line.split("\t")
