"""The eight DVAE/DVAE++/DVAE# baselines: objectives against enumeration on tiny models, PCD inside the loss,
the discrete-model likelihood against its exact value, and short training runs on static binarised MNIST."""

from __future__ import annotations

import math

import pytest
import torch

from vaeray.data.base import Batch
from vaeray.distributions.boltzmann import all_states, exact_log_z
from vaeray.models.discrete import BASELINES, BETAS, default_beta
from vaeray.registry import DATASETS, MODELS
from vaeray.train import build_model, fit

TINY = {"units": 4, "hidden": 8, "num_chains": 16, "sweeps": 2, "ais_temperatures": 200, "ais_particles": 256}


def tiny(name: str, obs=(6,), **kw):
    torch.manual_seed(0)
    return MODELS.build({"name": name, **TINY, **kw}, "model", observation_shape=obs)


def test_all_baselines_registered_with_the_paper_betas():
    assert set(BASELINES) <= set(MODELS)
    assert default_beta("dvaepp_power", "mnist", "1-layer-nonlin") == 30
    assert default_beta("dvaes_power", "omniglot", "2-layer-nonlin") == 20
    assert len(BETAS) == 8 and all(len(v) == 8 for v in BETAS.values())
    m = tiny("dvaes_gauss", structure="4-layer-nonlin", beta_table="omniglot")
    assert m.beta == 25 and m.levels == 4
    assert tiny("dvaes_gauss", beta=7.0).beta == 7.0


def test_one_level_kl_is_the_exact_discrete_kl():
    """−H(q) + E_q[E] + log Z equals Σ_z q(z) log q(z)/p(z) by enumeration (units = 4: a 2 × 2 RBM)."""
    m = tiny("dvaepp_exp", structure="1-layer-lin")
    with torch.no_grad():
        for p in (m.rbm.b1, m.rbm.b2, m.rbm.w):
            p.normal_(0, 1)
        m.rbm.log_z.fill_(float(exact_log_z(m.rbm.b1, m.rbm.b2, m.rbm.w)))
    logits = torch.randn(3, 4)
    posts = [m.posterior(0, logits)]
    kl = m.discrete_kl(posts, [posts[0].rsample()], m.rbm.log_z_surrogate()).detach()
    z = all_states(4, torch.float32)
    log_q = torch.distributions.Bernoulli(logits=logits[:, None, :]).log_prob(z).sum(-1)  # (3, 16)
    log_p = -m.rbm.energy(z).detach() - m.rbm.log_z
    brute = (log_q.exp() * (log_q - log_p)).sum(-1)
    assert torch.allclose(kl, brute, atol=1e-4)


def test_pcd_chains_advance_in_training_loss_only():
    m = tiny("dvaes_exp")
    x = torch.bernoulli(torch.full((5, 6), 0.4))
    before = m.rbm.chains1.clone(), m.rbm.chains2.clone()
    torch.manual_seed(1)
    m.loss(Batch(x=x), 0)
    assert not (torch.equal(before[0], m.rbm.chains1) and torch.equal(before[1], m.rbm.chains2))
    m.eval()
    after = m.rbm.chains1.clone()
    m.loss(Batch(x=x), 0)
    assert torch.equal(after, m.rbm.chains1)
    assert {"rbm.chains1", "rbm.chains2", "rbm.log_z", "data_mean"} <= set(m.state_dict())


@pytest.mark.parametrize("name", ["dvaepp_power", "dvaes_gi"])
def test_discrete_log_likelihood_matches_enumeration(name):
    """On a model small enough to enumerate z (8 binary latents, 2 levels), the importance-sampled log p(x)
    with AIS log Z approaches the exact Σ_z p(x|z) p(z), and its expectation rises with k (IWAE Thm. 1)."""
    m = tiny(name, structure="2-layer-nonlin", obs=(6,))
    with torch.no_grad():
        for p in (m.rbm.b1, m.rbm.b2, m.rbm.w):
            p.normal_(0, 0.7)
    m.eval()
    x = torch.bernoulli(torch.full((4, 6), 0.4))
    z = all_states(8, torch.float32)
    log_z = exact_log_z(m.rbm.b1, m.rbm.b2, m.rbm.w).float()
    with torch.no_grad():
        log_px_z = m.decode(z[:, None, :].expand(-1, 4, -1)).log_prob(x)  # (256, 4)
        exact = torch.logsumexp(log_px_z + (-m.rbm.energy(z) - log_z)[:, None], 0)
        torch.manual_seed(2)
        estimate = m.log_likelihood(x, 100_000)  # q is far from the posterior here: many samples
        assert abs(m.partition().log_z - float(log_z)) < 0.02
        assert torch.allclose(estimate, exact, atol=0.04)
        k1 = torch.stack([m.log_likelihood(x, 1) for _ in range(200)]).mean(0)
        k10 = torch.stack([m.log_likelihood(x, 10) for _ in range(50)]).mean(0)
    assert (k1 < k10).all() and (k10 < exact + 0.02).all()


