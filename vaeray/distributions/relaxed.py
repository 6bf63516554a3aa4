"""The relaxed RBM priors of DVAE# (Vahdat, Andriyash & Macready, NeurIPS 2018): a continuous density p(ζ) over
the smoothed latents, so the objective can compare q(ζ|x) with p(ζ) directly (ELBO or importance-weighted bound).

**Marginal ("overlapping") relaxation** (DVAE# Sec. 3.1, Eq. 5–6). With p(z, ζ) ∝ e^{−E(z)} Π_i r(ζ_i|z_i),

    log p(ζ) = −log Z + Σ_i log r(ζ_i|0) + log Z̃(ζ),

Z̃(ζ) the partition function of the RBM whose biases are shifted by log r(ζ|1)/r(ζ|0). log Z̃ is replaced by
its mean-field lower bound −E_aug(m) + H(m) after 5 fixed-point iterations from m = ½ (right side, then left),
under no_grad; at the fixed point the bound's gradient is −∂E_aug/∂θ at fixed m (envelope theorem), which is
what differentiating −E_aug(m) with m detached gives. log Z is the PCD surrogate (:meth:`RBM.log_z_surrogate`).

**Gaussian-integral relaxation** (DVAE# Sec. 3.2, Eq. 9–10). Write E(z) = −aᵀz − ½zᵀWz with the symmetric
W = [[0, w], [wᵀ, 0]] and smooth with r(ζ|z) = N(ζ; z, A⁻¹), A = W + λI. The terms quadratic in z cancel
(z_i² = z_i) and the sum over z factorises:

    log p(ζ) = −log Z − ½ log det(2π A⁻¹) − ½ ζᵀAζ + Σ_i softplus(a_i + (Aζ)_i − λ/2),

with log det A = n log λ + log det(I − wᵀw/λ²) (Schur complement, by Cholesky). A is positive definite when
λ > σ_max(w) (W's eigenvalues are ±σ_i(w)); we take λ = max(σ_max(w) + 5, β) recomputed at every call and held
constant for the gradient (the reference refreshes it only every 1000 steps).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.distributions import Distribution, constraints

from .boltzmann import RBM, gibbs_sweep
from .smoothing import SmoothedBernoulli


def _bernoulli_entropy(m: torch.Tensor) -> torch.Tensor:
    return -(torch.xlogy(m, m) + torch.xlogy(1 - m, 1 - m)).sum(-1)


def mean_field_log_z(
    c1: torch.Tensor, c2: torch.Tensor, w: torch.Tensor, iters: int = 5
) -> torch.Tensor:
    """Mean-field lower bound of log Σ_z exp(c1ᵀz1 + c2ᵀz2 + z1ᵀWz2) per row of the biases ``c1``, ``c2``.

    The value is the bound at the fixed point; the gradient is that of −E_aug(m) at the (detached) m.
    """
    with torch.no_grad():
        m1 = torch.full_like(c1, 0.5)
        for _ in range(iters):
            m2 = torch.sigmoid(c2 + m1 @ w)
            m1 = torch.sigmoid(c1 + m2 @ w.T)
        entropy = _bernoulli_entropy(m1) + _bernoulli_entropy(m2)
    return (c1 * m1).sum(-1) + (c2 * m2).sum(-1) + ((m1 @ w) * m2).sum(-1) + entropy


class MarginalRelaxedRBM(Distribution):
    """p(ζ) = Σ_z p(z) Π_i r(ζ_i|z_i) for an RBM and a smoother (a :class:`SmoothedBernoulli` subclass).

    ``log_prob`` uses the mean-field value for log Z̃ (``mf_iters``), so it is a lower bound of the exact
    marginal up to the error of ``log_z``; ``exact=True`` enumerates instead (tests, small machines).
    """

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(
        self,
        rbm: RBM,
        smoother: type[SmoothedBernoulli],
        beta: float,
        log_z: torch.Tensor,
        mf_iters: int = 5,
        exact: bool = False,
        **smoother_kwargs,
    ):
        self.rbm, self.smoother, self.beta, self.log_z = rbm, smoother, beta, log_z
        self.mf_iters, self.exact, self.kw = mf_iters, exact, smoother_kwargs
        super().__init__(batch_shape=torch.Size(), event_shape=torch.Size([rbm.n]), validate_args=False)

    @property
    def support(self):
        return constraints.independent(self.smoother.support, 1)

    def _components(self, value: torch.Tensor) -> SmoothedBernoulli:
        return self.smoother(torch.zeros_like(value), self.beta, **self.kw)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        r = self._components(value)
        log_r0 = r.log_r(value, 0).sum(-1)
        shift = r.log_r_ratio(value)
        n1 = self.rbm.n1
        c1, c2 = self.rbm.b1 + shift[..., :n1], self.rbm.b2 + shift[..., n1:]
        if self.exact:
            from .boltzmann import exact_log_z

            flat1, flat2 = c1.reshape(-1, n1), c2.reshape(-1, self.rbm.n2)
            log_zt = torch.stack([exact_log_z(a, b, self.rbm.w) for a, b in zip(flat1, flat2)]).reshape(c1.shape[:-1])
            log_zt = log_zt.to(value.dtype)
        else:
            log_zt = mean_field_log_z(c1, c2, self.rbm.w, self.mf_iters)
        return -self.log_z + log_r0 + log_zt

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size = torch.Size(), sweeps: int = 200) -> torch.Tensor:
        n = max(1, math.prod(sample_shape))
        b1, b2, w = self.rbm.b1, self.rbm.b2, self.rbm.w
        z1 = torch.bernoulli(torch.full((n, self.rbm.n1), 0.5, device=b1.device, dtype=b1.dtype))
        for _ in range(sweeps):
            z1, z2 = gibbs_sweep(z1, b1, b2, w)
        z = torch.cat([z1, z2], -1)
        r = self._components(z)
        zeta = torch.where(z > 0, r.component_sample(z.shape, 1), r.component_sample(z.shape, 0))
        return zeta.reshape(*sample_shape, -1)


def gi_lambda(w: torch.Tensor, beta: float, margin: float = 5.0) -> float:
    """The diagonal shift λ = max(σ_max(w) + margin, β), a constant (no gradient)."""
    with torch.no_grad():
        return max(float(torch.linalg.matrix_norm(w.detach().double(), ord=2)) + margin, float(beta))


def gi_log_det(w: torch.Tensor, lam: float) -> torch.Tensor:
    """log det(W + λI) for W = [[0, w], [wᵀ, 0]]: n log λ + log det(I − wᵀw/λ²) by Cholesky."""
    n1, n2 = w.shape
    small = w if n1 >= n2 else w.T  # the Schur complement on the smaller side
    m = torch.eye(small.shape[1], dtype=w.dtype, device=w.device) - small.T @ small / lam**2
    chol = torch.linalg.cholesky(m)
    return (n1 + n2) * math.log(lam) + 2 * torch.log(torch.diagonal(chol)).sum()


class GaussianIntegralRBM(Distribution):
    """The DVAE# Gaussian-integral relaxation p(ζ) = Σ_z p(z) N(ζ; z, (W + λI)⁻¹), in closed form."""

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = False

    def __init__(self, rbm: RBM, beta: float, log_z: torch.Tensor):
        self.rbm, self.log_z = rbm, log_z
        self.lam = gi_lambda(rbm.w, beta)
        super().__init__(batch_shape=torch.Size(), event_shape=torch.Size([rbm.n]), validate_args=False)

    def a_zeta(self, value: torch.Tensor) -> torch.Tensor:
        """(W + λI) ζ, without forming the n × n matrix."""
        n1 = self.rbm.n1
        z1, z2 = value[..., :n1], value[..., n1:]
        return torch.cat([z2 @ self.rbm.w.T, z1 @ self.rbm.w], -1) + self.lam * value

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        n, lam = self.rbm.n, self.lam
        a = torch.cat([self.rbm.b1, self.rbm.b2])
        az = self.a_zeta(value)
        log_det = gi_log_det(self.rbm.w, lam)
        return (
            -self.log_z
            - 0.5 * (n * math.log(2 * math.pi) - log_det)
            - 0.5 * (value * az).sum(-1)
            + F.softplus(a + az - lam / 2).sum(-1)
        )

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size = torch.Size(), sweeps: int = 200) -> torch.Tensor:
        n = max(1, math.prod(sample_shape))
        rbm = self.rbm
        z1 = torch.bernoulli(torch.full((n, rbm.n1), 0.5, device=rbm.w.device, dtype=rbm.w.dtype))
        for _ in range(sweeps):
            z1, z2 = gibbs_sweep(z1, rbm.b1, rbm.b2, rbm.w)
        z = torch.cat([z1, z2], -1)
        w_full = torch.zeros(rbm.n, rbm.n, dtype=rbm.w.dtype, device=rbm.w.device)
        w_full[: rbm.n1, rbm.n1 :] = rbm.w
        w_full[rbm.n1 :, : rbm.n1] = rbm.w.T
        chol = torch.linalg.cholesky(w_full + self.lam * torch.eye(rbm.n, dtype=w_full.dtype, device=w_full.device))
        # ζ = z + L⁻ᵀ ε has covariance (L Lᵀ)⁻¹ = A⁻¹
        eps = torch.randn_like(z)
        noise = torch.linalg.solve_triangular(chol.T, eps.T, upper=True).T
        return (z + noise).reshape(*sample_shape, -1)
