"""The compact status line a running sweep prints periodically (from a Tune callback in
:mod:`vaeray.sweep.ray.callbacks`; the formatting lives here, without Ray, so it is testable and reusable)::

    8/20 done, 4 running, 2 paused, 6 pending | best 1a2b3c4d5e: mig 0.312 (mean of 2 seeds) | 3m12s elapsed, ETA 4m50s

The best configuration is the one with the best mean, over the seeds that have reported it, of the latest
value of the sweep's metric. The ETA extrapolates the fraction of all trials' training steps done so far.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

STATES = ("done", "running", "paused", "pending", "error")


@dataclass(frozen=True)
class TrialState:
    cell: str  # configuration hash
    state: str  # one of STATES
    step: float  # the last reported training step (0 before the first report)
    total: int  # train.steps of its configuration
    value: float | None  # the latest value of the sweep's metric, if reported


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def best_configuration(trials: Sequence[TrialState], mode: str) -> tuple[str, float, int] | None:
    by_cell: dict[str, list[float]] = {}
    for t in trials:
        if t.value is not None and math.isfinite(t.value) and t.state != "error":
            by_cell.setdefault(t.cell, []).append(t.value)
    if not by_cell:
        return None
    means = {c: sum(v) / len(v) for c, v in by_cell.items()}
    cell = (max if mode == "max" else min)(means, key=means.__getitem__)
    return cell, means[cell], len(by_cell[cell])


def status_line(trials: Sequence[TrialState], metric: str, mode: str, elapsed_s: float) -> str:
    counts = {s: sum(t.state == s for t in trials) for s in STATES}
    parts = [f"{counts['done']}/{len(trials)} done"]
    parts += [f"{counts[s]} {s}" for s in STATES[1:] if counts[s]]
    line = ", ".join(parts)
    best = best_configuration(trials, mode)
    if best is not None:
        cell, mean, n = best
        line += f" | best {cell}: {metric} {mean:.4g} (mean of {n} seed{'s' if n != 1 else ''})"
    total = sum(t.total for t in trials)
    done = sum(t.total if t.state in ("done", "error") else min(t.step, t.total) for t in trials)
    line += f" | {duration(elapsed_s)} elapsed"
    if total and 0 < done < total:
        line += f", ETA {duration(elapsed_s * (total - done) / done)}"
    return line
