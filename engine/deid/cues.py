"""Cue-word rules for names and organisations, over tokens.

They catch what a cue makes certain whatever the tagger says: the word after a title ("Dr. Okafor"), a listed
name after a role or relative ("RN Hope", "wife Maria", "son dennis"), names before a credential ("Susan Feld,
MD"), a header's name ("Patient: LOPEZ, MIGUEL"), and capitalised words before an organisation word ("Carlisle
Memorial Hospital"). The cue words are data (``assets/rules/deid_name_cues.tsv``, ``deid_org_words.txt``).
"""

from __future__ import annotations

from engine.deid.lexicon import Lexicon
from engine.deid.spans import PhiSpan
from engine.deid.tokens import Token

_HARD_STOP = frozenset((
    "the", "a", "an", "to", "at", "from", "in", "of", "and", "for", "with", "by", "on", "this", "that", "our", "his",
    "her", "their", "is", "was",
))
_HEADER_CUES = frozenset(("name", "patient", "pt", "patient name", "pt name"))
_SKIP_AFTER_CUE = frozenset((".", ",", ":", "(", "is", "-"))


def _stop(word: str) -> bool:
    """A function word that ends a name ("a" does, the initial "A" does not)."""
    return word.lower() in _HARD_STOP and not (len(word) == 1 and word.isupper())


def _cap(word: str) -> bool:
    return word[:1].isupper() and word.replace("'", "").replace("\u2019", "").isalpha()


def _namey(tok: Token, lex: Lexicon, allow_lower: bool) -> bool:
    """A token that can be (part of) a name after a cue."""
    word = tok.text
    if not word.isalpha() or _stop(word):
        return False
    if lex.cues.get(word.lower()) in ("title", "role"):
        return False
    if _cap(word):
        return True
    return allow_lower and word.lower() in lex.first_names and not lex.is_common(word)


def _extend(tokens: list[Token], i: int, lex: Lexicon) -> int:
    """Index after the name starting at ``i``: an initial with its dot, then up to two more listed name words."""
    j = i + 1
    for _ in range(3):
        if j + 1 < len(tokens) and len(tokens[j - 1].text) == 1 and tokens[j].text == "." and _cap(tokens[j + 1].text):
            j += 2
            continue
        if j + 1 < len(tokens) and tokens[j].text == "-" and tokens[j - 1].end == tokens[j].start \
                and tokens[j].end == tokens[j + 1].start and tokens[j + 1].text.isalpha():
            j += 2  # a hyphenated name: "Heinz-Otto", "DEMI-LEIGH"
            continue
        if j < len(tokens) and _cap(tokens[j].text) and _likely_name(tokens[j].text, lex) \
                and tokens[j].start - tokens[j - 1].end <= 1:
            j += 1
            continue
        if j == i + 1 and j < len(tokens) and _cap(tokens[j].text) and not tokens[j].line_start \
                and tokens[j].start - tokens[j - 1].end == 1 and len(tokens[j].text) > 2 \
                and lex.first_names.get(tokens[i].text.lower(), 10**6) < 3000 and not lex.is_common(tokens[j].text) \
                and tokens[j].text.lower() not in lex.cues and tokens[j].text.lower() not in lex.eponyms:
            j += 1  # a listed first name and an unlisted, unknown capitalised word: "John Whitcombe"
            continue
        break
    return j


def _likely_name(word: str, lex: Lexicon) -> bool:
    """A listed name that is no ordinary word, or a frequent one that is ("Lam", not "Gave")."""
    low = word.lower()
    if not lex.is_name_word(word) or lex.is_common(word, 50):
        return False
    return not lex.is_common(word) or lex.first_names.get(low, 10**6) < 2000 or lex.last_names.get(low, 10**6) < 5000


