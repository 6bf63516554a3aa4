"""Registries: every entry is constructible from its defaults' schema; metric result keys are declared truly."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import Squares, tiny_config
from vaeray.config import validate
from vaeray.errors import ConfigError
from vaeray.metrics import KEYS
from vaeray.metrics.evaluate import evaluate
from vaeray.registry import DATASETS, METRICS, MODELS, Registry, load_all
from vaeray.train import build_dataset, build_model

load_all()

SMALL = {
    "num_train": 200, "num_test": 100, "num_eval": 100, "num_variance_estimate": 200, "n_estimators": 5,
    "k": 4, "num_examples": 8, "batch_size": 16,
}
# metrics that need a particular kind of model (the RBM-prior NLL needs a model with an AIS log Z)
MODEL_FOR = {
    "dvae_nll": {"name": "dvaes_power", "units": 4, "hidden": 8, "num_chains": 8, "ais_temperatures": 10, "ais_particles": 8},
}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_reports_exactly_its_declared_keys(name):
    """The sweep layer validates `sweep.metric` against these declarations, so they must be the truth."""
    data = Squares()
    cfg = tiny_config()
    cfg["model"] = MODEL_FOR.get(name, cfg["model"])
    cfg = validate(cfg)
    model = build_model(cfg, data)
    params = METRICS.parameters(name)
    kwargs = {k: v for k, v in SMALL.items() if k in params}
    if name == "factor_vae_score":
        kwargs["batch_size"] = 8
    out = evaluate({name: kwargs}, dataset=data, represent=model.represent, log_likelihood=model.log_likelihood)
    declared = set(METRICS.get(name).keys)
    if name == "nll":  # bits/dim only for non-binary data
        assert set(out) == {"nll", "nll_se"} and set(out) <= declared
    else:
        assert set(out) == declared
    assert KEYS[name] == METRICS.get(name).keys


def test_every_model_builds_from_its_defaults():
    data = Squares()
    for name in MODELS:
        spec = {"name": name}
        if "net" in MODELS.parameters(name):
            spec.update(net="mlp", hidden=[16])
        cfg = validate({**tiny_config(), "model": spec})
        model = build_model(cfg, data)
        x = data.batch(torch.arange(8)).x
        terms = model.loss(data.batch(torch.arange(8)), 0)
        assert "loss" in terms and set(getattr(type(model), "terms", terms)) <= set(terms) | {"loss"}


def test_every_dataset_schema_has_defaults_for_all_user_keys():
    for name in DATASETS:
        for key, p in DATASETS.parameters(name).items():
            assert p.default is not p.empty, f"dataset {name}: '{key}' needs a default"


def test_unknown_names_list_valid_ones():
    reg = Registry("thing")
    reg.register("alpha")(type("Alpha", (), {}))
    with pytest.raises(ConfigError, match=r"unknown thing 'alpah'; did you mean 'alpha'\? valid: alpha"):
        reg.get("alpah")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("alpha")(type("Alpha2", (), {}))


def test_build_dataset_falls_back_to_train_split():
    cfg = validate(tiny_config())
    assert len(build_dataset(cfg, split="test")) == 32  # test_squares has only a train split
