"""DVAE#'s relaxed RBM priors against the mixtures over z they stand for."""

from __future__ import annotations

import pytest
import torch
from scipy import integrate, stats

from vaeray.distributions.boltzmann import RBM, all_states, exact_log_z
from vaeray.distributions.relaxed import GaussianIntegralRBM, MarginalRelaxedRBM, gi_lambda, gi_log_det
from vaeray.distributions.smoothing import OverlappingExponential, PowerFunction, UniformExponential


def rbm(n1: int, n2: int, seed: int = 0, scale: float = 1.0) -> RBM:
    torch.manual_seed(seed)
    m = RBM(n1, n2, num_chains=4).double()
    with torch.no_grad():
        for p in (m.b1, m.b2, m.w):
            p.normal_(0, scale)
    return m


def test_gaussian_integral_closed_form_equals_mixture_over_z():
    m = rbm(2, 3, scale=1.5)
    log_z = exact_log_z(m.b1, m.b2, m.w)
    p = GaussianIntegralRBM(m, beta=3.0, log_z=log_z)
    n = m.n
    w_full = torch.zeros(n, n, dtype=torch.float64)
    w_full[:2, 2:] = m.w.detach()
    w_full[2:, :2] = m.w.detach().T
    cov = torch.linalg.inv(w_full + p.lam * torch.eye(n, dtype=torch.float64)).numpy()
    z = all_states(n)
    log_pz = (-m.energy(z) - log_z).detach()
    torch.manual_seed(1)
    zeta = torch.randn(6, n, dtype=torch.float64) * 0.7 + 0.5
    noise = stats.multivariate_normal(mean=[0.0] * n, cov=cov)  # N(ζ; z, A⁻¹) = N(ζ − z; 0, A⁻¹)
    mixture = torch.stack([torch.logsumexp(log_pz + torch.tensor(noise.logpdf((x - z).numpy())), 0) for x in zeta])
    assert torch.allclose(p.log_prob(zeta).detach(), mixture, atol=1e-10)


def test_schur_log_det_and_lambda():
    torch.manual_seed(0)
    w = torch.randn(4, 6, dtype=torch.float64)
    lam = gi_lambda(w, beta=2.0)
    assert lam == pytest.approx(float(torch.linalg.matrix_norm(w, ord=2)) + 5)
    assert gi_lambda(torch.zeros(4, 6), beta=30.0) == 30.0
    full = torch.zeros(10, 10, dtype=torch.float64)
    full[:4, 4:], full[4:, :4] = w, w.T
    expected = torch.linalg.slogdet(full + lam * torch.eye(10, dtype=torch.float64))[1]
    assert float(gi_log_det(w, lam)) == pytest.approx(float(expected), abs=1e-10)
    assert float(gi_log_det(w.T, lam)) == pytest.approx(float(expected), abs=1e-10)


@pytest.mark.parametrize("smoother,beta", [(OverlappingExponential, 8.0), (PowerFunction, 5.0), (UniformExponential, 6.0)])
def test_marginal_relaxation_equals_mixture_and_mean_field_is_below(smoother, beta):
    m = rbm(2, 2, seed=2)
    log_z = exact_log_z(m.b1, m.b2, m.w)
    torch.manual_seed(3)
    zeta = torch.rand(5, 4, dtype=torch.float64)
    z = all_states(4)
    r = smoother(torch.zeros(4, dtype=torch.float64), beta)
    log_pz = (-m.energy(z) - log_z).detach()
    brute = torch.stack(
        [torch.logsumexp(log_pz + torch.where(z > 0, r.log_r(x, 1), r.log_r(x, 0)).sum(-1), 0) for x in zeta]
    )
    exact = MarginalRelaxedRBM(m, smoother, beta, log_z, exact=True).log_prob(zeta).detach()
    assert torch.allclose(exact, brute, atol=1e-10)
    mf = MarginalRelaxedRBM(m, smoother, beta, log_z).log_prob(zeta).detach()
    assert (mf <= exact + 1e-12).all()


def test_marginal_relaxation_integrates_to_one_on_a_1_1_rbm():
    m = rbm(1, 1, seed=4)
    log_z = exact_log_z(m.b1, m.b2, m.w)
    p = MarginalRelaxedRBM(m, OverlappingExponential, 5.0, log_z, exact=True)
    f = lambda a, b: float(p.log_prob(torch.tensor([a, b], dtype=torch.float64)).detach().exp())  # noqa: E731
    assert integrate.dblquad(f, 0, 1, 0, 1, epsabs=1e-8)[0] == pytest.approx(1.0, abs=1e-6)


def test_relaxed_priors_sample_shapes():
    m = rbm(3, 2)
    log_z = exact_log_z(m.b1, m.b2, m.w)
    assert GaussianIntegralRBM(m, 3.0, log_z).sample((7,), sweeps=5).shape == (7, 5)
    assert MarginalRelaxedRBM(m, PowerFunction, 30.0, log_z).sample((7,), sweeps=5).shape == (7, 5)
