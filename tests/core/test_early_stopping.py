"""Early stopping on the validation ELBO (train.early_stop_*): the rule itself, and fit() stopping, restoring the
best weights and refusing datasets without a validation split; NaN restarts (train.nan_restarts)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.conftest import Squares, tiny_config
from vaeray.early_stopping import EarlyStopping, validation_elbo
from vaeray.errors import ConfigError, DivergenceError
from vaeray.models.gaussian import VAE
from vaeray.registry import DATASETS, MODELS
from vaeray.train import build_dataset, build_model, fit


class SplitSquares(Squares):
    splits = ("train", "valid")


if "test_squares_split" not in DATASETS:
    DATASETS.register("test_squares_split")(SplitSquares)


def test_rule_burn_in_patience_and_min_delta() -> None:
    model = torch.nn.Linear(2, 1)
    stopper = EarlyStopping(patience=2, burn_in=30, min_delta=0.5)
    assert stopper.metrics() == {}
    assert not stopper.update(-10.0, 10, model)  # improves
    best = {k: v.clone() for k, v in model.state_dict().items()}
    assert not stopper.update(-9.8, 20, model)  # within min_delta: not an improvement, but still burning in
    assert stopper.bad == 0
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not stopper.update(-9.9, 30, model) and stopper.bad == 1
    assert stopper.update(-9.7, 40, model)  # second validation without a 0.5-nat improvement: stop
    assert stopper.metrics() == {"valid_elbo": -9.7, "valid_elbo_best": -10.0, "valid_best_step": 10}
    stopper.restore(model)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in best.items())


def test_fit_stops_after_patience_and_keeps_the_best_weights() -> None:
    cfg = tiny_config(
        data={"name": "test_squares_split"},
        train={"steps": 100, "log_every": 5, "checkpoint_every": 5, "early_stop_every": 5,
               "early_stop_patience": 2, "early_stop_min_delta": 1e9},
    )
    rows, states = [], []
    final = fit(cfg, report=lambda m, s: (rows.append(m), states.append(s)))
    # the first validation (step 5) is the best; nothing beats it by 1e9 nats, so steps 10 and 15 end the run
    assert final["step"] == 15 and final["stopped_early"] == 1.0 and final["valid_best_step"] == 5
    assert [r["step"] for r in rows] == [5, 10, 15]
    at5, last = states[0]["model"], states[-1]["model"]
    assert all(torch.equal(at5[k], last[k]) for k in at5)  # the final checkpoint holds the step-5 weights
    # the reported ELBO is the model's own −(rec + kl) on the validation split
    data = build_dataset(cfg, "valid")
    model = build_model(cfg, data)
    model.load_state_dict(last)
    torch.manual_seed(0)
    value = validation_elbo(model, data, 15, None, 16)
    assert value == pytest.approx(final["valid_elbo_best"], rel=0.2)


def test_no_validation_split_is_a_config_error() -> None:
    cfg = tiny_config(train={"early_stop_every": 5})
    with pytest.raises(ConfigError, match="needs a 'valid' split"):
        fit(cfg)


class FlakyVAE(VAE):
    """A VAE whose loss is NaN once, at step 12; records the steps its loss was called at."""

    calls: list[int] = []
    failed = False

    def loss(self, batch, step):
        FlakyVAE.calls.append(step)
        terms = super().loss(batch, step)
        if step == 12 and not FlakyVAE.failed:
            FlakyVAE.failed = True
            terms["loss"] = terms["loss"] * float("nan")
        return terms


if "test_flaky_vae" not in MODELS:
    MODELS.register("test_flaky_vae")(FlakyVAE)


def test_nan_restart_reloads_the_last_good_checkpoint() -> None:
    FlakyVAE.calls, FlakyVAE.failed = [], False
    cfg = tiny_config(
        model={"name": "test_flaky_vae"},
        train={"steps": 20, "log_every": 5, "checkpoint_every": 10, "nan_restarts": 1},
    )
    rows = []
    final = fit(cfg, report=lambda m, s: rows.append(m))
    assert final["step"] == 20 and final["nan_restarts"] == 1 and math.isfinite(final["loss"])
    back = next(i for i in range(1, len(FlakyVAE.calls)) if FlakyVAE.calls[i] < FlakyVAE.calls[i - 1])
    assert FlakyVAE.calls[back] == 10  # resumed from the step-10 checkpoint, not from the start
    assert [r["step"] for r in rows] == [5, 10, 10 + 5, 20] and all(math.isfinite(r["loss"]) for r in rows)
    # without restarts the same failure ends the run with one line
    FlakyVAE.calls, FlakyVAE.failed = [], False
    with pytest.raises(DivergenceError, match="diverged"):
        fit({**cfg, "train": {**cfg["train"], "nan_restarts": 0}})
