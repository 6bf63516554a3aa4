"""The KL term of DVAE/DVAE++ with a hierarchical posterior (2 and 4 latent levels) against its exact value.

The objective's KL for the posterior q(z1|x) r(ζ1|z1) q(z2|ζ1, x) … and the prior p(z) r(ζ|z) (the smoothing
terms cancel, Rolfe 2017 Sec. 3) is

    KL = E_q[log q(z_left | ζ) − log p(z)] − Σ_right E[H(q(z_r | ζ_left))]          (E(z) linear in z_right)

On a model small enough (2 units per level, an RBM of 2 × 2 or 4 × 4) it is computed exactly: z_left enumerated,
ζ_left integrated by tensor Gauss-Legendre quadrature (in ζ for the exponential smoothers, whose densities are
entire; through the inverse CDF ζ = u^β for the power smoother, whose density is singular), and its gradient
with respect to every encoder and RBM parameter taken by autograd on that expression. The training estimator
(the model's own posteriors, rsample and ``discrete_kl``) is averaged over many samples, in batches whose
spread gives a standard error; its mean gradient must match the exact gradient within 4.5 standard errors.
Without the spike's boundary term the DVAE estimator is visibly biased (the check that the test can fail).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaeray.distributions.boltzmann import all_states, exact_log_z
import vaeray.models.discrete  # noqa: F401  (registers the baselines)
from vaeray.registry import MODELS

U = 2  # units per level


def model(name: str, levels: int):
    torch.manual_seed(0)
    structure = {2: "2-layer-nonlin", 4: "4-layer-nonlin"}[levels]
    m = MODELS.build({"name": name, "structure": structure, "units": U, "hidden": 4, "num_chains": 2, "sweeps": 1},
                     "model", observation_shape=(3,)).double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in (m.rbm.b1, m.rbm.b2, m.rbm.w):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 1.2)
    return m


def encoder_params(levels: int) -> dict[str, torch.Tensor]:
    """Leaf tensors standing in for the encoder: level 0's logits; level i's offset and its weights on the
    ζ of earlier levels. The right half (levels ≥ levels/2) reads only the left half's ζ, so the exact KL
    integrates over the left ζ alone."""
    g = torch.Generator().manual_seed(2)
    rnd = lambda *s: (torch.randn(*s, generator=g, dtype=torch.float64) * 1.5).requires_grad_()  # noqa: E731
    out = {"l0": rnd(U)}
    for i in range(1, levels):
        out[f"a{i}"] = rnd(U)
        for j in range(min(i, levels // 2)):
            out[f"c{i}{j}"] = rnd(U, U)
    return out


def level_logits(params, i: int, zetas: list[torch.Tensor], shape) -> torch.Tensor:
    if i == 0:
        return params["l0"].expand(*shape, U)
    out = params[f"a{i}"].expand(*shape, U)
    for j, zeta in enumerate(zetas):
        if f"c{i}{j}" in params:
            out = out + zeta @ params[f"c{i}{j}"]
    return out


def nodes(name: str, beta: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ζ, weight) of shape (2, n): quadrature of ∫ r(ζ|z) f(ζ) dζ for z = 0, 1."""
    x, w = np.polynomial.legendre.leggauss(n)
    t, w = torch.tensor((x + 1) / 2), torch.tensor(w / 2)
    if name == "dvaepp_power":  # ζ = R⁻¹(u): u^β for z = 0, 1 − u^β for z = 1; weights are du
        return torch.stack([t**beta, 1 - t**beta]), torch.stack([w, w])
    norm = beta / -math.expm1(-beta)
    if name == "dvae_spike_exp":  # z = 0: the spike at 0 (weights sum to 1); z = 1: β e^{β(ζ−1)}/(1 − e^{−β})
        return torch.stack([torch.zeros_like(t), t]), torch.stack([torch.full_like(t, 1.0 / n), w * norm * torch.exp(beta * (t - 1))])
    r0 = norm * torch.exp(-beta * t)  # overlapping exponentials: r(ζ|0) ∝ e^{−βζ}, r(ζ|1) = r(1 − ζ|0)
    return torch.stack([t, t]), torch.stack([w * r0, w * norm * torch.exp(-beta * (1 - t))])


