"""Run the ``eval.metrics`` section of a run config: ``{metric name: {hyperparameter: value}}``.

:func:`validate_specs` checks the section against the registered metrics' signatures before anything runs
(unknown names with a did-you-mean, unknown keys and wrongly typed values with their dotted path), and
:func:`evaluate` runs it, handing each metric only the injected arguments its signature asks for
(``dataset``, ``represent``, ``log_likelihood``, ``seed``, ``device``; and for style/content probes
``represent_parts`` and ``train_dataset``, the split the model was trained on). No ``ray`` here: the Ray adapter
calls this like any other caller.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..data.base import Dataset, GroundTruthDataset
from ..errors import ConfigError
from ..registry import METRICS
from ..schema import check_kwargs
from .common import LogLikelihood, Represent


def validate_specs(specs: Mapping[str, Any] | None, path: str = "eval.metrics") -> dict[str, dict[str, Any]]:
    """Check an ``eval.metrics`` section and return it resolved: every metric's defaults filled in, values
    checked and gently coerced by :func:`vaeray.schema.check_kwargs` (the same rules as every other section),
    so a run records exactly which settings its numbers came from. ``name: null`` means all defaults.

    Raises:
        ConfigError: unknown metric (with did-you-mean), unknown setting (with did-you-mean), wrongly typed or
            out-of-range value; the error's path is ``<path>.<metric>`` or ``<path>.<metric>.<key>``.
    """
    if specs is None:
        return {}
    if not isinstance(specs, Mapping):
        raise ConfigError(f"expected a mapping of metric name -> settings, got {type(specs).__name__}", path)
    out: dict[str, dict[str, Any]] = {}
    for name, kwargs in specs.items():
        where = f"{path}.{name}"
        fn = METRICS.get(name, where)
        kwargs = {} if kwargs is None else kwargs
        if not isinstance(kwargs, Mapping):
            raise ConfigError(f"expected a mapping of settings, got {type(kwargs).__name__}", where)
        out[name] = check_kwargs(fn, METRICS.parameters(name), kwargs, where)
    return out


def selection_goal(name: str, path: str) -> tuple[str, str]:
    """(result key, ``min`` or ``max``) by which metric ``name`` ranks models: its ``goal``, declared in
    :data:`vaeray.metrics.GOALS`. A metric without one cannot select checkpoints (one-line ConfigError)."""
    goal = getattr(METRICS.get(name, path), "goal", None)
    if goal is None:
        usable = sorted(n for n in METRICS if getattr(METRICS.get(n), "goal", None) is not None)
        raise ConfigError(
            f"metric '{name}' declares no direction (lower or higher is better), so it cannot select checkpoints; "
            f"metrics that can: {', '.join(usable)}",
            path,
        )
    return goal


def _dataset_name(dataset: Dataset) -> str:
    return getattr(dataset, "registry_name", None) or type(dataset).__name__


def _has_factors(dataset: Dataset) -> bool:
    return isinstance(dataset, GroundTruthDataset) and dataset.num_factors > 0


def evaluate(
    specs: Mapping[str, Mapping[str, Any] | None],
    *,
    dataset: Dataset,
    represent: Represent | None = None,
    log_likelihood: LogLikelihood | None = None,
    represent_parts: Callable[..., dict] | None = None,
    train_dataset: Dataset | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    path: str = "eval.metrics",
) -> dict[str, float]:
    """Run every metric in ``specs`` and merge their flat, metric-prefixed results.

    A metric taking ``represent`` needs a dataset with ground-truth factors and a ``represent``; one taking
    ``log_likelihood`` needs a ``log_likelihood``, one taking ``represent_parts`` (style/content posterior means,
    :mod:`.probes`) a model that has them. ``train_dataset`` defaults to ``dataset``. Each violation is a
    :class:`ConfigError` naming the metric,
    raised before any metric runs.
    """
    specs = validate_specs(specs, path)
    injected = {
        "dataset": dataset,
        "represent": represent,
        "log_likelihood": log_likelihood,
        "represent_parts": represent_parts,
        "train_dataset": train_dataset if train_dataset is not None else dataset,
        "seed": seed,
        "device": torch.device(device) if device is not None else dataset.device,
    }
    calls = []
    for name, kwargs in specs.items():
        fn = METRICS.get(name)
        accepted = inspect.signature(fn).parameters
        if "represent" in accepted:
            # sequence metrics (equivariance, capcorr) read their own labels: they set needs_ground_truth
            if getattr(fn, "needs_ground_truth", True) and not _has_factors(dataset):
                raise ConfigError(
                    f"metric '{name}' needs a dataset with ground-truth factors; '{_dataset_name(dataset)}' has none",
                    f"{path}.{name}",
                )
            if represent is None:
                raise ConfigError(f"metric '{name}' needs a representation function (represent)", f"{path}.{name}")
        if "represent_parts" in accepted and represent_parts is None:
            raise ConfigError(
                f"metric '{name}' needs a model with style and content latents (represent_parts, e.g. ml_vae)",
                f"{path}.{name}",
            )
        if "log_likelihood" in accepted and log_likelihood is None:
            raise ConfigError(f"metric '{name}' needs a model with a log_likelihood estimate", f"{path}.{name}")
        calls.append((name, fn, {**{k: v for k, v in injected.items() if k in accepted}, **kwargs}))

    results: dict[str, float] = {}
    for name, fn, kwargs in calls:
        for key, value in fn(**kwargs).items():
            if key in results:
                raise RuntimeError(f"metric '{name}' reports '{key}', already reported by another metric")
            results[key] = float(value)
    return results
