"""Coded engine errors, all in one place.

Every error the engine raises on purpose is an :class:`EngineError` with a stable code, so the CLI, the app and
batch jobs can show a clear message and decide what to do without parsing text.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable error codes (never renumber; add new ones at the end)."""

    BAD_INPUT = "E100"
    """An input object or file is unreadable, not UTF-8, not JSON, or misses a required field."""
    BAD_SPAN = "E101"
    """A span's ``start``/``end`` do not fit the text."""
    BAD_LABEL = "E102"
    """A label that is not one of the contract's five."""
    MODEL_NOT_FOUND = "E200"
    """A model folder or backbone that does not exist or lacks its files."""
    MODEL_INVALID = "E201"
    """A model folder whose config, labels or weights do not agree."""
    DEVICE_UNAVAILABLE = "E300"
    """``--device cuda`` asked for on a machine without a usable GPU."""
    DATA_NOT_FOUND = "E400"
    """A training or evaluation data path that does not exist or holds nothing usable."""
    INDEX_ERROR = "E500"
    """The ICD index could not be built or loaded."""
    GATE_REFUSED = "E600"
    """A retrained model was refused by the promotion gate."""
    UNKNOWN_CODE = "E103"
    """A code in a coder's decision that is not an ICD-10-CM code, or not a line of the code set it is applied to."""
    AUDIT_REFUSED = "E601"
    """A model set was not activated: its audit is missing or has findings not signed off (``engine.audit.gate``)."""


class EngineError(Exception):
    """An expected, explainable engine failure.

    Args:
        code: The stable :class:`ErrorCode`.
        message: One line for a person, naming the input or file at fault.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"[{code.value}] {message}")
        self.code = code
        self.message = message
