"""Synthetic notes from templates: fill a template's ``{slot}`` placeholders, recording where each value went.

Shared by the fairness audit's swap pairs (:mod:`engine.audit.swaps`) and the de-identifier's synthetic training
notes (:mod:`engine.training.deid_data`): both need the exact character span of every value they put in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

Tag = TypeVar("Tag")


def fill_slots(
    template: str, slot: re.Pattern[str], fill: Callable[[str], tuple[str, Tag]]
) -> tuple[str, list[tuple[int, int, Tag]]]:
    """Replace each match of ``slot`` (its group 1 names the slot) by the value ``fill(name)`` gives, in order.

    Args:
        template: The text with placeholders.
        slot: The placeholder pattern; group 1 is the slot's name.
        fill: For a slot name, the value to put in and a tag to record with its span (called once per slot, left
            to right, so a seeded random filler stays reproducible).

    Returns:
        The filled text and ``(start, end, tag)`` of every value, in order.
    """
    parts: list[str] = []
    spans: list[tuple[int, int, Tag]] = []
    pos = length = 0
    for match in slot.finditer(template):
        literal = template[pos : match.start()]
        parts.append(literal)
        length += len(literal)
        value, tag = fill(match.group(1))
        spans.append((length, length + len(value), tag))
        parts.append(value)
        length += len(value)
        pos = match.end()
    parts.append(template[pos:])
    return "".join(parts), spans
