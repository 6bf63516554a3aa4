"""Hyperspherical VAEs: the S-VAE (Davidson, Falorsi, De Cao, Kipf & Tomczak, UAI 2018), its product-space
extension (Davidson, Tomczak & Gavves, 2019) and the Power Spherical latent (De Cao & Aziz, 2020).

The latent is a product of spheres S^{d₁} × … × S^{d_K}, written in the config as the list of **manifold**
dimensions ``spheres: [d₁, …, d_K]`` (``[4, 4]`` = S⁴ × S⁴ ⊂ R⁵ × R⁵, a 10-dimensional decoder input; one
sphere ``[d]`` is the S-VAE). Each factor has its own mean-direction head μ_i = h_i/‖h_i‖ and its own scalar
concentration κ_i = softplus(·) + ``kappa_offset`` (the papers' "+1", which "prevents collapsing behaviours").
The prior is the uniform distribution on each sphere, so the ELBO's KL is Σ_i KL(q_i ‖ U(S^{d_i})) in closed
form (S-VAE Eq. 5; product paper Eq. 6). The Gaussian (N-VAE) baseline is the registered ``vae`` with
``latent_dim`` equal to the ambient size Σ(d_i + 1) (or to Σ d_i for equal degrees of freedom, as in S-VAE
Table 1).

The loss is the negative ELBO with the KL warmed up linearly over ``kl_warmup`` steps (the papers' 100-epoch
warm-up) and weighted by ``beta``; ``rec`` and ``kl`` are reported separately, so the results table carries
the RE and KL columns of S-VAE Table 1. ``log_likelihood`` is the project's importance-sampled estimator
(:func:`vaeray.metrics.likelihood.log_likelihood`) through :meth:`Model.log_likelihood`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import torch
from torch import nn
from torch.distributions import Distribution, kl_divergence

from ..data.base import Batch
from ..distributions import HypersphericalUniform, PowerSpherical, ProductSpheres, VonMisesFisher
from ..errors import ConfigError
from ..registry import MODELS
from ..schedules import warmup
from ..schema import Range
from .base import Model
from .gaussian import build_nets
from .likelihoods import LikelihoodName, likelihood

FAMILIES = {"vmf": VonMisesFisher, "power_spherical": PowerSpherical}


@MODELS.register("svae")
class SVAE(Model):
    """VAE with a (product of) hyperspherical latent(s); see the module docstring.

    Args:
        spheres: manifold dimensions of the factors, each ≥ 1 (S¹ is the circle): ``[9]`` = S⁹ ⊂ R¹⁰.
        family: ``vmf`` (von Mises–Fisher, the S-VAE) or ``power_spherical`` (De Cao & Aziz 2020).
        net: ``mlp`` (S-VAE: 256-128, ReLU) or ``burgess`` (32×32 or 64×64 images).
        hidden: MLP hidden sizes (encoder order; the decoder mirrors them).
        likelihood: p(x|z): ``bernoulli`` for binarised data.
        kappa_offset: κ = softplus(raw) + offset; the papers use 1.
        kl_warmup: steps of linear KL warm-up from 0 (0: none).
        beta: weight of the KL after warm-up (1: the ELBO).
    """

    terms: tuple[str, ...] = ("loss", "rec", "kl")

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        spheres: list[int] = (9,),  # type: ignore[assignment]
        family: Literal["vmf", "power_spherical"] = "vmf",
        net: Literal["burgess", "mlp"] = "mlp",
        hidden: list[int] = (256, 128),  # type: ignore[assignment]
        likelihood: LikelihoodName = "bernoulli",
        obs_scale: Annotated[float, Range(gt=0)] = 0.1,
        kappa_offset: Annotated[float, Range(ge=0)] = 1.0,
        kl_warmup: Annotated[int, Range(ge=0)] = 0,
        beta: Annotated[float, Range(ge=0)] = 1.0,
    ):
        super().__init__(observation_shape, dataset_size)
        spheres = [int(d) for d in spheres]
        if not spheres or any(d < 1 for d in spheres):
            raise ConfigError(
                f"spheres lists manifold dimensions >= 1 (S^1 is the circle), got {list(spheres)}", "model.spheres"
            )
        self.spheres = spheres
        self.ambient = [d + 1 for d in spheres]
        self.family = family
        self.likelihood_name = likelihood
        self.obs_scale = obs_scale
        self.kappa_offset = kappa_offset
        self.kl_warmup = kl_warmup
        self.beta = beta
        self.latent_dim = sum(self.ambient)
        # one head per factor: p_i direction outputs + 1 concentration output
        try:
            self.encoder, self.decoder = build_nets(
                net, self.observation_shape, self.latent_dim, self.latent_dim + len(spheres), hidden
            )
        except ValueError as e:  # e.g. the Burgess net on 28x28 images: say so in one line
            raise ConfigError(str(e), "model.net") from None

    def encode(self, x: torch.Tensor) -> Distribution:
        out = self.encoder(x)
        directions, raw_kappa = out[..., : self.latent_dim], out[..., self.latent_dim :]
        factors = []
        for i, h in enumerate(directions.split(self.ambient, dim=-1)):
            mu = nn.functional.normalize(h, dim=-1)
            kappa = nn.functional.softplus(raw_kappa[..., i]) + self.kappa_offset
            factors.append(FAMILIES[self.family](mu, kappa))
        return ProductSpheres(factors)

    def decode(self, z: torch.Tensor) -> Distribution:
        return likelihood(self.likelihood_name, self.decoder(z), len(self.observation_shape), self.obs_scale)

    def prior(self) -> Distribution:
        device = next(self.parameters()).device
        return ProductSpheres([HypersphericalUniform(p, device=device) for p in self.ambient])

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        q = self.encode(batch.x)
        z = q.rsample()
        rec = -self.decode(z).log_prob(batch.x).mean()
        kl = kl_divergence(q, self.prior()).mean()
        return {"loss": rec + self.beta * warmup(step, self.kl_warmup) * kl, "rec": rec, "kl": kl}

    @torch.no_grad()
    def represent(self, x: torch.Tensor) -> torch.Tensor:
        """The mean directions μ_i concatenated (points on the spheres), not the shrunken means A(κ)μ."""
        return self.encode(x).mode
