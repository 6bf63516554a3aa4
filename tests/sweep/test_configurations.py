"""Configurations: every one validated up front (Optuna: every choice option and range end); the metric
must be one every model reports."""

from __future__ import annotations

import pytest

from vaeray.sweep import spec as sw
from vaeray.errors import ConfigError


def test_metric_from_eval_metrics_or_model_terms_is_accepted(make_sweep):
    sw.load(make_sweep(model={"name": "beta_tcvae", "net": "mlp", "hidden": [16]}, sweep={"metric": "tc"}))
    with pytest.raises(ConfigError, match="metric 'tc' is not produced by model 'vae'"):
        sw.load(make_sweep("v", sweep={"metric": "tc"}))
    sw.load(make_sweep("m", eval={"metrics": {"dci": {"num_train": 100}}}, sweep={"metric": "dci_disentanglement", "mode": "max"}))


def test_optuna_validates_every_choice_option_up_front(make_sweep):
    with pytest.raises(ConfigError) as e:
        sw.load(make_sweep(
            model={"choice": [{"name": "vae", "net": "mlp"}, {"name": "vea", "net": "mlp"}]},
            train={"lr": {"loguniform": [1e-4, 1e-2]}}, sweep={"search": "optuna", "num_samples": 4},
        ))
    assert "model.choice[1].name: unknown model 'vea'" in str(e.value)
    spec = sw.load(make_sweep(
        "ok", model={"latent_dim": {"choice": [2, 3]}}, train={"lr": {"loguniform": [1e-4, 1e-2]}},
        sweep={"search": "optuna", "num_samples": 4, "seeds": [0, 1]},
    ))
    assert spec.num_trials == 8 and [leaf.path for leaf in spec.space] == ["model.latent_dim", "train.lr"]
    run, cell, seed = spec.identify({"model.latent_dim": 3, "train.lr": 0.001, "__trial_index__": 1})
    assert seed == 1 and run["model"]["latent_dim"] == 3 and run["train"]["lr"] == 0.001
    assert cell == spec.identify({"model.latent_dim": 3, "train.lr": 0.001, "__trial_index__": 0})[1]
