"""VonMisesFisher against scipy.stats.vonmises_fisher and closed forms: density, entropy, sampler law, mean,
the unbiased κ-gradient of samples, float32 robustness and the KL to the uniform."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special as sp
import scipy.stats as st
import torch
from torch.distributions import kl_divergence

from vaeray.distributions import HypersphericalUniform, VonMisesFisher
from vaeray.distributions.vmf import implicit_dw_dkappa, sample_w


def unit(p: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(p, generator=g, dtype=torch.float64)
    return (mu / mu.norm()).to(dtype)


def a_scipy(p: int, k: float) -> float:
    return sp.ive(p / 2, k) / sp.ive(p / 2 - 1, k)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy's own underflow where it is not finite
@pytest.mark.parametrize("p", [3, 5, 10, 50, 256])
def test_log_prob_and_entropy_match_scipy(p: int) -> None:
    compared = 0
    for kappa in (0.1, 0.5, 1.0, 10.0, 100.0, 500.0):
        mu = unit(p, int(kappa * 10) + p)
        ref = st.vonmises_fisher(mu.numpy(), kappa)
        x = ref.rvs(4, random_state=0)
        x = np.concatenate([x, -mu.numpy()[None]])  # also the antipode, where the density is smallest
        want_lp, want_h = ref.logpdf(x), ref.entropy()
        if not (np.all(np.isfinite(want_lp)) and np.isfinite(want_h)):
            continue  # scipy's ive underflows (p = 256, κ = 0.1); the float32 test covers our side there
        d = VonMisesFisher(mu, torch.tensor(kappa, dtype=torch.float64))
        np.testing.assert_allclose(d.log_prob(torch.from_numpy(x)).numpy(), want_lp, rtol=1e-6)
        np.testing.assert_allclose(d.entropy().item(), want_h, rtol=1e-6)
        compared += 1
    assert compared >= 5


@pytest.mark.parametrize("p, kappa", [(2, 0.5), (3, 5.0), (5, 2.0), (10, 50.0), (50, 5.0), (64, 300.0)])
def test_samples_follow_scipys_law_and_have_mean_a_p(p: int, kappa: float) -> None:
    torch.manual_seed(p)
    mu = unit(p, p)
    z = VonMisesFisher(mu, torch.tensor(kappa, dtype=torch.float64)).sample((3000,))
    assert z.shape == (3000, p) and torch.allclose(z.norm(dim=-1), torch.ones(3000, dtype=torch.float64))
    ref = st.vonmises_fisher(mu.numpy(), kappa).rvs(3000, random_state=p) @ mu.numpy()
    assert st.ks_2samp((z @ mu).numpy(), ref).pvalue > 1e-3
    # the sample mean is A_p(κ) μ: the right cosine *and* the reflection onto μ (a wrong map misses μ)
    se = z.std(0).max().item() / np.sqrt(3000)
    assert (z.mean(0) - a_scipy(p, kappa) * mu).abs().max().item() < 5 * se


def test_large_sample_mean_of_the_cosine() -> None:
    torch.manual_seed(0)
    for p, kappa in [(5, 2.0), (20, 5.0), (256, 100.0)]:
        w = sample_w(torch.tensor(kappa, dtype=torch.float64), p, (20000,))
        assert abs(w.mean().item() - a_scipy(p, kappa)) < 4 * w.std().item() / np.sqrt(20000)


# (p, κ): dA/dκ from central differences of scipy's closed form, and the biased value the reference code's
# pathwise-only gradient gives (research notes §2.3, 2e6 samples)
GRADIENT_CASES = [(5, 2.0, 0.1277), (10, 10.0, 0.0260), (20, 5.0, 0.0420), (41, 50.0, 0.00501), (3, 1.0, None)]


@pytest.mark.parametrize("p, kappa, biased", GRADIENT_CASES)
def test_kappa_gradient_of_expected_cosine_is_unbiased(p: int, kappa: float, biased: float | None) -> None:
    torch.manual_seed(1)
    n = 40000
    k = torch.tensor(kappa, dtype=torch.float64, requires_grad=True)
    w = sample_w(k, p, (n,))
    (per_sample,) = torch.autograd.grad(w.sum(), k, is_grads_batched=False, retain_graph=True)
    grads = implicit_dw_dkappa(w.detach(), torch.full((n,), kappa, dtype=torch.float64), p)
    assert per_sample.item() == pytest.approx(grads.sum().item(), rel=1e-9)  # backward is this estimator
    h = 1e-4 * kappa
    exact = (a_scipy(p, kappa + h) - a_scipy(p, kappa - h)) / (2 * h)
    se = grads.std().item() / np.sqrt(n)
    assert abs(grads.mean().item() - exact) < 4 * se + 1e-6
    if biased is not None:
        assert abs(biased - exact) > 10 * se  # the test would catch the missing correction


def test_implicit_gradient_is_exact_for_p3_closed_form() -> None:
    torch.manual_seed(0)
    for kappa in (1e-3, 0.1, 1.0, 10.0, 100.0, 1e4):
        k = torch.full((2000,), kappa, dtype=torch.float64, requires_grad=True)
        u = torch.rand(2000, dtype=torch.float64)
        w = 1 + torch.logaddexp(torch.log(u), torch.log1p(-u) - 2 * k) / k  # inverse CDF: its autograd is exact
        (exact,) = torch.autograd.grad(w.sum(), k)
        got = implicit_dw_dkappa(w.detach(), k.detach(), 3)
        torch.testing.assert_close(got, exact, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("p, kappa, w", [(5, 2.0, 0.1), (5, 2.0, 0.9), (10, 30.0, 0.7), (2, 3.0, -0.5)])
def test_implicit_gradient_matches_differentiating_the_numerical_inverse_cdf(p, kappa, w) -> None:
    def cdf(x: float, k: float) -> float:
        f = lambda t: np.exp(k * (t - 1)) * (1 - t * t) ** ((p - 3) / 2)  # noqa: E731
        return scipy.integrate.quad(f, -1, x)[0] / scipy.integrate.quad(f, -1, 1)[0]

    u, h = cdf(w, kappa), 1e-4
    inv = lambda k: scipy.optimize.brentq(lambda x: cdf(x, k) - u, -1 + 1e-12, 1 - 1e-12, xtol=1e-14)  # noqa: E731
    want = (inv(kappa + h) - inv(kappa - h)) / (2 * h)
    got = implicit_dw_dkappa(torch.tensor([w], dtype=torch.float64), torch.tensor([kappa], dtype=torch.float64), p)
    assert got.item() == pytest.approx(want, rel=1e-5, abs=1e-9)


DIMS = [2, 3, 5, 10, 33, 64, 128, 256]
KAPPA_GRID = [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4]


def test_float32_everything_finite_across_dimensions_and_concentrations() -> None:
    torch.manual_seed(0)
    for p in DIMS:
        raw_mu = torch.randn(len(KAPPA_GRID), p, requires_grad=True)
        raw_k = torch.tensor(KAPPA_GRID, requires_grad=True)
        mu = raw_mu / raw_mu.norm(dim=-1, keepdim=True)
        q = VonMisesFisher(mu, raw_k)
        z = q.rsample((4,))
        assert z.dtype == torch.float32 and z.shape == (4, len(KAPPA_GRID), p)
        lp, h, kl = q.log_prob(z), q.entropy(), kl_divergence(q, HypersphericalUniform(p))
        for name, t in (("z", z), ("log_prob", lp), ("entropy", h), ("kl", kl), ("mean", q.mean)):
            assert torch.isfinite(t).all(), (p, name, t)
        assert (kl >= 0).all()
        gk, gm = torch.autograd.grad((lp.sum() + h.sum() + kl.sum() + z.sum()), (raw_k, raw_mu))
        assert torch.isfinite(gk).all() and torch.isfinite(gm).all(), p


@pytest.mark.parametrize("p, kappa", [(2, 1.0), (3, 20.0), (5, 2.0), (16, 8.0), (100, 60.0)])
def test_kl_to_uniform_equals_monte_carlo(p: int, kappa: float) -> None:
    torch.manual_seed(2)
    q = VonMisesFisher(unit(p, 3), torch.tensor(kappa, dtype=torch.float64))
    u = HypersphericalUniform(p, dtype=torch.float64)
    z = q.sample((20000,))
    mc = q.log_prob(z) - u.log_prob(z)
    assert abs(kl_divergence(q, u).item() - mc.mean().item()) < 4 * mc.std().item() / np.sqrt(20000)
    assert u.log_prob(z).shape == (20000,)


def test_kl_vanishes_as_kappa_goes_to_zero_and_grows_with_kappa() -> None:
    q = VonMisesFisher(unit(10, 0).expand(4, 10), torch.tensor([1e-4, 1.0, 10.0, 100.0], dtype=torch.float64))
    kl = kl_divergence(q, HypersphericalUniform(10))
    assert kl[0] < 1e-8 and (kl.diff() > 0).all()
    # small-κ limit: KL ≈ κ²/(2p)
    assert kl[0].item() == pytest.approx(1e-8 / 20, rel=1e-2)


def test_shapes_and_the_b_by_1_concentration_trap() -> None:
    mu = torch.nn.functional.normalize(torch.randn(7, 4), dim=-1)
    q = VonMisesFisher(mu, torch.rand(7, 1) + 0.5)
    assert q.batch_shape == (7,) and q.event_shape == (4,)
    assert q.rsample((3,)).shape == (3, 7, 4) and q.log_prob(q.sample()).shape == (7,) and q.entropy().shape == (7,)
    with pytest.raises(ValueError, match="does not match the batch shape"):
        VonMisesFisher(mu, torch.rand(3))


def test_mean_direction_at_the_poles_is_not_nan() -> None:
    # μ = ±e₁ is where the unsigned Householder reflection divides by zero (numpyro#859)
    for sign in (1.0, -1.0):
        mu = torch.zeros(2, 6)
        mu[:, 0] = sign
        mu.requires_grad_(True)
        kappa = torch.tensor([5.0, 1e4], requires_grad=True)
        z = VonMisesFisher(mu, kappa).rsample((50,))
        cos = z[..., 0] * sign
        assert torch.isfinite(z).all() and (cos[:, 1] > 0.99).all() and cos[:, 0].mean() > 0.3
        grads = torch.autograd.grad(z.sum(), (mu, kappa))
        assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("family", ["vmf", "power_spherical"])
@pytest.mark.parametrize("first", [0.8, -0.8])  # both signs of μ₁: both branches of the signed reflection
def test_mean_direction_gradient_through_the_reflection(family: str, first: float) -> None:
    from vaeray.distributions import PowerSpherical

    torch.manual_seed(5)
    p, kappa, n = 5, 3.0, 20000
    raw = torch.tensor([first, 0.3, -0.2, 0.4, 0.1], dtype=torch.float64, requires_grad=True)
    c = torch.tensor([0.5, -1.0, 0.25, 2.0, -0.7], dtype=torch.float64)
    mu = raw / raw.norm()
    cls = VonMisesFisher if family == "vmf" else PowerSpherical
    z = cls(mu, torch.tensor(kappa, dtype=torch.float64)).rsample((n,))
    (g,) = torch.autograd.grad((z @ c).mean(), raw)
    # E[cᵀz] = m(κ) cᵀμ for every unit μ, so its gradient in raw is m(κ) (I − μμᵀ) c / ‖raw‖
    m = a_scipy(p, kappa) if family == "vmf" else kappa / (kappa + p - 1)
    mu = mu.detach()
    want = m * (c - (mu @ c) * mu) / raw.norm().detach()
    torch.testing.assert_close(g, want, atol=0.015, rtol=0)  # want is O(1); Monte Carlo error ~0.005
