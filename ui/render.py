"""HTML for highlighted notes: entities coloured by type, non-present findings marked, summary sentences.

Pure functions of the note text and contract dicts, so offsets, escaping and overlaps are unit tested without a
browser. Every piece of note text goes through :func:`html.escape`; nothing from the note reaches the page raw.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LABEL_COLOURS: dict[str, tuple[str, str]] = {
    "DIAG": ("#ffd8d6", "#c92a2a"),
    "PROC": ("#e5dbff", "#6741d9"),
    "MED": ("#d3f9d8", "#2b8a3e"),
    "TEST": ("#d0ebff", "#1864ab"),
    "ANAT": ("#ffe8cc", "#d9480f"),
}
"""Background and border colour per contract label."""

LABEL_NAMES: dict[str, str] = {
    "DIAG": "Diagnosis / problem / symptom",
    "PROC": "Therapeutic procedure",
    "MED": "Medication",
    "TEST": "Test / diagnostic procedure",
    "ANAT": "Anatomy",
}

ASSERTION_STYLES: dict[str, str] = {
    "present": "solid background",
    "negated": "struck through, dashed outline",
    "possible": "italic, dotted outline",
    "hypothetical": "italic, dotted outline",
    "family": "hatched, grey text",
    "historical": "grey text",
}

CSS = (
    "<style>"
    ".ent-note{white-space:pre-wrap;line-height:1.9;font-size:0.95rem;padding:0.5rem 0.75rem;"
    "border:1px solid #dee2e6;border-radius:6px;max-height:70vh;overflow-y:auto}"
    "mark.ent{border-radius:3px;padding:0 1px;border:1px solid transparent;color:inherit}"
    + "".join(f"mark.ent-{lab}{{background:{bg};border-color:{bd}}}" for lab, (bg, bd) in LABEL_COLOURS.items())
    + "mark.ent.asr-negated{text-decoration:line-through;border-style:dashed;background:transparent}"
    "mark.ent.asr-possible,mark.ent.asr-hypothetical{font-style:italic;border-style:dotted;background:transparent}"
    "mark.ent.asr-family{color:#666;background-image:repeating-linear-gradient(45deg,transparent 0 4px,"
    "rgba(0,0,0,.07) 4px 8px)}"
    "mark.ent.asr-historical{color:#666}"
    "mark.ent.ent-overlap{box-shadow:inset 0 -2px 0 #495057}"
    "mark.ent-coding{box-shadow:inset 0 -3px 0 #c92a2a;background-color:transparent;color:inherit;padding:0}"
    "mark.ent.ent-coding{box-shadow:inset 0 -3px 0 #c92a2a}"
    "sup.ent-tag{font-size:0.6rem;font-weight:600;margin-left:1px;opacity:0.8}"
    "mark.sum-sent{background:#fff3bf;border-radius:3px}"
    "mark.sum-sent.sum-dropped{background:transparent;text-decoration:line-through;color:#888}"
    "sup.sum-rank{font-size:0.6rem;color:#e67700;font-weight:700}"
    ".ent-legend{display:flex;flex-wrap:wrap;gap:0.4rem 0.8rem;font-size:0.85rem;margin:0.25rem 0 0.5rem}"
    ".ent-legend mark{padding:0 4px}"
    "</style>"
)
"""Styles for the highlighted note, legend and summary (emitted once with each rendered block)."""


APP_CSS = (
    "<style>"
    '[data-testid="stElementContainer"][data-stale="true"]{opacity:1!important;transition:none!important}'
    '[data-testid="stExpander"] details,[data-testid="stExpander"] details>*{transition:none!important}'
    "</style>"
)
"""App-wide styles, emitted by the router on every run.

