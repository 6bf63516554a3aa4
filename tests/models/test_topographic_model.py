"""The Topographic VAE family: contract, equalities with direct implementations, the IS estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.models.test_topographic_grouper import naive_shifting, naive_stationary
from vaeray.data.base import Batch
from vaeray.errors import ConfigError
from vaeray.registry import MODELS, load_all

load_all()
SEQ = (4, 1, 6, 6)  # S = 4 frames of 1×6×6
VARIANTS = {
    "tvae": {"n_caps": 2, "cap_dim": 4, "k_time": 3, "n_off_diag": 1, "mu_init": 2.0},
    "bubble_vae": {"n_caps": 2, "cap_dim": 4, "k_time": 2, "k_space": 3, "mu_init": 2.0},
    "tvae_l0": {"n_caps": 2, "cap_dim": 4, "k_space": 3, "mu_init": 2.0},
    "nontvae": {"n_caps": 2, "cap_dim": 4},
    "tvae_2d": {"n_caps": 1, "cap_dim": 9, "k": 3, "mu_init": 2.0},
}


def build(name, shape=SEQ, **over):
    spec = {"name": name, "net": "mlp", "hidden": [16], **VARIANTS.get(name, {}), **over}
    return MODELS.build(spec, "model", observation_shape=shape, dataset_size=10)


@pytest.fixture
def seqs():
    return torch.rand(3, *SEQ, generator=torch.Generator().manual_seed(0))


def test_every_family_member_is_in_the_table():
    from vaeray.models import topographic

    family = {n for n in MODELS if MODELS[n].__module__ == topographic.__name__}
    assert family == set(VARIANTS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_contract(name, seqs):
    torch.manual_seed(0)
    m = build(name)
    terms = m.loss(Batch(x=seqs), step=0)
    assert set(terms) == set(m.terms)
    assert all(v.dim() == 0 and math.isfinite(v.item()) for v in terms.values())
    torch.testing.assert_close(terms["loss"], terms["rec"] + terms["kl_z"] + terms["kl_u"])
    grads = torch.autograd.grad(terms["loss"], list(m.parameters()))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    caps = VARIANTS[name]["n_caps"], VARIANTS[name]["cap_dim"]
    assert m.represent(seqs).shape == (3, 4, *caps)
    assert m.reconstruct(seqs).shape == seqs.shape
    assert m.log_likelihood(seqs, k=3).shape == (3,)
    assert m.log_likelihood(seqs, k=3, per="frame").shape == (3, 4)


def test_single_images_are_one_frame_sequences():
    """On a batch of single images the model is a one-frame sequence model, and its code is flat (B, D), as
    the disentanglement metrics take it: the same numbers as the frame's capsules."""
    m = build("tvae_2d", shape=(1, 6, 6))
    x = torch.rand(5, 1, 6, 6)
    assert m.represent(x).shape == (5, 9) and m.reconstruct(x).shape == x.shape
    torch.testing.assert_close(m.represent(x), m.represent(x[:, None])[:, 0].flatten(1))
    assert math.isfinite(m.loss(Batch(x=x), 0)["loss"].item())


def test_bad_configs_fail_with_one_line():
    with pytest.raises(ConfigError, match="n_transforms=5 but the data's sequences have 4"):
        build("tvae", n_transforms=5)
    with pytest.raises(ConfigError, match="square"):
        build("tvae_2d", cap_dim=8)
    with pytest.raises(ConfigError, match="32×32 or 64×64"):
        build("tvae", net="burgess")


def direct_loss(m, x, seed, naive):
    """The per-frame negative ELBO written out: Gaussian reparameterisation, analytic KLs, Bernoulli BCE."""
    torch.manual_seed(seed)
    flat = x.reshape(-1, *x.shape[2:])
    mz, lz = m.encoder(flat).chunk(2, -1)
    mu_u, lu = m.u_encoder(flat).chunk(2, -1)
    z = torch.distributions.Normal(mz, torch.exp(0.5 * lz)).rsample()
    u = torch.distributions.Normal(mu_u, torch.exp(0.5 * lu)).rsample()
    B, S = x.shape[:2]
    caps = (B, S, m.n_caps, m.cap_dim)
    t = (z.reshape(caps) + m.mu) / torch.sqrt(naive(u.reshape(caps) ** 2) + m.eps)
    logits = m.decoder(t.reshape(B * S, -1))
    rec = F.binary_cross_entropy_with_logits(logits, flat, reduction="sum") / (B * S)
    kl = lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).sum() / (B * S)  # noqa: E731
    return rec + kl(mz, lz) + kl(mu_u, lu)


def test_tvae_loss_equals_the_direct_implementation(seqs):
    m = build("tvae").double()
    x = seqs.double()
    torch.manual_seed(5)
    got = m.loss(Batch(x=x), 0)["loss"]
    want = direct_loss(m, x, 5, lambda u2: naive_shifting(u2, 3, 1))
    torch.testing.assert_close(got, want)


