"""Smoothing relaxations of DVAE, DVAE++ and DVAE#: one table, every contract (normalisation, sampler against
CDF, reparameterisation gradients against finite differences of a numerical inverse CDF)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats

from vaeray.distributions.smoothing import (
    GaussianMixture,
    OverlappingExponential,
    PowerFunction,
    SpikeAndExponential,
    UniformExponential,
)

# name -> (class, beta, extra constructor kwargs)
TABLE = {
    "spike_exp": (SpikeAndExponential, 5.0, {}),
    "overlap_exp": (OverlappingExponential, 12.0, {}),
    "power_3": (PowerFunction, 3.0, {}),
    "power_30": (PowerFunction, 30.0, {}),
    "gauss": (GaussianMixture, 25.0, {}),
    "gi_posterior": (GaussianMixture, 30.0, {"shift": 0.1, "scale": 0.25}),
    "unexp": (UniformExponential, 16.0, {}),
}


def make(name: str, logits: torch.Tensor):
    cls, beta, kw = TABLE[name]
    kw = {k: torch.as_tensor(v, dtype=torch.float64) if k in ("shift", "scale") else v for k, v in kw.items()}
    return cls(logits, beta, **kw)


def bounds(name: str) -> tuple[float, float]:
    return (-np.inf, np.inf) if TABLE[name][0] is GaussianMixture else (0.0, 1.0)


def scalar(name: str, q: float):
    return make(name, torch.tensor(math.log(q / (1 - q)), dtype=torch.float64))


@pytest.mark.parametrize("name", list(TABLE))
@pytest.mark.parametrize("q", [0.2, 0.9])
def test_density_integrates_to_one(name, q):
    d = scalar(name, q)
    pdf = lambda x: float(d.log_prob(torch.tensor(x, dtype=torch.float64)).exp())  # noqa: E731
    lo, hi = bounds(name)
    if name == "spike_exp":  # the atom at 0 plus the continuous part on (0, 1]
        total = float(torch.sigmoid(-d.logits)) + integrate.quad(pdf, 1e-300, 1, limit=200)[0]
    elif isinstance(d, PowerFunction):  # integrable singularities ζ^{λ−1} at both ends: algebraic weights
        lam = 1 / d.beta

        def g(x: float) -> float:  # smooth on [0, 1]; its end values are its limits
            x = min(max(x, 1e-12), 1 - 1e-12)
            return pdf(x) / (x ** (lam - 1) * (1 - x) ** (lam - 1))

        total = integrate.quad(g, 0, 1, weight="alg", wvar=(lam - 1, lam - 1), limit=200)[0]
    else:
        total = integrate.quad(pdf, lo, hi, limit=200, points=None if np.isinf(lo) else [0.5])[0]
    assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", list(TABLE))
def test_sampler_matches_cdf(name):
    torch.manual_seed(0)
    q = 0.3
    d = make(name, torch.full((5000,), math.log(q / (1 - q)), dtype=torch.float64))
    x = d.rsample().detach()
    if name == "spike_exp":
        at_zero = float((x == 0).double().mean())
        assert abs(at_zero - (1 - q)) < 4 * math.sqrt(q * (1 - q) / 5000)
        pos = x[x > 0]
        cond = lambda v: d.component_cdf(torch.as_tensor(v), 1).numpy()  # noqa: E731
        assert stats.kstest(pos.numpy(), cond).pvalue > 0.01
        return
    one = make(name, torch.full((1,), math.log(q / (1 - q)), dtype=torch.float64))
    cdf = lambda v: one.cdf(torch.as_tensor(v, dtype=torch.float64)).numpy()  # noqa: E731
    if np.isfinite(bounds(name)[1]):
        # float rounding: every ζ within eps/2 of 1 is stored as 1.0 (for β = 30 about 30% of the z = 1 draws),
        # an atom whose mass is 1 − F(largest float below 1); the rest follows F truncated there
        below = float(cdf(np.nextafter(1.0, 0.0))[0])
        atom = x.numpy() == 1.0
        p1 = 1 - below
        assert abs(atom.mean() - p1) <= 4 * math.sqrt(p1 * (1 - p1) / len(x)) + 1e-3
        rest = x.numpy()[~atom]
        assert stats.kstest(rest, lambda v: cdf(v) / below).pvalue > 0.01
    else:
        assert stats.kstest(x.numpy(), cdf).pvalue > 0.01


@pytest.mark.parametrize("name", list(TABLE))
def test_reparameterisation_gradient_matches_numerical_inverse_cdf(name):
    """dζ/d(logit) from rsample equals the finite difference of F⁻¹(ρ; logit ± h) with ρ = F(ζ; logit) held fixed."""
    torch.manual_seed(1)
    logits = torch.linspace(-2.0, 2.0, 12, dtype=torch.float64).requires_grad_(True)
    d = make(name, logits)
    zeta = d.rsample()
    (grad,) = torch.autograd.grad(zeta.sum(), logits)
    lo, hi = bounds(name)
    h = 1e-6
    for i in range(len(logits)):
        z_i = float(zeta[i].detach())
        if name == "spike_exp" and z_i == 0:
            assert float(grad[i]) == 0.0
            continue
        if name == "power_30" and min(z_i, 1 - z_i) < 1e-12:  # β = 30: ζ = 1 − ρ^30 rounds to 1.0; no float neighbour to difference
            assert abs(float(grad[i])) < 1e-9
            continue
        l_i = float(logits[i])
        rho = float(make(name, torch.tensor(l_i, dtype=torch.float64)).cdf(torch.tensor(z_i, dtype=torch.float64)))

        def inverse(logit: float) -> float:
            di = make(name, torch.tensor(logit, dtype=torch.float64))
            f = lambda v: float(di.cdf(torch.tensor(v, dtype=torch.float64))) - rho  # noqa: E731
            a, b = (lo, hi) if np.isfinite(lo) else (z_i - 5, z_i + 5)
            return optimize.brentq(f, a, b, xtol=1e-300, rtol=1e-14, maxiter=1000)

        fd = (inverse(l_i + h) - inverse(l_i - h)) / (2 * h)
        assert float(grad[i]) == pytest.approx(fd, rel=1e-4, abs=1e-9), (i, z_i)


def test_power_smoother_gradient_at_beta_30_in_log_space():
    """ρ = 0.2 with β = 30 gives ζ = ρ^β ≈ 1e-21 (below float32's epsilon next to 1): the gradient stays finite
    and equals the closed form (R(ζ|0) − R(ζ|1)) / q(ζ) evaluated in float64."""
    torch.manual_seed(3)
    logits = torch.zeros(4000, dtype=torch.float32, requires_grad=True)
    zeta = PowerFunction(logits, 30.0).rsample()
    (grad,) = torch.autograd.grad(zeta.sum(), logits)
    assert torch.isfinite(zeta).all() and torch.isfinite(grad).all()
    assert (zeta < 1e-15).any() and ((zeta >= 0) & (zeta <= 1)).all()
    checked = 0
    for i in torch.nonzero((zeta > 1e-30) & (zeta < 1e-8)).flatten()[:20]:
        z = torch.tensor(float(zeta[i].detach()), dtype=torch.float64)
        r = PowerFunction(torch.tensor(0.0, dtype=torch.float64), 30.0)
        closed = (r.component_cdf(z, 0) - r.component_cdf(z, 1)) / r.log_prob(z).exp() * 0.25  # dq/dlogit = 1/4
        assert float(grad[i]) == pytest.approx(float(closed), rel=1e-3)
        checked += 1
    assert checked > 5


def test_gaussian_mixture_gradients_for_shift_and_scale():
    torch.manual_seed(2)
    logits = torch.tensor([0.3, -1.0], dtype=torch.float64)
    shift = torch.tensor([0.05, -0.1], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.25, 0.4], dtype=torch.float64, requires_grad=True)
    zeta = GaussianMixture(logits, 30.0, shift=shift, scale=scale).rsample()
    g_shift, g_scale = torch.autograd.grad(zeta.sum(), [shift, scale])
    assert torch.allclose(g_shift, torch.ones(2, dtype=torch.float64))  # a shift moves every quantile by itself
    h = 1e-6
    for i in range(2):
        rho = float(GaussianMixture(logits, 30.0, shift=shift.detach(), scale=scale.detach()).cdf(zeta.detach())[i])

        def inverse(s: float) -> float:
            sc = scale.detach().clone()
            sc[i] = s
            d = GaussianMixture(logits, 30.0, shift=shift.detach(), scale=sc)
            return optimize.brentq(lambda v: float(d.cdf(torch.full((2,), v, dtype=torch.float64))[i]) - rho, -5, 6, xtol=1e-14)

        s = float(scale[i])
        assert float(g_scale[i]) == pytest.approx((inverse(s + h) - inverse(s - h)) / (2 * h), rel=1e-4)


def test_overlapping_exponential_analytic_inverse_equals_implicit_gradient():
    """DVAE++'s closed-form inverse CDF and the generic ancestral sampler + implicit gradient agree in gradient."""
    torch.manual_seed(4)
    logits = torch.linspace(-3, 3, 9, dtype=torch.float64).requires_grad_(True)
    d = OverlappingExponential(logits, 10.0)
    zeta = d.rsample()
    (analytic,) = torch.autograd.grad(zeta.sum(), logits)
    z = zeta.detach()
    q = torch.sigmoid(logits.detach())
    implicit = (d.component_cdf(z, 0) - d.component_cdf(z, 1)) / d.log_prob(z).exp() * q * (1 - q)
    assert torch.allclose(analytic, implicit.detach(), rtol=1e-6, atol=1e-10)
    assert torch.allclose(d.cdf(z).detach(), d.cdf(z).detach().clamp(0, 1))


@pytest.mark.parametrize("name", ["overlap_exp", "power_3", "unexp", "gauss"])
def test_mean_matches_samples(name):
    torch.manual_seed(5)
    d = make(name, torch.full((20000,), 0.4, dtype=torch.float64))
    x = d.rsample()
    assert float(x.mean()) == pytest.approx(float(d.mean[0]), abs=4 * float(x.std()) / math.sqrt(20000))
