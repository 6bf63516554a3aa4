"""Smoothing relaxations of a Bernoulli unit for the discrete VAEs, as distributions with ``rsample``.

A binary unit z ~ Bernoulli(q) is smoothed into a continuous ζ ~ r(ζ|z); the relaxed posterior is the mixture

    q(ζ) = (1 − q) r(ζ|0) + q r(ζ|1),        F(ζ) = (1 − q) R(ζ|0) + q R(ζ|1),

one per unit (batch shape = the logits' shape, no event dims; wrap in ``Independent`` for a vector).

* :class:`SpikeAndExponential` — DVAE (Rolfe 2017, Eq. 5): r(ζ|0) = δ(ζ), r(ζ|1) = β e^{β(ζ−1)}/(1 − e^{−β}).
  Analytic inverse CDF (Rolfe Eq. 6).
* :class:`OverlappingExponential` — DVAE++ (Vahdat et al. 2018a, Eq. 4) and the DVAE# exponential mixture:
  r(ζ|0) = β e^{−βζ}/(1 − e^{−β}), r(ζ|1) = r(1 − ζ|0). Analytic inverse CDF (DVAE++ Eq. 5–6: e^{−βζ} solves a
  quadratic).
* :class:`PowerFunction` — DVAE++ power-function smoother and DVAE# power mixture: r(ζ|0) = λ ζ^{λ−1},
  λ = 1/β, on [0, 1]; ζ = ρ^β underflows for β ≈ 30–40, so samples and gradients are computed in log space.
* :class:`GaussianMixture` — DVAE# Gaussian mixture r(ζ|z) = N(ζ; z + shift, σ²), σ = 1/√β, and with a
  learned shift and scale the posterior of the Gaussian-integral relaxation (Vahdat, Andriyash & Macready
  2018b, Sec. 3.2).
* :class:`UniformExponential` — DVAE#: r(ζ|0) = (1 − ε) β e^{−βζ}/(1 − e^{−β}) + ε on [0, 1] (ε = 0.05).

Where no analytic inverse CDF exists, ``rsample`` draws ancestrally (z, then ζ | z) and attaches the implicit
reparameterisation gradient (Figurnov, Mohamed & Mnih 2018, Eq. 4; DVAE# Sec. 3.1):

    ∂ζ/∂θ = −(∂F(ζ; θ)/∂θ) / q(ζ),    realised as  ζ − (F(ζ; θ) − stopgrad F(ζ; θ)) / stopgrad q(ζ),

whose value is ζ and whose gradient is exactly that formula, for every parameter θ that F depends on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.distributions import Distribution, constraints

LOG_EPS = 1e-7  # probabilities are kept in [1e-7, 1 - 1e-7] where a log or a ratio would blow up


def _implicit(zeta: torch.Tensor, cdf: torch.Tensor, log_pdf: torch.Tensor) -> torch.Tensor:
    """ζ with gradient −∂F/∂θ / q(ζ) (implicit reparameterisation); ``cdf`` must be F(ζ.detach(); θ)."""
    return zeta.detach() - (cdf - cdf.detach()) / log_pdf.detach().exp()


class SmoothedBernoulli(Distribution):
    """Base: the mixture (1 − q) r(ζ|0) + q r(ζ|1) with q = σ(logits). Subclasses give the components."""

    arg_constraints = {"logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, logits: torch.Tensor, beta: float, validate_args: bool | None = None):
        self.logits = logits
        self.beta = float(beta)
        super().__init__(batch_shape=logits.shape, validate_args=validate_args)

    @property
    def probs(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    @property
    def mean(self) -> torch.Tensor:
        return (1 - self.probs) * self.component_mean(0) + self.probs * self.component_mean(1)

    # --- components (per unit, elementwise) ---
    def log_r(self, zeta: torch.Tensor, z: int) -> torch.Tensor:
        raise NotImplementedError

    def component_cdf(self, zeta: torch.Tensor, z: int) -> torch.Tensor:
        raise NotImplementedError

    def component_sample(self, shape: torch.Size, z: int) -> torch.Tensor:
        raise NotImplementedError

    def component_mean(self, z: int) -> float | torch.Tensor:
        raise NotImplementedError

    def log_r_ratio(self, zeta: torch.Tensor) -> torch.Tensor:
        """log r(ζ|1) − log r(ζ|0): the bias shift of the relaxed-prior RBM (DVAE# Eq. 6)."""
        return self.log_r(zeta, 1) - self.log_r(zeta, 0)

    def z_given_zeta(self, zeta: torch.Tensor) -> torch.Tensor:
        """E[z | ζ] = σ(logit + log r(ζ|1)/r(ζ|0)) (DVAE++ Eq. 10), differentiable in the logits and ζ."""
        return torch.sigmoid(self.logits + self.log_r_ratio(zeta))

    # --- mixture ---
    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return torch.logaddexp(F.logsigmoid(-self.logits) + self.log_r(value, 0), F.logsigmoid(self.logits) + self.log_r(value, 1))

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        q = self.probs
        return (1 - q) * self.component_cdf(value, 0) + q * self.component_cdf(value, 1)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            z = torch.bernoulli(self.probs.detach().expand(shape))
            zeta = torch.where(z > 0, self.component_sample(shape, 1), self.component_sample(shape, 0))
        return _implicit(zeta, self.cdf(zeta), self.log_prob(zeta))


def _uniform(shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    # ρ in (0, 1) exactly: torch.rand can return 0, whose log would be -inf
    return torch.rand(shape, dtype=like.dtype, device=like.device).clamp_(LOG_EPS, 1 - LOG_EPS)


class _TruncatedExponentialParts:
    """r(ζ|0) = β e^{−βζ}/(1 − e^{−β}) on [0, 1], its CDF and inverse CDF."""

    beta: float

    def _log_exp0(self, zeta):
        b = self.beta
        return math.log(b) - b * zeta - math.log(-math.expm1(-b))

    def _cdf_exp0(self, zeta):
        return torch.expm1(-self.beta * zeta) / math.expm1(-self.beta)

    def _sample_exp0(self, rho):
        return -torch.log1p(math.expm1(-self.beta) * rho) / self.beta


class SpikeAndExponential(SmoothedBernoulli):
    """DVAE (Rolfe 2017, Sec. 2.1): a spike at 0 for z = 0, β e^{β(ζ−1)}/(1 − e^{−β}) for z = 1.

    ``log_prob`` is with respect to (the point mass at 0) + Lebesgue measure: log(1 − q) at ζ = 0.
    """

    def log_prob(self, value):
        return torch.where(value == 0, F.logsigmoid(-self.logits), F.logsigmoid(self.logits) + self.log_r(value, 1))

    def z_given_zeta(self, zeta):
        """ζ > 0 only when z = 1 and ζ = 0 only when z = 0: E[z | ζ] is the indicator (no gradient)."""
        return (zeta > 0).to(zeta.dtype)

    def log_r(self, zeta, z):
        if z == 0:
            return torch.where(zeta == 0, 0.0, -math.inf).to(zeta.dtype)
        b = self.beta
        return math.log(b) + b * (zeta - 1) - math.log(-math.expm1(-b))

    def component_cdf(self, zeta, z):
        if z == 0:
            return torch.ones_like(zeta)
        return torch.expm1(self.beta * zeta) / math.expm1(self.beta)

    def component_sample(self, shape, z):
        if z == 0:
            return torch.zeros(shape, dtype=self.logits.dtype, device=self.logits.device)
        return torch.log1p(_uniform(shape, self.logits) * math.expm1(self.beta)) / self.beta

    def component_mean(self, z):
        b = self.beta
        return 0.0 if z == 0 else 1.0 / (1 - math.exp(-b)) - 1.0 / b

    def rsample(self, sample_shape=torch.Size()):
        """Rolfe's analytic inverse CDF (Eq. 6): ζ = 0 if ρ ≤ 1 − q, else (1/β) log(((ρ + q − 1)/q)(e^β − 1) + 1)."""
        shape = self._extended_shape(sample_shape)
        q = self.probs.expand(shape).clamp(LOG_EPS, 1 - LOG_EPS)
        rho = _uniform(shape, self.logits)
        inner = (torch.clamp(rho + q - 1, min=0) / q) * math.expm1(self.beta)
        return torch.where(rho > 1 - q, torch.log1p(inner) / self.beta, torch.zeros_like(q))


class OverlappingExponential(_TruncatedExponentialParts, SmoothedBernoulli):
    """DVAE++ (Vahdat et al. 2018a, Sec. 3) / DVAE# exponential mixture: r(ζ|0) ∝ e^{−βζ}, r(ζ|1) = r(1 − ζ|0)."""

    def log_r(self, zeta, z):
        return self._log_exp0(zeta if z == 0 else 1 - zeta)

    def component_cdf(self, zeta, z):
        return self._cdf_exp0(zeta) if z == 0 else 1 - self._cdf_exp0(1 - zeta)

    def component_sample(self, shape, z):
        s = self._sample_exp0(_uniform(shape, self.logits))
        return s if z == 0 else 1 - s

    def component_mean(self, z):
        m = 1.0 / self.beta - math.exp(-self.beta) / (-math.expm1(-self.beta))
        return m if z == 0 else 1 - m

    def rsample(self, sample_shape=torch.Size()):
        """DVAE++ analytic inverse CDF (Eq. 6): u = e^{−βζ} solves u² + b u + c = 0 with
        b = (ρ + e^{−β}(q − ρ))/(1 − q) − 1, c = −q e^{−β}/(1 − q); ζ = −log((−b + √(b² − 4c))/2)/β."""
        shape = self._extended_shape(sample_shape)
        q = self.probs.expand(shape).clamp(LOG_EPS, 1 - LOG_EPS)
        rho = _uniform(shape, self.logits)
        e = math.exp(-self.beta)
        b = (rho + e * (q - rho)) / (1 - q) - 1
        c = -q * e / (1 - q)
        # the larger root in its cancellation-free form for each sign of b (√(b² − 4c) > |b| since c < 0); each
        # branch gets a harmless b where it is not used, so torch.where back-propagates no 0·inf = nan
        pos = b > 0
        bp, bn = torch.where(pos, b, torch.ones_like(b)), torch.where(pos, -torch.ones_like(b), b)
        u = torch.where(pos, -2 * c / (bp + torch.sqrt(bp * bp - 4 * c)), (torch.sqrt(bn * bn - 4 * c) - bn) / 2)
        return (-torch.log(u) / self.beta).clamp(0.0, 1.0)


class UniformExponential(_TruncatedExponentialParts, SmoothedBernoulli):
    """DVAE#: r(ζ|0) = (1 − ε) β e^{−βζ}/(1 − e^{−β}) + ε on [0, 1], r(ζ|1) = r(1 − ζ|0)."""

    def __init__(self, logits: torch.Tensor, beta: float, eps: float = 0.05, validate_args: bool | None = None):
        self.eps = float(eps)
        super().__init__(logits, beta, validate_args)

    def log_r(self, zeta, z):
        x = zeta if z == 0 else 1 - zeta
        return torch.logaddexp(math.log1p(-self.eps) + self._log_exp0(x), torch.full_like(x, math.log(self.eps)))

    def component_cdf(self, zeta, z):
        r0 = lambda x: (1 - self.eps) * self._cdf_exp0(x) + self.eps * x  # noqa: E731
        return r0(zeta) if z == 0 else 1 - r0(1 - zeta)

    def component_sample(self, shape, z):
        uniform = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device) < self.eps
        s = torch.where(uniform, _uniform(shape, self.logits), self._sample_exp0(_uniform(shape, self.logits)))
        return s if z == 0 else 1 - s

    def component_mean(self, z):
        m0 = 1.0 / self.beta - math.exp(-self.beta) / (-math.expm1(-self.beta))
        m = (1 - self.eps) * m0 + self.eps * 0.5
        return m if z == 0 else 1 - m


class PowerFunction(SmoothedBernoulli):
    """DVAE++ / DVAE# power-function smoother: r(ζ|0) = λ ζ^{λ−1}, λ = 1/β; r(ζ|1) = r(1 − ζ|0).

    Sampling ζ₀ = ρ^β underflows (β = 30, ρ = 0.2 gives 1e-21; ρ < 0.05 gives 0 in float32), so ``rsample``
    keeps a = log ζ and b = log(1 − ζ) exactly (log ζ₀ = β log ρ) and computes the implicit gradient
    ∂ζ/∂q = (R(ζ|0) − R(ζ|1))/q(ζ) from them in float64. ``log_prob`` receives only ζ and clamps it to
    [tiny, 1 − eps] of its dtype, where the density is finite (the reference adds 1e-7 instead).
    """

    @property
    def lam(self) -> float:
        return 1.0 / self.beta

    def _logs(self, zeta):
        tiny = torch.finfo(zeta.dtype).tiny
        eps = torch.finfo(zeta.dtype).eps
        zeta = zeta.clamp(tiny, 1 - eps)
        return torch.log(zeta), torch.log1p(-zeta)

    def log_r(self, zeta, z):
        a, b = self._logs(zeta)
        x = a if z == 0 else b
        return math.log(self.lam) + (self.lam - 1) * x

    def component_cdf(self, zeta, z):
        # unclamped: exact at the ends (ζ = 1.0 is where float rounding puts every 1 − ζ₀ < eps/2)
        return torch.exp(self.lam * torch.log(zeta)) if z == 0 else -torch.expm1(self.lam * torch.log1p(-zeta))

    def component_sample(self, shape, z):
        s = torch.exp(self.beta * torch.log(_uniform(shape, self.logits)))
        return s if z == 0 else 1 - s

    def component_mean(self, z):
        m = self.lam / (self.lam + 1)
        return m if z == 0 else 1 - m

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        lam = self.lam
        with torch.no_grad():
            q = self.probs.detach().expand(shape).double()
            z = torch.bernoulli(q) > 0
            log_end = self.beta * torch.log(_uniform(shape, q))  # log of the distance to the component's end
            other = torch.log1p(-torch.exp(log_end))  # log of the distance to the other end
            a = torch.where(z, other, log_end)  # log ζ
            b = torch.where(z, log_end, other)  # log(1 − ζ)
            num = torch.expm1(lam * a) + torch.exp(lam * b)  # R(ζ|0) − R(ζ|1) = ζ^λ − 1 + (1 − ζ)^λ
            log_pdf = torch.logaddexp(torch.log1p(-q) + (lam - 1) * a, torch.log(q) + (lam - 1) * b) + math.log(lam)
            grad = (num * torch.exp(-log_pdf)).to(self.logits.dtype)
            zeta = torch.where(z, -torch.expm1(b), torch.exp(a)).to(self.logits.dtype)
        p = self.probs.expand(shape)
        return zeta + grad * (p - p.detach())


class GaussianMixture(SmoothedBernoulli):
    """DVAE#: r(ζ|z) = N(ζ; z + shift, scale²). With defaults shift = 0 and scale = 1/√β (the Gaussian mixture
    baseline); with a learned shift and scale, the posterior of the Gaussian-integral relaxation (DVAE# Sec. 3.2).
    Implicit gradients flow to the logits, the shift (∂ζ/∂shift = 1) and the scale.
    """

    support = constraints.real

    def __init__(
        self,
        logits: torch.Tensor,
        beta: float,
        shift: torch.Tensor | float = 0.0,
        scale: torch.Tensor | float | None = None,
        validate_args: bool | None = None,
    ):
        self.shift = torch.as_tensor(shift, dtype=logits.dtype, device=logits.device)
        self.scale = torch.as_tensor(1.0 / math.sqrt(beta) if scale is None else scale, dtype=logits.dtype, device=logits.device)
        super().__init__(logits, beta, validate_args)

    def _u(self, zeta, z):
        return (zeta - z - self.shift) / self.scale

    def log_r(self, zeta, z):
        u = self._u(zeta, z)
        return -0.5 * u * u - torch.log(self.scale) - 0.5 * math.log(2 * math.pi)

    def component_cdf(self, zeta, z):
        return torch.special.ndtr(self._u(zeta, z))

    def component_sample(self, shape, z):
        eps = torch.randn(shape, dtype=self.logits.dtype, device=self.logits.device)
        return z + self.shift.detach() + self.scale.detach() * eps

    def component_mean(self, z):
        return z + self.shift
