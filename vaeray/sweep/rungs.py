"""Seed-grouped early stopping, as bookkeeping: which configuration continues at which rung (no Ray).

Tune's ASHA and median stopping decide per trial. With seeds as trials that would stop one seed of a
configuration and keep another, and the survivors would be the lucky seeds, not the good configurations. So
the decision is taken per configuration on its seed mean (docs/sweeps.md, "Early stopping decides per configuration"): the rules live
in :class:`RungBook`, pure Python and tested without Ray, and :class:`SavedBook` keeps them in storage so a
restored driver keeps the decisions made before an interruption. :class:`vaeray.sweep.ray.scheduler.SeedGroupedScheduler`
is the thin Tune scheduler that feeds it reports and pauses, resumes or stops trials as it says.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import storage

log = logging.getLogger(__name__)


class RungBook:
    """Early-stopping decisions per configuration, on the mean over its seeds.

    Each seed records its metric at every milestone it passes (its first report at or after it). A seed that
    reaches a milestone before its siblings *waits* there; once every live seed of the configuration has
    recorded it, the configuration's mean is compared with the means other configurations recorded at that
    milestone (ASHA: continue only in the top ``1/reduction_factor``; median: continue only if no worse than
    their median, once ``min_samples_required`` are recorded) and then recorded itself. So every seed of a
    configuration is judged at the same step and all of them stop, or continue, together. Values are stored
    sign-adjusted: larger is always better.
    """

    CONTINUE, WAIT, STOP = "continue", "wait", "stop"

    def __init__(
        self,
        milestones: list[int],
        rule: str,
        mode: str,
        reduction_factor: float = 3.0,
        min_samples_required: int = 3,
        members: Mapping[str, list[int]] | None = None,
        default_members: list[int] | None = None,
    ):
        self.milestones = sorted(milestones)
        self.rule = rule
        self.sign = 1.0 if mode == "max" else -1.0
        self.reduction_factor = reduction_factor
        self.min_samples_required = min_samples_required
        self.members = {c: set(s) for c, s in (members or {}).items()}
        self.default_members = set(default_members or [])
        self.failed: dict[str, set[int]] = {}
        self.values: dict[str, dict[int, dict[int, float]]] = {}
        self.recorded: dict[int, dict[str, float]] = {m: {} for m in self.milestones}
        self.stopped: dict[str, int] = {}  # configuration -> the milestone it was stopped at

    def live(self, cell: str) -> set[int]:
        return self.members.get(cell, self.default_members) - self.failed.get(cell, set())

    def observe(self, cell: str, seed: int, step: float, value: float | None) -> str:
        """Record a report: CONTINUE, WAIT (at a milestone its siblings have not reached) or STOP."""
        if cell in self.stopped:
            return self.STOP
        if value is not None and math.isfinite(value):
            per = self.values.setdefault(cell, {})
            for m in self.milestones:
                if step >= m and seed not in per.setdefault(m, {}):
                    per[m][seed] = self.sign * float(value)
        self._decide(cell)
        if cell in self.stopped:
            return self.STOP
        return self.WAIT if self.waiting_at(cell, seed) is not None else self.CONTINUE

    def waiting_at(self, cell: str, seed: int) -> int | None:
        """The undecided milestone this seed has recorded (so it must wait there), if any."""
        for m in self.milestones:
            if cell not in self.recorded[m]:
                return m if seed in self.values.get(cell, {}).get(m, {}) else None
        return None

    def decided(self, cell: str, milestone: int) -> bool:
        return cell in self.recorded.get(milestone, {}) or cell in self.stopped

    def forget(self, cell: str, seed: int) -> None:
        """A seed errored for good: decide on the remaining ones."""
        self.failed.setdefault(cell, set()).add(seed)
        self._decide(cell)

    def _decide(self, cell: str) -> None:
        live = self.live(cell)
        if not live:
            return
        for m in self.milestones:
            if cell in self.recorded[m]:
                continue
            got = self.values.get(cell, {}).get(m, {})
            if not live <= set(got):
                return  # wait for the slower seeds; milestones are decided in order
            mean = float(np.mean([got[s] for s in live]))
            others = list(self.recorded[m].values())
            stop = False
            if self.rule == "asha" and others:
                stop = mean < float(np.nanpercentile(others, (1 - 1 / self.reduction_factor) * 100))
            elif self.rule == "median" and len(others) >= self.min_samples_required:
                stop = mean < float(np.nanmedian(others))
            self.recorded[m][cell] = mean
            if stop:
                self.stopped[cell] = m
                return

    def to_json(self) -> dict[str, Any]:
        return {
            "failed": {c: sorted(s) for c, s in self.failed.items()},
            "values": {c: {str(m): {str(s): v for s, v in d.items()} for m, d in per.items()} for c, per in self.values.items()},
            "recorded": {str(m): d for m, d in self.recorded.items()},
            "stopped": self.stopped,
        }

    def load_json(self, data: Mapping[str, Any]) -> None:
        self.failed = {c: set(s) for c, s in data.get("failed", {}).items()}
        self.values = {
            c: {int(m): {int(s): float(v) for s, v in d.items()} for m, d in per.items()} for c, per in data.get("values", {}).items()
        }
        for m, d in data.get("recorded", {}).items():
            if int(m) in self.recorded:
                self.recorded[int(m)] = {c: float(v) for c, v in d.items()}
        self.stopped = {c: int(m) for c, m in dict(data.get("stopped", {})).items()}


class SavedBook:
    """A :class:`RungBook` plus the paused trials waiting at a rung (Tune trial id -> milestone), read from
    ``uri`` on first use and written back when something changed."""

    def __init__(self, book: RungBook, uri: str):
        self.book = book
        self.uri = uri
        self.waiting: dict[str, int] = {}
        self._loaded = False
        self._saved: tuple[int, ...] | None = None

    def load(self) -> None:
        if not self._loaded:
            data = storage.read_json(self.uri)
            if isinstance(data, dict):
                self.book.load_json(data)
                self.waiting = {k: int(v) for k, v in data.get("waiting", {}).items()}
            self._loaded = True

    def _fingerprint(self) -> tuple[int, ...]:
        b = self.book
        n_values = sum(len(d) for per in b.values.values() for d in per.values())
        return n_values, sum(len(d) for d in b.recorded.values()), len(b.stopped), len(b.failed), len(self.waiting)

    def save(self) -> None:
        """Persist the book when it changed (not on every report: on object stores each write is a PUT)."""
        fingerprint = self._fingerprint()
        if fingerprint == self._saved:
            return
        self._saved = fingerprint
        try:
            storage.write_json(self.uri, {**self.book.to_json(), "waiting": self.waiting})
        except OSError as e:  # losing the book only weakens early stopping after a restore
            log.warning("could not save early-stopping state to %s: %s", self.uri, e)
