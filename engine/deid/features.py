"""Token features for the PHI tagger: word shape, capitalisation, gazetteers, cue words, context, position.

Features are strings (``"w=smith"``, ``"-1:cue=title"``) as python-crfsuite takes them. Each token's own features
are computed once and its neighbours' are copied with a position prefix, so the cost is linear and small (about
40-60 features a token).
"""

from __future__ import annotations

import re

from engine.deid.lexicon import Lexicon
from engine.deid.tokens import Token

_SHAPE_SUB = [(re.compile(r"[A-Z]"), "X"), (re.compile(r"[a-z]"), "x"), (re.compile(r"\d"), "d")]
_REPEAT = re.compile(r"(.)\1+")
_CONTEXT = (-2, -1, 1, 2)
_WINDOW_KEYS = ("w=", "s=", "g=", "cue=", "c=")
"""Which of a token's own features its neighbours see (the word, shape, gazetteer, cue and case flags)."""


def _shape(word: str) -> str:
    if len(word) > 1 and word.isalpha():
        if word.istitle():
            return "Xx"
        if word.isupper():
            return "XX"
        if word.islower():
            return "xx"
    shape = word
    for pattern, rep in _SHAPE_SUB:
        shape = pattern.sub(rep, shape)
    return _REPEAT.sub(r"\1\1", shape)


def _bucket(rank: int | None, cuts: tuple[int, ...]) -> str:
    if rank is None:
        return ""
    for cut in cuts:
        if rank < cut:
            return str(cut)
    return "rest"


def word_features(word: str, lex: Lexicon) -> list[str]:
    """The features of one word, without context (cached per word type by :func:`token_features`)."""
    low = word.lower()
    feats = [f"w={low}", f"s={_shape(word)}", f"suf3={low[-3:]}", f"pre2={low[:2]}"]
    if word.isalpha():
        feats.append(f"len={min(len(word), 8)}")
        fn = _bucket(lex.first_names.get(low), (300, 1500))
        ln = _bucket(lex.last_names.get(low), (1000, 10000, 40000))
        if fn:
            feats.append(f"g=fn{fn}")
        if ln:
            feats.append(f"g=ln{ln}")
        if low in lex.cities:
            feats.append("g=city")
        if low in lex.eponyms:
            feats.append("g=epo")
        count = lex.common.get(low, 0)
        feats.append("c=" + ("0" if not count else "lo" if count < 20 else "mid" if count < 300 else "hi"))
    cue = lex.cues.get(low.rstrip("."))
    if cue:
        feats += [f"cue={kind}" for kind in cue.split("|")]
    return feats


def token_features(tokens: list[Token], text: str, lex: Lexicon, cache: dict[str, list[str]] | None = None
                   ) -> list[list[str]]:
    """Features for every token of ``text`` (context crosses sequence cuts, which is harmless).

    Args:
        tokens: :func:`engine.deid.tokens.tokenize` of ``text``.
        text: The note.
        lex: Gazetteers and cues.
        cache: Word -> own features, shared across calls to save time on repeated words.
    """
    cache = {} if cache is None else cache
    own: list[list[str]] = []
    for tok in tokens:
        feats = cache.get(tok.text)
        if feats is None:
            feats = word_features(tok.text, lex)
            if len(cache) < 200_000:
                cache[tok.text] = feats
        own.append(feats)
    window = [[f for f in feats if f.startswith(_WINDOW_KEYS)] for feats in own]
    upper_doc = _mostly_upper(text)
    out: list[list[str]] = []
    n = len(tokens)
    for i, tok in enumerate(tokens):
        feats = ["bias", *own[i]]
        if tok.line_start:
            feats.append("bol")
        if upper_doc:
            feats.append("doc_upper")
        nxt = text[tok.end:tok.end + 1]
        if nxt == "." or nxt == ",":
            feats.append(f"next_char={nxt}")
        for k in _CONTEXT:
            j = i + k
            if 0 <= j < n:
                prefix = f"{k}:"
                feats += [prefix + f for f in window[j]]
            else:
                feats.append(f"{k}:pad")
        if i > 0 and i + 1 < n:
            feats.append(f"-1|+1={tokens[i - 1].text.lower()}|{tokens[i + 1].text.lower()}")
        out.append(feats)
    return out


_LETTER = re.compile(r"[A-Za-z]")
_UPPER = re.compile(r"[A-Z]")


def _mostly_upper(text: str) -> bool:
    sample = text[:4000]
    letters = len(_LETTER.findall(sample))
    return letters > 20 and len(_UPPER.findall(sample)) > 0.7 * letters
