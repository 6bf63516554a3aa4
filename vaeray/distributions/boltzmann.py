"""The bipartite restricted Boltzmann machine prior of the discrete VAEs (Rolfe 2017, Sec. 2; Vahdat et al.
2018a, Sec. 2; 2018b, Sec. 2), with persistent contrastive divergence for the gradient of log Z in training and
exact enumeration for small machines. Annealed importance sampling for log Z in evaluation is in
:mod:`vaeray.distributions.ais`.

Energy over binary ``z = (z1, z2)`` with ``n1`` left and ``n2`` right units:

    E(z) = −b1ᵀz1 − b2ᵀz2 − z1ᵀ W z2,        p(z) = exp(−E(z)) / Z.

Summing one side out analytically gives the free energy of the other (Salakhutdinov & Murray 2008, Eq. 5):

    log Σ_{z2} exp(−E(z1, z2)) = b1ᵀz1 + Σ_j softplus(b2_j + (z1ᵀW)_j),

which is what exact enumeration (over the smaller side) and AIS work with.

**log Z in training.** ∂log Z/∂b = E_p[z], ∂log Z/∂W = E_p[z1 z2ᵀ] (the negative phase). :class:`RBM` keeps
``num_chains`` persistent Gibbs chains as buffers (so checkpoints carry them; Tieleman 2008), advances them
``sweeps`` block-Gibbs sweeps per training step under ``no_grad`` (:meth:`RBM.update_chains`), and
:meth:`RBM.log_z_surrogate` returns a tensor whose *value* is the last stored estimate of log Z (the AIS value
after evaluation, n·log 2 at initialisation: the exact value of the zero-parameter machine) and whose *gradient*
is the chains' negative phase, mean(z), mean(z1 z2ᵀ), as the DVAE# reference's sampler op does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, constraints

MAX_ENUMERATION_BITS = 24


def free_energy_left(z1: torch.Tensor, b1: torch.Tensor, b2: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """log Σ_{z2} exp(−E(z1, z2)) = b1ᵀz1 + Σ_j softplus(b2_j + (z1ᵀW)_j), per row of ``z1`` ``(..., n1)``."""
    return z1 @ b1 + F.softplus(b2 + z1 @ w).sum(-1)


def energy(z1: torch.Tensor, z2: torch.Tensor, b1: torch.Tensor, b2: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """E(z1, z2) = −b1ᵀz1 − b2ᵀz2 − z1ᵀWz2 (Rolfe 2017, Eq. 1), per row."""
    return -(z1 @ b1 + z2 @ b2 + ((z1 @ w) * z2).sum(-1))


def all_states(n: int, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Every binary vector of length ``n`` as rows of a ``(2**n, n)`` tensor (row i is i in binary)."""
    i = torch.arange(2**n, device=device)
    return ((i[:, None] >> torch.arange(n - 1, -1, -1, device=device)) & 1).to(dtype)


