"""The systems the assertion evaluation compares: ours (the stage, and the ``assert`` verb's path), medspaCy's
default ConText and negspacy. Each maps a :class:`~engine.evaluation.assertion_data.GoldDoc` to one set of
predicted traits per item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.evaluation.assertion_data import GoldDoc
from engine.settings import Settings

Judge = Callable[[GoldDoc], list[set[str]]]


def ours(settings: Settings) -> Judge:
    """Our stage (engine.assertion with engine.sections)."""
    from engine.assertion import load as load_assertion
    from engine.sections import load as load_sections

    stage, sections = load_assertion(settings), load_sections(settings)

    return _judge_with(stage, sections)


def ours_verb(settings: Settings) -> Judge:
    """Our stage through :meth:`engine.pipeline.Pipeline.assert_span`, exactly as the ``assert`` verb runs it."""
    from engine.pipeline import Pipeline

    pipeline = Pipeline(settings)

    def judge(doc: GoldDoc) -> list[set[str]]:
        return [set(pipeline.assert_span(doc.text, i.start, i.end, doc.id)["traits"]) for i in doc.items]

    return judge


def _layers(spans: list[Any]) -> list[list[Any]]:
    """Split token spans into layers of non-overlapping spans (``doc.ents`` cannot overlap)."""
    layers: list[list[Any]] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        for layer in layers:
            if layer[-1].end <= span.start:
                layer.append(span)
                break
        else:
            layers.append([span])
    return layers


def _spacy_judge(nlp: Any, components: list[Any], read: Callable[[Any], set[str]]) -> Judge:
    def judge(doc: GoldDoc) -> list[set[str]]:
        sdoc = nlp.make_doc(doc.text)
        for name, proc in nlp.pipeline:
            if name not in components:
                sdoc = proc(sdoc)
        spans: list[tuple[int, Any]] = []
        for k, item in enumerate(doc.items):
            span = sdoc.char_span(item.start, item.end, label="FINDING", alignment_mode="expand")
            if span is not None and len(span):
                spans.append((k, span))
        items_at: dict[tuple[int, int], list[int]] = {}
        for k, span in spans:
            items_at.setdefault((span.start, span.end), []).append(k)
        out: list[set[str]] = [set() for _ in doc.items]
        unique = [sdoc[a:b] for a, b in items_at]
        for layer in _layers(unique):
            sdoc.ents = [sdoc.char_span(s.start_char, s.end_char, label="FINDING") for s in layer]
            for name, proc in nlp.pipeline:
                if name in components:
                    sdoc = proc(sdoc)
            for ent in sdoc.ents:
                for k in items_at.get((ent.start, ent.end), []):
                    out[k] = read(ent)
        return out

    return judge


def medspacy_default() -> Judge:
    """medspaCy 1.x: its PyRuSH sentence splitter and ConText with the default rules, nothing changed."""
    try:
        from loguru import logger

        logger.remove()  # PyRuSH logs every sentence at DEBUG level
    except ImportError:  # pragma: no cover - loguru comes with PyRuSH
        pass
    import medspacy

    nlp = medspacy.load(medspacy_enable=["medspacy_pyrush", "medspacy_context"])

    def read(ent: Any) -> set[str]:
        traits = set()
        for trait, flag in (("negated", ent._.is_negated), ("possible", ent._.is_uncertain),
                            ("hypothetical", ent._.is_hypothetical), ("historical", ent._.is_historical),
                            ("family", ent._.is_family)):
            if flag:
                traits.add(trait)
        if traits & {"possible", "hypothetical"}:
            traits.add("uncertain")
        return traits

    return _spacy_judge(nlp, ["medspacy_context"], read)


def negspacy_default() -> Judge:
    """negspacy 1.0: NegEx with its ``en_clinical`` termset on a blank English pipeline with a sentencizer."""
    import spacy
    from negspacy.negation import Negex  # noqa: F401  (registers the "negex" factory)

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("negex")

    def read(ent: Any) -> set[str]:
        return {"negated"} if ent._.negex else set()

    return _spacy_judge(nlp, ["negex"], read)


def rules_only(settings: Settings) -> Judge:
    """The ConText rules alone (``settings.assertion = "rules"``), whatever the model set holds."""
    from dataclasses import replace

    return ours(replace(settings, assertion="rules"))


def _model_folder(settings: Settings, folder: Any | None) -> Any:
    from pathlib import Path

    from engine.assertion_learned import model_folder

    found = Path(folder) if folder is not None else model_folder(settings.model_dir)
    if found is None or not (Path(found) / "config.json").is_file():
        from engine.errors import EngineError, ErrorCode

        raise EngineError(ErrorCode.MODEL_NOT_FOUND, f"no trained assertion model at {found or settings.model_dir}")
    return Path(found)


def learned(settings: Settings, folder: Any | None = None, threshold: float = 0.5) -> Judge:
    """The learned classifier alone: every trait whose probability reaches ``threshold`` (rules give only the
    sentence and section it reads)."""
    from engine.assertion import load_rules
    from engine.assertion_learned import LearnedAssertion
    from engine.backbone import resolve_device
    from engine.sections import load as load_sections

    stage, sections = load_rules(settings), load_sections(settings)
    model = LearnedAssertion(_model_folder(settings, folder), resolve_device(settings.device))

    def judge(doc: GoldDoc) -> list[set[str]]:
        items = stage.model_inputs(doc.text, [(i.start, i.end) for i in doc.items], sections.detect(doc.text))
        out = []
        for probs in model.predict(items):
            traits = {t for t, p in probs.items() if p >= threshold}
            if traits & {"possible", "hypothetical"}:
                traits.add("uncertain")
            out.append(traits)
        return out

    return judge


def combined(settings: Settings, folder: Any | None = None, fill: dict[str, float] | None = None,
             gate: str | None = None) -> Judge:
    """Rules first, the classifier filling in (:class:`engine.assertion_learned.CombinedAssertionStage`) with the
    model folder's ``combine.fill`` thresholds and ``combine.gate``, or ``fill`` / ``gate`` when given."""
    from engine.assertion import load_rules
    from engine.assertion_learned import CombinedAssertionStage, LearnedAssertion, combination, combination_gate
    from engine.backbone import resolve_device
    from engine.sections import load as load_sections

    path = _model_folder(settings, folder)
    stage = CombinedAssertionStage(load_rules(settings), LearnedAssertion(path, resolve_device(settings.device)),
                                   fill if fill is not None else combination(path),
                                   gate if gate is not None else combination_gate(path))
    sections = load_sections(settings)

    return _judge_with(stage, sections)


def _judge_with(stage: Any, sections: Any) -> Callable[[GoldDoc], list[set[str]]]:
    """A judge for the evaluator: the stage's traits per gold item, plus ``uncertain`` for possible/hypothetical."""

    def judge(doc: GoldDoc) -> list[set[str]]:
        results = stage.judge(doc.text, [(i.start, i.end) for i in doc.items], sections.detect(doc.text))
        out = []
        for r in results:
            traits = set(r.traits)
            if traits & {"possible", "hypothetical"}:
                traits.add("uncertain")
            out.append(traits)
        return out

    return judge
