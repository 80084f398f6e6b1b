"""Helpers for the de-identification tests."""

from __future__ import annotations

from engine.deid.stage import Deidentifier


def phi_texts(deid: Deidentifier, text: str) -> set[str]:
    """The texts of the PHI spans ``deid`` finds in ``text``."""
    return {text[s.start:s.end] for s in deid.find(text)}
