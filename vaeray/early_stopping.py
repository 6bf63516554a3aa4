"""Early stopping on the validation ELBO, the protocol of the S-VAE and product-space papers (and of the
sylvester-flows code they build on): after a burn-in, stop when the validation objective has not improved by
more than ``min_delta`` for ``patience`` consecutive validations (the "look-ahead"), and keep the best weights.

Configured under ``train:`` (:class:`vaeray.config.TrainConfig`): ``early_stop_every`` (validate every N steps;
unset = off), ``early_stop_patience``, ``early_stop_burn_in`` (steps before stopping is allowed),
``early_stop_min_delta`` (nats) and ``early_stop_examples`` (validation examples; unset = the whole split).
The validation split is the dataset's ``valid`` split. The best weights live in memory: a run resumed from a
checkpoint restarts the patience count and restores only weights it has seen since the resume.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .data.base import Dataset
from .errors import ConfigError
from .models.base import Model
from .registry import DATASETS


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
    """Tracks the best validation ELBO, its weights and the validations since it last improved."""

    def __init__(self, patience: int, burn_in: int, min_delta: float):
        self.patience, self.burn_in, self.min_delta = patience, burn_in, min_delta
        self.best = -math.inf
        self.best_step = -1
        self.bad = 0
        self.last = math.nan
        self.best_state: dict[str, torch.Tensor] | None = None

    def update(self, value: float, step: int, model: Model) -> bool:
        """Record ``value`` at ``step``; True when training should stop."""
        self.last = value
        if value > self.best + self.min_delta:
            self.best, self.best_step, self.bad = value, step, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        if step < self.burn_in:
            return False
        self.bad += 1
        return self.bad >= self.patience

    def restore(self, model: Model) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def metrics(self) -> dict[str, Any]:
        """``valid_elbo`` (the latest), ``valid_elbo_best`` and its step; empty before the first validation."""
        if self.best_step < 0:
            return {}
        return {"valid_elbo": self.last, "valid_elbo_best": self.best, "valid_best_step": self.best_step}


def from_config(
    cfg: Mapping[str, Any], tc: Any, build: Callable[[str], Dataset]
) -> tuple[EarlyStopping | None, Dataset | None]:
    """(EarlyStopping, validation split built by ``build("valid")``) when ``train.early_stop_every`` is set,
    else (None, None); a dataset without a ``valid`` split is a one-line ConfigError."""
    if tc.early_stop_every is None:
        return None, None
    splits = getattr(DATASETS.get(cfg["data"]["name"]), "splits", ())
    if "valid" not in splits:
        raise ConfigError(
            f"early stopping needs a 'valid' split; {cfg['data']['name']} has {', '.join(splits)}",
            "train.early_stop_every",
        )
    return EarlyStopping(tc.early_stop_patience, tc.early_stop_burn_in, tc.early_stop_min_delta), build("valid")
