"""The Power Spherical distribution (De Cao & Aziz, "The Power Spherical distribution", 2020).

    p(x; μ, κ) = (1 + μᵀx)^κ / N_p(κ),   N_p(κ) = 2^{α+β} π^β Γ(α) / Γ(α+β),   α = (p−1)/2 + κ,  β = (p−1)/2

(their Eq. 2–3). The cosine t = μᵀx satisfies (1 + t)/2 ~ Beta(α, β), so sampling needs no rejection:
t = 2B − 1 with B ~ Beta(α, β) drawn by torch's ``rsample`` (implicit reparameterisation gradients in κ), then
z = Q (t, sqrt(1−t²) v) as for the vMF. Only lgamma, digamma and log1p appear, which is why it stays finite
where the vMF's Bessel functions do not, and why it is the recommended default in high dimension.

    E[t] = κ/(κ + p − 1),   H = log N − κ (log 2 + ψ(α) − ψ(α+β)),   KL(PS ‖ U) = −H + log |S^{p−1}|.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Beta, constraints, register_kl

from .bessel import log_sphere_area
from .sphere import DirectionalDistribution, HypersphericalUniform, reflect_from_e1, tangent_sample


class PowerSpherical(DirectionalDistribution):
    """PowerSpherical(μ, κ) on S^{p−1}: ``loc`` (…, p) unit vectors, ``scale`` κ ≥ 0 of the batch shape (…).

    A ``(B, 1)`` κ for a ``(B, p)`` loc is accepted as ``(B,)`` (power_spherical#5); batch shape is ``loc.shape[:-1]``.
    """

    arg_constraints = {"loc": constraints.real_vector, "scale": constraints.nonnegative}
    @property
    def alpha(self) -> torch.Tensor:
        return (self.p - 1) / 2 + self.scale

    @property
    def beta(self) -> float:
        return (self.p - 1) / 2

    def log_normalizer(self) -> torch.Tensor:
        a, b = self.alpha, self.beta
        return (a + b) * math.log(2) + b * math.log(math.pi) + torch.lgamma(a) - torch.lgamma(a + b)

    @property
    def mean(self) -> torch.Tensor:
        return (self.scale / (self.scale + self.p - 1)).unsqueeze(-1) * self.loc

    @property
    def mode(self) -> torch.Tensor:
        return self.loc

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        t = (self.loc * value).sum(-1).clamp(-1, 1)
        return self.scale * torch.log1p(t) - self.log_normalizer()

    def entropy(self) -> torch.Tensor:
        a, b = self.alpha, self.beta
        return self.log_normalizer() - self.scale * (math.log(2) + torch.digamma(a) - torch.digamma(a + b))

    def rsample(self, sample_shape: torch.Size | tuple = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        b = Beta(self.alpha, torch.full_like(self.alpha, self.beta)).rsample(torch.Size(sample_shape))
        # t = 2B − 1 and 1 − t² = 4B(1 − B): no cancellation near the poles
        x = tangent_sample(2 * b - 1, self.p, radius=2 * (b * (1 - b)).clamp_min(0).sqrt())
        return reflect_from_e1(x, self.loc.expand(shape))


@register_kl(PowerSpherical, HypersphericalUniform)
def _kl_power_spherical_uniform(q: PowerSpherical, p: HypersphericalUniform) -> torch.Tensor:
    """KL(PS(μ, κ) ‖ U(S^{p−1})) = log |S^{p−1}| − H(PS) (De Cao & Aziz 2020, §3); independent of μ."""
    if q.p != p.p:
        raise ValueError(f"KL between spheres of different dimension: PowerSpherical on R^{q.p}, uniform on R^{p.p}")
    return (log_sphere_area(q.p) - q.entropy()).clamp_min(0)
