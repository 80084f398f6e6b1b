"""Presidio's default pattern recognizers as a de-identification baseline (no NLP model: none exists here).

Presidio 2.2.366's predefined English recognizers, minus the spaCy one, applied directly; every result counts
(Presidio's default score threshold is 0). Its entity types are mapped onto ours. Optional: when
``presidio-analyzer`` is not installed the evaluation and the benchmark say so and go on without it.
"""

from __future__ import annotations

from engine.deid.spans import PhiSpan, merge_spans

TYPE_MAP = {
    "PERSON": "NAME", "DATE_TIME": "DATE", "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL", "URL": "URL",
    "LOCATION": "LOCATION", "ORGANIZATION": "HOSPITAL", "NRP": "LOCATION",
}
"""Presidio entity -> our label; every other Presidio entity (SSN, licences, cards, bank, IP...) is an ``ID``."""


def presidio_finder():  # returns a Finder or None
    """A ``text -> list[PhiSpan]`` function, or None when Presidio is not installed."""
    try:
        import tldextract
        from presidio_analyzer import RecognizerRegistry
    except ImportError:
        return None
    # Offline: the e-mail recognizer's domain check must use tldextract's bundled suffix list, not the network.
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=())
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(languages=["en"])
    recognizers = [r for r in registry.recognizers
                   if r.supported_language == "en" and type(r).__name__ != "SpacyRecognizer"]

    def find(text: str) -> list[PhiSpan]:
        spans = []
        for rec in recognizers:
            for res in rec.analyze(text, entities=rec.supported_entities, nlp_artifacts=None) or ():
                spans.append(PhiSpan(res.start, res.end, TYPE_MAP.get(res.entity_type, "ID"), "presidio"))
        return merge_spans(spans)

    return find