While a page reruns, Streamlit fades the output not yet redrawn ("stale") to a third of its opacity over a second.
Without GPU compositing (a headless or virtual-desktop browser, common on hospital thin clients) every frame of that
fade repaints the whole page: measured on two shared cores, the browser spent ~0.45 CPU-s more per analysis with it
and the engine beside it ran ~17% slower (docs/benchmarks.md, "The app, stop 12"; ``bench/bench_app.py
--stale-fade`` puts the fade back). Stale output therefore stays as it is; pages show their own progress (a
spinner) for long work instead.
"""


def md_escape(text: Any) -> str:
    """Plain text for ``st.markdown``: whitespace collapsed, Markdown and HTML characters escaped."""
    out = " ".join(str(text).split())
    for ch in "\\`*_{}[]()#+-.!|>~<$":
        out = out.replace(ch, "\\" + ch)
    return out


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def entity_title(entity: Mapping[str, Any]) -> str:
    """Hover text for an entity: label, assertion with its trigger, section and top code."""
    parts = [f"{entity.get('label')} · {entity.get('assertion', 'present')}"]
    if entity.get("trigger"):
        parts.append(f"trigger: “{entity['trigger']}”")
    if entity.get("section"):
        parts.append(f"section: {entity['section']}")
    coding = entity.get("coding")
    if coding:
        formed = "; ".join(f"{p['role']}: “{p.get('text', '')}”" for p in coding.get("parts", []) if p.get("text"))
        parts.append(f"coded as “{coding.get('text', '')}”" + (f" ({formed})" if formed else ""))
    codes = entity.get("codes") or []
    if codes:
        parts.append(f"top code: {codes[0]['code']} {codes[0].get('description', '')}".rstrip())
    elif entity.get("note"):
        parts.append(str(entity["note"]))
    return " — ".join(parts)


def _valid_spans(text: str, entities: Sequence[Mapping[str, Any]]) -> list[tuple[int, Mapping[str, Any]]]:
    """Entities whose offsets fit the text, with their index in ``entities``."""
    out = []
    for i, ent in enumerate(entities):
        start, end = int(ent["start"]), int(ent["end"])
        if 0 <= start < end <= len(text):
            out.append((i, ent))
    return out


def highlight_entities(
    text: str,
    entities: Sequence[Mapping[str, Any]],
    *,
    show: Iterable[int] | None = None,
    marker: Mapping[str, Any] | None = None,
) -> str:
    """The note as HTML with each entity wrapped in ``<mark class="ent ent-LABEL asr-ASSERTION">``.

    Overlapping entities are handled by cutting the text at every entity boundary: each piece is one ``<mark>``
    styled as the innermost (shortest) entity covering it, with ``ent-overlap`` and a combined hover title when
    more than one covers it. A small label tag follows each entity's last character. A finding's coding mention
    (``coding``: "urinary tract infection" for "infection") is underlined whole, each piece marked
    ``ent-coding`` with ``data-coding`` = the finding's index, and the hover title names the parts that formed it.

    Args:
        text: The note exactly as analysed (offsets index into it).
        entities: Contract entity dicts (``start``, ``end``, ``label``, ``assertion``, ``trigger``...).
        show: Indices of ``entities`` to highlight (filters); ``None`` for all.
        marker: Extra ``data-*`` attributes for the container (stable hooks for browser tests).

    Returns:
        One ``<div class="ent-note">`` element preceded by the stylesheet.
    """
    wanted = None if show is None else set(show)
    spans = [(i, e) for i, e in _valid_spans(text, entities) if wanted is None or i in wanted]
    # The coding mention of a finding ("urinary tract infection" for "infection") is underlined as one phrase,
    # the words linking its parts ("of the") included.
    coding = [
        (i, int(e["coding"]["start"]), int(e["coding"]["end"]))
        for i, e in spans
        if e.get("coding") and 0 <= int(e["coding"]["start"]) < int(e["coding"]["end"]) <= len(text)
    ]
    cuts = {0, len(text)}
    for _, ent in spans:
        cuts.update((int(ent["start"]), int(ent["end"])))
    for _, a, b in coding:
        cuts.update((a, b))
    bounds = sorted(cuts)
    ends_at: dict[int, list[tuple[int, Mapping[str, Any]]]] = {}
    for i, ent in spans:
        ends_at.setdefault(int(ent["end"]), []).append((i, ent))
    pieces: list[str] = []
    for lo, hi in itertools.pairwise(bounds):
        chunk = _esc(text[lo:hi])
        covering = [(i, e) for i, e in spans if int(e["start"]) <= lo and hi <= int(e["end"])]
        coded_by = next((i for i, a, b in coding if a <= lo and hi <= b), None)
        coding_attr = "" if coded_by is None else f' data-coding="{coded_by}"'
        if covering:
            covering.sort(key=lambda ie: (int(ie[1]["end"]) - int(ie[1]["start"]), ie[0]))
            idx, primary = covering[0]
            classes = ["ent", f"ent-{primary['label']}", f"asr-{primary.get('assertion', 'present')}"]
            if len(covering) > 1:
                classes.append("ent-overlap")
            if coded_by is not None:
                classes.append("ent-coding")
            if len(covering) == 1:
                title = entity_title(primary)
            else:
                title = " | ".join(f"{e.get('text', '')}: {entity_title(e)}" for _, e in covering)
            pieces.append(
                f'<mark class="{_esc(" ".join(classes))}" data-ent="{idx}" data-label="{_esc(primary["label"])}"'
                f' data-assertion="{_esc(primary.get("assertion", "present"))}"{coding_attr}'
                f' title="{_esc(title)}">{chunk}</mark>'
            )
        elif coded_by is not None:
            title = entity_title(entities[coded_by])
            pieces.append(f'<mark class="ent-coding"{coding_attr} title="{_esc(title)}">{chunk}</mark>')
        else:
            pieces.append(chunk)
        for _i, ent in ends_at.get(hi, []):
            pieces.append(f'<sup class="ent-tag">{_esc(ent["label"])}</sup>')
    attrs = "".join(f' data-{_esc(k)}="{_esc(v)}"' for k, v in (marker or {}).items())
    return f'{CSS}<div class="ent-note"{attrs}>{"".join(pieces)}</div>'


def legend_html(labels: Iterable[str] = tuple(LABEL_COLOURS)) -> str:
    """A legend of label colours and assertion styles."""
    items = [
        f'<span><mark class="ent ent-{_esc(lab)} asr-present">{_esc(lab)}</mark> {_esc(LABEL_NAMES.get(lab, lab))}'
        "</span>"
        for lab in labels
    ]
    items += [
        f'<span><mark class="ent ent-DIAG asr-{_esc(a)}">{_esc(a)}</mark></span>'
        for a in ("negated", "possible", "hypothetical", "family", "historical")
    ]
    return f'{CSS}<div class="ent-legend">{"".join(items)}</div>'


def highlight_sentences(
    text: str,
    sentences: Sequence[Mapping[str, Any]],
    *,
    dropped: Iterable[int] = (),
    marker: Mapping[str, Any] | None = None,
) -> str:
    """The full note with summary sentences highlighted and their rank as a superscript.

    Args:
        text: The note as summarised.
        sentences: Contract summary sentence dicts (``start``, ``end``, ``rank``, ``score``).
        dropped: Indices of ``sentences`` the reviewer dropped (shown struck through).
        marker: Extra ``data-*`` attributes for the container.
    """
    drop = set(dropped)
    order = sorted(
        (i for i, s in enumerate(sentences) if 0 <= int(s["start"]) < int(s["end"]) <= len(text)),
        key=lambda i: int(sentences[i]["start"]),
    )
    pieces: list[str] = []
    cursor = 0
    for i in order:
        sent = sentences[i]
        start, end = int(sent["start"]), int(sent["end"])
        if start < cursor:  # overlapping sentences: keep the first, never duplicate text
            continue
        pieces.append(_esc(text[cursor:start]))
        cls = "sum-sent sum-dropped" if i in drop else "sum-sent"
        title = f"rank {sent.get('rank')} · score {float(sent.get('score', 0.0)):.2f}"
        pieces.append(
            f'<mark class="{cls}" data-sent="{i}" title="{_esc(title)}">{_esc(text[start:end])}</mark>'
            f'<sup class="sum-rank">{_esc(sent.get("rank", ""))}</sup>'
        )
        cursor = end
    pieces.append(_esc(text[cursor:]))
    attrs = "".join(f' data-{_esc(k)}="{_esc(v)}"' for k, v in (marker or {}).items())
    return f'{CSS}<div class="ent-note sum-note"{attrs}>{"".join(pieces)}</div>'
