"""A product of spheres S^{d₁} × … × S^{d_K} as one distribution (Davidson, Tomczak & Gavves, "Increasing the
Expressivity of a Hyperspherical VAE", 2019).

Each factor is its own distribution on its sphere (its own μ and κ: one concentration per factor is the point of
the method); samples are the factors' samples concatenated along the last axis, log-densities and entropies are
sums, and the KL to a product of uniforms is the sum of the factors' KLs (the factors are independent under both).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import Distribution, constraints, kl_divergence, register_kl


class ProductSpheres(Distribution):
    """Independent factors with event shapes ``(p_i,)`` and one batch shape, as one event of size Σ p_i."""

    arg_constraints: dict = {}
    support = constraints.real_vector

    def __init__(self, factors: Sequence[Distribution], validate_args: bool | None = None):
        if not factors:
            raise ValueError("a product of spheres needs at least one factor")
        batch = factors[0].batch_shape
        if any(f.batch_shape != batch or len(f.event_shape) != 1 for f in factors):
            raise ValueError("every factor needs the same batch shape and a vector event")
        self.factors = list(factors)
        self.sizes = [f.event_shape[0] for f in factors]
        super().__init__(batch, torch.Size([sum(self.sizes)]), validate_args=False)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return all(f.has_rsample for f in self.factors)

    def expand(self, batch_shape, _instance=None):
        return ProductSpheres([f.expand(batch_shape) for f in self.factors])

    def split(self, value: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``value`` (…, Σ p_i) as the factors' parts (…, p_i)."""
        return value.split(self.sizes, dim=-1)

    @property
    def mean(self) -> torch.Tensor:
        return torch.cat([f.mean for f in self.factors], dim=-1)

    @property
    def mode(self) -> torch.Tensor:
        return torch.cat([f.mode for f in self.factors], dim=-1)

    def rsample(self, sample_shape: torch.Size | tuple = torch.Size()) -> torch.Tensor:
        return torch.cat([f.rsample(sample_shape) for f in self.factors], dim=-1)

    def sample(self, sample_shape: torch.Size | tuple = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([f.sample(sample_shape) for f in self.factors], dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return sum(f.log_prob(v) for f, v in zip(self.factors, self.split(value)))  # type: ignore[return-value]

    def entropy(self) -> torch.Tensor:
        return sum(f.entropy() for f in self.factors)  # type: ignore[return-value]


@register_kl(ProductSpheres, ProductSpheres)
def _kl_product(q: ProductSpheres, p: ProductSpheres) -> torch.Tensor:
    """Σ_i KL(q_i ‖ p_i) (independent factors); the factor layouts must agree."""
    if q.sizes != p.sizes:
        raise ValueError(f"KL between products of different layouts: {q.sizes} vs {p.sizes}")
    return sum(kl_divergence(a, b) for a, b in zip(q.factors, p.factors))  # type: ignore[return-value]