def test_partition_is_cached_until_the_weights_change():
    m = tiny("dvaes_power")
    first = m.partition()
    assert m.partition() is first
    assert float(m.rbm.log_z) == pytest.approx(first.log_z)
    with torch.no_grad():
        m.rbm.w.add_(0.1)
    assert m.partition() is not first


BASELINE_CONFIG = {
    "structure": "1-layer-nonlin", "units": 16, "hidden": 64, "num_chains": 64, "sweeps": 5, "k": 2,
    "kl_warmup": 50, "ais_temperatures": 100, "ais_particles": 128,
}


@pytest.fixture(scope="module")
def mnist(shared_data):
    train = DATASETS.build({"name": "binarized_mnist"}, "data", data_dir=str(shared_data), split="train")
    test = DATASETS.build({"name": "binarized_mnist"}, "data", data_dir=str(shared_data), split="test")
    return train, test.batch(torch.arange(100)).x


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_trains_on_binarized_mnist(name, mnist):
    """200 steps (batch 32, 16 latents, 64 hidden): the loss falls, the discrete model's test NLL (AIS log Z)
    is finite and better than the untrained model's, and the estimate improves with more samples."""
    data, x_test = mnist
    cfg = {
        "seed": 0,
        "model": {"name": name, **BASELINE_CONFIG},
        "data": {"name": "binarized_mnist"},
        "train": {"steps": 200, "batch_size": 32, "lr": 3e-3, "log_every": 50, "checkpoint_every": 200},
    }
    rows, states = [], []
    fit(cfg, dataset=data, report=lambda m, s: (rows.append(m), states.append(s)))
    losses = [r["loss"] for r in rows]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0] - 10
    torch.manual_seed(0)
    untrained = build_model(cfg, data).eval()
    trained = build_model(cfg, data)
    trained.load_state_dict(states[-1]["model"])
    trained.eval()
    with torch.no_grad():
        nll0 = -float(untrained.log_likelihood(x_test, 20).mean())
        nll1 = -float(trained.log_likelihood(x_test, 1).mean())
        nll20 = -float(trained.log_likelihood(x_test, 20).mean())
    assert math.isfinite(nll20) and nll20 < nll0 - 20
    assert nll20 <= nll1


@pytest.mark.parametrize("structure", ["1-layer-lin", "4-layer-nonlin"])
@pytest.mark.parametrize("name", list(BASELINES))
def test_contract_every_parameter_gets_a_finite_gradient(name, structure):
    m = tiny(name, structure=structure, obs=(1, 4, 4), k=3)
    x = torch.bernoulli(torch.full((6, 1, 4, 4), 0.4))
    terms = m.loss(Batch(x=x), step=3)
    for key, v in terms.items():
        assert v.dim() == 0 and math.isfinite(v.item()), key
    assert m.represent(x).shape == (6, m.levels * 4)
    assert m.sample(5).shape == (5, 1, 4, 4)
    params = dict(m.named_parameters())
    grads = torch.autograd.grad(terms["loss"], list(params.values()), allow_unused=True)
    for (pname, p), g in zip(params.items(), grads):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, pname


def test_fit_on_a_tiny_omniglot_file_reports_the_discrete_nll(tmp_path):
    """A chardata.mat in the IWAE layout (1400 + 30 random images): the OMNIGLOT β row is picked, and the
    dvae_nll metric runs through fit's evaluation with all its keys."""
    import numpy as np
    import scipy.io

    from vaeray.metrics import KEYS

    rng = np.random.default_rng(0)
    cols = lambda n: rng.uniform(0.1, 0.9, size=(784, n)).astype(np.float32)  # noqa: E731
    onehot = lambda n: np.eye(50, dtype=np.float32)[rng.integers(0, 50, n)].T  # noqa: E731
    (tmp_path / "omniglot").mkdir()
    scipy.io.savemat(
        tmp_path / "omniglot" / "chardata.mat",
        {"data": cols(1400), "testdata": cols(30), "target": onehot(1400), "testtarget": onehot(30)},
    )
    cfg = {
        "seed": 0,
        "model": {"name": "dvaes_power", "structure": "2-layer-nonlin", **TINY, "ais_temperatures": 20, "ais_particles": 16},
        "data": {"name": "omniglot"},
        "train": {"steps": 10, "batch_size": 16, "log_every": 5, "checkpoint_every": 10},
        "eval": {"metrics": {"dvae_nll": {"k": 5, "num_examples": 10}}},
    }
    rows, states = [], []
    fit(cfg, data_dir=str(tmp_path), report=lambda m, s: (rows.append(m), states.append(s)))
    assert set(KEYS["dvae_nll"]) <= set(rows[-1]) and math.isfinite(rows[-1]["dvae_nll"])
    assert rows[-1]["dvae_nll_upper"] >= rows[-1]["dvae_nll"] - 1.0
    data = DATASETS.build({"name": "omniglot"}, "data", data_dir=str(tmp_path))
    assert build_model(cfg, data).beta == default_beta("dvaes_power", "omniglot", "2-layer-nonlin") == 20


