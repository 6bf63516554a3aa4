"""One table over the Gaussian-VAE family (vae and its disentangling regularisers): the shared model contract."""

from __future__ import annotations

import math

import pytest
import torch

from tests.models.conftest import FAMILY, Sprites64, run_config
from vaeray.data.base import Batch
from vaeray.models.gaussian import VAE
from vaeray.registry import MODELS, load_all
from vaeray.train import fit

load_all()
MODULES = {"vaeray.models.gaussian", "vaeray.models.disentangle", "vaeray.models.factor"}
REGISTERED = sorted(n for n in MODELS if issubclass(MODELS[n], VAE) and MODELS[n].__module__ in MODULES)


def test_the_table_covers_the_family():
    assert set(FAMILY) <= set(REGISTERED)


def build(name: str, net: str):
    spec = {"name": name, "latent_dim": 5, "net": net, "hidden": [32]}
    if name == "factor_vae":
        spec["disc_hidden"] = 64
    return MODELS.build(spec, "model", observation_shape=(1, 64, 64), dataset_size=108)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    data = Sprites64()
    return data.observations(torch.arange(0, 108, 9))  # 12 images


@pytest.mark.parametrize("net", ["mlp", "burgess"])
@pytest.mark.parametrize("name", REGISTERED)
def test_contract(name, net, images):
    torch.manual_seed(0)
    m = build(name, net)
    terms = m.loss(Batch(x=images), step=3)
    assert "loss" in m.terms and set(terms) == set(m.terms)
    for k, v in terms.items():
        assert v.dim() == 0 and math.isfinite(v.item()), k
    assert m.represent(images).shape == (12, 5)
    groups = m.parameter_groups()
    assert sum(len(g.params) for g in groups.values()) == len(list(m.parameters()))
    names = list(groups)
    for i, (loss_name, group) in enumerate(groups.items()):
        grads = torch.autograd.grad(terms[loss_name], group.params, retain_graph=i < len(names) - 1, allow_unused=True)
        for p, g in zip(group.params, grads):
            assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, (loss_name, p.shape)


def test_beta_vae_h_with_beta_one_is_exactly_vae():
    runs = {}
    for name, extra in (("vae", {}), ("beta_vae_h", {"beta": 1.0})):
        rows, states = [], []
        fit(run_config(name, steps=40, reg_anneal=20, **extra), device="cpu",
            report=lambda r, s: (rows.append(r), s is not None and states.append(s)))
        runs[name] = rows, states[-1]["model"]
    (rows_a, model_a), (rows_b, model_b) = runs["vae"], runs["beta_vae_h"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "examples_per_s"} for r in rows]  # noqa: E731
    assert strip(rows_a) == strip(rows_b)
    assert model_a.keys() == model_b.keys() and all(torch.equal(model_a[k], model_b[k]) for k in model_a)
