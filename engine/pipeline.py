"""The pipeline: composes the registered stages into the contract's verbs.

Stages are loaded lazily by name (see :mod:`engine.registry`) and kept for the life of the pipeline, so a
process pays for model loading once. Stage interfaces:

- ``sections.detect(text) -> list[Section]``
- ``ner.predict(texts) -> list[list[Span]]`` (batched)
- ``assertion.judge(text, spans, sections) -> list[Judgement]`` (``spans``: ``(start, end)`` pairs)
- ``icd.link(mention, label, traits) -> list[Code]`` (empty for findings that must not be coded)
- ``summarizer.summarize(text, k) -> list[SummarySentence]``

What the linker reads for a finding is its coding mention (:mod:`engine.coding_mention`): the finding with the
anatomy and modifier words that specify it.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.coding_mention import Coder, CodingRules
from engine.coding_mention import load_rules as load_coding_rules
from engine.errors import EngineError, ErrorCode
from engine.metadata import outside
from engine.monitoring.profile import token_summary
from engine.registry import load_stage
from engine.settings import Settings
from engine.types import LABELS, AnalysisResult, Code, Entity, Section, Span, SummaryResult

ANALYSIS_STAGES = ("sections", "ner", "history", "assertion", "icd")
"""The stages :meth:`Pipeline.analyze` runs, in order (loaded and warmed before serving)."""
HEADER_LABELS_KEPT = frozenset({"ANAT"})
"""Entity labels kept when the span is a section header's own words: "CHEST:" names anatomy, while "HPI:" or
"PROCEDURE:" is a heading, not a test or a procedure the patient had."""


def section_at(sections: Sequence[Section], offset: int) -> str | None:
    """Name of the section containing character ``offset``, or ``None``."""
    for section in sections:
        if section.start <= offset < section.end:
            return section.name
    return None


def drop_header_words(spans: Sequence[Any], headers: Sequence[tuple[int, int]]) -> list[Any]:
    """``spans`` without those lying wholly inside a section header, except labels in :data:`HEADER_LABELS_KEPT`."""
    if not headers:
        return list(spans)
    return [
        s for s in spans
        if s.label in HEADER_LABELS_KEPT or not any(start <= s.start and s.end <= end for start, end in headers)
    ]


def model_version(model_dir: Path, stage: str) -> str:
    """The ``version`` written in ``model_dir/stage/config.json``, or ``"unknown"``."""
    config = model_dir / stage / "config.json"
    try:
        return str(json.loads(config.read_text(encoding="utf-8")).get("version", "unknown"))
    except (OSError, ValueError):
        return "unknown"


def freeze_loaded_objects() -> None:
    """Collect all garbage, then exempt every object alive now from later cyclic garbage collections.

    The loaded models and the ICD index are ~240,000 tracked Python objects that live as long as the process, and a
    full collection walks them all: ~100 ms in the engine alone, ~190 ms in the app, where one falls inside most
    analyses. After this call a full collection walks only what was made since (docs/benchmarks.md, "The app,
    stop 12"). Frozen objects are still freed by reference counting; cycles among them are reclaimed at
    the next call, which first unfreezes everything (so a pipeline replaced by a newer model version is collected).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class Pipeline:
    """The clinical NLP engine: NER, assertion, ICD-10-CM coding and extractive summarisation.

    Args:
        settings: Engine settings (model set, device, rules, caches).
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._stages: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._models: dict[str, str] | None = None

    def stage(self, name: str) -> Any:
        """Return the stage registered as ``name``, loading it on first use (thread-safe)."""
        if name not in self._stages:
            with self._lock:
                if name not in self._stages:
                    self._stages[name] = load_stage(name, self.settings)
        return self._stages[name]

    def warm(self, names: Iterable[str] = (*ANALYSIS_STAGES, "summarizer"), freeze: bool = True) -> None:
        """Load the given stages now and run a tiny note through them, so the first real request is fast.

        Args:
            names: Stages to load.
            freeze: End with :func:`freeze_loaded_objects`, so later garbage collections skip what was loaded
                (``False`` for a caller that loads more first and freezes once itself).
        """
        for name in names:
            self.stage(name)
        self.analyze("Patient denies chest pain. History of hypertension treated with lisinopril.")
        if "summarizer" in self._stages:
            self.summarize("Patient is stable. Follow up in two weeks.", k=1)
        if freeze:
            freeze_loaded_objects()

    @functools.cached_property
    def coding_rules(self) -> CodingRules:
        """The coding mention's rule data (``assets/rules/coding_*``), read once."""
        return load_coding_rules(Path(self.settings.rules_dir))

    @property
    def models(self) -> dict[str, str]:
        """Versions of the models behind each stage, as written in the analysis result."""
        # Read once: the stages are kept for the pipeline's life, so their versions cannot change under it (and
        # a batch job would otherwise read two config files per call).
        if self._models is None:
            self._models = {
                "ner": str(getattr(self.stage("ner"), "version", "unknown")),  # fast or accurate
                "assertion": str(getattr(self.stage("assertion"), "version", "unknown")),
                "icd": str(getattr(self.stage("icd"), "version", "unknown")),
                "summarizer": model_version(self.settings.model_dir, "summarizer"),
            }
        return dict(self._models)

    def analyze(self, text: str, note_id: str | None = None) -> AnalysisResult:
        """Analyse one note. See :meth:`analyze_many`."""
        return self.analyze_many([(note_id, text)])[0]

    def analyze_many(self, notes: Sequence[tuple[str | None, str]]) -> list[AnalysisResult]:
        """Analyse several notes, batching the NER forward passes across them.

        Args:
            notes: ``(id, text)`` pairs; ``text`` is used exactly as given (offsets index into it).

        Returns:
            One :class:`AnalysisResult` per note, in input order.
        """
        ner = self.stage("ner")  # loaded before the clock starts: timings report work, not model loading
        t0 = time.perf_counter()
        texts = [text for _, text in notes]
        with_probs = getattr(ner, "predict_with_probs", None)  # monitoring's token statistics, when the stage has them
        all_spans, all_probs = with_probs(texts) if with_probs else (ner.predict(texts), [None] * len(texts))
        ner_ms = (time.perf_counter() - t0) * 1000.0 / max(len(notes), 1)
        models = self.models
        # One link cache for the whole call; the ICD stage's calibrated abstention applies to the assembled mention.
        coder = Coder(self.coding_rules, self.stage("icd"), self.settings.icd_min_score)
        results: list[AnalysisResult] = []
        for (note_id, text), spans, probs in zip(notes, all_spans, all_probs, strict=True):
            t1 = time.perf_counter()
            spans, sections = self._spans(text, spans)
            judgements = self.stage("assertion").judge(text, [(s.start, s.end) for s in spans], sections)
            t2 = time.perf_counter()
            entities: list[Entity] = []
            for span, judgement in zip(spans, judgements, strict=True):
                entity = Entity(
                    start=span.start,
                    end=span.end,
                    text=text[span.start : span.end],
                    label=span.label,
                    score=span.score,
                    traits=list(judgement.traits),
                    trigger=judgement.trigger,
                    section=section_at(sections, span.start),
                )
                entities.append(entity)
            coder.code_all(text, entities, spans)
            t3 = time.perf_counter()
            timings = {"ner": ner_ms, "assertion": (t2 - t1) * 1000.0, "icd": (t3 - t2) * 1000.0}
            timings["total"] = sum(timings.values())
            results.append(AnalysisResult(id=note_id, entities=entities, models=models, timings_ms=timings,
                                          token_stats=token_summary(probs)))
        return results

    def _spans(self, text: str, spans: Sequence[Span]) -> tuple[list[Span], list[Section]]:
        """The note's entity spans after the structural steps, and its sections: section headers' own words and
        metadata fields (dictation lines, keywords, names and dates) hold no entity, and the backfill adds the
        history-phrase and problem-list diagnoses the model left untagged."""
        detector = self.stage("sections")
        sections = detector.detect(text)
        headers = detector.header_spans(text)
        metadata = detector.metadata_spans(text)
        kept = outside(drop_header_words(spans, headers), metadata)
        history = self.stage("history")
        added = history.add(text, kept, self.stage("icd"), history.regions(sections, headers))
        return outside(added, metadata), sections

    def summarize(self, text: str, k: int | None = None, note_id: str | None = None) -> SummaryResult:
        """Extract the note's key sentences, verbatim, in the note's own order.

        Args:
            text: The note.
            k: Number of sentences; ``None`` for the default proportional to note length.
            note_id: Echoed in the result.
        """
        if k is not None and k < 0:
            raise EngineError(ErrorCode.BAD_INPUT, f"--sentences must be 0 or more, got {k}")
        sentences = self.stage("summarizer").summarize(text, k)
        return SummaryResult(id=note_id, sentences=sorted(sentences, key=lambda s: s.start))

    def assert_span(self, text: str, start: int, end: int, note_id: str | None = None) -> dict[str, Any]:
        """Judge the assertion of ``text[start:end]`` in its context (the ``assert`` verb).

        Raises:
            EngineError: ``BAD_SPAN`` when the span does not fit the text.
        """
        if not (0 <= start < end <= len(text)):
            raise EngineError(ErrorCode.BAD_SPAN, f"span [{start}, {end}) does not fit a text of {len(text)} chars")
        sections = self.stage("sections").detect(text)
        judgement = self.stage("assertion").judge(text, [(start, end)], sections)[0]
        return {
            "id": note_id,
            "assertion": judgement.assertion,
            "traits": list(judgement.traits),
            "trigger": judgement.trigger,
        }

    def link(self, mention: str, label: str = "DIAG", note_id: str | None = None) -> dict[str, Any]:
        """Suggest ICD-10-CM codes for a mention (the ``link`` verb).

        Raises:
            EngineError: ``BAD_LABEL`` when ``label`` is not one of the contract's five.
        """
        if label not in LABELS:
            raise EngineError(ErrorCode.BAD_LABEL, f"label {label!r} is not one of {', '.join(LABELS)}")
        codes: list[Code] = self.stage("icd").link(mention, label, [])
        return {"id": note_id, "codes": [c.to_dict() for c in codes]}


def load_pipeline(model_dir: str | Path | None = None, device: str = "auto", **overrides: Any) -> Pipeline:
    """Build the engine.

    Args:
        model_dir: A model set folder (``ner/``, ``summarizer/`` inside); ``None`` for ``CLINICAL_NLP_MODEL_DIR``
            when set, else the registry's active version (:mod:`engine.versions`), else the committed defaults.
        device: ``cpu``, ``cuda`` or ``auto``.
        **overrides: Any other :class:`~engine.settings.Settings` field.

    Returns:
        A :class:`Pipeline` whose stages load on first use (call :meth:`Pipeline.warm` to load them now).
    """
    settings = Settings().with_overrides(model_dir=model_dir, device=device, **overrides)
    if model_dir is None and not os.environ.get("CLINICAL_NLP_MODEL_DIR"):
        # No model set named anywhere: run the registry's active version when one was activated (a clean clone
        # has no registry, so the committed defaults run unchanged).
        from engine.versions import active_model_dir

        active = active_model_dir(settings)
        if active is not None:
            settings = settings.with_overrides(model_dir=active)
    return Pipeline(settings)