def test_resume_equals_uninterrupted_training_with_pcd_chains():
    """The chains are buffers and their randomness is torch's global generator: stopping at step 6 and resuming
    gives the same parameters and chains as 12 uninterrupted steps."""
    from tests.conftest import tiny_config

    def config(steps: int) -> dict:
        cfg = tiny_config(train={"steps": steps, "log_every": 6, "checkpoint_every": 6})
        cfg["model"] = {"name": "dvaes_exp", **TINY, "k": 2}
        return cfg

    full, half, resumed = [], [], []
    fit(config(12), report=lambda m, s: full.append(s))
    fit(config(6), report=lambda m, s: half.append(s))
    fit(config(12), checkpoint=half[-1], report=lambda m, s: resumed.append(s))
    a, b = full[-1]["model"], resumed[-1]["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["rbm.chains1"], half[-1]["model"]["rbm.chains1"])


@pytest.mark.parametrize("base", ["zero", "chains"])
def test_partition_matches_exact_log_z_for_either_ais_base(base):
    m = tiny("dvae_spike_exp", structure="4-layer-nonlin", ais_base=base, num_chains=200)  # a 8 × 8 RBM
    with torch.no_grad():
        for p in (m.rbm.b1, m.rbm.b2, m.rbm.w):
            p.normal_(0, 0.8)
    m.rbm.update_chains(50)
    r = m.partition()
    exact = float(m.rbm.exact_log_z().detach())
    assert abs(r.log_z - exact) < 0.05 and abs(r.log_z_upper - exact) < 0.05 and len(r.repeats) == 2


def test_validation_nll_selection_is_checkpointed_and_survives_resume():
    """The DVAE# protocol through fit: every 2 steps the discrete-model NLL of the `valid` split (fresh AIS log Z);
    each reported value is that of the weights at its step; the run ends on the best-validated weights; stopping
    at step 4 and resuming ends on the same weights and the same selection as the uninterrupted run."""
    from tests.conftest import Squares, tiny_config
    from vaeray.train import build_dataset, evaluate

    class ValidSquares(Squares):
        splits = ("train", "valid")

    if "test_dvae_valid_squares" not in DATASETS:
        DATASETS.register("test_dvae_valid_squares")(ValidSquares)
    spec = {"dvae_nll": {"k": 3, "num_examples": 8, "batch_size": 100}}
    cfg = tiny_config(data={"name": "test_dvae_valid_squares"}, train={
        "steps": 8, "log_every": 2, "checkpoint_every": 2, "early_stop_every": 2, "early_stop_patience": None,
        "early_stop_metric": spec})
    cfg["model"] = {"name": "dvaepp_exp", "structure": "2-layer-nonlin", **TINY, "ais_temperatures": 20, "ais_particles": 16}
    rows, states = [], []
    fit(cfg, report=lambda m, s: (rows.append(m), states.append(s)))
    values = [r["valid_dvae_nll"] for r in rows]
    best = min(range(len(values)), key=values.__getitem__)
    assert [r["step"] for r in rows] == [2, 4, 6, 8] and rows[-1]["valid_best_step"] == 2 * (best + 1)
    assert rows[-1]["valid_dvae_nll_best"] == values[best] and math.isfinite(rows[-1]["valid_dvae_nll_log_z"])
    final = states[-1]["model"]
    assert all(torch.equal(final[k], states[best]["model"][k]) for k in final if k != "rbm.log_z")
    valid = build_dataset(cfg, "valid")
    for i in (0, 2):  # each reported value is the metric of that step's weights on the valid split
        model = build_model(cfg, valid)
        model.load_state_dict(states[i]["model"])
        again = evaluate(model, cfg, valid, data=valid, specs=spec)["dvae_nll"]
        assert again == pytest.approx(values[i], rel=1e-6)
    resumed = []
    fit(cfg, checkpoint=states[1], report=lambda m, s: resumed.append(s))
    a, b = final, resumed[-1]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed[-1]["early_stopping"]["best_step"] == states[-1]["early_stopping"]["best_step"]
