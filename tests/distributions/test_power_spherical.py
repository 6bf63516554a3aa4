"""PowerSpherical: normalisation by quadrature on S¹ and S², entropy and KL against Monte Carlo, the Beta law of
the cosine, the mean and its κ-gradient, float32 robustness and batch shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats as st
import torch
from torch.distributions import kl_divergence

from vaeray.distributions import HypersphericalUniform, PowerSpherical


def unit(p: int, seed: int) -> torch.Tensor:
    mu = torch.randn(p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return mu / mu.norm()


@pytest.mark.parametrize("kappa", [0.0, 0.5, 3.0, 40.0])
def test_density_integrates_to_one_on_the_circle(kappa: float) -> None:
    d = PowerSpherical(unit(2, 1), torch.tensor(kappa, dtype=torch.float64))
    f = lambda t: d.log_prob(torch.tensor([math.cos(t), math.sin(t)], dtype=torch.float64)).exp().item()  # noqa: E731
    assert scipy.integrate.quad(f, 0, 2 * math.pi, limit=200)[0] == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("kappa", [0.7, 12.0])
def test_density_integrates_to_one_on_the_sphere(kappa: float) -> None:
    d = PowerSpherical(unit(3, 2), torch.tensor(kappa, dtype=torch.float64))
    # a 2-d tensor-product Gauss–Legendre rule over (θ, φ) with the sin θ area element; μ is not a pole
    n = 200
    x, w = np.polynomial.legendre.leggauss(n)
    theta, phi = (x + 1) * math.pi / 2, (x + 1) * math.pi
    T, P = np.meshgrid(theta, phi, indexing="ij")
    pts = torch.from_numpy(np.stack([np.sin(T) * np.cos(P), np.sin(T) * np.sin(P), np.cos(T)], -1))
    dens = d.log_prob(pts).exp().numpy()
    integral = (dens * np.sin(T) * np.outer(w, w)).sum() * (math.pi / 2) * math.pi
    assert integral == pytest.approx(1.0, abs=1e-6)  # (1 + μᵀx)^κ is not smooth at −μ for fractional κ


@pytest.mark.parametrize("p, kappa", [(2, 1.0), (3, 10.0), (10, 2.0), (100, 50.0)])
def test_entropy_and_kl_match_monte_carlo(p: int, kappa: float) -> None:
    torch.manual_seed(p)
    q = PowerSpherical(unit(p, p), torch.tensor(kappa, dtype=torch.float64))
    u = HypersphericalUniform(p, dtype=torch.float64)
    z = q.rsample((20000,))
    lp = q.log_prob(z)
    se = lp.std().item() / math.sqrt(20000)
    assert abs(q.entropy().item() + lp.mean().item()) < 4 * se
    assert abs(kl_divergence(q, u).item() - (lp - u.log_prob(z)).mean().item()) < 4 * se


@pytest.mark.parametrize("p, kappa", [(2, 0.5), (3, 10.0), (10, 1.0), (100, 200.0)])
def test_cosine_follows_the_beta_law_and_the_mean_is_closed_form(p: int, kappa: float) -> None:
    torch.manual_seed(3)
    mu = unit(p, 7)
    z = PowerSpherical(mu, torch.tensor(kappa, dtype=torch.float64)).sample((4000,))
    assert torch.allclose(z.norm(dim=-1), torch.ones(4000, dtype=torch.float64))
    b = ((z @ mu + 1) / 2).numpy()
    alpha, beta = (p - 1) / 2 + kappa, (p - 1) / 2
    assert st.kstest(b, st.beta(alpha, beta).cdf).pvalue > 1e-3
    se = z.std(0).max().item() / math.sqrt(4000)
    assert (z.mean(0) - kappa / (kappa + p - 1) * mu).abs().max().item() < 5 * se


def test_kappa_gradient_of_the_expected_cosine() -> None:
    torch.manual_seed(4)
    p, kappa, n = 5, 2.0, 40000
    k = torch.tensor(kappa, dtype=torch.float64, requires_grad=True)
    mu = unit(p, 0)
    z = PowerSpherical(mu, k).rsample((n,))
    (g,) = torch.autograd.grad((z @ mu).mean(), k)
    assert g.item() == pytest.approx((p - 1) / (kappa + p - 1) ** 2, rel=0.03)  # d/dκ κ/(κ+p−1)


def test_float32_finite_across_dimensions_and_concentrations() -> None:
    torch.manual_seed(0)
    kappas = [0.0, 1e-3, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4]
    for p in [2, 3, 5, 10, 64, 256]:
        raw_mu = torch.randn(len(kappas), p, requires_grad=True)
        raw_k = torch.tensor(kappas, requires_grad=True)
        q = PowerSpherical(raw_mu / raw_mu.norm(dim=-1, keepdim=True), raw_k)
        z = q.rsample((4,))
        lp, h, kl = q.log_prob(z), q.entropy(), kl_divergence(q, HypersphericalUniform(p))
        assert all(torch.isfinite(t).all() for t in (z, lp, h, kl)) and (kl >= 0).all()
        grads = torch.autograd.grad(lp.sum() + h.sum() + kl.sum() + z.sum(), (raw_k, raw_mu))
        assert all(torch.isfinite(g).all() for g in grads), p


def test_kl_is_zero_at_kappa_zero_and_shapes() -> None:
    mu = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    q = PowerSpherical(mu, torch.zeros(5, 1))  # (B, 1) is squeezed, not broadcast to (B, B)
    assert q.batch_shape == (5,) and q.rsample((2,)).shape == (2, 5, 8)
    assert kl_divergence(q, HypersphericalUniform(8)).abs().max() < 1e-5
    with pytest.raises(ValueError, match="different dimension"):
        kl_divergence(q, HypersphericalUniform(7))
