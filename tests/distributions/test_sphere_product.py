"""ProductSpheres: one distribution over S^{d₁} × … with summed log-densities, entropies and KLs."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import kl_divergence

from vaeray.distributions import HypersphericalUniform, PowerSpherical, ProductSpheres, VonMisesFisher


def make(batch: int = 6) -> tuple[ProductSpheres, ProductSpheres]:
    g = torch.Generator().manual_seed(0)
    f64 = torch.float64
    norm = lambda x: x / x.norm(dim=-1, keepdim=True)  # noqa: E731
    a = VonMisesFisher(norm(torch.randn(batch, 3, generator=g, dtype=f64)), torch.full((batch,), 4.0, dtype=f64))
    b = PowerSpherical(norm(torch.randn(batch, 5, generator=g, dtype=f64)), torch.full((batch,), 9.0, dtype=f64))
    q = ProductSpheres([a, b])
    prior = ProductSpheres([HypersphericalUniform(3, dtype=f64), HypersphericalUniform(5, dtype=f64)])
    return q, prior


def test_layout_sums_and_kl() -> None:
    q, prior = make()
    assert q.batch_shape == (6,) and q.event_shape == (8,) and q.has_rsample and not prior.has_rsample
    z = q.rsample((10,))
    assert z.shape == (10, 6, 8)
    za, zb = q.split(z)
    assert torch.allclose(za.norm(dim=-1), torch.ones(10, 6, dtype=torch.float64))
    assert torch.allclose(zb.norm(dim=-1), torch.ones(10, 6, dtype=torch.float64))
    a, b = q.factors
    torch.testing.assert_close(q.log_prob(z), a.log_prob(za) + b.log_prob(zb))
    torch.testing.assert_close(q.entropy(), a.entropy() + b.entropy())
    torch.testing.assert_close(q.mean, torch.cat([a.mean, b.mean], -1))
    kl = kl_divergence(q, prior)
    torch.testing.assert_close(kl, kl_divergence(a, prior.factors[0]) + kl_divergence(b, prior.factors[1]))
    assert prior.log_prob(z).shape == (10, 6)
    assert prior.log_prob(z)[0, 0].item() == pytest.approx(-math.log(4 * math.pi) - math.log(8 * math.pi**2 / 3))


def test_kl_matches_monte_carlo_and_layouts_must_agree() -> None:
    torch.manual_seed(0)
    q, prior = make(1)
    z = q.rsample((20000,))
    mc = q.log_prob(z) - prior.log_prob(z)
    assert abs(kl_divergence(q, prior).item() - mc.mean().item()) < 4 * mc.std().item() / math.sqrt(20000)
    with pytest.raises(ValueError, match="different layouts"):
        kl_divergence(q, ProductSpheres([HypersphericalUniform(5), HypersphericalUniform(3)]))
