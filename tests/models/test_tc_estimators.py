"""The β-TCVAE estimators (vaeray.models.tc) against closed forms, exact enumeration and brute-force loops."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.distributions import Independent, Normal

from vaeray.models import tc

F64 = torch.float64


def gaussian_batch(m: int, d: int, sigma: float, dependent: bool, seed: int = 0):
    """Posteriors q(z|n) = N(mu_n, σ²I), mu_n ~ N(0, (1−σ²)I): the aggregate posterior is N(0, I) as N → ∞.

    ``dependent``: every dimension copies the first one's mean (z_d = m_n + σ ε_d), so q(z) is a correlated
    Gaussian with unit marginals and known TC and MI.
    """
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(m, 1 if dependent else d, generator=g, dtype=F64) * math.sqrt(1 - sigma**2)
    mu = mu.expand(m, d)
    z = mu + sigma * torch.randn(m, d, generator=g, dtype=F64)
    q = Independent(Normal(mu, torch.full_like(mu, sigma)), 1)
    log_pz = Independent(Normal(torch.zeros(d, dtype=F64), torch.ones(d, dtype=F64)), 1).log_prob(z)
    return q, z, log_pz


def random_batch(m: int, d: int, seed: int = 0, spread: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    mu = spread * torch.randn(m, d, generator=g, dtype=F64)
    sigma = 0.2 + torch.rand(m, d, generator=g, dtype=F64)
    z = mu + sigma * torch.randn(m, d, generator=g, dtype=F64)
    q = Independent(Normal(mu, sigma), 1)
    log_pz = Normal(torch.zeros((), dtype=F64), torch.ones((), dtype=F64)).log_prob(z).sum(-1)
    return q, z, log_pz


# --- the stratified weight matrix ------------------------------------------------------------------------


def weights_by_enumerating_strata(m: int, n: int) -> torch.Tensor:
    """Chen et al. (2018, App. C.2), built from the strata themselves: the N points are split into M−1 equal
    strata; for row i the batch holds n_i, a partner from n_i's stratum minus n_i (taken to be element
    (i+1) mod M) and one point from each other stratum. A point's weight is |the set it was drawn from| / N."""
    assert n % (m - 1) == 0
    strata = [list(range(k * n // (m - 1), (k + 1) * n // (m - 1))) for k in range(m - 1)]
    w = torch.empty(m, m, dtype=F64)
    for i in range(m):
        own = 0  # without loss of generality n_i = point 0 of stratum 0
        sets = {i: [own], (i + 1) % m: [p for p in strata[0] if p != own]}
        others = [j for j in range(m) if j not in sets]
        for j, stratum in zip(others, strata[1:]):
            sets[j] = stratum
        assert sorted(p for s in sets.values() for p in s) == list(range(n))  # a partition of the data
        for j, s in sets.items():
            w[i, j] = len(s) / n
    return w


@pytest.mark.parametrize("m,n", [(2, 7), (3, 6), (4, 9), (5, 8), (8, 56), (64, 63 * 50)])
def test_stratified_weights_match_the_appendix_entry_by_entry(m, n):
    w = tc.stratified_weights(m, n)
    assert torch.allclose(w.sum(1), torch.ones(m, dtype=F64), rtol=0, atol=1e-13)
    assert torch.allclose(w, weights_by_enumerating_strata(m, n), rtol=0, atol=1e-15)
    # the 1/N sits on the diagonal, not in column 0 (the copied stride-M version)
    assert torch.all(w.diagonal() == 1 / n)
    if m > 3:
        assert w[2, 0] == 1 / (m - 1)


@pytest.mark.parametrize("m,n", [(3, 3), (5, 7), (64, 737_280)])
def test_stratified_rows_sum_to_one_for_any_n(m, n):
    w = tc.stratified_weights(m, n)
    assert torch.allclose(w.sum(1), torch.ones(m, dtype=F64), rtol=0, atol=1e-13)
    assert torch.all(w > 0)


def test_stratified_weights_reject_impossible_sizes():
    with pytest.raises(ValueError, match="at least 2"):
        tc.stratified_weights(1, 10)
    with pytest.raises(ValueError, match="dataset_size >= batch size"):
        tc.stratified_weights(8, 5)


def test_mss_is_unbiased_for_q_z_over_every_stratified_batch():
    """Averaged over all batches the stratified design can draw, Σ_j W_ij q(z|n_j) is exactly q(z)."""
    n, m, d = 6, 3, 2  # two strata of three points
    g = torch.Generator().manual_seed(1)
    post = Normal(torch.randn(n, d, generator=g, dtype=F64), 0.5 + torch.rand(n, d, generator=g, dtype=F64))
    z = torch.randn(d, generator=g, dtype=F64)
    dens = post.log_prob(z).exp()  # (N, D): q(z_d | n)
    exact_joint, exact_marg = dens.prod(1).mean(), dens.mean(0)
    log_w = tc.log_weights("mss", m, n, dtype=F64)
    strata = [[0, 1, 2], [3, 4, 5]]
    for i in range(m):  # the row (position of n* in the batch) must not matter
        for star in range(n):
            home = strata[star // 3]
            other = strata[1 - star // 3]
            joint, marg, count = 0.0, 0.0, 0
            for partner, far in itertools.product([p for p in home if p != star], other):
                batch = [None] * m
                batch[i], batch[(i + 1) % m] = star, partner
                batch[[j for j in range(m) if batch[j] is None][0]] = far
                # log_density[i', j, d] = log q(z_d | n_j) for the same z in every row
                log_density = post.log_prob(z)[batch].expand(m, m, d)
                log_qz, log_prod = tc.log_aggregate(log_density, log_w)
                joint, count = joint + log_qz[i].exp(), count + 1
                marg = marg + torch.logsumexp(log_density[i] + log_w[i, :, None], 0).exp()
            assert joint / count == pytest.approx(exact_joint.item(), rel=1e-12)
            assert torch.allclose(marg / count, exact_marg, rtol=1e-12, atol=0)


# --- the decomposition ---------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_mi_tc_dwkl_add_up_to_the_estimators_kl(estimator):
    q, z, log_pz = random_batch(16, 5)
    parts = tc.decompose(q, z, log_pz, dataset_size=1000, estimator=estimator)
    kl = (q.log_prob(z) - log_pz).mean()
    assert parts["kl"].item() == pytest.approx(kl.item(), abs=1e-12)
    assert (parts["mi"] + parts["tc"] + parts["dwkl"]).item() == pytest.approx(kl.item(), abs=1e-12)


def brute_force(q, z, log_pz, log_w):
    """The same estimator with explicit loops: weight once per (i, j) pair, and once per marginal term."""
    mu, sd = q.base_dist.loc, q.base_dist.scale
    m, d = z.shape

    def dens(i: int, j: int, k: int) -> float:
        u = float((z[i, k] - mu[j, k]) / sd[j, k])
        return math.exp(-0.5 * u * u) / (float(sd[j, k]) * math.sqrt(2 * math.pi))

    mi = tcs = dw = 0.0
    for i in range(m):
        joint = sum(math.exp(log_w[i][j]) * math.prod(dens(i, j, k) for k in range(d)) for j in range(m))
        prod_marg = sum(math.log(sum(math.exp(log_w[i][j]) * dens(i, j, k) for j in range(m))) for k in range(d))
        own = sum(math.log(dens(i, i, k)) for k in range(d))
        mi += own - math.log(joint)
        tcs += math.log(joint) - prod_marg
        dw += prod_marg - float(log_pz[i])
    return mi / m, tcs / m, dw / m


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_matches_brute_force_loops(estimator):
    q, z, log_pz = random_batch(7, 3, seed=2, spread=0.7)
    n = 50
    parts = tc.decompose(q, z, log_pz, n, estimator)
    mi, tcs, dw = brute_force(q, z, log_pz, tc.log_weights(estimator, 7, n, dtype=F64).tolist())
    assert parts["mi"].item() == pytest.approx(mi, abs=1e-10)
    assert parts["tc"].item() == pytest.approx(tcs, abs=1e-10)
    assert parts["dwkl"].item() == pytest.approx(dw, abs=1e-10)


def test_no_per_dimension_log_weight_offset():
    """At B=64, D=10, N=737,280 a log weight added per dimension before the sum shifts MI and TC by ≈ 37 nats.

    Ours equals the brute-force estimator (weight once per pair) and is far from the per-dimension variant.
    """
    m, d, n = 64, 10, 737_280
    q, z, log_pz = random_batch(m, d, seed=3, spread=2.0)
    ours = tc.decompose(q, z, log_pz, n, "mss")
    log_w = tc.log_weights("mss", m, n, dtype=F64)
    log_density = tc.pairwise_log_density(q, z)
    per_dim = torch.logsumexp((log_density + log_w[..., None]).sum(-1), 1)  # the weight counted D times
    own = log_density.diagonal(dim1=0, dim2=1).sum(0)
    _, log_prod = tc.log_aggregate(log_density, log_w)
    mi_bug, tc_bug = (own - per_dim).mean(), (per_dim - log_prod).mean()
    assert (mi_bug - ours["mi"]).item() > 0.9 * (d - 1) * math.log(m - 1)  # ≈ 37 nats
    assert (ours["tc"] - tc_bug).item() > 0.9 * (d - 1) * math.log(m - 1)
    assert ours["mi"].item() <= math.log(n) + 1e-9
    small = random_batch(6, 4, seed=4, spread=2.0)  # and the loops agree on a batch small enough for them
    mi, tcs, _ = brute_force(*small, tc.log_weights("mss", 6, n, dtype=F64).tolist())
    got = tc.decompose(*small, n, "mss")
    assert got["mi"].item() == pytest.approx(mi, abs=1e-9) and got["tc"].item() == pytest.approx(tcs, abs=1e-9)


def test_mws_carries_the_minus_log_nm_constant():
    """MWS = the uniform-1/M minibatch estimate minus log N, in the joint and in every marginal."""
    m, d, n = 12, 4, 5000
    q, z, log_pz = random_batch(m, d, seed=5)
    log_density = tc.pairwise_log_density(q, z)
    log_qz, log_prod = tc.log_aggregate(log_density, tc.log_weights("mws", m, n, dtype=F64))
    assert torch.allclose(log_qz, torch.logsumexp(log_density.sum(-1), 1) - math.log(n * m), atol=1e-12)
    assert torch.allclose(log_prod, (torch.logsumexp(log_density, 1) - math.log(n * m)).sum(-1), atol=1e-12)
    uniform = torch.full((m, m), -math.log(m), dtype=F64)
    u_qz, u_prod = tc.log_aggregate(log_density, uniform)
    mws = tc.decompose(q, z, log_pz, n, "mws")
    own = log_density.diagonal(dim1=0, dim2=1).sum(0)
    assert mws["mi"].item() == pytest.approx((own - u_qz).mean().item() + math.log(n))
    assert mws["tc"].item() == pytest.approx((u_qz - u_prod).mean().item() + (d - 1) * math.log(n))


# --- behaviour on distributions with known answers -------------------------------------------------------


def test_factorised_aggregate_posterior_has_tc_near_zero_and_the_true_mi():
    """q(z) = N(0, I) (N → ∞): TC = 0, DWKL = 0 and MI = (D/2)·log(1/σ²) in closed form."""
    d, sigma, n, m = 4, 0.7, 10**6, 512
    runs = [tc.decompose(*gaussian_batch(m, d, sigma, dependent=False, seed=s), n, "mss") for s in range(12)]
    tcs = torch.stack([r["tc"] for r in runs])
    assert abs(tcs.mean().item()) < 0.03 and tcs.abs().max().item() < 0.1
    assert torch.stack([r["dwkl"] for r in runs]).mean().abs().item() < 0.03
    mi_true = 0.5 * d * math.log(1 / sigma**2)
    assert torch.stack([r["mi"] for r in runs]).mean().item() == pytest.approx(mi_true, abs=0.08)


def test_dependent_codes_have_the_gaussian_total_correlation():
    """All dimensions share one mean: Σ = (1−σ²)11ᵀ + σ²I and TC = −½ log det Σ ≈ 2.95 nats (D=4, σ=0.3)."""
    d, sigma, n, m = 4, 0.3, 10**6, 512
    cov = (1 - sigma**2) * torch.ones(d, d, dtype=F64) + sigma**2 * torch.eye(d, dtype=F64)
    tc_true = -0.5 * torch.logdet(cov).item()
    mi_true = 0.5 * math.log((sigma**2 + d * (1 - sigma**2)) / sigma**2)
    runs = [tc.decompose(*gaussian_batch(m, d, sigma, dependent=True, seed=s), n, "mss") for s in range(8)]
    tcs = torch.stack([r["tc"] for r in runs])
    assert tcs.min().item() > 2.0
    assert tcs.mean().item() == pytest.approx(tc_true, abs=0.15)
    assert torch.stack([r["mi"] for r in runs]).mean().item() == pytest.approx(mi_true, abs=0.1)


@pytest.mark.parametrize("spread", [0.0, 1.0, 30.0])
def test_mi_bounds(spread):
    """log q̂(z_i) ≥ log W_ii q(z_i|n_i), so MI ≤ log N for MSS and ≤ log(N·M) for MWS, sample by sample."""
    m, d, n = 32, 6, 200
    q, z, log_pz = random_batch(m, d, seed=6, spread=spread)
    assert tc.decompose(q, z, log_pz, n, "mss")["mi"].item() <= math.log(n) + 1e-9
    assert tc.decompose(q, z, log_pz, n, "mws")["mi"].item() <= math.log(n * m) + 1e-9
    if spread == 30.0:  # disjoint posteriors: the bound is attained
        assert tc.decompose(q, z, log_pz, n, "mss")["mi"].item() == pytest.approx(math.log(n), abs=1e-6)


def test_whole_dataset_in_the_batch():
    """N = M: the exact aggregate posterior is log (1/N) Σ_n q(z|n). MWS gives it minus log M, exactly; MSS,
    whose weights are 1/N, 1/(N(N−1)) and 1/(N−1), is exact when the posteriors coincide or are disjoint and
    within [−log(N−1), log(N/(N−1))] of it in between."""
    n = 6
    for spread, check in ((0.0, "equal"), (50.0, "disjoint"), (1.0, "between")):
        q, z, _ = random_batch(n, 3, seed=7, spread=spread)
        if check == "equal":  # identical posteriors for every n
            base = q.base_dist
            q = Independent(Normal(base.loc[:1].expand(n, 3), base.scale[:1].expand(n, 3)), 1)
        log_density = tc.pairwise_log_density(q, z)
        exact = torch.logsumexp(log_density.sum(-1), 1) - math.log(n)
        mws, _ = tc.log_aggregate(log_density, tc.log_weights("mws", n, n, dtype=F64))
        mss, _ = tc.log_aggregate(log_density, tc.log_weights("mss", n, n, dtype=F64))
        assert torch.allclose(mws, exact - math.log(n), atol=1e-12)
        gap = mss - exact
        if check in ("equal", "disjoint"):
            assert gap.abs().max().item() < 1e-9
        assert gap.min().item() >= -math.log(n - 1) - 1e-12 and gap.max().item() <= math.log(n / (n - 1)) + 1e-12
