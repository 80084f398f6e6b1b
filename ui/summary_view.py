"""The Analyze page's summary: the note's key sentences in note order, entities highlighted, codes beside them.

One screen holds what a coder reads first (the key sentences with their coded entities) next to the full note and
its review; the Summary page stays the place to keep or drop sentences.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import streamlit as st

from ui.render import CSS, highlight_entities
from ui.resources import engine_error_message, get_pipeline

KEY_CSS = (
    "<style>.key-sentences{margin:0 0 0.75rem 0;padding-left:1.4rem}"
    ".key-sent{margin-bottom:0.4rem}.key-text{white-space:pre-wrap;line-height:1.9;font-size:0.95rem}"
    ".key-codes{display:block;font-size:0.8rem;color:#555}"
    ".key-code{margin-right:0.75rem;white-space:nowrap}.key-code b{font-family:monospace}</style>"
)


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _code_line(entities: Sequence[Mapping[str, Any]]) -> str:
    items = []
    for ent in entities:
        codes = ent.get("codes") or []
        asserted = "" if ent.get("assertion", "present") == "present" else f" ({ent['assertion']})"
        if not codes:
            if ent.get("note"):  # "no confident code": an uncoded finding is said so, not left out
                items.append(f'<span class="key-code key-uncoded">{_esc(ent.get("text", ""))}: '
                             f'{_esc(ent["note"])}</span>')
            continue
        items.append(f'<span class="key-code" title="{_esc(codes[0].get("description", ""))}">'
                     f'{_esc(ent.get("text", ""))}{_esc(asserted)} → <b>{_esc(codes[0]["code"])}</b></span>')
    return f'<span class="key-codes">{"".join(items)}</span>' if items else ""


def key_sentences_html(
    text: str,
    sentences: Sequence[Mapping[str, Any]],
    entities: Sequence[Mapping[str, Any]],
    show: Iterable[int] | None = None,
) -> str:
    """The key sentences as an ordered list in note order, each with its entities highlighted and top codes.

    Args:
        text: The note as analysed.
        sentences: Contract summary sentences (``start``, ``end``, ``rank``).
        entities: Contract entities of the same text.
        show: Indices of ``entities`` to highlight (the page's filters); ``None`` for all.
    """
    wanted = None if show is None else set(show)
    items = []
    for sent in sorted(sentences, key=lambda s: int(s["start"])):
        start, end = int(sent["start"]), int(sent["end"])
        if not 0 <= start < end <= len(text):
            continue
        inside = [e for i, e in enumerate(entities) if (wanted is None or i in wanted)
                  and start <= int(e["start"]) and int(e["end"]) <= end]
        shifted = [{**e, "start": int(e["start"]) - start, "end": int(e["end"]) - start, "coding": None}
                   for e in inside]
        body = highlight_entities(text[start:end], shifted).removeprefix(CSS)
        body = body.replace('<div class="ent-note"', '<div class="key-text"', 1)  # the page's one ent-note is the note
        items.append(f'<li class="key-sent" data-start="{start}" data-end="{end}" '
                     f'title="rank {_esc(sent.get("rank", ""))}">{body}{_code_line(inside)}</li>')
    return f'{CSS}{KEY_CSS}<ol class="key-sentences">{"".join(items)}</ol>'


def summary_panel(analysis: dict[str, Any], shown: list[int], redacted: bool = False) -> None:
    """Show the analysis's key sentences (summarised once per analysis and kept in it).

    Args:
        analysis: The page's analysis (``text``, ``result``; ``summary`` is added).
        shown: Indices of the entities the filters keep.
        redacted: The note is shown redacted; the key sentences, verbatim note text, are then withheld.
    """
    st.subheader("Key sentences", help="The summary, in note order; keep or drop sentences on the Summary page.")
    if redacted:
        st.caption("Hidden in the redacted view: key sentences quote the original note.")
        return
    if "summary" not in analysis:
        try:
            with st.spinner("Finding the key sentences…"):
                analysis["summary"] = get_pipeline().summarize(analysis["text"]).to_dict()
        except Exception as err:
            st.warning(engine_error_message(err, "summarise this note"), icon=":material/error:")
            return
    sentences = analysis["summary"]["sentences"]
    if not sentences:
        st.caption("No key sentences in this note.")
        return
    st.html(key_sentences_html(analysis["text"], sentences, analysis["result"]["entities"], shown))
