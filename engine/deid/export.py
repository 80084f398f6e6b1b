"""What the product keeps and exports of a note: the ``store_text`` choice and de-identified analyses.

Pure functions for the store and the exports (``db/`` wires them; ``engine/`` never imports ``db/``):
:func:`stored_text` picks the text the feedback store keeps by ``Settings.store_text``, and
:func:`redact_analysis` turns an analysis of the original note into one of its redacted text, every entity
re-pointed so that ``text[start:end] == entity["text"]`` still holds.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from engine.deid.offsets import OffsetMap, map_entities
from engine.deid.stage import Deidentifier, DeidResult
from engine.errors import EngineError, ErrorCode
from engine.settings import Settings

STORE_TEXT_MODES = ("deidentified", "original", "none")
"""``Settings.store_text`` values; ``deidentified`` is the default."""
DEID_MAP_KEY = "deid_map"
"""Key of a stored de-identified analysis holding :meth:`OffsetMap.pairs`: offsets only, never PHI text, so
a span of the original note sent later (an API client's correction) can be mapped onto the stored note."""


def check_store_text(mode: str) -> str:
    """``mode`` when it is one of :data:`STORE_TEXT_MODES`.

    Raises:
        EngineError: ``BAD_INPUT`` naming the allowed values.
    """
    if mode not in STORE_TEXT_MODES:
        raise EngineError(ErrorCode.BAD_INPUT, f"store_text {mode!r}: expected one of {', '.join(STORE_TEXT_MODES)}"
                                               " (CLINICAL_NLP_STORE_TEXT)")
    return mode


def kept_mode(kept: str | None, text: str, mode: str) -> str:
    """The ``store_text`` mode to use for ``text``: ``mode``, unless the note is already stored.

    A note row keeps the form it was first stored in (``save_note`` returns the existing row), so a later store
    must follow that form: ``kept`` (the stored text, None when the note is new) equal to the original means
    ``original``, empty means ``none``, anything else ``deidentified``.

    Raises:
        EngineError: ``BAD_INPUT`` for an unknown ``mode``.
    """
    mode = check_store_text(mode)
    if kept is None:
        return mode
    return "original" if kept == text else "none" if kept == "" else "deidentified"


def stored_text(text: str, mode: str, deidentify: Callable[[str], str]) -> str | None:
    """The note text the feedback store keeps.

    Args:
        text: The original note.
        mode: ``Settings.store_text``: ``deidentified`` (the redacted note), ``original`` or ``none`` (nothing).
        deidentify: Original text -> redacted text, e.g. ``lambda t: deid.deidentify(t, note_id).text``; only
            called in ``deidentified`` mode.

    Returns:
        The text to store, or None in ``none`` mode.
    """
    mode = check_store_text(mode)
    if mode == "none":
        return None
    return text if mode == "original" else deidentify(text)


def redact_analysis(analysis: dict, deid: DeidResult) -> dict:
    """A copy of a contract analysis re-pointed at the redacted note.

    Args:
        analysis: The ``analyze`` result of the original note (``entities`` with ``start``, ``end``, ``text``).
        deid: The :class:`DeidResult` of the same original note.

    Returns:
        The analysis with ``text`` set to the redacted note, each entity's offsets and text mapped onto it (an
        entity that overlapped PHI carries ``"phi_overlap": true`` and the redacted characters as its text), and
        ``deid`` = ``{"mode", "phi": <count>}`` so the export records how it was redacted.
    """
    out = {**analysis, "text": deid.text, "entities": map_entities(deid.offsets, analysis.get("entities", []))}
    out["deid"] = {"mode": deid.mode, "phi": len(deid.phi)}
    return out


def store_payload(text: str, analysis: dict, mode: str, deidentify: Callable[[str], DeidResult]
                  ) -> tuple[str, dict]:
    """The note text and the analysis the feedback store keeps under ``store_text`` = ``mode``.

    Args:
        text: The original note.
        analysis: Its ``analyze`` result (offsets into ``text``).
        mode: ``deidentified``: the redacted note and :func:`redact_analysis`; ``original``: both as given;
            ``none``: an empty text and the analysis without any wording (no ``text`` on the result or its
            entities; offsets, labels, assertions and codes stay, pointing into the note that was not kept).
        deidentify: Original text -> :class:`DeidResult` (only called in ``deidentified`` mode).

    Returns:
        ``(stored text, stored analysis)``; the analysis carries ``deid.store_text`` = ``mode``.
    """
    mode = check_store_text(mode)
    if mode == "deidentified":
        result = deidentify(text)
        out = redact_analysis(analysis, result)
        out["deid"] = {"store_text": mode, "redaction": result.mode, "phi": len(result.phi)}
        out[DEID_MAP_KEY] = result.offsets.pairs()
        return result.text, out
    if mode == "original":
        return text, {**analysis, "deid": {"store_text": mode}}
    out = {k: v for k, v in analysis.items() if k != "text"}
    out["entities"] = [{**e, "text": "", **({"trigger": ""} if e.get("trigger") else {})}
                       for e in analysis.get("entities", [])]
    out["deid"] = {"store_text": mode}
    return "", out


def stored_map(text: str, stored_result: dict) -> OffsetMap | None:
    """The offset map from the original note onto ``text`` (the stored note), or None when they are the same.

    Args:
        text: The stored note text.
        stored_result: The stored analysis (:func:`store_payload`'s, with :data:`DEID_MAP_KEY` when redacted).
    """
    pairs = stored_result.get(DEID_MAP_KEY)
    if (stored_result.get("deid") or {}).get("store_text") != "deidentified" or pairs is None:
        return None
    return OffsetMap.from_pairs(text, pairs)


def summary_payload(text: str, summary: dict, mode: str, deidentify: Callable[[str], DeidResult]
                    ) -> tuple[str, dict, dict]:
    """The note text and the summary the feedback store keeps under ``store_text`` = ``mode``.

    Args:
        text: The original note.
        summary: Its ``summarize`` result (``sentences`` with offsets into ``text``).
        mode: As for :func:`store_payload`: ``deidentified`` maps each sentence onto the redacted note (its
            ``text`` is the redacted sentence, so ``stored[start:end] == text`` still holds); ``original`` keeps
            both as given; ``none`` keeps offsets, scores and ranks with every ``text`` empty.
        deidentify: Original text -> :class:`DeidResult` (only called in ``deidentified`` mode).

    Returns:
        ``(stored text, stored summary, audit payload)``; the stored sentences are in the input's order and
        the audit payload is ``{"store_text", "redaction"?, "phi"?}`` like an analysis's ``deid``.
    """
    mode = check_store_text(mode)
    sentences = list(summary.get("sentences", []))
    if mode == "original":
        return text, summary, {"store_text": mode}
    if mode == "none":
        return "", {**summary, "sentences": [{**s, "text": ""} for s in sentences]}, {"store_text": mode}
    result = deidentify(text)
    mapped = [{k: v for k, v in s.items() if k != "phi_overlap"} for s in map_entities(result.offsets, sentences)]
    audit = {"store_text": mode, "redaction": result.mode, "phi": len(result.phi)}
    return result.text, {**summary, "sentences": mapped}, audit


@lru_cache(maxsize=1)
def default_deidentifier() -> Deidentifier:
    """One :class:`Deidentifier` per process on the default settings (loading the tagger takes a moment)."""
    return Deidentifier(Settings())
