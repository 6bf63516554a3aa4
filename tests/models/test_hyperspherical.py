"""The S-VAE family (svae): model contract for vMF / Power Spherical latents and products of spheres on the MLP and
Burgess nets, the importance-sampled likelihood, and short `vaeray train` runs on static binarised MNIST."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import run_inprocess
from vaeray.data.base import Batch
from vaeray.distributions import ProductSpheres
from vaeray.errors import ConfigError
from vaeray.registry import MODELS, load_all
from vaeray.train import build_dataset, build_model, evaluate, seed_everything

load_all()


def build(shape=(1, 28, 28), **spec):
    return MODELS.build({"name": "svae", "hidden": [32], **spec}, "model", observation_shape=shape, dataset_size=64)


@pytest.mark.parametrize("family", ["vmf", "power_spherical"])
@pytest.mark.parametrize("net, shape", [("mlp", (1, 28, 28)), ("burgess", (1, 32, 32))])
@pytest.mark.parametrize("spheres", [[2], [1, 3, 3]])
def test_contract(family, net, shape, spheres):
    torch.manual_seed(0)
    m = build(shape, family=family, net=net, spheres=spheres)
    x = torch.bernoulli(torch.full((6, *shape), 0.3))
    terms = m.loss(Batch(x=x), step=0)
    assert set(terms) == set(m.terms) and all(v.dim() == 0 and math.isfinite(v.item()) for v in terms.values())
    grads = torch.autograd.grad(terms["loss"], list(m.parameters()), allow_unused=True)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    q = m.encode(x)
    ambient = [d + 1 for d in spheres]
    assert isinstance(q, ProductSpheres) and q.sizes == ambient and q.batch_shape == (6,)
    assert all((f.scale >= 1.0).all() for f in q.factors)  # κ = softplus + 1
    z = m.represent(x)
    assert z.shape == (6, sum(ambient))
    for part in z.split(ambient, dim=-1):
        torch.testing.assert_close(part.norm(dim=-1), torch.ones(6))
    ll = m.log_likelihood(x, k=20)
    assert ll.shape == (6,) and torch.isfinite(ll).all()
    assert m.sample(3).shape == (3, *shape)


def test_kl_warmup_beta_and_kappa_offset():
    torch.manual_seed(0)
    m = build(spheres=[4], kl_warmup=100, beta=2.0, kappa_offset=5.0)
    x = torch.bernoulli(torch.full((8, 1, 28, 28), 0.3))
    torch.manual_seed(1)
    t0 = m.loss(Batch(x=x), step=0)
    torch.manual_seed(1)
    t50 = m.loss(Batch(x=x), step=50)
    assert t0["loss"].item() == pytest.approx(t0["rec"].item())
    assert t50["loss"].item() == pytest.approx(t50["rec"].item() + 2.0 * 0.5 * t50["kl"].item(), rel=1e-6)
    assert (m.encode(x).factors[0].scale >= 5.0).all()


def test_iwae_bound_is_above_the_elbo_and_tightens():
    torch.manual_seed(0)
    m = build(spheres=[3, 3])
    x = torch.bernoulli(torch.full((16, 1, 28, 28), 0.2))
    with torch.no_grad():
        elbo = torch.stack([-(m.loss(Batch(x=x), 0)["rec"] + m.loss(Batch(x=x), 0)["kl"]) for _ in range(20)]).mean()
        ll = m.log_likelihood(x, k=500).mean()
    assert ll > elbo


def test_spheres_are_manifold_dimensions_at_least_one():
    assert build(spheres=[1]).latent_dim == 2  # S¹ ⊂ R²
    assert build(spheres=[4, 4]).latent_dim == 10  # S⁴ × S⁴ ⊂ R¹⁰
    with pytest.raises(ConfigError, match="manifold dimensions >= 1"):
        build(spheres=[0])


@pytest.fixture(scope="module")
def static_dir(request) -> Path:
    shared = request.getfixturevalue("shared_data")
    if not (shared / "binarized-mnist").is_dir():
        pytest.skip("shared binarized-mnist files absent")
    return shared


@pytest.mark.parametrize("model", [
    {"name": "svae", "spheres": [9], "family": "vmf"},
    {"name": "svae", "spheres": [4, 4], "family": "power_spherical"},
])
def test_vaeray_train_on_static_mnist_lowers_loss_and_nll(model, static_dir, tmp_path, monkeypatch, capsys):
    cfg = {
        "seed": 0,
        "model": {**model, "kl_warmup": 50},
        "data": {"name": "binarized_mnist"},
        "train": {"steps": 150, "batch_size": 64, "lr": 1e-3, "log_every": 30, "checkpoint_every": 150,
                  "early_stop_every": 50, "early_stop_examples": 200},
        "eval": {"metrics": {"nll": {"k": 50, "num_examples": 100}}},
    }
    f = tmp_path / "svae.yaml"
    f.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    code, _, err = run_inprocess(monkeypatch, capsys, "train", str(f), "--run-dir", str(run),
                                 "--data-dir", str(static_dir), "--no-progress")
    assert code == 0, err
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < rows[0]["loss"] - 50  # ~540 nats at init on 784 pixels, ~200 after 150 steps
    assert math.isfinite(rows[-1]["nll"]) and "rec" in rows[-1] and "kl" in rows[-1] and "valid_elbo" in rows[-1]
    # the same seed and config give the initial model; its importance-sampled NLL is far worse
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    seed_everything(0)
    data = build_dataset(resolved, "train", "cpu", str(static_dir))
    init = build_model(resolved, data)
    nll0 = evaluate(init, resolved, data, data_dir=str(static_dir))["nll"]
    assert rows[-1]["nll"] < nll0 - 100


def test_burgess_net_on_28_pixel_images_is_a_config_error():
    with pytest.raises(ConfigError, match="model.net: the Burgess net takes 32×32 or 64×64"):
        build((1, 28, 28), net="burgess")
