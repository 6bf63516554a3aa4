"""Early stopping and checkpoint selection on a validation criterion.

Two protocols share this module:

* the S-VAE and product-space papers (and the sylvester-flows code they build on) validate the **ELBO**: after a
  burn-in, stop when it has not improved by more than ``min_delta`` for ``patience`` consecutive validations
  (the "look-ahead"), and keep the best weights;
* the DVAE# paper (Vahdat, Andriyash & Macready 2018, Sec. 5; research notes 1.4) validates a **metric**, the
  discrete model's NLL with 100 importance samples and log Z re-estimated by AIS, every 20k steps, never stops
  early, and evaluates the test set on the weights with the best validation NLL.

Configured under ``train:`` (:class:`vaeray.config.TrainConfig`): ``early_stop_every`` (validate every N steps;
unset = off), ``early_stop_metric`` (``elbo``, or ``{metric: {options}}``: a registered metric run on the
``valid`` split, its direction from the metric's ``goal``), ``early_stop_patience`` (null = never stop, only
select), ``early_stop_burn_in``, ``early_stop_min_delta`` (in the criterion's units) and
``early_stop_examples`` (ELBO only; a metric has its own ``num_examples``). At the end of training ``fit``
restores the best weights, so the final evaluation and the last checkpoint see them. The state, best weights
included, is part of every checkpoint (:mod:`vaeray.training_state`), so a resumed run keeps what it selected
before the interruption.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .data.base import Dataset
from .errors import ConfigError
from .models.base import Model
from .registry import DATASETS

Measure = Callable[[Model, int], "dict[str, float]"]


@torch.no_grad()
def validation_elbo(model: Model, data: Dataset, step: int, examples: int | None, batch_size: int) -> float:
    """Mean ELBO per example on ``data``: −(rec + kl) where the model reports both, else −loss (nats).

    ``rec + kl`` is the unweighted negative ELBO, so the KL warm-up or β of the training loss does not move
    the stopping criterion.
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for batch in data.iterate(batch_size, examples):
            terms = model.loss(batch, step)
            value = terms["rec"] + terms["kl"] if "rec" in terms and "kl" in terms else terms["loss"]
            total += float(value) * len(batch)
            count += len(batch)
    finally:
        model.train(was_training)
    return -total / max(count, 1)


class EarlyStopping:
    """Tracks the best validation value of ``key`` (``mode`` ``max`` or ``min``), its weights and step, and the
    validations since it last improved. ``patience=None`` never stops: it only selects."""

    def __init__(
        self,
        patience: int | None,
        burn_in: int,
        min_delta: float,
        key: str = "elbo",
        mode: str = "max",
        measure: Measure | None = None,
        criterion: str = "elbo",
    ):
        self.patience, self.burn_in, self.min_delta = patience, burn_in, min_delta
        self.key, self.mode, self.measure, self.criterion = key, mode, measure, criterion
        self.best = -math.inf if mode == "max" else math.inf
        self.best_step = -1
        self.bad = 0
        self.last = math.nan
        self.latest: dict[str, float] = {}
        self.best_state: dict[str, torch.Tensor] | None = None

    def improves(self, value: float) -> bool:
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, value: float, step: int, model: Model) -> bool:
        """Record ``value`` at ``step``; True when training should stop."""
        self.last = value
        if self.improves(value):  # NaN never improves
            self.best, self.best_step, self.bad = value, step, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        if step < self.burn_in:
            return False
        self.bad += 1
        return self.patience is not None and self.bad >= self.patience

    def validate(self, model: Model, step: int) -> bool:
        """Measure the criterion on the validation split (``measure``) and :meth:`update`."""
        assert self.measure is not None, "validate() needs a measure (from_config builds one)"
        self.latest = dict(self.measure(model, step))
        return self.update(float(self.latest[self.key]), step, model)

    def restore(self, model: Model) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def metrics(self) -> dict[str, Any]:
        """``valid_<key>`` (the latest; a metric's other keys too, prefixed ``valid_``), ``valid_<key>_best`` and
        ``valid_best_step``; empty before the first validation."""
        if self.best_step < 0:
            return {}
        out = {f"valid_{k}": v for k, v in self.latest.items() if k != self.key}
        out.update({f"valid_{self.key}": self.last, f"valid_{self.key}_best": self.best, "valid_best_step": self.best_step})
        return out

    # --- checkpointing (vaeray.training_state) ---
    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors (``weights_only`` loadable): what a resumed run needs to keep its selection."""
        return {
            "criterion": self.criterion,
            "best": float(self.best),
            "best_step": int(self.best_step),
            "bad": int(self.bad),
            "last": float(self.last),
            "latest": {k: float(v) for k, v in self.latest.items()},
            "best_state": None if self.best_state is None else {k: v.detach().clone() for k, v in self.best_state.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any], model: Model | None = None) -> None:
        """Take over a checkpoint's selection; one made under another criterion is not comparable and is
        ignored (the selection starts afresh from the resumed step)."""
        if state.get("criterion") != self.criterion:
            return
        self.best, self.best_step, self.bad = float(state["best"]), int(state["best_step"]), int(state["bad"])
        self.last, self.latest = float(state["last"]), dict(state.get("latest") or {})
        best = state.get("best_state")
        if best is not None and model is not None:
            device = {k: v.device for k, v in model.state_dict().items()}
            best = {k: v.to(device[k]) if k in device else v for k, v in best.items()}
        self.best_state = best


def criterion(tc: Any) -> tuple[str, str, str, dict[str, Any] | None]:
    """(key, mode, canonical name, metric spec or None) of ``train.early_stop_metric``."""
    if tc.early_stop_metric == "elbo":
        return "elbo", "max", "elbo", None
    from .metrics.evaluate import selection_goal

    (name, options), = tc.early_stop_metric.items()
    key, mode = selection_goal(name, "train.early_stop_metric")
    return key, mode, json.dumps(tc.early_stop_metric, sort_keys=True), {name: options}


def from_config(
    cfg: Mapping[str, Any],
    tc: Any,
    build: Callable[[str], Dataset],
    evaluate: Callable[[Model, Mapping[str, Any], Dataset], dict[str, float]] | None = None,
) -> EarlyStopping | None:
    """An :class:`EarlyStopping` measuring on the split ``build("valid")`` when ``train.early_stop_every`` is set,
    else None. ``evaluate(model, specs, data)`` runs metric specs (``fit`` passes its own); a dataset without a
    ``valid`` split is a one-line ConfigError."""
    if tc.early_stop_every is None:
        return None
    splits = getattr(DATASETS.get(cfg["data"]["name"]), "splits", ())
    if "valid" not in splits:
        raise ConfigError(
            f"early stopping needs a 'valid' split; {cfg['data']['name']} has {', '.join(splits)}",
            "train.early_stop_every",
        )
    key, mode, name, spec = criterion(tc)
    valid = build("valid")
    if spec is None:
        def measure(model: Model, step: int) -> dict[str, float]:
            return {"elbo": validation_elbo(model, valid, step, tc.early_stop_examples, tc.batch_size)}
    else:
        if evaluate is None:
            raise ValueError("a metric criterion needs an evaluate function")

        def measure(model: Model, step: int) -> dict[str, float]:
            return evaluate(model, spec, valid)

    return EarlyStopping(tc.early_stop_patience, tc.early_stop_burn_in, tc.early_stop_min_delta, key, mode, measure, name)
