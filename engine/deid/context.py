"""Context rules: words that are PHI because of what surrounds them, not because of a list.

- A name before a relation in brackets: "Lane (wife)", "JACK SMITH (son, HCP)".
- A name between a near-cue and a service: "Seen by White from PT", "discussed with Gene in pharmacy" (names
  that are ordinary words, all-caps names, names no list holds).
- An employer after "works at" / "employed by" ("Hunt-Reed", "Green, Wilson and Ray"), a facility after
  "transferred to" ("MacKenna"), as HOSPITAL.

The phrases are data (``assets/rules/deid_context_cues.tsv``; near-cues and relations from ``deid_name_cues.tsv``).
"""

from __future__ import annotations

from engine.deid.lexicon import Lexicon
from engine.deid.spans import PhiSpan
from engine.deid.tokens import Token

__all__ = ["find_context"]

_LINKS = frozenset(("from", "in", "of", "with"))
_PREPOSITIONS = frozenset(("at", "for", "by", "from"))
_OWNERS = frozenset(("pt's", "patient's", "pts", "her", "his", "their", "the"))
"""Words between a bracket and a relation: "Ruth (pt's niece)"."""
_FUNCTION = frozenset(("for", "as", "a", "an", "the", "to", "at", "in", "of", "on", "with", "by", "from", "and",
                       "since", "until", "x", "where", "when", "who", "is", "was", "but", "or", "re"))
"""Words that end an organisation's name even in an all-caps note ("WORKS AT ADAMS GROUP AS A DRIVER")."""
_NOT_NAMES = frozenset(("pt", "patient", "family", "the", "a", "an", "md", "rn", "np", "dr", "per", "team", "he",
                        "she", "they", "it", "we", "i", "husband", "wife", "son", "daughter"))


def _word(tok: Token) -> bool:
    return tok.text.replace("'", "").replace("\u2019", "").isalpha()


def _capital(tok: Token) -> bool:
    return _word(tok) and tok.text[:1].isupper()


def _name_token(tok: Token, lex: Lexicon) -> bool:
    low = tok.text.lower()
    return _capital(tok) and low not in _NOT_NAMES and lex.cues.get(low) not in ("title", "role", "relation")


def _before_relation(tokens: list[Token], i: int, lex: Lexicon) -> PhiSpan | None:
    """``Name (relation`` with ``tokens[i]`` the bracket: up to three capitalised words before it, one line."""
    k = i + 2 if i + 2 < len(tokens) and tokens[i + 1].text.lower() in _OWNERS else i + 1
    if k >= len(tokens) or "relation" not in lex.cues.get(tokens[k].text.lower(), "").split("|"):
        return None
    j = i
    while j > 0 and i - j < 3 and not tokens[j].line_start and (
            _name_token(tokens[j - 1], lex) or (j == i and _listed_first(tokens[j - 1], lex))):
        j -= 1  # capitalised words, or one listed first name in lower case ("SOCIAL: frank (wife)")
    if j == i or (i - j == 1 and lex.is_common(tokens[j].text, 2000) and not lex.is_name_word(tokens[j].text)):
        return None
    return PhiSpan(tokens[j].start, tokens[i - 1].end, "NAME", "context")


def _listed_first(tok: Token, lex: Lexicon) -> bool:
    """A listed first name that is no ordinary word, city or eponym ("frank", "Yolanda"), any case."""
    low = tok.text.lower()
    return tok.text.isalpha() and len(low) > 2 and lex.first_names.get(low, 10**6) < 3000 \
        and not lex.is_common(low, 20) and low not in lex.cities and low not in lex.eponyms and low not in lex.cues


def _in_brackets(tokens: list[Token], i: int, lex: Lexicon) -> PhiSpan | None:
    """A listed first name alone in brackets, ``tokens[i]`` the bracket: "wound care (Yolanda)"."""
    if i + 2 < len(tokens) and tokens[i + 2].text == ")" and _capital(tokens[i + 1]) \
            and _listed_first(tokens[i + 1], lex):
        return PhiSpan(tokens[i + 1].start, tokens[i + 1].end, "NAME", "context")
    return None


def _before_service(tokens: list[Token], i: int, lex: Lexicon) -> PhiSpan | None:
    """``near-cue Name from|in <service>`` with ``tokens[i]`` the near-cue ("by", "with")."""
    j = i + 1
    end = j
    while end < len(tokens) and end - j < 2 and _name_token(tokens[end], lex) \
            and tokens[end].text.lower() not in _LINKS:
        end += 1
    if end == j and j < len(tokens) and _word(tokens[j]) and tokens[j].text.lower() in lex.first_names \
            and not lex.is_common(tokens[j].text, 20):
        end = j + 1  # a listed first name in lower case ("discussed with mary from pharmacy")
    if end == j or end + 1 >= len(tokens) or tokens[end].text.lower() not in _LINKS:
        return None
    if lex.context.get(tokens[end + 1].text.lower()) != "department":
        return None
    if lex.context.get(tokens[j].text.lower()) == "department":
        return None  # "seen by PT from ..." is the service itself
    return PhiSpan(tokens[j].start, tokens[end - 1].end, "NAME", "context")


