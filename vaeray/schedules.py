"""Schedules as pure functions of the training step.

Nothing here keeps state: β, capacity, temperature, KL warm-up and learning-rate schedules are recomputed from
``step`` every time, so a resumed run sees exactly the values an uninterrupted one would (cf. nanoGPT's
``get_lr``; the reference disentangling-vae code instead counts calls inside the loss object).
"""

from __future__ import annotations

from collections.abc import Sequence


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


def piecewise(step: int, total: int, boundaries: Sequence[float], factors: Sequence[float]) -> float:
    """A piecewise-constant multiplier: ``factors[i]`` while ``step / total`` lies in the i-th interval cut by
    the increasing fractions ``boundaries`` (``len(factors) == len(boundaries) + 1``; empty lists give 1).

    DVAE# (Vahdat et al. 2018) trains with [1/10, 1, 1/3, 1/10, 1/33] × lr cut at [2%, 60%, 75%, 95%] of the steps.
    """
    if not boundaries and not factors:
        return 1.0
    if len(factors) != len(boundaries) + 1:
        raise ValueError(f"piecewise needs one more factor than boundaries, got {len(factors)} and {len(boundaries)}")
    frac = step / total if total > 0 else 1.0
    return float(factors[sum(frac >= b for b in boundaries)])