def exact_kl(m, name: str, params, levels: int, n: int) -> torch.Tensor:
    left = levels // 2
    zl = all_states(left * U)  # (S, left·U)
    at, wt = nodes(name, m.beta, n)
    grid = torch.cartesian_prod(*[torch.arange(n)] * (left * U)).reshape(-1, left * U)  # (P, left·U)
    zi = zl.long()[:, None, :].expand(-1, grid.shape[0], -1)
    gi = grid[None].expand(zl.shape[0], -1, -1)
    zeta = at[zi, gi]  # (S, P, left·U)
    weight = wt[zi, gi].prod(-1)
    shape = zeta.shape[:2]
    zetas, log_q = [], 0.0
    for i in range(left):
        lg = level_logits(params, i, zetas, shape)
        z = zl[:, None, i * U : (i + 1) * U]
        log_q = log_q + (z * torch.nn.functional.logsigmoid(lg) + (1 - z) * torch.nn.functional.logsigmoid(-lg)).sum(-1)
        zetas.append(zeta[..., i * U : (i + 1) * U])
    right = [torch.sigmoid(level_logits(params, i, zetas, shape)) for i in range(left, levels)]
    q2 = torch.cat(right, -1)
    neg_h2 = (q2 * torch.log(q2) + (1 - q2) * torch.log1p(-q2)).sum(-1)
    b1, b2, w = m.rbm.b1, m.rbm.b2, m.rbm.w
    z1 = zl[:, None, :]
    energy = -(z1 * b1).sum(-1) - (q2 * b2).sum(-1) - ((z1 @ w) * q2).sum(-1)
    integrand = log_q + neg_h2 + energy
    return (weight * log_q.exp() * integrand).sum() + exact_log_z(b1, b2, w)


def estimates(m, params, levels: int, batches: int, size: int, boundary: bool = True) -> torch.Tensor:
    """(batches, 1 + #params): each batch's mean KL estimate and its gradient."""
    flat = [*params.values(), m.rbm.b1, m.rbm.b2, m.rbm.w]
    out = []
    for _ in range(batches):
        posts, zetas = [], []
        for i in range(levels):
            q = m.posterior(i, level_logits(params, i, zetas, (size,)))
            posts.append(q)
            zetas.append(q.rsample())
        log_z = exact_log_z(m.rbm.b1, m.rbm.b2, m.rbm.w)  # exact, so only the posterior side is estimated
        kl = m.discrete_kl(posts, zetas, log_z, boundary=boundary).mean()
        grads = torch.autograd.grad(kl, flat)
        out.append(torch.cat([kl.detach().reshape(1), *[g.reshape(-1) for g in grads]]))
    return torch.stack(out)


def z_scores(m, name, params, levels, boundary=True, batches=40, size=2500, n=24):
    flat = [*params.values(), m.rbm.b1, m.rbm.b2, m.rbm.w]
    kl = exact_kl(m, name, params, levels, n)
    exact = torch.cat([kl.detach().reshape(1), *[g.reshape(-1) for g in torch.autograd.grad(kl, flat)]])
    torch.manual_seed(3)
    est = estimates(m, params, levels, batches, size, boundary)
    mean, se = est.mean(0), est.std(0) / math.sqrt(batches)
    # components the estimator computes deterministically (∂/∂b1 = −q1 + ∂log Z) have se = 0: judged against the
    # quadrature's own accuracy (1e-6) instead
    return (mean - exact) / (se + 1e-6), exact, mean, se


@pytest.mark.parametrize(
    "name, levels",
    [("dvae_spike_exp", 2), ("dvae_spike_exp", 4), ("dvaepp_exp", 2), ("dvaepp_exp", 4), ("dvaepp_power", 2)],
)
def test_hierarchical_kl_estimator_is_unbiased_in_value_and_gradient(name, levels):
    m = model(name, levels)
    params = encoder_params(levels)
    n = 24 if levels == 2 else 12  # quadrature nodes per left unit (see test_quadrature_is_converged)
    z, exact, mean, se = z_scores(m, name, params, levels, n=n)
    assert torch.isfinite(z).all()
    assert z.abs().max() < 4.5, (z, exact, mean, se)
    assert exact[1:].abs().max() > 0.05  # a non-trivial gradient


def test_quadrature_is_converged():
    """The exact reference does not move when the quadrature is refined (4-level spike: the hardest case)."""
    m, params = model("dvae_spike_exp", 4), encoder_params(4)
    flat = [*params.values(), m.rbm.b1, m.rbm.b2, m.rbm.w]
    a, b = (exact_kl(m, "dvae_spike_exp", params, 4, n) for n in (12, 16))
    assert float(a) == pytest.approx(float(b), abs=1e-10)
    for ga, gb in zip(torch.autograd.grad(a, flat), torch.autograd.grad(b, flat)):
        assert torch.allclose(ga, gb, atol=1e-9)


def test_spike_without_the_boundary_term_is_biased():
    m = model("dvae_spike_exp", 2)
    params = encoder_params(2)
    z, *_ = z_scores(m, "dvae_spike_exp", params, 2, boundary=False)
    assert abs(float(z[0])) < 4.5  # the value is unbiased either way
    assert z[1:3].abs().max() > 10  # ∂/∂l0 (the first level's logits) misses the jump at the spike
