"""Section detection for clinical notes.

Headers are data (``assets/rules/section_headers.tsv``): each known header maps to a lower-case canonical name
(``"PMH:"`` -> ``past medical history``). A section runs from its header to the next header that opens a section;
body-system sub-headers (``HEENT:``, ``LUNGS:``) stay inside the section around them. Text before the first header
belongs to no section.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError, ErrorCode
from engine.settings import Settings
from engine.types import Section

HEADERS_FILE = "section_headers.tsv"

# A header may start a line or follow a sentence end: MTSamples glues sections together ("...disease.ALLERGIES:").
_START = r"(?:(?<=\A)|(?<=\n)|(?<=[.;!?])|(?<=[.;!?] )|(?<=[.;!?]  ))[ \t*\-•]*"
# An unknown ALL-CAPS header still closes the previous section (so family history does not run into the next one).
_GENERIC = re.compile(_START + r"(?P<header>[A-Z][A-Z0-9/&,()' -]{1,48}[A-Z)])[ \t]*:")


def read_headers(path: Path) -> dict[str, str]:
    """Read ``header -> canonical`` (``"-"`` for sub-headers) from a section header file.

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when the file is missing, ``MODEL_INVALID`` for a malformed line.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"section header file {path} cannot be read ({exc})") from exc
    headers: dict[str, str] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
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
    """

    def __init__(self, headers: dict[str, str], version: str) -> None:
        self.headers = headers
        self.version = version
        alternatives = sorted(headers, key=len, reverse=True)
        body = "|".join(re.escape(h).replace(r"\ ", r"\s+") for h in alternatives)
        # Known headers: any case, followed by a colon, or alone on their line.
        self._known = re.compile(
            _START + r"(?P<header>" + body + r")(?:[ \t]*:|[ \t]*(?=\r?\n))", re.IGNORECASE
        )

    def _headers(self, text: str) -> list[_Header]:
        found: dict[int, _Header] = {}
        for match in self._known.finditer(text):
            header = match.group("header")
            # A lower-case header word alone on a line ("exam") is prose, not a header: require a colon or caps.
            if not match.group(0).rstrip().endswith(":"):
                # Without a colon a header must stand alone on its own line ("Family History\n").
                before = text[: match.start("header")].rstrip(" \t*-•")
                if before and not before.endswith("\n"):
                    continue
            canonical = self.headers[" ".join(header.lower().split())]
            found[match.start("header")] = _Header(
                match.start("header"), match.end(), None if canonical == "-" else canonical
            )
        for match in _GENERIC.finditer(text):
            start = match.start("header")
            if any(h.start <= start < h.end for h in found.values()):
                continue
            key = " ".join(match.group("header").lower().split())
            # Short unknown capitals ("BMI:", "ENT:", "TEMP:") are values or sub-headers, not sections.
            canonical = self.headers.get(key, key if (" " in key or len(key) >= 8) else "-")
            found[start] = _Header(start, match.end(), None if canonical == "-" else canonical)
        return sorted(found.values(), key=lambda h: h.start)

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

    def header_ends(self, text: str) -> list[int]:
        """Offsets where a header (sub-headers included) ends: sentence boundaries for the assertion stage."""
        return [h.end for h in self._headers(text)]


def load(settings: Settings) -> SectionDetector:
    """Build the section detector from ``settings.rules_dir / section_headers.tsv``."""
    path = Path(settings.rules_dir) / HEADERS_FILE
    headers = read_headers(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return SectionDetector(headers, version=f"sections-rules-{digest}")
