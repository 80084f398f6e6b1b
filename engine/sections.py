"""Section detection for clinical notes.

Headers are data (``assets/rules/section_headers.tsv``): each known header maps to a lower-case canonical name
(``"PMH:"`` -> ``past medical history``). A section runs from its header to the next header that opens a section;
body-system sub-headers (``HEENT:``, ``LUNGS:``) stay inside the section around them. Text before the first header
belongs to no section. The detector also finds the note's metadata fields (dictation and signature lines,
names and dates, keywords: :mod:`engine.metadata`), which hold no clinical content.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError, ErrorCode
from engine.metadata import MetadataDetector
from engine.metadata import load_rules as load_metadata_rules
from engine.rules import rule_rows
from engine.settings import Settings
from engine.types import Section

HEADERS_FILE = "section_headers.tsv"

# A header may start a line or follow a sentence end: MTSamples glues sections together ("...disease.ALLERGIES:").
# Only these places are tried, so a note costs one pass to find them and a few anchored matches.
_CANDIDATE = re.compile(r"[\n.;!?][ \t*\-•]*[A-Za-z]")
_LEAD = re.compile(r"[ \t*\-•]*")
# An unknown ALL-CAPS header still closes the previous section (so family history does not run into the next one).
_GENERIC = re.compile(r"(?P<header>[A-Z][A-Z0-9/&,()' -]{1,48}[A-Z)])[ \t]*:")


def read_headers(path: Path) -> dict[str, str]:
    """Read ``header -> canonical`` (``"-"`` for sub-headers) from a section header file.

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when the file is missing, ``MODEL_INVALID`` for a malformed line.
    """
    headers: dict[str, str] = {}
    for lineno, parts in rule_rows(path, what="section header file"):
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise EngineError(ErrorCode.MODEL_INVALID, f"{path}:{lineno}: expected 'header<TAB>canonical'")
        headers[" ".join(parts[0].lower().split())] = parts[1].strip().lower()
    return headers


@dataclass(slots=True)
class _Header:
    start: int
    end: int
    name: str | None  # None: a sub-header that opens no section


class SectionDetector:
    """Finds the sections of a note from a header table.

    Args:
        headers: ``header text -> canonical name`` (lower case); ``"-"`` marks a sub-header.
        version: Version string written in results.
        metadata: The metadata field rules, or ``None`` for none.
    """

    def __init__(self, headers: dict[str, str], version: str, metadata: MetadataDetector | None = None) -> None:
        self.headers = headers
        self.version = version
        self.metadata = metadata
        # One anchored regex per first letter: a candidate place tries only the headers that can start there.
        by_letter: dict[str, list[str]] = {}
        for header in sorted(headers, key=len, reverse=True):
            by_letter.setdefault(header[0], []).append(header)
        self._known: dict[str, re.Pattern[str]] = {}
        for letter, group in by_letter.items():
            body = "|".join(re.escape(h).replace(r"\ ", r"\s+") for h in group)
            pattern = re.compile(r"(?P<header>" + body + r")(?:[ \t]*:|[ \t]*(?=\r?\n|\Z))", re.IGNORECASE)
            self._known[letter] = pattern
            self._known[letter.upper()] = pattern
        self._cache: dict[str, list[_Header]] = {}

    def _headers(self, text: str) -> list[_Header]:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        found = self._find(text)
        if len(self._cache) >= 64:  # the assert verb often judges many spans of one note in a row
            self._cache.clear()
        self._cache[text] = found
        return found

    def _find(self, text: str) -> list[_Header]:
        found: list[_Header] = []
        last_end = -1
        places = [(_LEAD.match(text).end(), True)]
        places += [(m.end() - 1, m.group()[0] == "\n") for m in _CANDIDATE.finditer(text)]
        for pos, at_line_start in places:
            if pos < last_end or pos >= len(text) or not text[pos].isalpha():
                continue
            known = self._known.get(text[pos])
            match = known.match(text, pos) if known is not None else None
            if match is not None and (match.group().rstrip().endswith(":") or at_line_start):
                # Without a colon a header must stand alone on its own line ("Family History\n").
                canonical = self.headers[" ".join(match.group("header").lower().split())]
            else:
                match = _GENERIC.match(text, pos)
                if match is None:
                    continue
                key = " ".join(match.group("header").lower().split())
                # Short unknown capitals ("BMI:", "ENT:", "TEMP:") are values or sub-headers, not sections.
                canonical = self.headers.get(key, key if (" " in key or len(key) >= 8) else "-")
            found.append(_Header(pos, match.end(), None if canonical == "-" else canonical))
            last_end = match.end()
        return found

    def detect(self, text: str) -> list[Section]:
        """Return the note's sections in order, each from its header to the next section's header.

        Args:
            text: The note, exactly as given.

        Returns:
            Non-overlapping sections covering the note from the first header on; names are lower case.
        """
        openers = [h for h in self._headers(text) if h.name is not None]
        sections: list[Section] = []
        for i, header in enumerate(openers):
            end = openers[i + 1].start if i + 1 < len(openers) else len(text)
            if sections and sections[-1].name == header.name and sections[-1].end == header.start:
                sections[-1].end = end  # "PREOPERATIVE DIAGNOSIS ... POSTOPERATIVE DIAGNOSIS" stay one section
                continue
            sections.append(Section(start=header.start, end=end, name=str(header.name)))
        return sections

    def header_spans(self, text: str) -> list[tuple[int, int]]:
        """``[start, end)`` of each header that opens a named section ("HPI:", "FAMILY HISTORY:"), colon included."""
        return [(h.start, h.end) for h in self._headers(text) if h.name is not None]

    def metadata_spans(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, rule name)`` of the note's metadata fields (none without metadata rules)."""
        if self.metadata is None:
            return []
        return self.metadata.spans(text, [h.start for h in self._headers(text)])

    def header_ends(self, text: str) -> list[int]:
        """Offsets where a header (sub-headers included) ends: sentence boundaries for the assertion stage."""
        return [h.end for h in self._headers(text)]


def load(settings: Settings) -> SectionDetector:
    """Build the section detector from ``settings.rules_dir``'s ``section_headers.tsv`` and ``metadata_lines.tsv``."""
    path = Path(settings.rules_dir) / HEADERS_FILE
    headers = read_headers(path)
    metadata = load_metadata_rules(Path(settings.rules_dir))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return SectionDetector(headers, version=f"sections-rules-{digest}-{len(metadata.rules)}", metadata=metadata)
