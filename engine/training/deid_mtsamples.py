"""Surrogate PHI in MTSamples reports (training data only; the reports are read from ../shared/data).

The reports already hide their PHI behind placeholders ("Dr. X", "Mr. ABC", "XYZ Hospital", "MM/DD/YYYY") and
keep some dates; each becomes a labelled surrogate, some ages become ages over 89, and template lines (headers,
contacts, signatures) are inserted so that a report carries the PHI a real one would.
"""

from __future__ import annotations

import re

from engine.training.deid_data import Surrogates, render, safe_upper

_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_FIND = re.compile(
    r"\b(?P<title>Dr|Mr|Mrs|Ms|Miss|Drs)\.?\s+(?P<tname>[A-Z][A-Za-z]*)\b"
    r"|\b(?P<ph>XYZ|ABC|ABCD|Xyz|Abc|Abcd)\b(?P<org>\s+(?:Hospital|Medical Center|Clinic|Practice|[Oo]rthopedics|"
    r"Store|Nursing Home|Rehab\w*|Medical|Health))?"
    r"|(?P<date>\b(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])/(?:\d{4}|\d{2})\b|MM/DD/YYYY|\b" + _MONTH +
    r"\s+\d{1,2},\s+\d{4}\b)"
    r"|\b(?P<age>[1-8]\d)(?P<agetail>-year-old|\s+years?\s+old\b|\s+yo\b)"
)
_PLACE_BEFORE = re.compile(r"\b(?:in|from|of|near|to)\s+$", re.IGNORECASE)


def _replacement(match: re.Match[str], text: str, sur: Surrogates) -> tuple[str, int, str | None]:
    """(new text for the match, offset of the PHI part inside it, label); offset -1 means no PHI."""
    rng = sur.rng
    if match.group("tname"):
        name = sur.last() if rng.random() < 0.7 else sur.fill("FULL")[0]
        head = text[match.start():match.start("tname")]
        return head + name, len(head), "NAME"
    if match.group("ph"):
        before = text[max(0, match.start() - 12):match.start()]
        if match.group("org"):
            return sur.hospital(), 0, "HOSPITAL"
        if _PLACE_BEFORE.search(before):
            return (rng.choice(sur.cities), 0, "LOCATION") if rng.random() < 0.6 else (sur.hospital(), 0, "HOSPITAL")
        return sur.fill("FULL")[0], 0, "NAME"
    if match.group("date"):
        return sur.fill("DATE")[0], 0, "DATE"
    if rng.random() < 0.15:
        return str(rng.randint(90, 105)) + match.group("agetail"), 0, "AGE"
    return match.group(0), -1, None


def surrogate_report(body: str, sur: Surrogates) -> tuple[str, list[list[object]]]:
    """Replace the placeholders of one report; returns the new text and its spans."""
    out: list[str] = []
    spans: list[list[object]] = []
    pos = length = 0
    for match in _FIND.finditer(body):
        out.append(body[pos:match.start()])
        length += match.start() - pos
        new, offset, label = _replacement(match, body, sur)
        if label is not None:
            end = length + len(new)
            if label == "AGE":
                end = length + len(new) - len(match.group("agetail"))
            spans.append([length + offset, end, label])
        out.append(new)
        length += len(new)
        pos = match.end()
    out.append(body[pos:])
    return "".join(out), spans


def _insert(text: str, spans: list[list[object]], at: int, piece: str, piece_spans: list[list[object]]
            ) -> tuple[str, list[list[object]]]:
    shifted = [[s + len(piece) if s >= at else s, e + len(piece) if s >= at else e, lab] for s, e, lab in spans]
    return text[:at] + piece + text[at:], shifted + [[s + at, e + at, lab] for s, e, lab in piece_spans]


def mtsamples_note(name: str, body: str, sur: Surrogates, templates: list[str]) -> dict[str, object]:
    """One training example from one report: placeholders replaced, template lines added."""
    rng = sur.rng
    text, spans = surrogate_report(body, sur)
    headers = [t for t in templates if t.startswith(("Patient", "Pt:", "Admission", "Date", "MRN", "Unit"))]
    if headers and rng.random() < 0.5:
        piece, piece_spans = render(rng.choice(headers), sur)
        text, spans = _insert(text, spans, 0, piece + "\n", piece_spans)
    stops = [m.end() for m in re.finditer(r"\.\s", text)]
    for _ in range(rng.randint(0, 3)):
        if not stops:
            break
        at = rng.choice(stops)
        piece, piece_spans = render(rng.choice(templates), sur)
        text, spans = _insert(text, spans, at, piece + " ", piece_spans)
        stops = [s + len(piece) + 1 if s > at else s for s in stops]
    if rng.random() < 0.4:
        piece, piece_spans = render(rng.choice([t for t in templates if "signed" in t.lower() or "RN" in t]
                                               or templates), sur)
        text, spans = _insert(text, spans, len(text), "\n" + piece, [[s + 1, e + 1, lab] for s, e, lab in piece_spans])
    if rng.random() < 0.1:
        text = safe_upper(text)
    return {"id": f"mtsamples:{name}", "text": text, "spans": sorted(spans), "source": "mtsamples"}
