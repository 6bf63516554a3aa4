"""What a sweep still has to run, decided from its ledger (no Ray).

The ledger, not Tune's experiment state, is the record of what is done (:mod:`vaeray.sweep.results`). Re-running a
sweep file therefore plans from it: an experiment an interruption left pending is restored only if its
trials still belong to the sweep file (:func:`resumable`); then a new experiment runs what the ledger lacks
(:func:`next_launch`): the missing trials for grid/random search, or for Optuna the configurations still
owed to ``num_samples``, warm-started from the finished ones (:func:`warm_start`). :mod:`vaeray.sweep.ray.runner`
turns a plan into Tune experiments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import results
from .configurations import Trial

if TYPE_CHECKING:
    from .spec import SweepSpec


def entries(spec: SweepSpec, store: results.SweepStore) -> list[dict[str, Any]]:
    """The ledger entries of the current sweep file (grid: its trials; Optuna: its search)."""
    done = store.ledger.load()
    if spec.search == "optuna":
        return [e for e in done.values() if e.get("search_key") == spec.search_key]
    return [done[t.trial_id] for t in spec.trials() if t.trial_id in done]


def _history(spec: SweepSpec, store: results.SweepStore) -> list[dict[str, Any]]:
    """Finished experiments of this Optuna search."""
    return [h for h in store.history() if h.get("search_key") == spec.search_key]


def resumable(spec: SweepSpec, pending: Mapping[str, Any]) -> bool:
    """Whether the pending experiment belongs to this sweep file: the same Optuna search, or (grid/random)
    only trials the file still plans. An edited file abandons it; its finished trials stay in the ledger."""
    if spec.search == "optuna":
        return pending.get("search_key") == spec.search_key
    planned = {t.trial_id for t in spec.trials()}
    return pending.get("search") != "optuna" and set(pending.get("trials", [])) <= planned


@dataclass(frozen=True)
class Launch:
    """A new experiment: ``trials`` the ledger lacks (grid/random; Optuna's searcher picks its own, so none),
    ``count`` Tune trials in all and how many ``configurations`` they are."""

    trials: list[Trial]
    count: int
    configurations: int

    def record(self, spec: SweepSpec, name: str) -> dict[str, Any]:
        """What ``pending.json`` says of the experiment while it runs (and the history after it ends)."""
        return {
            "experiment": name,
            "search": spec.search,
            "search_key": spec.search_key,
            "trials": [t.trial_id for t in self.trials],
            "configurations": self.configurations,
            "started": results.now(),
        }

    def members(self) -> dict[str, list[int]]:
        """Configuration -> the seeds this experiment runs of it (an extension may run only new seeds)."""
        out: dict[str, list[int]] = {}
        for t in self.trials:
            out.setdefault(t.cell, []).append(t.seed)
        return out


def next_launch(spec: SweepSpec, store: results.SweepStore, notes: list[str]) -> Launch | None:
    """What a new experiment must run, or None (with a note) when the ledger has it all."""
    if spec.search == "optuna":
        remaining = spec.num_samples - sum(h.get("configurations", 0) for h in _history(spec, store))
        if remaining <= 0:
            notes.append(f"nothing to run: all {spec.num_samples} Optuna configurations are done")
            return None
        return Launch([], remaining * len(spec.seeds), remaining)
    done = store.ledger.load()
    trials = [t for t in spec.trials() if t.trial_id not in done]
    if not trials:
        notes.append(f"nothing to run: all {len(spec.trials())} trials are in the ledger")
        return None
    return Launch(trials, len(trials), len({t.cell for t in trials}))


def sampler_seed(spec: SweepSpec, store: results.SweepStore) -> int:
    """The sampler seed plus the number of earlier experiments of this search: an extension must not
    suggest the same configurations again."""
    return spec.sampler_seed + len(_history(spec, store))


def warm_start(spec: SweepSpec, store: results.SweepStore, notes: list[str]) -> tuple[list[dict[str, Any]], list[float]]:
    """(leaf values, seed-mean metric) of the configurations this Optuna search finished in earlier
    experiments, for Optuna to start from without rerunning them. Errored seeds do not count; a configuration
    with a non-finite metric is left out, and so is one suggested over another space."""
    space = {leaf.path for leaf in spec.space}
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for e in entries(spec, store):
        if e["status"] != "error" and e.get("values"):
            by_cell.setdefault(e["config_hash"], []).append(e)
    points, rewards = [], []
    for group in by_cell.values():
        values = [float(e["metrics"].get(spec.metric, math.nan)) for e in group]
        if all(math.isfinite(v) for v in values) and set(group[0]["values"]) == space:
            points.append(group[0]["values"])
            rewards.append(float(np.mean(values)))
    if points:
        notes.append(f"Optuna warm-started from {len(points)} finished configuration(s)")
    return points, rewards
