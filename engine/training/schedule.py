"""Learning-rate schedule shared by the trainers: linear warm-up, then linear decay to zero."""

from __future__ import annotations

from collections.abc import Callable


def linear_warmup_decay(total: int, warmup: int) -> Callable[[int], float]:
    """The LR multiplier for ``torch.optim.lr_scheduler.LambdaLR``.

    Safe for any step count, including a run whose warm-up covers every step (one epoch over a few notes): the
    scheduler is stepped once more after the last optimiser step, so ``step == total`` must not divide by zero.

    Args:
        total: Optimiser steps in the run (at least 1 is assumed).
        warmup: Steps of linear warm-up (clamped to ``[0, total]``).

    Returns:
        ``step -> multiplier`` in ``[0, 1]``.
    """
    total = max(1, total)
    warmup = min(max(0, warmup), total)

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return multiplier
