"""PHI spans: the labels, the span type and how overlapping findings are merged."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LABELS: tuple[str, ...] = ("NAME", "DATE", "AGE", "ID", "PHONE", "EMAIL", "URL", "LOCATION", "HOSPITAL")
"""The contract's PHI labels (../shared/CONTRACT.md, ``deidentify``)."""

_PRIORITY = {label: rank for rank, label in enumerate(("EMAIL", "URL", "PHONE", "ID", "DATE", "AGE", "LOCATION",
                                                       "HOSPITAL", "NAME"))}
"""Which label wins when two findings of the same length overlap: structured finders first (a phone number
that the tagger also called a name stays a phone number)."""


@dataclass(frozen=True, slots=True)
class PhiSpan:
    """One PHI finding.

    Attributes:
        start: Offset into the input text.
        end: Exclusive end offset.
        label: One of :data:`LABELS`.
        source: What found it (a pattern name, ``tagger``, ``names``...), for evaluation and debugging.
    """

    start: int
    end: int
    label: str
    source: str = ""

    def to_dict(self) -> dict[str, object]:
        """The contract's ``{"start", "end", "label"}`` object."""
        return {"start": self.start, "end": self.end, "label": self.label}


def merge_spans(spans: Iterable[PhiSpan]) -> list[PhiSpan]:
    """Merge overlapping findings into disjoint spans sorted by start.

    Overlapping spans become one span covering both (every character any finder flagged stays masked); its label
    is the label of the longest member, ties broken by :data:`_PRIORITY`.
    """
    ordered = sorted((s for s in spans if s.end > s.start), key=lambda s: (s.start, -s.end))
    out: list[PhiSpan] = []
    group: list[PhiSpan] = []
    group_end = -1
    for span in ordered:
        if group and span.start < group_end:
            group.append(span)
            group_end = max(group_end, span.end)
            continue
        if group:
            out.append(_join(group, group_end))
        group, group_end = [span], span.end
    if group:
        out.append(_join(group, group_end))
    return out


def _join(group: list[PhiSpan], end: int) -> PhiSpan:
    if len(group) == 1:
        return group[0]
    best = min(group, key=lambda s: (-(s.end - s.start), _PRIORITY.get(s.label, 99)))
    return PhiSpan(group[0].start, end, best.label, best.source)
