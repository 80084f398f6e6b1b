"""Checksums and number rules that tell identifiers from other numbers."""

from __future__ import annotations


def luhn_valid(number: str) -> bool:
    """True when the digits of ``number`` (separators ignored) pass the Luhn check used by payment cards.

    Args:
        number: Digits, possibly with spaces or dashes.
    """
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 13:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def ssn_valid(number: str) -> bool:
    """True when ``number`` can be a US Social Security number.

    The SSA never issues area 000, 666 or 900-999, group 00 or serial 0000; a number breaking those rules is not
    an SSN (it may still be another identifier).
    """
    digits = "".join(c for c in number if c.isdigit())
    if len(digits) != 9:
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0
