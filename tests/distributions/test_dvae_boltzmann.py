"""The RBM prior: exact log Z, AIS (and its reverse for the sandwich), PCD chains and the log Z surrogate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vaeray.distributions.ais import ais_log_z
from vaeray.distributions.boltzmann import RBM, all_states, energy, exact_log_z, exact_moments


def random_rbm(n1: int, n2: int, w_std: float, seed: int = 0, b_std: float = 0.5):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n1, generator=g, dtype=torch.float64) * b_std,
        torch.randn(n2, generator=g, dtype=torch.float64) * b_std,
        torch.randn(n1, n2, generator=g, dtype=torch.float64) * w_std,
    )


@pytest.mark.parametrize("n1,n2", [(4, 5), (5, 4), (3, 3)])
def test_enumeration_equals_brute_force(n1, n2):
    b1, b2, w = random_rbm(n1, n2, 1.0, seed=n1 * 10 + n2)
    z = all_states(n1 + n2)
    brute = torch.logsumexp(-energy(z[:, :n1], z[:, n1:], b1, b2, w), 0)
    assert float(exact_log_z(b1, b2, w)) == pytest.approx(float(brute), abs=1e-10)


def test_zero_weight_log_z_is_sum_of_softplus():
    b1, b2, _ = random_rbm(14, 300, 0.0, seed=3, b_std=2.0)
    w = torch.zeros(14, 300, dtype=torch.float64)
    expected = float(F.softplus(b1).sum() + F.softplus(b2).sum())
    assert float(exact_log_z(b1, b2, w)) == pytest.approx(expected, abs=1e-9)
    assert float(exact_log_z(b2, b1, w.T)) == pytest.approx(expected, abs=1e-9)  # larger side first
    rbm = RBM(7, 9, num_chains=2)
    assert float(rbm.log_z) == pytest.approx(16 * math.log(2))  # the stored initial value is exact


def test_enumeration_refuses_large_sides():
    with pytest.raises(ValueError, match="at most"):
        exact_log_z(torch.zeros(30), torch.zeros(30), torch.zeros(30, 30))


# AIS with 300 linear temperatures × 256 particles × 2 repeats (defaults are 1000 × 1024): enough for 0.05 nats
# on these sizes, at about a second each on one core.
AIS_CASES = [(12, 50, 0.1), (12, 50, 0.5), (16, 100, 0.5)]


@pytest.mark.parametrize("n1,n2,w_std", AIS_CASES)
def test_ais_matches_exact_log_z(n1, n2, w_std):
    b1, b2, w = random_rbm(n1, n2, w_std)
    exact = float(exact_log_z(b1, b2, w))
    r = ais_log_z(b1, b2, w, temperatures=300, particles=256, repeats=2, upper=True, seed=1)
    assert abs(r.log_z - exact) < 0.05
    assert abs(r.log_z_upper - exact) < 0.05
    assert len(r.repeats) == 2 and r.log_z_std >= 0
    # the larger side given first is summed out all the same
    r_t = ais_log_z(b2, b1, w.T, temperatures=300, particles=256, seed=2)
    assert abs(r_t.log_z - exact) < 0.05


def test_ais_with_a_data_base_rate():
    b1, b2, w = random_rbm(12, 50, 0.5, seed=4)
    exact = float(exact_log_z(b1, b2, w))
    base = torch.cat([b1, torch.zeros(50, dtype=torch.float64)])  # a factorial base close to the target
    r = ais_log_z(b1, b2, w, temperatures=100, particles=256, base_logits=base, seed=0)
    assert abs(r.log_z - exact) < 0.05


@pytest.mark.parametrize("n1,n2,w_std", AIS_CASES)
def test_ais_sandwich_in_expectation(n1, n2, w_std):
    """Forward AIS is a stochastic lower bound and reverse AIS an upper one (Jensen): with a crude schedule
    (3 temperatures, one particle) the gap is large, and the means over 200 repeats bracket the exact value."""
    b1, b2, w = random_rbm(n1, n2, w_std)
    exact = float(exact_log_z(b1, b2, w))
    r = ais_log_z(b1, b2, w, temperatures=3, particles=1, repeats=200, upper=True, burn_in=200, seed=5)
    lo, up = np.array(r.repeats), np.array(r.repeats_upper)
    se = lambda a: a.std(ddof=1) / math.sqrt(len(a))  # noqa: E731
    assert lo.mean() + 3 * se(lo) < exact < up.mean() - 3 * se(up)


def test_ais_trace_ends_at_the_estimate():
    b1, b2, w = random_rbm(6, 8, 0.5)
    r = ais_log_z(b1, b2, w, temperatures=50, particles=64, trace=True, seed=0)
    assert len(r.trace) == 49 and len(r.betas) == 50
    assert r.trace[-1] == pytest.approx(r.log_z)
    assert r.trace[0] > 8 * math.log(2)  # log Z_β grows from the base's n log 2 with these positive-mean terms


def small_rbm(num_chains: int, seed: int = 0) -> RBM:
    torch.manual_seed(seed)
    rbm = RBM(4, 5, num_chains=num_chains, sweeps=1)
    with torch.no_grad():
        rbm.b1.normal_(0, 1)
        rbm.b2.normal_(0, 1)
        rbm.w.normal_(0, 1)
    return rbm


def test_pcd_chain_statistics_match_exact_moments():
    rbm = small_rbm(4000)
    rbm.update_chains(100)
    m1, m2, m12 = exact_moments(rbm.b1, rbm.b2, rbm.w)
    z1, z2 = rbm.chains1.double(), rbm.chains2.double()
    assert torch.allclose(z1.mean(0), m1, atol=0.035)
    assert torch.allclose(z2.mean(0), m2, atol=0.035)
    assert torch.allclose(z1.T @ z2 / len(z1), m12, atol=0.035)


def test_surrogate_gradient_is_the_exact_gradient_in_expectation():
    rbm = small_rbm(2000, seed=1)
    rbm.update_chains(50)
    grads = []
    for _ in range(5):  # average over several independent states of the chains
        rbm.update_chains(5)
        g = torch.autograd.grad(rbm.log_z_surrogate(), [rbm.b1, rbm.b2, rbm.w])
        grads.append(torch.cat([t.reshape(-1) for t in g]))
    surrogate = torch.stack(grads).mean(0).double()
    exact = torch.autograd.grad(exact_log_z(rbm.b1, rbm.b2, rbm.w), [rbm.b1, rbm.b2, rbm.w])
    exact = torch.cat([t.reshape(-1) for t in exact]).double()
    assert torch.allclose(surrogate, exact, atol=0.03)
    # and its value is the stored log Z, whatever the chains
    assert float(rbm.log_z_surrogate().detach()) == pytest.approx(float(rbm.log_z))


def test_chains_and_log_z_are_checkpointed():
    rbm = small_rbm(10)
    rbm.update_chains(3)
    rbm.log_z.fill_(1.5)
    state = rbm.state_dict()
    assert {"chains1", "chains2", "log_z"} <= set(state)
    other = RBM(4, 5, num_chains=10)
    other.load_state_dict(state)
    assert torch.equal(other.chains1, rbm.chains1) and float(other.log_z) == 1.5


def test_rbm_distribution_normalises_with_exact_log_z():
    rbm = small_rbm(2)
    p = rbm.distribution(rbm.exact_log_z().float())
    z = all_states(9, dtype=torch.float32)
    assert float(torch.logsumexp(p.log_prob(z).detach().double(), 0)) == pytest.approx(0.0, abs=1e-5)
    assert p.sample((3,)).shape == (3, 9)
