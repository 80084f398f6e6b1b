"""The learned PHI tagger: a linear-chain CRF (python-crfsuite) over :mod:`engine.deid.features`.

It finds what patterns cannot: names without a cue, places and organisations. The model folder
(``assets/models/deid``) holds ``config.json`` (version, labels, feature set), ``model.crfsuite``,
``metrics.json`` and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.deid.features import token_features
from engine.deid.lexicon import Lexicon
from engine.deid.spans import LABELS, PhiSpan
from engine.deid.tokens import Token, sequences
from engine.errors import EngineError, ErrorCode

FEATURE_SET = "deid-features-1"
"""Bumped whenever :mod:`engine.deid.features` changes what a trained model expects."""


class PhiTagger:
    """Tags tokens with BIO labels and returns PHI spans.

    Args:
        model_dir: A folder with ``config.json`` and ``model.crfsuite``.
        lex: The gazetteers the features use.

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when the folder lacks its files, ``MODEL_INVALID`` when its config does
            not match this code's labels or feature set.
    """

    def __init__(self, model_dir: Path, lex: Lexicon) -> None:
        import pycrfsuite

        config_path, weights = model_dir / "config.json", model_dir / "model.crfsuite"
        if not config_path.exists() or not weights.exists():
            raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"{model_dir}: no de-identification tagger (config.json, "
                                                         "model.crfsuite); train one with python -m engine train deid")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        labels = set(config.get("labels", ()))
        if config.get("feature_set") != FEATURE_SET or not labels <= set(LABELS):
            raise EngineError(ErrorCode.MODEL_INVALID, f"{model_dir}: feature set {config.get('feature_set')!r} or "
                                                       f"labels {sorted(labels)} do not match this engine")
        self.version: str = config["version"]
        self.labels = tuple(config["labels"])
        self._lex = lex
        self._tagger = pycrfsuite.Tagger()
        self._tagger.open(str(weights))
        self._cache: dict[str, list[str]] = {}

    def tag(self, tokens: list[Token], text: str) -> list[str]:
        """BIO tags for ``tokens``."""
        feats = token_features(tokens, text, self._lex, self._cache)
        tags: list[str] = []
        for first, last in sequences(tokens, text):
            tags += self._tagger.tag(feats[first:last])
        return tags

    def find(self, tokens: list[Token], text: str) -> list[PhiSpan]:
        """PHI spans from the tags (a span is a B tag and the I tags of the same label after it)."""
        return tags_to_spans(tokens, self.tag(tokens, text), "tagger")


def tags_to_spans(tokens: list[Token], tags: list[str], source: str) -> list[PhiSpan]:
    """Turn BIO tags into spans; an I tag without its B starts a span too."""
    out: list[PhiSpan] = []
    start = label = None
    end = 0
    for tok, tag in zip(tokens, tags, strict=True):
        kind, _, lab = tag.partition("-")
        if label is not None and (kind != "I" or lab != label):
            out.append(PhiSpan(start, end, label, source))  # type: ignore[arg-type]
            label = None
        if kind in ("B", "I") and label is None:
            start, label = tok.start, lab
        if label is not None:
            end = tok.end
    if label is not None:
        out.append(PhiSpan(start, end, label, source))  # type: ignore[arg-type]
    return out
