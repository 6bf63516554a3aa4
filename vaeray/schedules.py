"""Schedules as pure functions of the training step.

Nothing here keeps state: β, capacity, temperature, KL warm-up and learning-rate schedules are recomputed from
``step`` every time, so a resumed run sees exactly the values an uninterrupted one would (cf. nanoGPT's
``get_lr``; the reference disentangling-vae code instead counts calls inside the loss object).
"""

from __future__ import annotations


def linear(step: int, start: float, end: float, steps: int) -> float:
    """``start`` at step 0, rising (or falling) linearly to ``end`` at ``step == steps``, constant after.

    ``steps == 0`` means no annealing: the end value from the first step.
    """
    if steps <= 0 or step >= steps:
        return float(end)
    if step <= 0:
        return float(start)
    return float(start + (end - start) * step / steps)


def warmup(step: int, steps: int) -> float:
    """A multiplier rising linearly from 0 at step 0 to 1 at ``steps`` (1 throughout when ``steps == 0``)."""
    return linear(step, 0.0, 1.0, steps)