def _after_cue(tokens: list[Token], i: int, kind: str, lex: Lexicon) -> tuple[int, int] | None:
    """The name following cue token ``i`` of the given kind, as a token range, or None."""
    j = i + 1
    if kind == "near" and tokens[i].text.lower() == "w":
        if j >= len(tokens) or tokens[j].text != "/" or tokens[j].start != tokens[i].end:
            return None
        j += 1  # "spoke w/ Corinne"
    first = j
    while j < len(tokens) and tokens[j].text.lower() in _SKIP_AFTER_CUE and j - i <= 3 \
            and (kind == "title" or tokens[j].text != "."):  # only a title's dot: "son. PMH" ends a sentence
        j += 1
    if j >= len(tokens) or tokens[j].start - tokens[i].end > 6:
        return None
    tok = tokens[j]
    if kind in ("title", "role") and i > 0 and tokens[i - 1].text.isdigit():
        return None  # "16 Fr Foley" is a catheter size, not Father Foley; "500 cc NS"
    if kind in ("role", "relation") and _initial(tokens, j):
        return j, _extend(tokens, j, lex)  # "RN J. Okonkwo"
    if kind == "title":
        ok = _namey(tok, lex, allow_lower=True) or (tok.text.isalpha() and len(tok.text) == 1) or (
            tok.text.isalpha() and tok.text.islower() and len(tok.text) > 2 and not _stop(tok.text)
            and not lex.is_common(tok.text) and tok.text not in lex.cues)  # a lower-case note: "per dr olufemi"
    elif kind == "near":
        low = tok.text.lower()
        ok = j == first and _cap(tok.text) and lex.first_names.get(low, 10**6) < 3000 and not lex.is_common(low, 20) \
            and low not in lex.cities and low not in lex.eponyms
    else:
        ok = _namey(tok, lex, allow_lower=True) and (lex.is_name_word(tok.text) or not lex.is_common(tok.text))
        ok = ok and not lex.is_common(tok.text, 300) and len(tok.text) > 1
        if ok and kind == "role" and tok.text.isupper() and tokens[i].text.isupper():
            ok = _likely_name(tok.text, lex)  # all caps: "PT/OT EVAL", "PT WORKS AT"
        if ok and kind == "role" and not tokens[i].text[:1].isupper():  # "charge nurse Rosalind"
            ok = _cap(tok.text) and (_likely_name(tok.text, lex) or _first_name(tok.text, lex))
    return (j, _extend(tokens, j, lex)) if ok else None


def _initial(tokens: list[Token], j: int) -> bool:
    """An upper-case initial with its dot before a capitalised word ("J. Okonkwo")."""
    return j + 2 < len(tokens) and len(tokens[j].text) == 1 and tokens[j].text.isupper() \
        and tokens[j + 1].text == "." and tokens[j + 1].end == tokens[j + 2].start - 1 and _cap(tokens[j + 2].text)


def _first_name(word: str, lex: Lexicon) -> bool:
    """A listed first name that is no ordinary word, city or eponym, in any case ("frank", "Yolanda")."""
    low = word.lower()
    return word.isalpha() and len(word) > 2 and lex.first_names.get(low, 10**6) < 3000 \
        and not lex.is_common(low, 20) and low not in lex.cities and low not in lex.eponyms


def _comma_first(tokens: list[Token], end: int, lex: Lexicon) -> int:
    """A "Surname, First" name ("Pt Villanueva, Rosa, DOB"): the index after the first name, else ``end``."""
    if end + 1 < len(tokens) and tokens[end].text == "," and lex.last_names.get(tokens[end - 1].text.lower(), 10**6) \
            < 20000 and _cap(tokens[end + 1].text) and _first_name(tokens[end + 1].text, lex) \
            and (end + 2 >= len(tokens) or tokens[end + 2].line_start or not tokens[end + 2].text.isalpha()):
        return end + 2
    return end


def _before_credential(tokens: list[Token], i: int, lex: Lexicon) -> tuple[int, int] | None:
    """Names directly before a credential ("Susan Feld, MD"): up to three capitalised words on the same line."""
    j = i - 1
    if j >= 0 and tokens[j].text == ",":
        j -= 1
    end = j + 1
    while j >= 0 and end - j <= 4 and (_cap(tokens[j].text) or tokens[j].text == ".") \
            and not _stop(tokens[j].text) and not tokens[j + 1].line_start:
        j -= 1
    if j == end - 1 and j >= 2 and tokens[j].text.isalpha() and tokens[j].text.islower() and len(tokens[j].text) > 1 \
            and tokens[j - 1].text == "." and len(tokens[j - 2].text) == 1 and tokens[j - 2].text.isalpha():
        return j - 2, end  # a lower-case signature: "e. hisaw, RN"
    first = j + 1
    while first < end and not _cap(tokens[first].text):
        first += 1
    words = [t.text for t in tokens[first:end] if t.text.isalpha() and len(t.text) > 1]
    if first >= end or not words or not (any(lex.is_name_word(w) for w in words) or (
            len(tokens[first].text) == 1 and not any(lex.is_common(w, 5) for w in words))):
        return None  # a listed name, or an initial before unlisted words ("A. Tyka, RN")
    return first, end


