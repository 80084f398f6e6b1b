"""The de-identification word lists (``assets/rules/deid_*``), loaded once per rules folder."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


def _lines(path: Path) -> list[str]:
    rows = path.read_text(encoding="utf-8").splitlines()
    return [r for r in rows if r and not r.startswith("#")]


@dataclass(frozen=True)
class Lexicon:
    """Gazetteers and cue words.

    Attributes:
        first_names: Lower-case first name -> frequency rank (0 is the most common).
        last_names: Lower-case surname -> frequency rank.
        cities: Lower-case city names.
        common: Lower-case ordinary word -> count in public biomedical text.
        eponyms: Clinical eponyms and device or drug names that are not PHI.
        cues: Lower-case cue word -> kind (``title``, ``role``, ``relation``, ``after``); a word may have several
            kinds, joined by ``|``.
        org_words: Phrases that end an organisation's name ("hospital", "medical center").
        org_stop: Capitalised words that are not part of an organisation's own name ("the", "cardiac").
        place_cues: Words directly before a place name ("in", "from").
        context: Lower-case phrase -> kind (``employer``, ``facility``, ``department``) from
            ``deid_context_cues.tsv`` (:mod:`engine.deid.context`).
    """

    first_names: dict[str, int]
    last_names: dict[str, int]
    cities: frozenset[str]
    common: dict[str, int]
    eponyms: frozenset[str]
    cues: dict[str, str]
    org_words: tuple[str, ...]
    org_stop: frozenset[str]
    place_cues: frozenset[str]
    context: dict[str, str]

    def is_common(self, word: str, min_count: int = 5) -> bool:
        """True when ``word`` (any case) is an ordinary word seen at least ``min_count`` times."""
        return self.common.get(word.lower(), 0) >= min_count

    def is_name_word(self, word: str) -> bool:
        """True when ``word`` is a listed first name or surname."""
        low = word.lower()
        return low in self.first_names or low in self.last_names


def fold(word: str) -> str:
    """``word`` without its accents ("josé" -> "jose"); the name lists are ASCII."""
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()


class FoldedRanks(dict[str, int]):
    """Name -> rank that also finds an accented word under its ASCII form ("zoé" under "zoe").

    Only a word missing as given and not ASCII pays for the folding, so ASCII notes cost nothing extra.
    """

    def __missing__(self, key: str) -> int:
        if not key.isascii():
            folded = fold(key)
            if folded != key and dict.__contains__(self, folded):
                return dict.__getitem__(self, folded)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if dict.__contains__(self, key):
            return True
        return isinstance(key, str) and not key.isascii() and dict.__contains__(self, fold(key))

    def get(self, key: str, default: int | None = None) -> int | None:  # type: ignore[override]
        """As :meth:`dict.get`, with the accent folding of :meth:`__missing__`."""
        try:
            return self[key]
        except KeyError:
            return default


def _ranked(path: Path) -> FoldedRanks:
    out = FoldedRanks()
    for rank, word in enumerate(_lines(path)):
        out.setdefault(word, rank)
    return out


@lru_cache(maxsize=4)
def load_lexicon(rules_dir: Path) -> Lexicon:
    """Read the lists from ``rules_dir`` (cached: the tagger and the rules share one copy)."""
    common: dict[str, int] = {}
    for row in _lines(rules_dir / "deid_common_words.txt"):
        word, _, count = row.partition("\t")
        common[word] = int(count or 1)
    cues: dict[str, str] = {}
    for row in _lines(rules_dir / "deid_name_cues.tsv"):
        word, kind = row.split("\t")
        cues[word] = f"{cues[word]}|{kind}" if word in cues else kind
    org_words = sorted(_lines(rules_dir / "deid_org_words.txt"), key=len, reverse=True)
    return Lexicon(
        first_names=_ranked(rules_dir / "deid_first_names.txt"),
        last_names=_ranked(rules_dir / "deid_last_names.txt"),
        cities=frozenset(_lines(rules_dir / "deid_cities.txt")),
        common=common,
        eponyms=frozenset(_lines(rules_dir / "deid_eponyms.txt")),
        cues=cues,
        org_words=tuple(org_words),
        org_stop=frozenset(_lines(rules_dir / "deid_org_stop.txt")),
        place_cues=frozenset(_lines(rules_dir / "deid_place_cues.txt")),
        context=dict(row.split("\t") for row in _lines(rules_dir / "deid_context_cues.tsv")),
    )
