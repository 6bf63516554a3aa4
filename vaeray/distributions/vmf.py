"""The von Mises–Fisher distribution on S^{p−1} (Mardia & Jupp 2000, §9.3), as used by the S-VAE
(Davidson, Falorsi, De Cao, Kipf & Tomczak, UAI 2018).

    f(x; μ, κ) = C_p(κ) exp(κ μᵀx),   C_p(κ) = κ^{p/2−1} / ((2π)^{p/2} I_{p/2−1}(κ))          (S-VAE Eq. 3)

Sampling (S-VAE Algorithm 1): the cosine w = μᵀz is drawn around e₁ — in closed form for p = 3 (inverse CDF,
w = 1 + log(u + (1−u) e^{−2κ})/κ), otherwise by Wood's (1994) rejection sampler — then z = Q (w, sqrt(1−w²) v)
with v uniform on S^{p−2} and Q the (signed) Householder map taking e₁ to μ (:func:`reflect_from_e1`). The loop
runs on the device in float64 and syncs with the host once per round (whether any row is still pending).

**Gradient in κ: implicit reparameterisation of w** (Figurnov, Mohamed & Mnih, NeurIPS 2018, Eq. 5), not the
Naesseth et al. (2017) correction term. The latter is a score-function term multiplied by the downstream loss,
which a Distribution's ``rsample`` cannot return; the implicit gradient is the exact pathwise derivative of w
under its own CDF F(w; κ):

    dw/dκ = −(∂F/∂κ)(w; κ) / f_w(w; κ).

With w = cos θ and f_Θ(θ) ∝ exp(φ(θ)), φ(θ) = κ cos θ + (p−2) log sin θ, and ∂f_Θ/∂κ = (cos θ − A_p(κ)) f_Θ,

    dw/dκ = sin θ_w ∫_0^{θ_w} (cos θ − A) e^{φ(θ)−φ(θ_w)} dθ = −sin θ_w ∫_{θ_w}^π (cos θ − A) e^{φ(θ)−φ(θ_w)} dθ.

φ is unimodal, so we integrate over the side on which it falls away from θ_w (the exponent is then ≤ 0 and
nothing overflows), with Gauss–Legendre on geometrically growing sub-intervals starting at θ_w (the integrand
lives on a scale ~1/sqrt(κ + p) near θ_w or 1/|φ'(θ_w)|). The reference code keeps only the pathwise term
through Wood's transform with the accepted ε fixed, which is biased: 0.1277 instead of dA/dκ = 0.1474 at
(p, κ) = (5, 2) (research notes §2.3). The tests check E[dw/dκ] against dA/dκ there.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.distributions import constraints, register_kl

from .bessel import bessel_ratio, log_sphere_area, log_vmf_normalizer
from .sphere import DirectionalDistribution, HypersphericalUniform, reflect_from_e1, tangent_sample

GL_NODES = 12  # Gauss–Legendre nodes per sub-interval
GL_INTERVALS = 40  # sub-intervals of widths d, 2d, 4d, ...: d·2^40 covers π for any d the scales give
_GL_X, _GL_W = np.polynomial.legendre.leggauss(GL_NODES)


def _wood_w(kappa: torch.Tensor, p: int, proposals: int = 4) -> torch.Tensor:
    """Wood (1994) rejection sampler for w = μᵀz, float64, one value per entry of ``kappa`` (flat)."""
    m1 = p - 1
    b = m1 / (2 * kappa + torch.sqrt(4 * kappa**2 + m1**2))  # (−2κ + sqrt(4κ² + (p−1)²))/(p−1), rationalised
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + m1 * torch.log(4 * b / (1 + b) ** 2)  # log(1 − x0²) = log(4b/(1+b)²)
    beta = torch.distributions.Beta(
        torch.tensor(m1 / 2, dtype=kappa.dtype, device=kappa.device),
        torch.tensor(m1 / 2, dtype=kappa.dtype, device=kappa.device),
    )
    w = torch.zeros_like(kappa)
    pending = torch.ones_like(kappa, dtype=torch.bool)
    while bool(pending.any()):  # the one host sync per round
        idx = pending.nonzero().squeeze(-1)
        bi, x0i, ci, ki = b[idx, None], x0[idx, None], c[idx, None], kappa[idx, None]
        eps = beta.sample((len(idx), proposals))
        wi = (1 - (1 + bi) * eps) / (1 - (1 - bi) * eps)
        u = torch.rand_like(wi)
        accept = ki * wi + m1 * torch.log1p(-x0i * wi) - ci >= torch.log(u)
        first = torch.argmax(accept.to(torch.int8), dim=1)
        done = accept.any(dim=1)
        chosen = wi.gather(1, first[:, None]).squeeze(1)
        w[idx[done]] = chosen[done]
        pending[idx[done]] = False
    return w


def _closed_form_w3(kappa: torch.Tensor) -> torch.Tensor:
    """p = 3: inverse CDF, w = 1 + log(u + (1−u) e^{−2κ})/κ, as a log-sum-exp (no overflow at large κ)."""
    u = torch.rand_like(kappa).clamp_min(torch.finfo(kappa.dtype).tiny)
    return 1 + torch.logaddexp(torch.log(u), torch.log1p(-u) - 2 * kappa) / kappa


def implicit_dw_dkappa(w: torch.Tensor, kappa: torch.Tensor, p: int, a: torch.Tensor | None = None) -> torch.Tensor:
    """dw/dκ at fixed CDF value for w ~ the vMF cosine law (float64, flat tensors); see the module docstring.

    ``a`` is A_p(κ) of the same shape when the caller has it (it is shared by all samples of one κ).
    """
    a = bessel_ratio(p, kappa).detach() if a is None else a
    theta_w = torch.acos(w.clamp(-1, 1)).clamp(1e-12, math.pi - 1e-12)
    sin_w, cos_w = torch.sin(theta_w), torch.cos(theta_w)
    dphi = -kappa * sin_w + (p - 2) * cos_w / sin_w
    left = dphi > 0  # φ rises to θ_w: integrate over [0, θ_w], leftwards from θ_w
    length = torch.where(left, theta_w, math.pi - theta_w)
    d = torch.minimum(0.25 / torch.sqrt(kappa + p), 0.5 / dphi.abs().clamp_min(1e-300))
    # only as many doublings as the widest case needs (one host sync, in the backward pass only)
    needed = int(torch.log2(length / d + 1).max().ceil().clamp(1, GL_INTERVALS).item()) if len(w) else 1
    j = torch.arange(needed + 1, dtype=w.dtype, device=w.device)
    edges = torch.minimum(d[:, None] * (2.0**j - 1), length[:, None])  # (N, J+1) offsets from θ_w
    lo, hi = edges[:, :-1], edges[:, 1:]
    x = torch.as_tensor(_GL_X, dtype=w.dtype, device=w.device)
    gw = torch.as_tensor(_GL_W, dtype=w.dtype, device=w.device)
    offset = (lo[..., None] + hi[..., None]) / 2 + (hi - lo)[..., None] / 2 * x  # (N, J, n)
    sign = torch.where(left, -1.0, 1.0).to(w.dtype)[:, None, None]
    theta = (theta_w[:, None, None] + sign * offset).clamp(1e-300, math.pi - 1e-16)
    exponent = kappa[:, None, None] * (torch.cos(theta) - cos_w[:, None, None])
    if p != 2:
        exponent = exponent + (p - 2) * (torch.log(torch.sin(theta)) - torch.log(sin_w)[:, None, None])
    integrand = (torch.cos(theta) - a[:, None, None]) * torch.exp(exponent)
    integral = ((hi - lo) / 2 * (integrand * gw).sum(-1)).sum(-1)
    return sin_w * torch.where(left, integral, -integral)


class _ImplicitW(torch.autograd.Function):
    """Returns the sampled w; its κ-gradient is the implicit one."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, kappa: torch.Tensor, w: torch.Tensor, a: torch.Tensor, p: int
    ) -> torch.Tensor:
        ctx.save_for_backward(kappa, w, a)
        ctx.p = p
        return w.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        kappa, w, a = ctx.saved_tensors
        return grad * implicit_dw_dkappa(w, kappa, ctx.p, a), None, None, None