def exact_log_z(b1: torch.Tensor, b2: torch.Tensor, w: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    """log Z by enumerating the smaller side and summing the larger one out analytically (exact; float64,
    differentiable: its gradient is the exact negative phase).

    Feasible while the smaller side has at most :data:`MAX_ENUMERATION_BITS` units, whatever the larger side.
    """
    b1, b2, w = (t.double() for t in (b1, b2, w))
    if b1.numel() > b2.numel():  # enumerate the smaller side
        b1, b2, w = b2, b1, w.T
    n = b1.numel()
    if n > MAX_ENUMERATION_BITS:
        raise ValueError(f"exact log Z needs a side of at most {MAX_ENUMERATION_BITS} units, the smaller has {n}")
    parts = []
    for start in range(0, 2**n, chunk):
        i = torch.arange(start, min(start + chunk, 2**n), device=b1.device)
        z1 = ((i[:, None] >> torch.arange(n - 1, -1, -1, device=b1.device)) & 1).double()
        parts.append(torch.logsumexp(free_energy_left(z1, b1, b2, w), 0))
    return torch.logsumexp(torch.stack(parts), 0)


def exact_moments(
    b1: torch.Tensor, b2: torch.Tensor, w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """E[z1], E[z2] and E[z1 z2ᵀ] under the RBM, exactly, by enumerating the left side (tests, small n1)."""
    b1, b2, w = (t.detach().double() for t in (b1, b2, w))
    z1 = all_states(b1.numel(), device=b1.device)
    logits = free_energy_left(z1, b1, b2, w)
    p = torch.softmax(logits, 0)  # p(z1)
    m2 = torch.sigmoid(b2 + z1 @ w)  # E[z2 | z1]
    return p @ z1, p @ m2, (z1 * p[:, None]).T @ m2


def gibbs_sweep(
    z1: torch.Tensor, b1: torch.Tensor, b2: torch.Tensor, w: torch.Tensor, beta: float | torch.Tensor = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """One block-Gibbs sweep at inverse temperature ``beta``: z2 ~ p(z2|z1), then z1 ~ p(z1|z2)."""
    z2 = torch.bernoulli(torch.sigmoid(beta * (b2 + z1 @ w)))
    z1 = torch.bernoulli(torch.sigmoid(beta * (b1 + z2 @ w.T)))
    return z1, z2


class RBMDistribution(Distribution):
    """p(z) = exp(−E(z) − log Z) over ``z = cat(z1, z2)``, with log Z supplied (exact, AIS or the PCD surrogate).

    ``sample`` runs fresh block-Gibbs chains from uniform bits for ``sweeps`` sweeps (approximate samples).
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.boolean, 1)
    has_rsample = False

    def __init__(
        self, b1: torch.Tensor, b2: torch.Tensor, w: torch.Tensor, log_z: torch.Tensor, sweeps: int = 1000
    ):
        self.b1, self.b2, self.w, self.log_z, self.sweeps = b1, b2, w, log_z, sweeps
        super().__init__(batch_shape=torch.Size(), event_shape=torch.Size([b1.numel() + b2.numel()]), validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        n1 = self.b1.numel()
        return -energy(value[..., :n1], value[..., n1:], self.b1, self.b2, self.w) - self.log_z

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        shape = torch.Size(sample_shape)
        n = max(1, math.prod(shape))
        z1 = torch.bernoulli(torch.full((n, self.b1.numel()), 0.5, device=self.b1.device, dtype=self.b1.dtype))
        for _ in range(self.sweeps):
            z1, z2 = gibbs_sweep(z1, self.b1, self.b2, self.w)
        return torch.cat([z1, z2], -1).reshape(*shape, -1)


class RBM(nn.Module):
    """A bipartite RBM with learnable ``b1``, ``b2``, ``W`` (zero-initialised, as in the DVAE# code) and PCD chains.

    Args:
        n1, n2: units on the left and right side.
        num_chains: persistent chains (DVAE#: 1000).
        sweeps: block-Gibbs sweeps per :meth:`update_chains` (DVAE#: 40).
    """

    def __init__(self, n1: int, n2: int, num_chains: int = 1000, sweeps: int = 40):
        super().__init__()
        self.n1, self.n2, self.sweeps = n1, n2, sweeps
        self.b1 = nn.Parameter(torch.zeros(n1))
        self.b2 = nn.Parameter(torch.zeros(n2))
        self.w = nn.Parameter(torch.zeros(n1, n2))
        # persistent chains start as uniform random bits; the stored log Z as the zero machine's exact n·log 2
        self.register_buffer("chains1", torch.bernoulli(torch.full((num_chains, n1), 0.5)))
        self.register_buffer("chains2", torch.bernoulli(torch.full((num_chains, n2), 0.5)))
        self.register_buffer("log_z", torch.tensor((n1 + n2) * math.log(2.0)))
        self.register_buffer("log_z_std", torch.tensor(0.0))

    @property
    def n(self) -> int:
        return self.n1 + self.n2

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z[..., : self.n1], z[..., self.n1 :]

    def energy(self, z: torch.Tensor) -> torch.Tensor:
        z1, z2 = self.split(z)
        return energy(z1, z2, self.b1, self.b2, self.w)

    def unnormalized_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """−E(z)."""
        return -self.energy(z)

    def distribution(self, log_z: torch.Tensor | None = None) -> RBMDistribution:
        return RBMDistribution(self.b1, self.b2, self.w, self.log_z if log_z is None else log_z)

    @torch.no_grad()
    def update_chains(self, sweeps: int | None = None) -> None:
        """Advance the persistent chains ``sweeps`` (default ``self.sweeps``) block-Gibbs sweeps (PCD)."""
        z1 = self.chains1
        b1, b2, w = self.b1.detach(), self.b2.detach(), self.w.detach()
        z2 = self.chains2
        for _ in range(self.sweeps if sweeps is None else sweeps):
            z1, z2 = gibbs_sweep(z1, b1, b2, w)
        self.chains1.copy_(z1)
        self.chains2.copy_(z2)

    def log_z_surrogate(self) -> torch.Tensor:
        """Value: the stored log Z; gradient: E_chains[z1], E_chains[z2], E_chains[z1 z2ᵀ] (the negative phase).

        −E averaged over the (detached) chain states has exactly the negative phase as its gradient, so the
        surrogate ``log_z + s − s.detach()`` differentiates like log Z when the chains sample p.
        """
        z1, z2 = self.chains1.detach(), self.chains2.detach()
        s = -energy(z1, z2, self.b1, self.b2, self.w).mean()
        return self.log_z + s - s.detach()

    def exact_log_z(self) -> torch.Tensor:
        return exact_log_z(self.b1, self.b2, self.w)
