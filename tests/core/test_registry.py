"""Registries: every entry is constructible from its defaults' schema; metric result keys are declared truly."""

from __future__ import annotations

import inspect

import pytest
import torch

from tests.conftest import Squares, tiny_config
from vaeray.config import validate
from vaeray.data.groups import FactorGroups
from vaeray.errors import ConfigError
from vaeray.metrics import KEYS
from vaeray.metrics.evaluate import evaluate
from vaeray.registry import DATASETS, METRICS, MODELS, Registry, load_all
from vaeray.train import build_dataset, build_model

load_all()

SMALL = {
    "num_train": 200, "num_test": 100, "num_eval": 100, "num_variance_estimate": 200, "n_estimators": 5,
    "k": 4, "num_examples": 8, "batch_size": 16, "num_sequences": 8,
}
# metrics that need a particular kind of model (the RBM-prior NLL needs a model with an AIS log Z)
MODEL_FOR = {
    "dvae_nll": {"name": "dvaes_power", "units": 4, "hidden": 8, "num_chains": 8, "ais_temperatures": 10, "ais_particles": 8},
}


class GroupedSquares(FactorGroups, Squares):
    """Squares grouped by size (the groups are the sizes present in a batch): every model gets ``Batch.group``
    (only ml_vae reads it), and the style/content metrics get a grouped dataset."""

    def __init__(self):
        super().__init__()
        self.init_factor_groups(["size"], None)


ML_VAE = {"name": "ml_vae", "hidden": [16], "style_dim": 2, "content_dim": 2}
SEQUENCE_METRICS = {"equivariance", "capcorr", "sequence_nll"}  # Topographic VAE: sequences and a sequence model


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_reports_exactly_its_declared_keys(name):
    """The sweep layer validates `sweep.metric` against these declarations, so they must be the truth."""
    data = Squares()
    cfg = tiny_config()
    cfg["model"] = MODEL_FOR.get(name, cfg["model"])
    cfg = validate(cfg)
    if name in SEQUENCE_METRICS:
        from tests.metrics.test_topographic_equivariance import IndexSequences

        data = IndexSequences(split="test", num_test=8)
        cfg = validate({**tiny_config(), "model": {"name": "tvae", "n_caps": 2, "cap_dim": 15, "k_time": 3,
                                                   "net": "mlp", "hidden": [8]}})
    model = build_model(cfg, data)
    extra = {}
    if "represent_parts" in inspect.signature(METRICS.get(name)).parameters:  # style/content metrics
        data = GroupedSquares()
        extra["represent_parts"] = build_model(validate({**tiny_config(), "model": ML_VAE}), data).represent_parts
    params = METRICS.parameters(name)
    kwargs = {k: v for k, v in SMALL.items() if k in params}
    if name == "factor_vae_score":
        kwargs["batch_size"] = 8
    out = evaluate(
        {name: kwargs}, dataset=data, represent=model.represent, log_likelihood=model.log_likelihood, **extra
    )
    declared = set(METRICS.get(name).keys)
    if name == "nll":  # bits/dim only for non-binary data
        assert set(out) == {"nll", "nll_se"} and set(out) <= declared
    else:
        assert set(out) == declared
    assert KEYS[name] == METRICS.get(name).keys


def test_every_model_builds_from_its_defaults():
    data = GroupedSquares()
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
