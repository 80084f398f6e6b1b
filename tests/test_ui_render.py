"""ui.render: offsets, escaping and overlapping spans in the highlighted note."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ui.render import entity_title, highlight_entities, highlight_sentences, legend_html


class _Collect(HTMLParser):
    """Collects the text shown to the reader and the text inside each <mark>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.marks: list[tuple[dict[str, str | None], str]] = []
        self._in_mark: dict[str, str | None] | None = None
        self._mark_text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "sup"):
            self._skip += 1
        elif tag == "mark":
            self._in_mark = dict(attrs)
            self._mark_text = []

    def handle_endtag(self, tag):
        if tag in ("style", "sup"):
            self._skip -= 1
        elif tag == "mark" and self._in_mark is not None:
            self.marks.append((self._in_mark, "".join(self._mark_text)))
            self._in_mark = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._in_mark is not None:
            self._mark_text.append(data)


def _parse(html_text: str) -> _Collect:
    parser = _Collect()
    parser.feed(html_text)
    return parser


def ent(start, end, text, label="DIAG", assertion="present", trigger=None, codes=()):
    return {"start": start, "end": end, "text": text[start:end], "label": label, "assertion": assertion,
            "traits": [] if assertion == "present" else [assertion], "trigger": trigger, "section": None,
            "codes": list(codes)}


def test_marks_cover_exact_offsets_and_text_round_trips():
    text = "Patient denies chest pain.\nHistory of hypertension on lisinopril."
    ents = [ent(15, 25, text, assertion="negated", trigger="denies"), ent(38, 50, text),
            ent(54, 64, text, label="MED")]
    parsed = _parse(highlight_entities(text, ents))
    assert "".join(parsed.text) == text
    assert [m[1] for m in parsed.marks] == ["chest pain", "hypertension", "lisinopril"]
    classes = [m[0]["class"].split() for m in parsed.marks]
    assert "ent-DIAG" in classes[0] and "asr-negated" in classes[0]
    assert "ent-MED" in classes[2] and "asr-present" in classes[2]
    assert "denies" in parsed.marks[0][0]["title"]


def test_escapes_markup_in_note_and_attributes():
    text = 'x<script>alert(1)</script> & "pain" <b>'
    start = text.index('"pain"')
    ents = [ent(start, start + 6, text, trigger='<img src=x onerror="y">')]
    out = highlight_entities(text, ents)
    assert "<script>" not in out and "<b>" not in out and "<img" not in out
    assert "&lt;script&gt;" in out and "&amp;" in out
    parsed = _parse(out)
    assert "".join(parsed.text) == text
    assert parsed.marks[0][1] == '"pain"'


def test_overlapping_and_nested_spans_keep_text_once():
    text = "acute myocardial infarction of the left ventricle"
    outer = ent(0, 27, text)
    inner = ent(6, 16, text, label="ANAT")
    crossing = ent(17, 49, text, label="ANAT")
    parsed = _parse(highlight_entities(text, [outer, inner, crossing]))
    assert "".join(parsed.text) == text
    joined = "".join(m[1] for m in parsed.marks)
    assert joined == text  # every character covered once, nothing duplicated
    inner_piece = next(m for m in parsed.marks if m[1] == "myocardial")
    assert "ent-ANAT" in inner_piece[0]["class"] and "ent-overlap" in inner_piece[0]["class"]
    assert inner_piece[0]["data-ent"] == "1"


def test_filter_out_of_range_and_unicode_offsets():
    text = "Fièvre 🤒 and cough"
    good = ent(text.index("cough"), len(text), text)
    bad = {"start": 5, "end": 500, "text": "?", "label": "DIAG", "assertion": "present"}
    fever = ent(0, 6, text)
    parsed = _parse(highlight_entities(text, [fever, bad, good], show=[2]))
    assert [m[1] for m in parsed.marks] == ["cough"]
    assert "".join(parsed.text) == text
    parsed_all = _parse(highlight_entities(text, [fever, bad, good]))
    assert [m[1] for m in parsed_all.marks] == ["Fièvre", "cough"]


def test_marker_attributes_and_tags():
    text = "fever"
    out = highlight_entities(text, [ent(0, 5, text)], marker={"run": 3, "note": 'a"b'})
    assert 'data-run="3"' in out and 'data-note="a&quot;b"' in out
    assert re.search(r'<sup class="ent-tag">DIAG</sup>', out)


def test_title_names_top_code_or_reason():
    text = "asthma"
    code = {"code": "J45.909", "description": "Unspecified asthma, uncomplicated", "score": 0.8, "billable": True}
    assert "J45.909" in entity_title(ent(0, 6, text, codes=[code]))
    uncoded = ent(0, 6, text, assertion="negated", trigger="no") | {"note": "negated: not coded"}
    assert "not coded" in entity_title(uncoded) and "“no”" in entity_title(uncoded)


def test_legend_lists_labels_and_assertions():
    out = legend_html()
    for label in ("DIAG", "PROC", "MED", "TEST", "ANAT", "negated", "historical"):
        assert label in out


def test_sentences_highlighted_in_order_with_dropped():
    text = "First <one>. Second two. Third three."
    sents = [
        {"start": 13, "end": 24, "text": "Second two.", "score": 0.9, "rank": 1},
        {"start": 0, "end": 12, "text": "First <one>.", "score": 0.5, "rank": 2},
    ]
    out = highlight_sentences(text, sents, dropped=[1])
    parsed = _parse(out)
    assert "".join(parsed.text) == text
    assert [m[1] for m in parsed.marks] == ["First <one>.", "Second two."]
    assert "sum-dropped" in parsed.marks[0][0]["class"]
    assert "sum-dropped" not in parsed.marks[1][0]["class"]
    assert "&lt;one&gt;" in out


def test_crossing_spans_piece_covered_by_both_is_marked_overlap():
    text = "acute myocardial infarction of the left ventricle"
    parsed = _parse(highlight_entities(text, [ent(0, 27, text), ent(17, 49, text, label="ANAT")]))
    assert [m[1] for m in parsed.marks] == ["acute myocardial ", "infarction", " of the left ventricle"]
    assert "ent-overlap" in parsed.marks[1][0]["class"]
    assert "ent-overlap" not in parsed.marks[0][0]["class"]


def test_md_escape_collapses_whitespace_and_escapes_markup():
    from ui.render import md_escape

    assert md_escape("\n  Plan:\n  *start*  [x](y) <b>#1</b>_") == r"Plan: \*start\* \[x\]\(y\) \<b\>\#1\</b\>\_"
