"""The NER stage with bf16 weights, as it runs on CUDA, checked on CPU.

On a GPU ``NerStage`` converts the plain-PyTorch encoder to bf16 (engine/ner.py). No GPU runs in CI, so the same
conversion is made here on CPU: every dtype meeting point (embeddings, the boolean attention mask, layer norms,
the fp32 softmax before the decoder) runs in bf16 and must give essentially the entities of the fp32 model.
"""

from __future__ import annotations

import pytest
import torch

from engine.ner import NerStage, load
from engine.settings import Settings

NOTES = [
    "A 67-year-old woman with type 2 diabetes mellitus and hypertension presented with chest pain and dyspnea. "
    "Troponin was elevated and an electrocardiogram showed ST depression. She was given aspirin and heparin, and "
    "coronary angiography revealed a stenosis of the left anterior descending artery.",
    "Denies fever. CT of the abdomen showed appendicitis; laparoscopic appendectomy was performed.",
]


@pytest.fixture(scope="module")
def stage() -> NerStage:
    return load(Settings(device="cpu", window_tokens=64, window_overlap=16))


def test_bf16_weights_find_the_fp32_entities(stage: NerStage) -> None:
    fp32 = stage.predict(NOTES)
    model = stage.hf_model
    stage.hf_model = model.to(torch.bfloat16)
    try:
        bf16 = stage.predict(NOTES)
        assert next(stage.hf_model.parameters()).dtype == torch.bfloat16
    finally:
        stage.hf_model = model.to(torch.float32)
    for text, a, b in zip(NOTES, fp32, bf16, strict=True):
        spans_a = {(s.start, s.end, s.label) for s in a}
        spans_b = {(s.start, s.end, s.label) for s in b}
        assert spans_a, "the fp32 model must find entities in these notes"
        assert len(spans_a & spans_b) >= 0.9 * len(spans_a | spans_b), (text, spans_a ^ spans_b)
        assert all(0 <= s.start < s.end <= len(text) and 0.0 <= s.score <= 1.0 for s in b)
