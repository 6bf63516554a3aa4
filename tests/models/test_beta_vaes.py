"""β-VAE_H, β-VAE_B and β-TCVAE: each regulariser against its equation, term by term."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import kl_divergence

from vaeray.data.base import Batch
from vaeray.models import tc
from vaeray.registry import MODELS


def build(name: str, dataset_size: int | None = 100, **over):
    spec = {"name": name, "latent_dim": 4, "net": "mlp", "hidden": [32], **over}
    return MODELS.build(spec, "model", observation_shape=(1, 16, 16), dataset_size=dataset_size)


def batch(n: int = 12, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(x=(torch.rand(n, 1, 16, 16, generator=g) > 0.5).float())


def elbo_parts(m, b: Batch, seed: int):
    """rec, analytic KL, z and q with the same reparameterisation noise the model's loss draws first."""
    torch.manual_seed(seed)
    q = m.encode(b.x)
    z = q.rsample()
    return -m.decode(z).log_prob(b.x).mean(), kl_divergence(q, m.prior()).mean(), z, q


@pytest.mark.parametrize("step,anneal", [(0, 0.0), (25, 0.25), (100, 1.0), (500, 1.0)])
def test_beta_vae_h_is_rec_plus_warmed_up_beta_kl(step, anneal):
    m = build("beta_vae_h", beta=4.0, reg_anneal=100)
    b = batch()
    torch.manual_seed(1)
    terms = m.loss(b, step)
    rec, kl, _, _ = elbo_parts(m, b, 1)
    assert terms["rec"].item() == pytest.approx(rec.item(), rel=1e-6)
    assert terms["loss"].item() == pytest.approx((rec + anneal * 4.0 * kl).item(), rel=1e-6)


def test_capacity_schedule_endpoints():
    m = build("beta_vae_b", C_init=2.0, C_fin=25.0, C_steps=1000)
    assert m.capacity(0) == 2.0
    assert m.capacity(500) == pytest.approx(13.5)
    assert m.capacity(999) < 25.0
    assert m.capacity(1000) == 25.0
    assert m.capacity(10**7) == 25.0
    assert [m.capacity(s) for s in range(0, 1001, 100)] == sorted(m.capacity(s) for s in range(0, 1001, 100))
    assert build("beta_vae_b", C_steps=0).capacity(0) == 25.0  # no schedule: C_fin from the start
    assert build("beta_vae_b").C_steps == 100_000 and build("beta_vae_b").gamma == 100.0  # reference defaults


@pytest.mark.parametrize("step", [0, 300, 1000, 4000])
def test_beta_vae_b_is_rec_plus_gamma_abs_kl_minus_capacity(step):
    m = build("beta_vae_b", gamma=100.0, C_init=0.0, C_fin=25.0, C_steps=1000)
    b = batch()
    torch.manual_seed(2)
    terms = m.loss(b, step)
    rec, kl, _, _ = elbo_parts(m, b, 2)
    c = min(step / 1000, 1.0) * 25.0
    assert terms["capacity"].item() == pytest.approx(c)
    assert terms["loss"].item() == pytest.approx((rec + 100.0 * (kl - c).abs()).item(), rel=1e-6)


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_beta_tcvae_loss_is_the_weighted_decomposition(estimator):
    m = build("beta_tcvae", alpha=-2.0, beta=6.0, gamma=3.0, reg_anneal=10, estimator=estimator)
    b = batch()
    torch.manual_seed(3)
    terms = m.loss(b, step=5)
    rec, kl, z, q = elbo_parts(m, b, 3)
    mc_kl = (q.log_prob(z) - m.prior().log_prob(z)).mean()
    assert terms["kl"].item() == pytest.approx(kl.item(), rel=1e-6)  # the logged KL stays analytic
    total = terms["mi"] + terms["tc"] + terms["dwkl"]
    assert total.item() == pytest.approx(mc_kl.item(), rel=1e-5, abs=1e-4)
    # only the dimension-wise KL is warmed up (0.5 at step 5 of 10), as in the reference code
    expect = rec - 2.0 * terms["mi"] + 6.0 * terms["tc"] + 0.5 * 3.0 * terms["dwkl"]
    assert terms["loss"].item() == pytest.approx(expect.item(), rel=1e-6)
    ref = tc.decompose(q, z, m.prior().log_prob(z), 100, estimator)
    for k in ("mi", "tc", "dwkl"):
        assert terms[k].item() == pytest.approx(ref[k].item(), rel=1e-5, abs=1e-5)


def test_beta_tcvae_mws_offset_uses_the_injected_dataset_size():
    """MWS's TC grows by (D−1)·log(N'/N) when the dataset size grows from N to N' (its −log N·M constant)."""
    b = batch()
    m = build("beta_tcvae", dataset_size=100, estimator="mws")
    tcs = {}
    for n in (100, 100_000):
        m.dataset_size = n
        torch.manual_seed(4)
        tcs[n] = m.loss(b, 0)["tc"].item()
    assert tcs[100_000] - tcs[100] == pytest.approx(3 * math.log(1000), rel=1e-5)


def test_beta_tcvae_needs_a_dataset_size_and_a_big_enough_dataset():
    with pytest.raises(ValueError, match="dataset_size"):
        build("beta_tcvae", dataset_size=None)
    m = build("beta_tcvae", dataset_size=8)
    with pytest.raises(ValueError, match="mws"):
        m.loss(batch(12), 0)
    assert torch.isfinite(build("beta_tcvae", dataset_size=8, estimator="mws").loss(batch(12), 0)["loss"])