def _organisation(tokens: list[Token], j: int, lex: Lexicon, strict: bool) -> PhiSpan | None:
    """Capitalised words from ``tokens[j]`` (with hyphens, "&", and ", X and Y" inside) as a HOSPITAL."""
    if tokens[j].line_start:
        return None
    end = j
    while end < len(tokens) and end - j < 8:
        tok = tokens[end]
        if end > j and (tok.line_start or tok.start - tokens[end - 1].end > 1):
            break
        joins = _joins(tokens, j, end)
        if not joins and (tok.text.lower() in _FUNCTION or not _capital(tok)):
            break
        end += 1
    while end > j and not _capital(tokens[end - 1]):
        end -= 1
    if end == j:
        return None
    first = tokens[j].text
    if strict and (lex.is_common(first, 20) or (first.isupper() and len(first) <= 4) or first.lower() in lex.cues):
        return None
    return PhiSpan(tokens[j].start, tokens[end - 1].end, "HOSPITAL", "context")


def _joins(tokens: list[Token], j: int, k: int) -> bool:
    """``tokens[k]`` joins two capitalised words of one organisation: "-", "&", "and", or the comma of a list."""
    if k == j or k + 1 >= len(tokens) or not _capital(tokens[k + 1]):
        return False
    text = tokens[k].text.lower()
    return text in ("-", "&", "and") or (text == "," and _and_follows(tokens, k + 1))


def _and_follows(tokens: list[Token], k: int) -> bool:
    """A list of capitalised words at ``k`` that ends with "and X" ("Wilson and Ray" after "Green,")."""
    while k < len(tokens) and _capital(tokens[k]):
        k += 1
        if k < len(tokens) and tokens[k].text.lower() == "and":
            return True
        if k >= len(tokens) or tokens[k].text != ",":
            return False
        k += 1
    return False


def _employed(lows: list[str], tokens: list[Token], i: int, verbs: set[str]) -> bool:
    """An employment verb two to five words before ``tokens[i]`` on the same line ("works as an engineer at")."""
    for k in range(i - 2, max(-1, i - 6), -1):
        if any(t.line_start for t in tokens[k + 1:i + 1]):
            return False
        if lows[k] in verbs:
            return True
    return False


def find_context(tokens: list[Token], lex: Lexicon) -> list[PhiSpan]:
    """Names and organisations that their context makes PHI (see the module doc)."""
    out: list[PhiSpan] = []
    lows = [t.text.lower() for t in tokens]
    verbs = {p.split()[0] for p, kind in lex.context.items() if kind == "employer" and " " in p} - {"used"}
    firsts = {p.split()[0] for p, kind in lex.context.items() if kind in ("employer", "facility")}
    for i, low in enumerate(lows):
        span = None
        if low == "(":
            span = _before_relation(tokens, i, lex) or _in_brackets(tokens, i, lex)
        elif low in lex.cues and "near" in lex.cues[low].split("|"):
            span = _before_service(tokens, i, lex)
        if span is None and low in _PREPOSITIONS and i + 1 < len(tokens) and _employed(lows, tokens, i, verbs):
            span = _organisation(tokens, i + 1, lex, strict=False)  # "works as an engineer at Hunt-Reed"
        if span is None and low in firsts:
            for n in (4, 3, 2, 1):  # the longest phrase: "used to work for" before "work for"
                kind = lex.context.get(" ".join(lows[i:i + n])) if i + n < len(tokens) else None
                if kind in ("employer", "facility"):
                    skip = 1 if lows[i + n] in ("the", ":") else 0
                    if i + n + skip < len(tokens):
                        span = _organisation(tokens, i + n + skip, lex, strict=kind == "facility")
                    break
        if span is not None:
            out.append(span)
    return out + _slash_names(tokens, lex)


def _surname(tok: Token, lex: Lexicon) -> bool:
    """A capitalised listed surname that is no cue or frequent word ("Collins", "VALDEZ"; not "PT", "Hct")."""
    low = tok.text.lower()
    return _capital(tok) and len(low) > 2 and lex.last_names.get(low, 10**6) < 20000 and low not in lex.cues \
        and not lex.is_common(low, 20) and low not in lex.eponyms


def _slash_names(tokens: list[Token], lex: Lexicon) -> list[PhiSpan]:
    """A line that is only surnames joined by slashes, a co-signature ("Collins/Park", "VALDEZ/SCHUMACHER")."""
    out: list[PhiSpan] = []
    k, n = 1, len(tokens)
    while k + 1 < n:
        if tokens[k].text != "/" or tokens[k + 1].line_start:
            k += 1
            continue
        i, j = k - 1, k + 1
        while j + 2 < n and tokens[j + 1].text == "/" and not tokens[j + 2].line_start:
            j += 2
        line_end = j + 1 >= n or tokens[j + 1].line_start or tokens[j + 1].text == "."
        words = tokens[i:j + 1:2]
        if line_end and (tokens[i].line_start or (i > 0 and tokens[i - 1].text == ".")) \
                and all(_surname(t, lex) for t in words):
            out += [PhiSpan(t.start, t.end, "NAME", "context") for t in words]
        k = j + 2
    return out
