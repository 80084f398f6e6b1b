"""GPU out-of-memory during NER halves the batch and retries instead of failing (issue #2).

No GPU is needed: the real committed model runs on CPU behind a thin wrapper that raises torch's own
``torch.cuda.OutOfMemoryError`` whenever a forward pass holds more windows than a fixed capacity, which is how a
too-large batch fails on a GPU. The stage must then return exactly what it returns when memory is plentiful.
"""

from __future__ import annotations

import pytest
import torch

from engine.ner import NerStage, load
from engine.settings import Settings

NOTE = (
    "A 67-year-old woman with type 2 diabetes mellitus and hypertension presented with chest pain and dyspnea. "
    "Troponin was elevated and an electrocardiogram showed ST depression in the lateral leads. She was given "
    "aspirin, heparin and metoprolol, and coronary angiography revealed a stenosis of the left anterior "
    "descending artery, treated with a drug-eluting stent. "
)


class SmallMemory(torch.nn.Module):
    """Runs the wrapped model, but fails like an exhausted GPU on batches above ``capacity`` windows."""

    def __init__(self, model: torch.nn.Module, capacity: int) -> None:
        super().__init__()
        self.model = model
        self.capacity = capacity
        self.batch_sizes: list[int] = []
        self.failures = 0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        self.batch_sizes.append(int(input_ids.shape[0]))
        if input_ids.shape[0] > self.capacity:
            self.failures += 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.model(input_ids=input_ids, attention_mask=attention_mask)


@pytest.fixture(scope="module")
def stage() -> NerStage:
    # Short windows so a modest note makes many of them, all in one requested batch.
    return load(Settings(device="cpu", window_tokens=64, window_overlap=16, batch_size=16))


def test_out_of_memory_halves_the_batch_and_keeps_every_result(stage: NerStage) -> None:
    notes = [NOTE * 3, NOTE, "Denies fever. " + NOTE * 2]
    model, requested = stage.hf_model, stage.batch_size
    roomy, tight_memory = SmallMemory(model, capacity=10_000), SmallMemory(model, capacity=3)
    try:
        stage.hf_model = roomy
        plenty = stage.predict(notes)
        stage.hf_model = tight_memory
        tight = stage.predict(notes)
    finally:
        stage.hf_model, lowered, stage.batch_size = model, stage.batch_size, requested
    windows = sum(roomy.batch_sizes)
    assert roomy.failures == 0 and max(roomy.batch_sizes) > 3, "the notes must need big batches"
    assert tight_memory.failures >= 2, "the first batches must not have fit"
    assert tight == plenty, "retrying in halves must not change a single entity"
    assert sum(n for n in tight_memory.batch_sizes if n <= 3) == windows, "every window ran exactly once"
    assert lowered <= 3, "the stage remembers a batch size that fits"


def test_one_window_that_does_not_fit_is_an_error(stage: NerStage) -> None:
    model, requested = stage.hf_model, stage.batch_size
    stage.hf_model = SmallMemory(model, capacity=0)
    try:
        with pytest.raises(torch.cuda.OutOfMemoryError):
            stage.predict([NOTE])
    finally:
        stage.hf_model, stage.batch_size = model, requested