def test_roll_disabled_is_bubble_vae_and_both_equal_the_direct_implementation(seqs):
    x = seqs.double()
    unrolled = build("tvae", k_time=2, n_off_diag=1, roll=False).double()
    bubble = build("bubble_vae", k_time=2, k_space=3).double()
    bubble.load_state_dict(unrolled.state_dict())
    losses = []
    for m in (unrolled, bubble):
        torch.manual_seed(7)
        losses.append(m.loss(Batch(x=x), 0))
    assert all(torch.equal(losses[0][k], losses[1][k]) for k in losses[0])
    torch.testing.assert_close(losses[1]["loss"], direct_loss(bubble, x, 7, lambda u2: naive_stationary(u2, 2, 3)))


def test_nontvae_is_the_project_vae_on_the_frames(seqs):
    vae = MODELS.build({"name": "vae", "latent_dim": 8, "net": "mlp", "hidden": [16]}, "model",
                       observation_shape=SEQ[1:])
    non = build("nontvae")
    non.load_state_dict(vae.state_dict())  # same module names, no extra parameters (no u, no μ)
    torch.manual_seed(3)
    got = non.loss(Batch(x=seqs), 0)
    torch.manual_seed(3)
    want = vae.loss(Batch(x=seqs.reshape(-1, *SEQ[1:])), 0)
    for k in ("loss", "rec", "kl"):
        torch.testing.assert_close(got[k], want[k], rtol=1e-6, atol=1e-6)
    assert got["kl_u"] == 0


def exact_log_likelihood(m, x, nodes=40):
    """log p(x) of a 2-frame, 1-unit TVAE by Gauss–Hermite quadrature over (z1, z2, u1, u2) ~ N(0, I)."""
    g, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    grid = np.stack(np.meshgrid(g, g, g, g, indexing="ij"), -1).reshape(-1, 4)
    logw = np.log(np.einsum("a,b,c,d->abcd", w, w, w, w).reshape(-1))
    zu = torch.as_tensor(grid, dtype=torch.float64)
    z, u = zu[:, :2, None], zu[:, 2:, None]  # (N, S=2, 1)
    logp = m.decode(m.topographic(z, u)).log_prob(x.expand(len(zu), *x.shape[1:])).sum(-1)
    return torch.logsumexp(logp + torch.as_tensor(logw), 0).item()


def test_importance_sampled_likelihood_is_below_the_exact_value_and_tightens_with_k():
    torch.manual_seed(0)
    m = build("tvae", shape=(2, 1, 1, 2), n_caps=1, cap_dim=1, k_time=2, n_off_diag=0, mu_init=0.5, eps=1.0,
              hidden=[8]).double()
    with torch.no_grad():
        m.decoder.net[-1].weight.mul_(6.0)  # an informative likelihood, so q is far from the posterior
    x = torch.tensor([[[[[1.0, 0.0]]], [[[0.0, 1.0]]]]], dtype=torch.float64)  # (1, S=2, 1, 1, 2)
    exact = exact_log_likelihood(m, x)
    assert abs(exact - exact_log_likelihood(m, x, nodes=32)) < 1e-3  # quadrature converged
    reps = x.expand(2000, *x.shape[1:])
    means = {k: m.log_likelihood(reps, k=k, chunk=100).mean().item() for k in (1, 10, 100)}
    # measured: exact −4.0728; K=1 −4.385, K=10 −4.095, K=100 −4.0739 (standard errors < 0.003)
    assert means[1] + 0.1 < means[10] < means[100] < exact + 0.005  # tightens with K, stays below log p(x)
    assert exact - means[1] > 0.2  # the ELBO gap is real, so the test can see the tightening
    assert abs(m.log_likelihood(x.expand(50, *x.shape[1:]), k=4000).mean().item() - exact) < 0.02


def test_per_frame_estimate_equals_the_sequence_estimate_for_one_frame():
    m = build("tvae", shape=(1, 1, 6, 6), k_time=1)
    x = torch.rand(4, 1, 1, 6, 6)
    torch.manual_seed(1)
    a = m.log_likelihood(x, k=20)
    torch.manual_seed(1)
    b = m.log_likelihood(x, k=20, per="frame")
    torch.testing.assert_close(a, b[:, 0])


def test_untrained_representation_is_the_initial_model_and_not_saved(seqs):
    m = build("tvae")
    before = m.represent(seqs)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1)
    assert not torch.allclose(m.represent(seqs), before)
    torch.testing.assert_close(m.represent(seqs, untrained=True), before)
    assert set(m.state_dict()) == {k for k, _ in m.named_parameters()} and "mu" in m.state_dict()
