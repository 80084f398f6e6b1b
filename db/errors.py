"""The one exception the feedback store raises for input it refuses.

Every refusal carries a stable :class:`FeedbackCode`, so the app can show a clear message (and tests can check the
reason) without parsing text. Nothing is written when a :class:`FeedbackError` is raised: validation happens before
any row is added to the session.
"""

from __future__ import annotations

from enum import StrEnum


class FeedbackCode(StrEnum):
    """Stable reasons for refusing input (add new ones at the end, never rename)."""

    UNKNOWN_SUGGESTION = "unknown_suggestion"
    UNKNOWN_ANALYSIS = "unknown_analysis"
    UNKNOWN_SENTENCE = "unknown_sentence"
    UNKNOWN_NOTE = "unknown_note"
    UNKNOWN_MODEL_VERSION = "unknown_model_version"
    BAD_DECISION = "bad_decision"
    BAD_TARGET = "bad_target"
    BAD_LABEL = "bad_label"
    BAD_SPAN = "bad_span"
    BAD_CODE = "bad_code"
    EMPTY_REVIEWER = "empty_reviewer"
    BAD_INPUT = "bad_input"
    DUPLICATE = "duplicate"
    BAD_EXPORT = "bad_export"
    NOT_ADJUDICATOR = "not_adjudicator"


class FeedbackError(ValueError):
    """Input the feedback store refuses, with a stable code and a one-line message.

    Args:
        code: Why the input was refused.
        message: One line for a person, naming the offending value.
    """

    def __init__(self, code: FeedbackCode, message: str) -> None:
        super().__init__(f"[{code.value}] {message}")
        self.code = code
        self.message = message
