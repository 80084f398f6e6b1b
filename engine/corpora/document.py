"""The annotated document shared by every corpus reader, plus label maps and the deterministic dev split."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from engine.errors import EngineError, ErrorCode
from engine.types import LABELS

GoldSpan = tuple[int, int, str]
"""``(start, end, label)``: a gold entity as character offsets into :attr:`Document.text`."""

LABEL_MAPS: dict[str, dict[str, str]] = {
    # The product mapping of MACCROBAT's 41 types (../shared/data/README.md); other types are O.
    "maccrobat": {
        "Disease_disorder": "DIAG",
        "Sign_symptom": "DIAG",
        "Therapeutic_procedure": "PROC",
        "Medication": "MED",
        "Diagnostic_procedure": "TEST",
        "Biological_structure": "ANAT",
    },
    "chia": {"Condition": "DIAG", "Drug": "MED", "Procedure": "PROC", "Measurement": "TEST"},
    "bc5cdr": {"Chemical": "MED", "Disease": "DIAG"},
    "ncbi-disease": {"Disease": "DIAG"},
    "anatem": {"Anatomy": "ANAT"},
    "identity": {label: label for label in LABELS},
}
"""Named label maps: corpus type -> product label (unlisted types are dropped)."""


@dataclass(slots=True)
class Document:
    """A text with its gold entity spans.

    Attributes:
        id: A stable identifier (file stem, or ``file#n`` for IOB sentences).
        text: The text exactly as read; offsets index into it.
        spans: Non-overlapping ``(start, end, label)`` spans sorted by ``start``.
    """

    id: str
    text: str
    spans: list[GoldSpan] = field(default_factory=list)


def parse_label_map(spec: str | None, default: str = "identity") -> dict[str, str]:
    """Turn a label-map spec into a dict.

    Args:
        spec: A name from :data:`LABEL_MAPS`, or inline ``Type=LABEL,Type2=LABEL`` pairs, or ``None`` for
            ``default``.
        default: The named map used when ``spec`` is empty.

    Raises:
        EngineError: ``BAD_LABEL`` for an unknown name or a target that is not one of the five labels.
    """
    spec = spec or default
    if "=" not in spec:
        if spec not in LABEL_MAPS:
            raise EngineError(ErrorCode.BAD_LABEL, f"unknown label map {spec!r}; known: {', '.join(LABEL_MAPS)}")
        return dict(LABEL_MAPS[spec])
    mapping: dict[str, str] = {}
    for pair in spec.split(","):
        source, _, target = pair.partition("=")
        if target not in LABELS:
            raise EngineError(ErrorCode.BAD_LABEL, f"label map {spec!r}: {target!r} is not one of {LABELS}")
        mapping[source.strip()] = target
    return mapping


def kept_without_overlaps(spans: Sequence[GoldSpan]) -> list[int]:
    """Indices of the spans :func:`resolve_overlaps` keeps: the longer of overlapping spans (the earlier in
    ``spans`` on a tie), empty spans never; in index order."""
    order = sorted((i for i, (s, e, _) in enumerate(spans) if e > s),
                   key=lambda i: (-(spans[i][1] - spans[i][0]), spans[i][0], i))
    kept: list[int] = []
    taken: list[tuple[int, int]] = []
    for i in order:
        s, e, _ = spans[i]
        if any(s < te and ts < e for ts, te in taken):
            continue
        taken.append((s, e))
        kept.append(i)
    return sorted(kept)


def resolve_overlaps(spans: Iterable[GoldSpan]) -> list[GoldSpan]:
    """Keep the longer of overlapping spans (the earlier on a tie), as the data README prescribes.

    Args:
        spans: Candidate spans in annotation order (that order breaks remaining ties).

    Returns:
        Non-overlapping spans sorted by start.
    """
    candidates = list(spans)
    return sorted({candidates[i] for i in kept_without_overlaps(candidates)})


def _id_key(doc_id: str) -> tuple[int, int | str]:
    # Numeric PMIDs sort as numbers, anything else as text after them.
    return (0, int(doc_id)) if doc_id.isdigit() else (1, doc_id)


def split_documents(
    documents: Sequence[Document], dev_count: int | None = None, dev_fraction: float = 0.14
) -> tuple[list[Document], list[Document]]:
    """Deterministic train/dev split: the last documents by sorted id are dev.

    Args:
        documents: All documents.
        dev_count: Number of dev documents (wins over ``dev_fraction``).
        dev_fraction: Share of documents held out when ``dev_count`` is not given.

    Returns:
        ``(train, dev)``; ``dev`` is empty when there are fewer than two documents.
    """
    ordered = sorted(documents, key=lambda d: _id_key(d.id))
    if len(ordered) < 2:
        return list(ordered), []
    n_dev = dev_count if dev_count is not None else max(1, round(len(ordered) * dev_fraction))
    n_dev = min(max(n_dev, 0), len(ordered) - 1)
    if n_dev == 0:
        return ordered, []
    return ordered[:-n_dev], ordered[-n_dev:]
