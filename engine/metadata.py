"""Metadata and header fields of a note: dictation lines, signatures, names and dates, keywords.

A field is recognised by a rule of ``assets/rules/metadata_lines.tsv`` (a name and a regular expression) matched
where a line starts, or right after a sentence end when the note glues fields together ("...M.D.ATTENDING
PHYSICIAN: X Y"). The field runs to the end of its line, or to the next section header on the same line (so in
"DATE OF ADMISSION: 01/02.HISTORY: ..." only the date is metadata). The pipeline drops entities inside these
fields and the summariser never picks a sentence from them: who dictated a note and when is not clinical content,
and MTSamples' "Description:" and "Keywords:" lines repeat the note's findings out of context.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from engine.errors import EngineError, ErrorCode
from engine.rules import rule_rows

RULES_FILE = "metadata_lines.tsv"
# Where a field may start: the note's start, a line start, or a glued sentence end ("M.D.ATTENDING PHYSICIAN:").
_START = re.compile(r"(?:^|\n|(?<=[.;]))[ \t*\-•]*", re.MULTILINE)


def read_rules(path: Path) -> list[tuple[str, re.Pattern[str]]]:
    """``(name, pattern)`` per rule line of a metadata rule file (none when the file is absent).

    Raises:
        EngineError: ``MODEL_INVALID`` for a line that is not ``name<TAB>regex`` or whose regex does not compile.
    """
    rules = []
    for lineno, fields in rule_rows(path, required=False, what="metadata rule file"):
        if len(fields) != 2:
            raise EngineError(ErrorCode.MODEL_INVALID, f"{path}:{lineno}: expected 'name<TAB>regex'")
        try:
            rules.append((fields[0].strip(), re.compile(fields[1].strip(), re.IGNORECASE)))
        except re.error as exc:
            raise EngineError(ErrorCode.MODEL_INVALID, f"{path}:{lineno}: bad regular expression ({exc})") from exc
    return rules


class MetadataDetector:
    """Finds a note's metadata fields.

    Args:
        rules: ``(name, pattern)`` pairs; a pattern is tried at each place a field may start.
    """

    def __init__(self, rules: Sequence[tuple[str, re.Pattern[str]]]) -> None:
        self.rules = list(rules)
        # One alternation tried once per start place instead of one search per rule.
        self._any = re.compile("|".join(f"(?:{p.pattern})" for _, p in self.rules), re.IGNORECASE)

    def spans(self, text: str, header_starts: Sequence[int] = ()) -> list[tuple[int, int, str]]:
        """``(start, end, rule name)`` of each metadata field, in note order, not overlapping.

        Args:
            text: The note.
            header_starts: Offsets where section headers start (:meth:`SectionDetector.header_spans`); a field
                ends at the first one after it on its line.
        """
        out: list[tuple[int, int, str]] = []
        if not self.rules:
            return out
        last = -1
        starts = sorted(header_starts)
        for place in _START.finditer(text):
            pos = place.end()
            if pos <= last or pos >= len(text) or not self._any.match(text, pos):
                continue
            name = next(n for n, p in self.rules if p.match(text, pos))
            line_end = text.find("\n", pos)
            end = len(text) if line_end < 0 else line_end
            nxt = next((h for h in starts if pos < h < end and not self._any.match(text, h)), None)
            if nxt is not None:
                end = nxt
            out.append((pos, end, name))
            last = end
        return out


def outside(spans: Sequence, fields: Sequence[tuple[int, int, str]]) -> list:
    """The ``spans`` (anything with ``start`` and ``end``) that overlap no metadata field."""
    if not fields:
        return list(spans)
    return [s for s in spans if not any(a < s.end and s.start < b for a, b, _ in fields)]


def load_rules(rules_dir: Path) -> MetadataDetector:
    """The detector built from ``rules_dir / metadata_lines.tsv``."""
    return MetadataDetector(read_rules(Path(rules_dir) / RULES_FILE))
