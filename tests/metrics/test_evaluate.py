"""The evaluation runner: config validation with paths and hints, injection, and dataset/model requirements."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaeray.data.base import TensorDataset
from vaeray.errors import ConfigError
from vaeray.metrics import evaluate, validate_specs
from vaeray.metrics.dci import dci
from vaeray.metrics.likelihood import nll
from vaeray.metrics.mig import mig


class Unlabelled(TensorDataset):
    registry_name = "mnist"


def fake_log_likelihood(x: torch.Tensor, k: int) -> torch.Tensor:
    """A deterministic stand-in for the model's estimate: −‖x‖² − 1/k per example."""
    return -(x.reshape(x.shape[0], -1) ** 2).sum(dim=1) - 1.0 / k


def test_unknown_metric_suggests_the_closest_name():
    with pytest.raises(ConfigError, match="unknown metric 'mgi'; did you mean 'mig'") as info:
        validate_specs({"mgi": {}})
    assert info.value.path == "eval.metrics.mgi"


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ({"mig": {"num_trian": 5}}, "eval.metrics.mig.num_trian", "did you mean 'num_train'"),
        ({"mig": {"seed": 5}}, "eval.metrics.mig.seed", "unknown key 'seed'"),  # injected, not a setting
        ({"mig": {"num_train": "10k"}}, "eval.metrics.mig.num_train", "expected int | null"),
        ({"mig": {"num_bins": True}}, "eval.metrics.mig.num_bins", "expected an integer"),
        ({"mig": {"num_bins": 0}}, "eval.metrics.mig.num_bins", "out of range"),
        ({"factor_vae_score": {"batch_size": 1}}, "eval.metrics.factor_vae_score.batch_size", "must be >= 2"),
        ({"dci": {"learning_rate": -0.1}}, "eval.metrics.dci.learning_rate", "must be > 0"),
        ({"sap": {"continuous_factors": 1}}, "eval.metrics.sap.continuous_factors", "expected true/false"),
        ({"mig": [1, 2]}, "eval.metrics.mig", "expected a mapping"),
    ],
)
def test_bad_settings_name_their_path(spec, path, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate_specs(spec)
    assert info.value.path == path
    assert str(info.value).startswith(path + ": ")


def test_valid_settings_are_resolved_with_defaults():
    specs = {"mig": None, "dci": {"learning_rate": 1, "num_train": 100}, "nll": {"num_examples": None}}
    resolved = validate_specs(specs, path="x")
    assert resolved == {
        "mig": {"num_train": 10000, "num_bins": 20, "batch_size": 1024},
        "dci": {
            "learning_rate": 1.0,
            "num_train": 100,
            "num_test": 5000,
            "batch_size": 1024,
            "n_estimators": 100,
            "max_depth": 3,
        },
        "nll": {"num_examples": None, "k": 1000, "batch_size": 100, "elbo": False},
    }
    assert isinstance(resolved["dci"]["learning_rate"], float)
    assert validate_specs(resolved, path="x") == resolved  # idempotent: a saved config re-validates to itself
    assert validate_specs(None) == {}
    with pytest.raises(ConfigError, match="expected a mapping"):
        validate_specs(["mig"])


def test_runs_each_metric_with_only_the_arguments_it_takes(toy, identity):
    specs = {
        "mig": {"num_train": 500},
        "dci": {"num_train": 200, "num_test": 100, "n_estimators": 5},
        "nll": {"k": 3, "num_examples": 20},
    }
    results = evaluate(specs, dataset=toy, represent=identity, log_likelihood=fake_log_likelihood, seed=4)
    expected = {
        **mig(toy, identity, seed=4, num_train=500),
        **dci(toy, identity, seed=4, num_train=200, num_test=100, n_estimators=5),
        **nll(toy, fake_log_likelihood, seed=4, k=3, num_examples=20),
    }
    assert results == expected
    assert set(results) == {
        "mig",
        "dci_disentanglement",
        "dci_completeness",
        "dci_informativeness_train",
        "dci_informativeness_test",
        "nll",
        "nll_se",
        "bits_per_dim",
        "bits_per_dim_se",
    }
    assert all(isinstance(v, float) for v in results.values())


def test_disentanglement_metric_needs_ground_truth_factors():
    mnist = Unlabelled(torch.zeros(10, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="metric 'mig' needs a dataset with ground-truth factors; 'mnist' has none"):
        evaluate({"mig": {}}, dataset=mnist, represent=lambda x: x.flatten(1))
    # A likelihood metric is fine on it.
    assert "nll" in evaluate({"nll": {"k": 2}}, dataset=mnist, log_likelihood=fake_log_likelihood)


def test_requirements_are_checked_before_anything_runs(toy):
    calls = []

    def represent(x):
        calls.append(len(x))
        return x.clone()

    with pytest.raises(ConfigError, match="metric 'nll' needs a model with a log_likelihood") as info:
        evaluate({"mig": {"num_train": 100}, "nll": {}}, dataset=toy, represent=represent)
    assert info.value.path == "eval.metrics.nll"
    assert calls == []
    with pytest.raises(ConfigError, match="needs a representation function"):
        evaluate({"sap": {}}, dataset=toy, log_likelihood=fake_log_likelihood)


def test_seed_is_forwarded(toy, noise):
    a = evaluate({"mig": {"num_train": 300}}, dataset=toy, represent=noise, seed=1)
    b = evaluate({"mig": {"num_train": 300}}, dataset=toy, represent=noise, seed=2)
    assert a == evaluate({"mig": {"num_train": 300}}, dataset=toy, represent=noise, seed=1)
    assert a != b
    assert np.isfinite(a["mig"])