def _header(tokens: list[Token], i: int, text: str, lex: Lexicon) -> tuple[int, int] | None:
    """The name in a header line such as ``Patient: LOPEZ, MIGUEL`` (up to the line end or a wide gap)."""
    if i + 1 >= len(tokens) or tokens[i + 1].text != ":":
        return None
    j = i + 2
    end = j
    while end < len(tokens) and end - j < 6 and not tokens[end].line_start:
        word = tokens[end].text
        if "  " in text[tokens[end - 1].end:tokens[end].start] and end > j:
            break
        if not (_cap(word) or word in {",", "."} or lex.is_name_word(word)):
            break
        end += 1
    while end > j and not tokens[end - 1].text.isalpha():
        end -= 1
    if end == j or not any(lex.is_name_word(t.text) for t in tokens[j:end]):
        return None
    return j, end


def find_names(tokens: list[Token], text: str, lex: Lexicon) -> list[PhiSpan]:
    """Names that a cue word makes certain."""
    out: list[PhiSpan] = []
    for i, tok in enumerate(tokens):
        low = tok.text.lower()
        kinds = lex.cues.get(low, "")
        found: list[tuple[int, int] | None] = []
        for kind in kinds.split("|") if kinds else ():
            if kind == "after":
                if tok.text.isupper() and (i + 1 >= len(tokens) or tokens[i + 1].text != "."
                                           or len(low) > 2):
                    found.append(_before_credential(tokens, i, lex))
            elif kind in ("title", "relation", "near", "role"):
                found.append(_after_cue(tokens, i, kind, lex))
        if low in _HEADER_CUES and tok.line_start:
            found.append(_header(tokens, i, text, lex))
        for rng in found:
            if rng is not None:
                rng = (rng[0], _comma_first(tokens, rng[1], lex))
                out.append(PhiSpan(tokens[rng[0]].start, tokens[rng[1] - 1].end, "NAME", "cue"))
                out += _conjoined(tokens, rng[1], lex)
    return out


def _conjoined(tokens: list[Token], j: int, lex: Lexicon) -> list[PhiSpan]:
    """A second name joined to a cued one: "Drs. Lindqvist and Amari", "sons Marcus and Dennis"."""
    if j + 1 < len(tokens) and tokens[j].text.lower() in ("and", "&", "or") and ((
            _namey(tokens[j + 1], lex, False)
            and (lex.is_name_word(tokens[j + 1].text) or not lex.is_common(tokens[j + 1].text, 50))
            and not lex.is_common(tokens[j + 1].text, 300)) or _first_name(tokens[j + 1].text, lex)):
        end = _extend(tokens, j + 1, lex)
        return [PhiSpan(tokens[j + 1].start, tokens[end - 1].end, "NAME", "cue")]
    return []


def find_places(tokens: list[Token], lex: Lexicon) -> list[PhiSpan]:
    """A listed city after a place cue ("lives in Quincy", "from Chicago"), capitalised and no ordinary word."""
    out: list[PhiSpan] = []
    for i in range(1, len(tokens)):
        word = tokens[i].text
        if not _cap(word) or tokens[i - 1].text.lower() not in lex.place_cues or lex.is_common(word, 20):
            continue
        two = f"{word} {tokens[i + 1].text}".lower() if i + 1 < len(tokens) else ""
        if two in lex.cities and _cap(tokens[i + 1].text):
            out.append(PhiSpan(tokens[i].start, tokens[i + 1].end, "LOCATION", "place"))
        elif word.lower() in lex.cities and not (word.isupper() and len(word) <= 4) and len(word) > 2:
            out.append(PhiSpan(tokens[i].start, tokens[i].end, "LOCATION", "place"))
    return out


def find_orgs(tokens: list[Token], lex: Lexicon) -> list[PhiSpan]:
    """Organisations: capitalised words before an organisation word ("Riverside Nursing Home")."""
    out: list[PhiSpan] = []
    lows = [t.text.lower() for t in tokens]
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for phrase in lex.org_words:
        words = tuple(phrase.split())
        by_first.setdefault(words[0], []).append(words)
    for i, low in enumerate(lows):
        for phrase in by_first.get(low, ()):
            n = len(phrase)
            if tuple(lows[i:i + n]) != phrase:
                continue
            if phrase[0] == "and" and not _cap(tokens[i + n - 1].text):
                continue  # "Jones and Sons" is a firm, "wife Maria and sons" is family
            j = i
            while j > 0 and i - j < 7 and not tokens[j].line_start and (
                    ((_cap(tokens[j - 1].text) or lows[j - 1] in {"&", "."}) and lows[j - 1] not in _HARD_STOP)
                    or (lows[j - 1] == "and" and j > 1 and _cap(tokens[j - 2].text) and _cap(tokens[j].text))):
                j -= 1
            while j < i and (lows[j] in lex.org_stop or not tokens[j].text[:1].isalpha()):
                j += 1
            if j < i:
                out.append(PhiSpan(tokens[j].start, tokens[i + n - 1].end, "HOSPITAL", "org"))
            break
    return out
