"""Section priors of the summariser: a clinical note's structure, read from its sections and metadata fields.

The scorer was trained on PubMed articles, where the opening states the finding; in a clinical note the
assessment/impression and plan say what matters, and the header block (dictation lines, keywords) says nothing.
Each sentence's logit is shifted by its section's prior (``assets/rules/summary_sections.tsv``, in standard
deviations of the note's own logits, so the shift means the same on any note), and a sentence that is only a
header ("ASSESSMENT:") or lies in a metadata field is never chosen. A row ``<section>:first`` adds its prior to
the first sentence of that section that is more than its header ("ASSESSMENT AND PLAN: Acute myocardial
infarction."): the conclusion is stated first, and the plan's orders that follow outscored it. A text without
recognised sections (a PubMed article) is scored exactly as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import EngineError, ErrorCode
from engine.rules import rule_rows

PRIORS_FILE = "summary_sections.tsv"
MIN_SPREAD = 0.1
"""Floor on the logits' standard deviation a prior is scaled by (a note of near-equal scores)."""


def read_priors(path: Path) -> dict[str, float]:
    """``section -> prior`` from a priors file (empty when the file is absent).

    Raises:
        EngineError: ``MODEL_INVALID`` for a line that is not ``section<TAB>number``.
    """
    priors: dict[str, float] = {}
    for lineno, fields in rule_rows(path, required=False, what="summary section priors"):
        try:
            priors[fields[0].strip().lower()] = float(fields[1])
        except (IndexError, ValueError) as exc:
            raise EngineError(ErrorCode.MODEL_INVALID, f"{path}:{lineno}: expected 'section<TAB>number'") from exc
    return priors


class SectionPriors:
    """Per-sentence shifts and exclusions from a note's sections.

    Args:
        priors: ``section name -> prior`` (standard deviations).
        sections: The section stage (:class:`engine.sections.SectionDetector`).
    """

    def __init__(self, priors: dict[str, float], sections: Any) -> None:
        self.priors = priors
        self.sections = sections

    def adjust(self, text: str, spans: Sequence[tuple[int, int]], logits: Sequence[float]) -> list[float | None]:
        """The logits shifted by their sentence's section prior; ``None`` for a sentence never to be chosen."""
        found = self.sections.detect(text)
        headers = self.sections.header_spans(text)
        metadata = self.sections.metadata_spans(text)
        if not found and not metadata:
            return list(logits)
        n = len(logits)
        mean = sum(logits) / max(n, 1)
        spread = max(math.sqrt(sum((x - mean) ** 2 for x in logits) / max(n, 1)), MIN_SPREAD)
        out: list[float | None] = []
        seen: set[int] = set()
        for (start, end), logit in zip(spans, logits, strict=True):
            if any(a < end and start < b for a, b, _ in metadata) or only_header(text, start, end, headers):
                out.append(None)
                continue
            section = next((s for s in found if s.start <= start < s.end), None)
            if section is None:
                out.append(logit)
                continue
            prior = self.priors.get(section.name, 0.0)
            if section.start not in seen:
                seen.add(section.start)
                prior += self.priors.get(f"{section.name}:first", 0.0)
            out.append(logit + prior * spread)
        return out


def only_header(text: str, start: int, end: int, headers: Sequence[tuple[int, int]]) -> bool:
    """Whether the sentence holds nothing but section headers and punctuation."""
    rest = text[start:end]
    for a, b in headers:
        if start <= a < end:
            rest = rest.replace(text[a:b], " ")
    return not any(c.isalnum() for c in rest)


def load_priors(rules_dir: Path, sections: Any) -> SectionPriors:
    """The priors of ``rules_dir / summary_sections.tsv`` over the given section stage."""
    return SectionPriors(read_priors(Path(rules_dir) / PRIORS_FILE), sections)
