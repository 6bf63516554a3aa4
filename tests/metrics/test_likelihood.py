"""Importance-sampled log-likelihood on a linear-Gaussian model, whose log p(x) scipy gives in closed form.

z ~ N(0, I_d), x | z ~ N(Wz + b, σ² I_D): p(x) = N(b, WWᵀ + σ²I) and the exact posterior is
N(Σ Wᵀ(x − b)/σ², Σ) with Σ = (I + WᵀW/σ²)⁻¹ (Bishop, PRML §12.2.1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch.distributions import Independent, MultivariateNormal, Normal

from vaeray.data.base import TensorDataset
from vaeray.metrics.likelihood import iwae_bound, log_importance_weights, log_likelihood, nll

D_LATENT, D_OBS, SIGMA = 3, 6, 0.5


class LinearGaussian:
    def __init__(self, seed: int = 0, inflate: float = 1.0, shift: float = 0.0):
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(D_OBS, D_LATENT, generator=g, dtype=torch.float64)
        self.b = torch.randn(D_OBS, generator=g, dtype=torch.float64)
        self.post_cov = torch.linalg.inv(torch.eye(D_LATENT, dtype=torch.float64) + self.w.T @ self.w / SIGMA**2)
        self.inflate, self.shift = inflate, shift
        self.prior = Independent(Normal(torch.zeros(D_LATENT, dtype=torch.float64), 1.0), 1)

    def encode(self, x: torch.Tensor) -> MultivariateNormal:
        mean = (x - self.b) @ self.w @ self.post_cov.T / SIGMA**2 + self.shift  # (B, d)
        return MultivariateNormal(mean, covariance_matrix=self.inflate**2 * self.post_cov)

    def decode(self, z: torch.Tensor) -> Independent:
        return Independent(Normal(z @ self.w.T + self.b, SIGMA), 1)

    def sample(self, n: int, seed: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, D_LATENT, generator=g, dtype=torch.float64)
        return z @ self.w.T + self.b + SIGMA * torch.randn(n, D_OBS, generator=g, dtype=torch.float64)

    def exact(self, x: torch.Tensor) -> np.ndarray:
        cov = (self.w @ self.w.T).numpy() + SIGMA**2 * np.eye(D_OBS)
        return multivariate_normal(self.b.numpy(), cov).logpdf(x.numpy())

    def estimate(self, x: torch.Tensor, k: int, chunk: int = 100) -> torch.Tensor:
        return iwae_bound(x, self.encode, self.decode, self.prior, k, chunk)


@pytest.fixture
def exact_model() -> LinearGaussian:
    return LinearGaussian()


@pytest.fixture
def loose_model() -> LinearGaussian:
    """q = the exact posterior with standard deviations inflated 1.5×."""
    return LinearGaussian(inflate=1.5)


def test_exact_posterior_gives_log_p_for_every_k(exact_model):
    x = exact_model.sample(20)
    for k, chunk in [(1, 1), (2, 100), (7, 3), (50, 7), (1000, 128)]:
        torch.manual_seed(k)
        estimate = exact_model.estimate(x, k, chunk).numpy()
        np.testing.assert_allclose(estimate, exact_model.exact(x), rtol=0, atol=1e-9)


def test_log_weights_shape_and_value(exact_model):
    x = exact_model.sample(5)
    weights = log_importance_weights(x, exact_model.encode, exact_model.decode, exact_model.prior, 4)
    assert weights.shape == (4, 5)
    np.testing.assert_allclose(weights.numpy(), np.broadcast_to(exact_model.exact(x), (4, 5)), atol=1e-9)


def test_minus_log_k_is_present():
    # A decoder that ignores z and q = prior: every weight is log p(x|·), so the estimate is exactly that for
    # every K. Without the −log K term it would be off by log K.
    prior = Independent(Normal(torch.zeros(2, dtype=torch.float64), 1.0), 1)
    x = torch.tensor([[0.3, -1.0], [2.0, 0.5]], dtype=torch.float64)
    decode = lambda z: Independent(Normal(torch.zeros(z.shape[0], 2, dtype=torch.float64), 2.0), 1)  # noqa: E731
    encode = lambda x: Independent(Normal(torch.zeros_like(x), 1.0), 1)  # noqa: E731
    expected = Independent(Normal(torch.zeros(2, dtype=torch.float64), 2.0), 1).log_prob(x)
    for k in (1, 7, 1000):
        np.testing.assert_allclose(iwae_bound(x, encode, decode, lambda: prior, k, chunk=64), expected, atol=1e-12)


def test_converges_to_log_p_as_k_grows(loose_model):
    torch.manual_seed(0)
    x = loose_model.sample(200)
    exact = loose_model.exact(x)
    errors = {k: np.mean(np.abs(loose_model.estimate(x, k).numpy() - exact)) for k in (1, 10, 100, 1000)}
    assert errors[1] > errors[10] > errors[100] > errors[1000]
    assert errors[1] > 0.5  # nats: the ELBO is far off
    assert errors[1000] < 0.04  # Monte Carlo spread per example, ~1/sqrt(K)
    assert abs(np.mean(loose_model.estimate(x, 1000).numpy() - exact)) < 0.005  # and almost no bias


def test_iwae_bound_non_decreasing_and_below_log_p():
    # A looser q (2× standard deviations) makes the gaps between K = 50 and 500 several standard errors wide.
    model = LinearGaussian(inflate=2.0)
    torch.manual_seed(1)
    x = model.sample(1000)
    exact = model.exact(x)
    means = [np.mean(model.estimate(x, k).numpy() - exact) for k in (1, 5, 50, 500)]
    assert all(a < b for a, b in zip(means, means[1:]))
    assert means[0] < -1.0  # the ELBO gap
    assert means[-1] <= 0.005  # a lower bound in expectation (Burda et al., Thm. 1), up to Monte Carlo error


def test_chunking_does_not_change_the_estimate_statistically(loose_model):
    x = loose_model.sample(400)
    torch.manual_seed(2)
    whole = loose_model.estimate(x, 300, chunk=300).numpy()
    torch.manual_seed(3)
    chunked = loose_model.estimate(x, 300, chunk=7).numpy()
    # Same expectation (a z-test on the paired difference), and far closer than the K = 7 bound one would get
    # by averaging per-chunk estimates instead of combining them.
    difference = whole - chunked
    assert abs(difference.mean()) < 4 * difference.std(ddof=1) / np.sqrt(len(difference))
    assert abs(difference.mean()) < 0.03  # E[L_7] is ~0.07 nats below E[L_300] here


def test_log_likelihood_has_no_gradient_and_shapes_are_checked(exact_model):
    x = exact_model.sample(3)
    out = log_likelihood(x, exact_model.encode, exact_model.decode, exact_model.prior, k=10, chunk=4)
    assert out.shape == (3,) and not out.requires_grad
    per_dim_prior = Normal(torch.zeros(D_LATENT, dtype=torch.float64), 1.0)  # forgot Independent
    with pytest.raises(ValueError, match="Independent"):
        iwae_bound(x, exact_model.encode, exact_model.decode, per_dim_prior, 2)


# ---------------------------------------------------------------- the registered `nll` metric ---------------


def _dataset(model: LinearGaussian, n: int, binary: bool = False) -> TensorDataset:
    data = TensorDataset(model.sample(n), scale=1.0)
    data.binary = binary
    return data


def test_nll_metric_equals_closed_form(exact_model):
    data = _dataset(exact_model, 50)
    loglik = lambda x, k: exact_model.estimate(x, k, chunk=16)  # noqa: E731  (what the loop supplies)
    scores = nll(data, loglik, k=20, num_examples=None, batch_size=16)
    values = -exact_model.exact(data.observations(torch.arange(50)).double())  # the float32 observations
    assert scores["nll"] == pytest.approx(values.mean(), abs=1e-9)
    assert scores["nll_se"] == pytest.approx(values.std(ddof=1) / math.sqrt(50), abs=1e-9)
    assert scores["bits_per_dim"] == pytest.approx(values.mean() / (D_OBS * math.log(2)), abs=1e-9)
    assert scores["bits_per_dim_se"] == pytest.approx(scores["nll_se"] / (D_OBS * math.log(2)))


def test_nll_subset_binary_and_determinism(loose_model):
    data = _dataset(loose_model, 300, binary=True)
    loglik = lambda x, k: loose_model.estimate(x, k)  # noqa: E731
    first = nll(data, loglik, seed=4, k=5, num_examples=40)
    assert set(first) == {"nll", "nll_se"}  # binary data: nats only
    assert nll(data, loglik, seed=4, k=5, num_examples=40) == first
    seen = []
    nll(data, lambda x, k: seen.append(x) or loose_model.estimate(x, k), seed=4, k=5, num_examples=40, batch_size=16)
    rows = torch.cat(seen)
    assert rows.shape[0] == 40 and [len(s) for s in seen] == [16, 16, 8]
    expected = np.sort(np.random.default_rng(4).choice(300, 40, replace=False))
    assert torch.equal(rows, data.observations(torch.as_tensor(expected)))


def test_nll_metric_reports_the_elbo_when_asked(exact_model, loose_model):
    """With q the exact posterior every importance weight is log p(x), so the ELBO equals −NLL exactly; with a
    looser q it lies below −NLL by about the mean KL(q ‖ posterior), which the closed form gives here."""
    data = _dataset(exact_model, 40)
    exact = nll(data, lambda x, k: exact_model.estimate(x, k), k=10, num_examples=None, elbo=True)
    assert exact["elbo"] == pytest.approx(-exact["nll"], abs=1e-9) and exact["elbo_se"] == pytest.approx(exact["nll_se"])
    data = _dataset(loose_model, 400)
    loose = nll(data, lambda x, k: loose_model.estimate(x, k), k=500, num_examples=None, elbo=True)
    # KL between N(m, 2.25 Σ) and N(m, Σ) per example: ½(2.25 d − d − d ln 2.25), d = D_LATENT (same for every x)
    gap = 0.5 * (2.25 * D_LATENT - D_LATENT - D_LATENT * math.log(2.25))
    assert -loose["nll"] - loose["elbo"] == pytest.approx(gap, abs=4 * loose["elbo_se"] + 0.05)
    assert "elbo" not in nll(data, lambda x, k: loose_model.estimate(x, k), k=5, num_examples=20)
