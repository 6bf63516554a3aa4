"""VAE with a diagonal Gaussian posterior and a standard normal prior (Kingma & Welling 2014).

The ELBO is E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) (Eq. 3), with the KL through ``kl_divergence``. Disentangling
variants are small regularizer hooks on top of it (:meth:`VAE.regularizer`), in the style of
disentanglement_lib: subclasses never copy ``loss``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal, kl_divergence

from ..data.base import Batch
from ..nets import MLP, BurgessDecoder, BurgessEncoder
from ..registry import MODELS
from ..schedules import warmup
from ..schema import Range, Width
from .base import Model
from .likelihoods import LikelihoodName, likelihood


def build_nets(
    net: str, observation_shape: Sequence[int], latent_dim: int, enc_out: int, hidden: Sequence[int]
) -> tuple[nn.Module, nn.Module]:
    """Encoder (-> ``enc_out`` raw parameters) and decoder (-> raw per-pixel outputs) for a named architecture."""
    if net == "burgess":
        return BurgessEncoder(observation_shape, enc_out), BurgessDecoder(latent_dim, observation_shape)
    if net == "mlp":
        return MLP(observation_shape, hidden, enc_out), MLP(latent_dim, list(hidden)[::-1], observation_shape)
    raise ValueError(f"unknown net '{net}'")


@MODELS.register("vae")
class VAE(Model):
    """Gaussian VAE (Kingma & Welling 2014) on the Burgess et al. (2018) net or an MLP.

    Args:
        latent_dim: number of latent dimensions.
        net: ``burgess`` (32×32 or 64×64 images) or ``mlp``.
        hidden: MLP hidden sizes (encoder order; the decoder mirrors them).
        likelihood: p(x|z): ``bernoulli``, ``gaussian`` or ``laplace``.
        obs_scale: the fixed scale of the gaussian/laplace likelihoods.
        reg_anneal: linear warm-up of the regulariser from 0 to full weight over this many steps.
    """

    terms: tuple[str, ...] = ("loss", "rec", "kl")  # the keys ``loss`` returns (subclasses extend it)
    family = "disentangling"  # results group by family; vaeray.report reads it from this class only, not from subclasses
    batch_fields: tuple[str, ...] | None = ("x",)  # the loop then skips labels and factor classes

    def __init_subclass__(cls, **kwargs):
        # A subclass reads every Batch field unless it declares otherwise: a model that uses labels or factors
        # must never receive a batch without them just because it inherits from VAE.
        super().__init_subclass__(**kwargs)
        if "batch_fields" not in cls.__dict__:
            cls.batch_fields = None

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        latent_dim: Width = 10,
        net: Literal["burgess", "mlp"] = "burgess",
        hidden: list[Width] = (1200, 1200),  # type: ignore[assignment]
        likelihood: LikelihoodName = "bernoulli",
        obs_scale: Annotated[float, Range(gt=0)] = 0.1,
        reg_anneal: Annotated[int, Range(ge=0)] = 0,
    ):
        super().__init__(observation_shape, dataset_size)
        self.latent_dim = latent_dim
        self.likelihood_name = likelihood
        self.obs_scale = obs_scale
        self.reg_anneal = reg_anneal
        self.encoder, self.decoder = build_nets(net, self.observation_shape, latent_dim, 2 * latent_dim, hidden)
        self.register_buffer("_zeros", torch.zeros(latent_dim), persistent=False)

    def encode(self, x: torch.Tensor) -> Distribution:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        # validate_args off: the checks are a device->host sync each; exp() is positive, and a NaN from a
        # diverging run is caught by the training loop's finite check at the next log step
        return Independent(Normal(mu, torch.exp(0.5 * logvar), validate_args=False), 1, validate_args=False)

    def decode(self, z: torch.Tensor) -> Distribution:
        return likelihood(self.likelihood_name, self.decoder(z), len(self.observation_shape), self.obs_scale)

    def prior(self) -> Distribution:
        return Independent(Normal(self._zeros, torch.ones_like(self._zeros), validate_args=False), 1, validate_args=False)

    def anneal(self, step: int) -> float:
        return warmup(step, self.reg_anneal)

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        q = self.encode(batch.x)
        z = q.rsample()
        rec = -self.decode(z).log_prob(batch.x).mean()
        kl = kl_divergence(q, self.prior()).mean()
        terms = {"rec": rec, "kl": kl}
        reg = self.regularizer(batch, q, z, terms, step)
        terms["loss"] = rec + reg
        return terms

    def regularizer(
        self, batch: Batch, q: Distribution, z: torch.Tensor, terms: dict[str, torch.Tensor], step: int
    ) -> torch.Tensor:
        """The term added to the reconstruction loss; the plain VAE's is the (warmed-up) KL.

        Subclasses return their own regulariser and may add named terms to ``terms`` for logging.
        """
        return self.anneal(step) * terms["kl"]
