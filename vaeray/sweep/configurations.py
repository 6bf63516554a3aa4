"""A sweep's configurations: templates resolved into validated run configs, and the metrics they report.

Seeds are an axis, not a hyperparameter: a :class:`Configuration` is a resolved run config *without* its
seed, and a :class:`Trial` is a configuration plus one of ``sweep.seeds``. Every configuration runs for every
seed with the same hyperparameters, so seed-to-seed spread measures training noise and nothing else.

Every configuration passes :func:`vaeray.config.validate` before anything runs, on the laptop: grid/random
search validates all of them (:func:`expand`); Optuna picks its configurations while the sweep runs, so
:func:`representatives` validates every choice option and both ends of every range instead. A validation
error names the key path the user wrote in the sweep file (``model.grid[1].name``), not the run-config path
(``model.name``). No ``ray`` here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import config as config_mod
from ..errors import ConfigError
from ..registry import METRICS, MODELS
from .identity import config_hash
from .space import MAX_CONFIGURATIONS, expand_grid, leaves, materialize, origins, point_rng, sample

# Keys every trial reports whatever the model (vaeray.train.fit).
STANDARD_METRICS = ("loss", "step", "lr", "examples_per_s")


@dataclass(frozen=True)
class Configuration:
    """A resolved run config without its seed, its identity and the leaf values that produced it."""

    cell: str
    config: dict[str, Any]
    values: dict[str, Any]

    def with_seed(self, seed: int) -> dict[str, Any]:
        return {"seed": seed, **{k: v for k, v in self.config.items() if k != "seed"}}


@dataclass(frozen=True)
class Trial:
    trial_id: str
    cell: str
    seed: int
    config: dict[str, Any]


def resolve(template: Any, raw: Any, values: Mapping[str, Any], source: str) -> Configuration:
    """``config.validate`` one drawn or suggested run config; errors are rewritten to the key path in the
    sweep file, using the leaf ``values`` that produced it to find which option the key came from."""
    try:
        resolved = config_mod.validate({**raw, "seed": 0})
    except ConfigError as e:
        path = e.path or ""
        where = origins(template, values)
        best = max((k for k in where if path == k or path.startswith(k + ".") or path.startswith(k + "[")), key=len, default=None)
        if best is not None:
            path = where[best] + path[len(best) :]
        raise ConfigError(e.message, path or None, source) from None
    resolved.pop("seed", None)
    return Configuration(config_hash(resolved), resolved, dict(values))


def expand(template: Any, sampler_seed: int, num_samples: int, source: str) -> tuple[list[Configuration], int]:
    """Grid/random search: ``num_samples`` draws for every grid point, deduplicated by identity (the count of
    duplicates dropped is the second element)."""
    points = expand_grid(template)
    if len(points) * num_samples > MAX_CONFIGURATIONS:
        raise ConfigError(f"{len(points)} grid points x num_samples {num_samples} is more than {MAX_CONFIGURATIONS:,} configurations", "sweep.num_samples", source)
    unique: dict[str, Configuration] = {}
    drawn = 0
    for k in range(num_samples):
        for point, taken in points:
            values = dict(taken)
            raw = sample(point, point_rng(sampler_seed, k, point), values)
            c = resolve(template, raw, values, source)
            unique.setdefault(c.cell, c)
            drawn += 1
    return list(unique.values()), drawn - len(unique)


def representatives(template: Any, source: str, limit: int = 256) -> list[Configuration]:
    """Configurations that exercise every choice option and both ends of every range, validated up front.

    Optuna chooses configurations while the sweep runs; validating the corners catches an unknown model in a
    choice or a range that leaves a parameter's valid interval before any trial starts.
    """
    space = [leaf for leaf in leaves(template) if leaf.is_random]
    choice_axes = [
        [(leaf.path, o if leaf.primitive else i) for i, o in enumerate(leaf.options)] for leaf in space if leaf.kind == "choice"
    ]
    combos = list(itertools.islice(itertools.product(*choice_axes), limit))
    unique: dict[str, Configuration] = {}
    for end in ("low", "high"):
        for combo in combos:
            values: dict[str, Any] = dict(combo)
            for leaf in space:
                if leaf.kind == "randint":
                    values[leaf.path] = int(leaf.low) if end == "low" else int(leaf.high) - 1
                elif leaf.kind != "choice":
                    values[leaf.path] = float(getattr(leaf, end))
            c = resolve(template, materialize(template, values), values, source)
            unique.setdefault(c.cell, c)
    return list(unique.values())


def produced_metrics(config: Mapping[str, Any]) -> tuple[set[str] | None, list[str]]:
    """Keys a trial of ``config`` reports: (exact keys or None when the model does not declare its terms,
    metric-name prefixes of eval metrics that do not declare their keys)."""
    exact: set[str] | None = set(STANDARD_METRICS)
    terms = getattr(MODELS.get(config["model"]["name"]), "terms", None)
    if terms is None:
        exact = None
    else:
        exact |= set(terms)
    prefixes: list[str] = []
    for name in (config.get("eval") or {}).get("metrics") or {}:
        keys = getattr(METRICS.get(name), "keys", None)
        if keys is not None and not callable(keys):
            if exact is not None:
                exact |= set(keys)
            else:
                prefixes.append(name)
        else:
            prefixes.append(name)
    return exact, prefixes


def check_metric(metric: str, configurations: Iterable[Configuration], source: str) -> None:
    """Every configuration must report ``metric`` (early stopping and Optuna rank by it): a typo, or a metric
    of one model asked of another, fails here rather than as NaNs after the sweep."""
    for c in configurations:
        exact, prefixes = produced_metrics(c.config)
        if exact is None:  # the model does not declare its terms: nothing to check against
            continue
        if metric in exact or any(metric == p or metric.startswith(p) and metric[len(p)] in "_/." for p in prefixes):
            continue
        model = c.config["model"]["name"]
        reported = ", ".join(sorted(exact) + [f"{p}*" for p in prefixes])
        raise ConfigError(
            f"metric '{metric}' is not produced by model '{model}' (it reports: {reported}); "
            "pick one of those or add an eval.metrics entry that reports it",
            "sweep.metric",
            source,
        )
