"""What every distribution on the unit sphere S^{p−1} ⊂ R^p shares: the uniform law, the tangent noise and the
reflection that carries a sample drawn around e₁ to one drawn around μ.

Dimensions: ``p`` is always the **ambient** dimension (the event size); S^{p−1} is the sphere in R^p. Model
configs speak of manifold dimensions (``spheres: [4, 4]`` = S⁴ × S⁴ ⊂ R⁵ × R⁵); they add one before they get here.
"""

from __future__ import annotations

import torch
from torch.distributions import Distribution, constraints

from .bessel import log_sphere_area


def check_ambient(p: int) -> int:
    if not isinstance(p, int) or p < 2:
        raise ValueError(f"the sphere's ambient dimension must be an integer >= 2 (S^1 or larger), got {p!r}")
    return p


def split_concentration(loc: torch.Tensor, scale: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """``loc`` (…, p) and a concentration of the batch shape (…): a ``(B, 1)`` concentration for a ``(B, p)`` loc
    (the power_spherical#5 trap, which silently gave (B, B, p) samples) is squeezed, anything else that does not
    broadcast to the batch shape is an error."""
    scale = torch.as_tensor(scale, dtype=loc.dtype, device=loc.device)
    batch = loc.shape[:-1]
    if scale.dim() == loc.dim() and scale.shape[-1] == 1:
        scale = scale.squeeze(-1)
    try:
        shape = torch.broadcast_shapes(batch, scale.shape)
    except RuntimeError:
        shape = None
    if shape != batch:
        raise ValueError(f"concentration of shape {tuple(scale.shape)} does not match the batch shape {tuple(batch)}")
    return loc, scale.expand(batch)


def reflect_from_e1(x: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """An orthogonal map Q with Q e₁ = μ applied to ``x`` (…, p): a Householder reflection, signed for stability.

    The plain reflection with u = e₁ − μ divides by ‖e₁ − μ‖², which vanishes as μ → e₁ (the NaNs of
    numpyro#859, TFP#1287). With σ = +1 if μ₁ ≤ 0 else −1, u = e₁ − σμ has ‖u‖² = 2 − 2σμ₁ ≥ 2, and
    σ (I − 2uuᵀ/‖u‖²) still sends e₁ to μ; any orthogonal Q with Q e₁ = μ gives the same law for samples
    that are rotation-invariant about e₁.
    """
    sigma = torch.where(mu[..., :1] <= 0, 1.0, -1.0).to(mu.dtype).detach()
    e1 = torch.zeros_like(mu)
    e1[..., 0] = 1
    u = e1 - sigma * mu
    coef = 2 * (u * x).sum(-1, keepdim=True) / (u * u).sum(-1, keepdim=True)
    return sigma * (x - coef * u)


def tangent_sample(w: torch.Tensor, p: int, radius: torch.Tensor | None = None) -> torch.Tensor:
    """(w, sqrt(1 − w²) v) with v uniform on S^{p−2}: a point at cosine ``w`` from e₁, uniform around it.

    ``radius`` = sqrt(1 − w²) when the caller has a more accurate form of it.
    """
    v = torch.randn(*w.shape, p - 1, dtype=w.dtype, device=w.device)
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    if radius is None:
        radius = ((1 - w) * (1 + w)).clamp_min(0).sqrt()  # (1−w)(1+w): no cancellation as w → 1
    return torch.cat([w.unsqueeze(-1), radius.unsqueeze(-1) * v], dim=-1)


class DirectionalDistribution(Distribution):
    """A distribution on S^{p−1} with a mean direction ``loc`` (…, p) and a concentration ``scale`` (…): the
    shape handling vMF and Power Spherical share (a ``(B, 1)`` κ is read as ``(B,)``; batch shape is
    ``loc.shape[:-1]``). Subclasses set ``arg_constraints`` and the density."""

    support = constraints.real_vector  # the sphere; torch has no constraint for it
    has_rsample = True

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, validate_args: bool | None = None):
        self.loc, self.scale = split_concentration(loc, scale)
        self.p = check_ambient(loc.shape[-1])
        super().__init__(self.loc.shape[:-1], self.loc.shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return type(self)(self.loc.expand(*batch_shape, self.p), self.scale.expand(batch_shape))


class HypersphericalUniform(Distribution):
    """The uniform distribution on S^{p−1} ⊂ R^p; ``p`` is the ambient dimension (event shape ``(p,)``)."""

    arg_constraints: dict = {}
    support = constraints.real_vector  # the sphere; torch has no constraint for it
    has_rsample = False

    def __init__(
        self,
        p: int,
        batch_shape: torch.Size | tuple = (),
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        validate_args: bool | None = None,
    ):
        self.p = check_ambient(p)
        self._dtype, self._device = dtype, torch.device(device)
        super().__init__(torch.Size(batch_shape), torch.Size([p]), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        return HypersphericalUniform(self.p, batch_shape, self._dtype, self._device)

    @property
    def mean(self) -> torch.Tensor:
        return torch.zeros(*self.batch_shape, self.p, dtype=self._dtype, device=self._device)

    def sample(self, sample_shape: torch.Size | tuple = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        x = torch.randn(shape, dtype=self._dtype, device=self._device)
        return x / x.norm(dim=-1, keepdim=True)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return torch.full(value.shape[:-1], -log_sphere_area(self.p), dtype=value.dtype, device=value.device)

    def entropy(self) -> torch.Tensor:
        return torch.full(self.batch_shape, log_sphere_area(self.p), dtype=self._dtype, device=self._device)
