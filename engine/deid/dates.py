"""Shift a date string by a number of days and write it back in its own format ("7/22" -> "9/3")."""

from __future__ import annotations

import calendar
import datetime as dt
import re

_MONTHS = [m.lower() for m in calendar.month_name[1:]]
_NUMERIC = re.compile(r"^(?P<a>\d{1,4})(?P<s1>[/\-.])(?P<b>\d{1,2})(?:(?P<s2>[/\-.])(?P<c>\d{2,4}))?$")
_TEXTUAL = re.compile(r"^(?:(?P<d1>\d{1,2})(?P<o1>st|nd|rd|th)?\s+(?:of\s+)?)?(?P<mon>[A-Za-z]+)(?P<dot>\.?)"
                      r"(?:\s+(?P<d2>\d{1,2})(?P<o2>st|nd|rd|th)?)?(?P<sep>,?\s+(?:of\s+)?)?(?P<y>\d{4})?$")
_YEAR = re.compile(r"^(?P<q>')?(?P<y>\d{2}|\d{4})$")
_LEAP = 2000
"""Year used for dates written without one (a leap year, so 2/29 shifts too)."""


def _pad(value: int, like: str) -> str:
    return f"{value:0{len(like)}d}" if like.startswith("0") or len(like) == 4 else str(value)


def _year_out(year: int, like: str) -> str:
    return f"{year % 100:02d}" if len(like) == 2 else str(year)


def _year_in(text: str) -> int:
    value = int(text)
    if len(text) == 4:
        return value
    return 1900 + value if value > 30 else 2000 + value


def _safe(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _numeric(m: re.Match[str], shift: dt.timedelta) -> str | None:
    a, b, c = m.group("a"), m.group("b"), m.group("c")
    if len(a) == 4:  # ISO: year first
        if c is None:
            return None
        date = _safe(int(a), int(b), int(c))
        if date is None:
            return None
        new = date + shift
        return f"{new.year}{m.group('s1')}{_pad(new.month, b)}{m.group('s2')}{_pad(new.day, c)}"
    date = _safe(_year_in(c) if c else _LEAP, int(a), int(b))
    if date is None:
        return None
    new = date + shift
    out = f"{_pad(new.month, a)}{m.group('s1')}{_pad(new.day, b)}"
    return out + f"{m.group('s2')}{_year_out(new.year, c)}" if c else out


def _month_index(word: str) -> int | None:
    low = word.lower()
    for i, name in enumerate(_MONTHS):
        if low == name or (len(low) >= 3 and name.startswith(low)):
            return i + 1
    return None


def _textual(m: re.Match[str], shift: dt.timedelta) -> str | None:
    month = _month_index(m.group("mon"))
    if month is None:
        return None
    day_text = m.group("d1") or m.group("d2")
    year_text = m.group("y")
    date = _safe(int(year_text) if year_text else _LEAP, month, int(day_text) if day_text else 15)
    if date is None:
        return None
    new = date + shift
    mon = calendar.month_name[new.month]
    word = m.group("mon")
    mon = mon if word.lower() in _MONTHS else mon[:3]
    mon = mon.upper() if word.isupper() else mon.lower() if word.islower() else mon
    parts = []
    if m.group("d1"):
        parts.append(f"{new.day}{m.group('o1') or ''} ")
    parts.append(mon + m.group("dot"))
    if m.group("d2"):
        parts.append(f" {new.day}{m.group('o2') or ''}")
    if year_text:
        parts.append(f"{m.group('sep') or ' '}{new.year}")
    return "".join(parts)


def shift_date(text: str, shift: dt.timedelta) -> str | None:
    """``text`` moved by ``shift``, in the same format; None when the text is no date this module can read.

    Args:
        text: A date as written in a note: ``7/22``, ``07/22/2093``, ``2093-07-22``, ``July 22, 2093``, ``Jul 22``,
            ``22 July``, ``July 2093``, ``2093`` or ``'93``.
        shift: The note's date offset.
    """
    stripped = text.strip()
    for pattern, fn in ((_NUMERIC, _numeric), (_TEXTUAL, _textual)):
        m = pattern.match(stripped)
        if m:
            return fn(m, shift)
    m = _YEAR.match(stripped)
    if m:
        year = _year_in(m.group("y")) + round(shift.days / 365.25)
        return (m.group("q") or "") + _year_out(year, m.group("y"))
    return None
