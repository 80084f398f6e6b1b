"""Parsing the code references written in ICD-10-CM Tabular List notes.

The notes shipped in ``simple-icd-10-cm`` are free text: ``"type 1 diabetes mellitus (E10.-)"``,
``"code to identify stage of chronic kidney disease (N18.1-N18.6)"``, ``"jaw pain R68.84"``,
``"diabetes mellitus (E08-E13 with .42)"``, ``"(T36-T50 with fifth or sixth character 5)"``. A reference is a code
(dotted or not), a range ``X-Y``, a ``-``/``.-`` wildcard (the code and everything under it), optionally narrowed by
a ``with ...`` phrase (final characters, or a character at a position). Every reference is read as the codes it
covers, so matching a code against a note is a comparison of undotted strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

CODE = r"[A-Z]\d[0-9A-Z](?:\.?[0-9A-Z]{1,4})?"
REF_RE = re.compile(
    rf"(?<![A-Za-z0-9.])(?:(?P<lo>{CODE})\s*-\s*(?P<hi>{CODE})|(?P<one>{CODE}))(?:\.?-|\.)?(?![A-Za-z0-9])"
)
"""A range ``E08-E13`` / ``N18.1-N18.6`` (tried first, so the dash of a range is not read as a wildcard), or one
code with an optional wildcard: ``G35-``, ``E10.-``, ``I69.``."""
GROUP_RE = re.compile(r"\(([^()]*)\)|([^()]+)")
WITH_RE = re.compile(r"\bwith\b", re.IGNORECASE)
ORDINALS = {"fifth": 4, "5th": 4, "sixth": 5, "six": 5, "6th": 5, "seventh": 6, "7th": 6}
"""Character positions (0-based, undotted) named in ``with fifth character 1`` phrases."""
POSITION_RE = re.compile(
    r"^\s*(?P<a>fifth|sixth|seventh|5th|6th|7th)(?:\s+or\s+(?P<b>fifth|sixth|six|seventh|5th|6th|7th))?"
    r"[-\s]+characters?\s+(?P<v1>[0-9A-Z])(?:\s*-\s*(?P<v2>[0-9A-Z]))?\b",
    re.IGNORECASE,
)
SUFFIX_RE = re.compile(r"(?<![0-9A-Z])\.(\d[0-9A-Z]*)(?:\s*-\s*\.(\d[0-9A-Z]*))?")
ENDING_RE = re.compile(r"final characters?\s+-(\d+)", re.IGNORECASE)


@lru_cache(maxsize=65536)
def undot(code: str) -> str:
    """``"e11.22"`` -> ``"E1122"``."""
    return code.replace(".", "").strip().upper()


def dot(code: str) -> str:
    """``"E1122"`` or ``"E11.22"`` -> ``"E11.22"`` (no validation)."""
    c = undot(code)
    return c if len(c) <= 3 else f"{c[:3]}.{c[3:]}"


@dataclass(frozen=True, slots=True)
class CodeRef:
    """The codes one note reference covers: ``lo <= code`` and ``code[:len(hi)] <= hi`` (undotted), narrowed by
    ``suffixes`` (characters after the category, ranges), ``endings`` or ``positions``/``values``.

    Attributes:
        lo: First code of the range, undotted.
        hi: Last code of the range, undotted; every code under it is included.
        suffixes: ``(first, last)`` pairs the characters after the category must fall in (``with .51-.52``).
        endings: Final characters one of which the code must end with (``with final characters -23``).
        positions: 0-based positions of which one must hold a character of ``values``.
        values: Characters allowed at ``positions``.
    """

    lo: str
    hi: str
    suffixes: tuple[tuple[str, str], ...] = ()
    endings: tuple[str, ...] = ()
    positions: tuple[int, ...] = ()
    values: frozenset[str] = field(default_factory=frozenset)

    def matches(self, code: str) -> bool:
        """Whether ``code`` (dotted or not) is one of the codes this reference covers."""
        c = undot(code)
        if c < self.lo or c[: len(self.hi)] > self.hi:
            return False
        if self.suffixes:
            rest = c[3:]
            if not any(lo <= rest[: len(lo)] and rest[: len(hi)] <= hi for lo, hi in self.suffixes):
                return False
        if self.endings and not any(c.endswith(e) for e in self.endings):
            return False
        return not self.positions or any(p < len(c) and c[p] in self.values for p in self.positions)

    def __str__(self) -> str:
        text = dot(self.lo) if self.lo == self.hi else f"{dot(self.lo)}-{dot(self.hi)}"
        if self.suffixes:
            text += " with " + ", ".join(f".{a}" if a == b else f".{a}-.{b}" for a, b in self.suffixes)
        return text

    def to_list(self) -> list:
        """A JSON-friendly form (see :meth:`from_list`)."""
        return [self.lo, self.hi, [list(s) for s in self.suffixes], list(self.endings), list(self.positions),
                "".join(sorted(self.values))]

    @classmethod
    def from_list(cls, row: list) -> CodeRef:
        """The reference written by :meth:`to_list`."""
        lo, hi, suffixes, endings, positions, values = row
        return cls(lo, hi, tuple(tuple(s) for s in suffixes), tuple(endings), tuple(positions), frozenset(values))


def _restriction(text: str) -> dict:
    """The narrowing a ``with ...`` phrase puts on the codes before it, or ``{}`` when it is not one."""
    m = POSITION_RE.match(text)
    if m:
        positions = tuple(ORDINALS[g.lower()] for g in (m.group("a"), m.group("b")) if g)
        v1, v2 = m.group("v1").upper(), (m.group("v2") or m.group("v1")).upper()
        values = frozenset(chr(c) for c in range(ord(v1), ord(v2) + 1))
        return {"positions": positions, "values": values}
    endings = tuple(ENDING_RE.findall(text))
    if endings:
        return {"endings": endings}
    suffixes = tuple((a.upper(), (b or a).upper()) for a, b in SUFFIX_RE.findall(text))
    return {"suffixes": suffixes} if suffixes else {}


def parse_refs(text: str, is_valid: Callable[[str], bool] | None = None) -> list[CodeRef]:
    """Every code reference in one note's text.

    Args:
        text: The note, for example ``"secondary diabetes mellitus NEC (E13.-)"``.
        is_valid: Tells whether a dotted code exists; references with an endpoint that does not (words that look
            like codes, such as ``T2DM``) are dropped. ``None`` keeps all.

    Returns:
        The references in the order written.
    """
    refs: list[CodeRef] = []
    for group in GROUP_RE.finditer(text or ""):
        part = group.group(1) if group.group(1) is not None else group.group(2)
        head, restriction = part, {}
        m = WITH_RE.search(part)
        if m:
            restriction = _restriction(part[m.end() :])
            if restriction:
                head = part[: m.start()]
        for ref in REF_RE.finditer(head):
            lo = undot(ref.group("lo") or ref.group("one"))
            hi = undot(ref.group("hi") or ref.group("one"))
            if is_valid is not None and not (is_valid(dot(lo)) and is_valid(dot(hi))):
                continue
            refs.append(CodeRef(lo, hi, **restriction))
    return refs


def parse_patterns(text: str) -> tuple[list[CodeRef], list[CodeRef]]:
    """A rule file's code pattern list: comma-separated references, ``!`` before the ones to leave out.

    ``"E08-E13,!E11.2"`` -> ``([E08-E13], [E11.2])``; the syntax of each item is that of the Tabular notes.
    """
    keep: list[CodeRef] = []
    leave: list[CodeRef] = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item or item == "-":
            continue
        target = leave if item.startswith("!") else keep
        target.extend(parse_refs(item.lstrip("!")))
    return keep, leave


def matches_any(code: str, keep: list[CodeRef], leave: list[CodeRef] = ()) -> bool:  # type: ignore[assignment]
    """Whether ``code`` is covered by one of ``keep`` and none of ``leave``."""
    return any(r.matches(code) for r in keep) and not any(r.matches(code) for r in leave)
