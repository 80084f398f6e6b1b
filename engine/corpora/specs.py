"""Corpus specs ``FORMAT:PATH[:LABELMAP]``: how training, evaluation and retraining name the corpora they read.

- ``FORMAT`` is ``brat`` (a folder of ``.txt``/``.ann``) or ``iob`` (a ``token<TAB>tag`` file or a folder of them);
- ``LABELMAP`` is a named map (``maccrobat``, ``chia``, ``bc5cdr``, ``ncbi-disease``, ``anatem``, ``identity``) or
  inline ``Type=LABEL,Type=LABEL``; default ``maccrobat`` for BRAT and the folder's name for IOB.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.corpora.brat import read_brat
from engine.corpora.document import Document, parse_label_map
from engine.corpora.iob import read_iob
from engine.errors import EngineError, ErrorCode


def parse_data_spec(spec: str) -> tuple[str, Path, str | None]:
    """Split ``FORMAT:PATH[:LABELMAP]`` (a Windows-free path may itself hold no ``:``)."""
    fmt, sep, rest = spec.partition(":")
    if not sep or fmt not in {"brat", "iob"}:
        raise EngineError(ErrorCode.BAD_INPUT, f"--data {spec!r}: expected brat:PATH[:LABELMAP] or iob:PATH[:LABELMAP]")
    path, _, label_map = rest.rpartition(":") if ":" in rest else (rest, "", "")
    return fmt, Path(path).expanduser(), label_map or None


def load_data_specs(specs: Sequence[str]) -> list[Document]:
    """Read and concatenate the documents of several ``--data`` specs."""
    documents: list[Document] = []
    for spec in specs:
        fmt, path, label_map = parse_data_spec(spec)
        if fmt == "brat":
            documents += read_brat(path, parse_label_map(label_map, "maccrobat"))
        else:
            documents += read_iob(path, label_map)
    return documents
