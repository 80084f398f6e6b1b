"""The entity spans ``analyze`` keeps, scored on MACCROBAT dev like the NER model alone.

``analyze`` does not return the model's spans as they are: header words and metadata fields are dropped and the
backfill adds history-phrase, problem-list and status-term diagnoses (:meth:`engine.pipeline.Pipeline._spans`).
This scores those spans with :func:`engine.evaluation.ner.evaluate_model` (strict start, end and label) on the
same documents as ``python -m engine evaluate ner``, beside the model alone, so a structural step that costs
entities on case reports shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.types import Span


class PipelineSpans:
    """A predictor (``predict(texts)``) of the spans ``analyze`` keeps, from a real pipeline."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def predict(self, texts: Sequence[str]) -> list[list[Span]]:
        """The kept spans of each text."""
        raw = self.pipeline.stage("ner").predict(list(texts))
        return [self.pipeline._spans(text, spans)[0] for text, spans in zip(texts, raw, strict=True)]


def ner_dev_table(pipeline: Any) -> str:
    """The MACCROBAT dev table: the model alone and the spans ``analyze`` keeps."""
    from engine.corpora.document import split_documents
    from engine.corpora.specs import load_data_specs
    from engine.evaluation.ner import evaluate_model, format_table

    ner = pipeline.stage("ner")
    settings = pipeline.settings
    documents = load_data_specs([f"brat:{settings.data_dir / 'maccrobat'}:maccrobat"])
    dev_count = ner.config.get("training", {}).get("n_dev_docs")
    _, dev = split_documents(documents, dev_count=dev_count)
    results = {
        f"model {ner.version}": evaluate_model(ner, dev),
        "spans analyze keeps (today)": evaluate_model(PipelineSpans(pipeline), dev),
    }
    return f"MACCROBAT dev, {len(dev)} documents, strict span match\n" + format_table(results)