def sample_w(kappa: torch.Tensor, p: int, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
    """Reparameterised draws of w = μᵀz, float64 of shape ``sample_shape + kappa.shape``, differentiable in κ
    (implicitly)."""
    k64 = kappa.to(torch.float64)
    shape = torch.Size(sample_shape) + k64.shape
    flat = k64.expand(shape).reshape(-1)
    with torch.no_grad():
        a = bessel_ratio(p, k64).expand(shape).reshape(-1)  # once per κ, not per sample
        w = _closed_form_w3(flat) if p == 3 else _wood_w(flat, p)
    return _ImplicitW.apply(flat, w, a, p).reshape(shape)


class VonMisesFisher(DirectionalDistribution):
    """vMF(μ, κ) on S^{p−1}: ``loc`` (…, p) unit vectors, ``scale`` κ > 0 of the batch shape (…).

    Shape-safe: a ``(B, 1)`` κ for a ``(B, p)`` loc is accepted as ``(B,)``; batch shape is ``loc.shape[:-1]``.
    Scalars of κ (normaliser, A_p, entropy) are computed in float64 and cast to ``loc.dtype``.
    """

    arg_constraints = {"loc": constraints.real_vector, "scale": constraints.positive}
    def _log_normalizer64(self) -> torch.Tensor:
        return log_vmf_normalizer(self.p, self.scale)

    @property
    def mean_resultant_length(self) -> torch.Tensor:
        """A_p(κ) = E[μᵀz]."""
        return bessel_ratio(self.p, self.scale).to(self.loc.dtype)

    @property
    def mean(self) -> torch.Tensor:
        return self.mean_resultant_length.unsqueeze(-1) * self.loc

    @property
    def mode(self) -> torch.Tensor:
        return self.loc

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        # κ(μᵀx − 1) + (κ + log C): the second bracket is formed in float64, so large κ loses nothing in float32
        shifted = (self._log_normalizer64() + self.scale.to(torch.float64)).to(value.dtype)
        return self.scale * ((self.loc * value).sum(-1) - 1) + shifted

    def entropy(self) -> torch.Tensor:
        k = self.scale.to(torch.float64)
        return (-k * bessel_ratio(self.p, self.scale) - self._log_normalizer64()).to(self.loc.dtype)

    def rsample(self, sample_shape: torch.Size | tuple = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        w = sample_w(self.scale, self.p, sample_shape)
        x = tangent_sample(w, self.p).to(self.loc.dtype)
        return reflect_from_e1(x, self.loc.expand(shape))


def kl_vmf_uniform_value(q: VonMisesFisher) -> torch.Tensor:
    k = q.scale.to(torch.float64)
    kl = k * bessel_ratio(q.p, q.scale) + q._log_normalizer64() + log_sphere_area(q.p)
    return kl.clamp_min(0).to(q.loc.dtype)  # ≥ 0 exactly; rounding can leave −1e-16 at tiny κ


@register_kl(VonMisesFisher, HypersphericalUniform)
def _kl_vmf_uniform(q: VonMisesFisher, p: HypersphericalUniform) -> torch.Tensor:
    """KL(vMF(μ, κ) ‖ U(S^{p−1})) = κ A_p(κ) + log C_p(κ) + log |S^{p−1}| (S-VAE Eq. 5); independent of μ."""
    if q.p != p.p:
        raise ValueError(f"KL between spheres of different dimension: vMF on R^{q.p}, uniform on R^{p.p}")
    return kl_vmf_uniform_value(q)
