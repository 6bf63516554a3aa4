"""The model contract every family implements.

A model is an ``nn.Module`` with a distribution-typed surface (DESIGN.md):

* ``encode(x) -> Distribution``: q(z|x), batch shape ``(B,)``, event shape the latent's;
* ``decode(z) -> Distribution``: p(x|z), one ``log_prob`` per example;
* ``prior() -> Distribution``: p(z);
* ``loss(batch, step) -> dict[str, Tensor]``: ``"loss"`` is minimised, every other key is logged;
* ``parameter_groups() -> dict[str, ParamGroup]``: which loss updates which parameters. The default is one
  group, ``"loss"``, holding every parameter. Auxiliary objectives (FactorVAE's discriminator) add a group named
  after their loss key; the training loop keeps one optimizer per group and differentiates each loss only
  with respect to its own group, so no optimizer lives inside a loss and no model needs its own trainer;
* ``represent(x)``: the deterministic code the metrics use (the posterior mean by default);
* ``log_likelihood(x, k)``: an importance-sampled estimate of log p(x) with ``k`` samples.

Schedules (β, capacity, temperature) are pure functions of ``step`` (:mod:`vaeray.schedules`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.distributions import Distribution

from ..data.base import Batch


def kl_or_monte_carlo(q: Distribution, p: Distribution, z: torch.Tensor | None = None) -> torch.Tensor:
    """KL(q‖p) per example: analytic through ``kl_divergence`` where a pair is registered, else the
    single-sample Monte Carlo estimate log q(z) − log p(z) at ``z`` ~ q (reparameterised, so unbiased in value
    and gradient). The fallback is what priors without a closed-form KL (an RBM, a topographic product) use.
    """
    try:
        return torch.distributions.kl_divergence(q, p)
    except NotImplementedError:
        if z is None:
            z = q.rsample()
        return q.log_prob(z) - p.log_prob(z)


@dataclass
class ParamGroup:
    """Parameters updated by one named loss, with optional optimizer overrides (None: the run config's)."""

    params: list[nn.Parameter]
    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None
    extra: dict = field(default_factory=dict)


class Model(nn.Module):
    """Base class; see the module docstring for the contract."""

    # The Batch fields ``loss`` reads; ("x",) lets the training loop skip labels and factor classes. None: all.
    batch_fields: tuple[str, ...] | None = None

    def __init__(self, observation_shape: Sequence[int], dataset_size: int | None = None):
        super().__init__()
        self.observation_shape = tuple(int(s) for s in observation_shape)
        self.dataset_size = dataset_size

    def encode(self, x: torch.Tensor) -> Distribution:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> Distribution:
        raise NotImplementedError

    def prior(self) -> Distribution:
        raise NotImplementedError

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def parameter_groups(self) -> dict[str, ParamGroup]:
        return {"loss": ParamGroup(list(self.parameters()))}

    @torch.no_grad()
    def represent(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x).mean

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, k: int = 1000, chunk: int = 100) -> torch.Tensor:
        """log p(x) ≈ log (1/k) Σ_i p(x, z_i)/q(z_i|x), z_i ~ q(z|x) (Burda et al. 2016, Eq. 8); shape (B,)."""
        from ..metrics.likelihood import log_likelihood

        return log_likelihood(x, self.encode, self.decode, self.prior(), k=k, chunk=chunk)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Means of p(x|z) for ``n`` draws from the prior."""
        z = self.prior().sample((n,))
        return self.decode(z).mean
