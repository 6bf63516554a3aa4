"""FactorVAE: permute-dims, the density-ratio TC, the discriminator loss and the isolation of the two groups."""

from __future__ import annotations

import pytest
import torch

from vaeray.config import TrainConfig
from vaeray.data.base import Batch
from vaeray.models.factor import FactorVAE, permute_dims, split_halves
from vaeray.registry import MODELS
from vaeray.train import _backward, make_optimizers


def model(**over) -> FactorVAE:
    spec = {"name": "factor_vae", "latent_dim": 3, "net": "mlp", "hidden": [32], "disc_hidden": 64, **over}
    return MODELS.build(spec, "model", observation_shape=(1, 16, 16), dataset_size=100)


def batch(n: int = 10, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(x=(torch.rand(n, 1, 16, 16, generator=g) > 0.5).float(), factors=torch.arange(n)[:, None])


def test_permute_dims_keeps_each_column_and_breaks_dependence():
    torch.manual_seed(0)
    base = torch.randn(4000, 1)
    z = torch.cat([base, 2 * base, -base, base + 1], dim=1)  # perfectly dependent columns
    p = permute_dims(z)
    assert torch.equal(p.sort(0).values, z.sort(0).values)  # each column keeps its multiset
    corr = torch.corrcoef(p.T)
    off = corr[~torch.eye(4, dtype=torch.bool)]
    assert off.abs().max() < 0.06  # |r| ~ 1/sqrt(4000) for independent columns; it was ±1
    # and the permutations differ between columns (one shared permutation would keep the dependence)
    rank = lambda c: c.argsort().argsort()  # noqa: E731
    assert not torch.equal(rank(p[:, 0]), rank(p[:, 1]))


def test_split_halves_slices_every_field():
    b = batch(7)
    first, second = split_halves(b)
    assert len(first) == 4 and len(second) == 3
    assert torch.equal(torch.cat([first.x, second.x]), b.x)
    assert torch.equal(torch.cat([first.factors, second.factors]), b.factors)
    with pytest.raises(ValueError, match="at least 2"):
        split_halves(batch(1))


def test_vae_terms_are_computed_on_the_first_half_only():
    m = model()
    b = batch(10)
    torch.manual_seed(3)
    terms = m.loss(b, step=0)
    torch.manual_seed(3)  # same reparameterisation noise: the first draw is z1 ~ q(z|x1)
    x1 = b.x[:5]
    q = m.encode(x1)
    z1 = q.rsample()
    assert terms["rec"].item() == pytest.approx(-m.decode(z1).log_prob(x1).mean().item(), rel=1e-6)
    assert terms["kl"].item() == pytest.approx(torch.distributions.kl_divergence(q, m.prior()).mean().item(), rel=1e-6)
    logits = m.discriminator(z1)
    assert terms["tc"].item() == pytest.approx((logits[:, 0] - logits[:, 1]).mean().item(), rel=1e-5, abs=1e-6)
    assert terms["loss"].item() == pytest.approx((terms["rec"] + terms["kl"] + m.gamma * terms["tc"]).item(), rel=1e-6)


def test_tc_and_discriminator_loss_in_closed_form():
    """With constant logits (a, b): TC = a − b, disc loss = logsumexp(a, b) − (a + b)/2, accuracy ½."""
    m = model(gamma=2.5, reg_anneal=10)
    last = m.discriminator.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.7, -0.4]))
    terms = m.loss(batch(12), step=4)
    a, b = 0.7, -0.4
    assert terms["tc"].item() == pytest.approx(a - b, abs=1e-6)
    lse = torch.logsumexp(torch.tensor([a, b]), 0).item()
    assert terms["disc_loss"].item() == pytest.approx(lse - (a + b) / 2, abs=1e-6)
    assert terms["disc_acc"].item() == pytest.approx(0.5)
    # γ·TC is warmed up over reg_anneal steps (0.4 at step 4 of 10); the KL is not
    expect = terms["rec"] + terms["kl"] + 0.4 * 2.5 * (a - b)
    assert terms["loss"].item() == pytest.approx(expect.item(), rel=1e-6)


def test_each_loss_reaches_only_its_own_group():
    """On its own (no training loop): disc_loss has no gradient path to the encoder/decoder, loss none to D."""
    m = model()
    groups = m.parameter_groups()
    vae, disc = groups["loss"].params, groups["disc_loss"].params
    assert {id(p) for p in vae}.isdisjoint(id(p) for p in disc)
    assert len(vae) + len(disc) == len(list(m.parameters()))
    terms = m.loss(batch(), step=0)
    leak = torch.autograd.grad(terms["disc_loss"], vae, retain_graph=True, allow_unused=True)
    assert all(g is None for g in leak)
    leak = torch.autograd.grad(terms["loss"], disc, retain_graph=True, allow_unused=True)
    assert all(g is None for g in leak)
    own = torch.autograd.grad(terms["loss"], vae, retain_graph=True, allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in own)
    own = torch.autograd.grad(terms["disc_loss"], disc, allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in own)


def test_discriminator_has_its_own_adam():
    m = model(lr_disc=3e-5)
    opts = make_optimizers(m, TrainConfig(lr=1e-3))
    assert set(opts) == {"loss", "disc_loss"}
    d = opts["disc_loss"].param_groups[0]
    assert d["lr"] == 3e-5 and tuple(d["betas"]) == (0.5, 0.9)
    v = opts["loss"].param_groups[0]
    assert v["lr"] == 1e-3 and tuple(v["betas"]) == (0.9, 0.999)


def _snapshot(params):
    return [p.detach().clone() for p in params]


def test_one_training_step_updates_each_group_only_from_its_own_loss():
    """Through the loop's ``_backward`` and optimizers: with the discriminator's objective zeroed, a step leaves
    D bit-identical although the VAE loss depends on D(z1); with the VAE's objective zeroed, the encoder and
    decoder stay put although disc_loss depends on their codes. And the encoder's gradient is that of
    ``loss`` alone."""
    tc = TrainConfig()
    for zeroed in ("disc_loss", "loss"):
        torch.manual_seed(0)
        m = model(lr_disc=1e-2)
        opts = make_optimizers(m, tc)
        groups = {k: [p for g in o.param_groups for p in g["params"]] for k, o in opts.items()}
        before = {k: _snapshot(v) for k, v in groups.items()}
        terms = dict(m.loss(batch(), step=0))
        expected = torch.autograd.grad(terms["loss"], groups["loss"], retain_graph=True)
        terms[zeroed] = 0.0 * terms[zeroed]
        _backward(terms, groups, grad_clip=None)
        if zeroed == "disc_loss":
            assert all(torch.equal(p.grad, e) for p, e in zip(groups["loss"], expected))
        for o in opts.values():
            o.step()
        moved = "loss" if zeroed == "disc_loss" else "disc_loss"
        assert all(torch.equal(p, b) for p, b in zip(groups[zeroed], before[zeroed])), zeroed
        assert any(not torch.equal(p, b) for p, b in zip(groups[moved], before[moved])), moved
