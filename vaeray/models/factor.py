"""FactorVAE (Kim & Mnih 2018): a VAE penalised by its total correlation, estimated by a discriminator.

The VAE objective (Kim & Mnih 2018, Eq. 2) is rec + KL + γ·TC with TC = KL(q(z) ‖ q̄(z)), q̄ = Π_d q(z_d). By
the density-ratio trick, a discriminator D telling samples of q(z) (class 0) from samples of q̄(z) (class 1)
gives TC ≈ E_q(z)[log D_0(z)/D_1(z)] = mean(logit_0 − logit_1) over the VAE's own codes. Samples of q̄(z) come
from permuting each latent dimension independently across a batch (Alg. 1).

Algorithm 2 uses two batches per iteration. We split the configured batch in halves: x1 gives the VAE terms,
z1 and D(z1); x2 is encoded and its codes permuted for D's second class. The VAE therefore sees half the
configured batch per update (the reference code doubles the batch size and epochs for FactorVAE; our
predefined experiments do the same).

The discriminator is a parameter group of its own, ``disc_loss``, with its own Adam (``lr_disc``, betas
(0.5, 0.9)). The training loop differentiates each group's loss only with respect to its parameters, and the
losses are also correct on their own: the discriminator sees detached codes (its loss cannot reach the
encoder, unlike the reference code, disentangling-vae issue #77), and the VAE's TC term goes through a copy of
the discriminator with detached weights (it cannot reach the discriminator).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution
from torch.func import functional_call

from ..data.base import Batch
from ..registry import MODELS
from ..schema import Beta, Depth, Range, Width
from .base import ParamGroup
from .gaussian import VAE

_SECOND_HALF = "factor_vae.second_half"  # Batch.extra key: x2 travels with the first half to the regularizer


class Discriminator(nn.Module):
    """MLP classifier of codes (Kim & Mnih 2018, Appendix): ``layers`` hidden layers of ``hidden`` units with
    LeakyReLU(0.2), then 2 logits (class 0: q(z), class 1: permuted, q̄(z))."""

    def __init__(self, latent_dim: int, hidden: int = 1000, layers: int = 5, slope: float = 0.2):
        super().__init__()
        mods: list[nn.Module] = []
        width = latent_dim
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.LeakyReLU(slope)]
            width = hidden
        mods.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, 2) logits


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Kim & Mnih (2018), Alg. 1: each column of ``z`` (B, D) permuted by its own random permutation.

    Every column keeps its values (so each marginal q(z_d) is unchanged) while the dependence between columns
    is broken: the rows are then samples of Π_d q(z_d).
    """
    keys = torch.rand(z.shape, generator=generator, device=z.device)
    return torch.gather(z, 0, keys.argsort(dim=0))  # argsort of i.i.d. keys: a uniform permutation per column


def split_halves(batch: Batch) -> tuple[Batch, Batch]:
    """The first ⌈B/2⌉ and the last ⌊B/2⌋ items of every per-item field (batches are i.i.d. draws)."""
    if len(batch) < 2:
        raise ValueError("factor_vae needs a batch of at least 2 items (it splits the batch in two halves)")
    half = (len(batch) + 1) // 2

    def cut(value, part: slice):
        if isinstance(value, torch.Tensor):
            return value[part]
        if isinstance(value, dict):
            return {k: cut(v, part) for k, v in value.items()}
        return value

    def take(part: slice) -> Batch:
        fields = dataclasses.fields(batch)
        return dataclasses.replace(batch, **{f.name: cut(getattr(batch, f.name), part) for f in fields})

    return take(slice(None, half)), take(slice(half, None))


@MODELS.register("factor_vae")
class FactorVAE(VAE):
    """FactorVAE (Kim & Mnih 2018, Eq. 2 and Alg. 2): rec + KL + a·γ·TC, TC from a discriminator.

    Args:
        gamma: weight γ of the total-correlation penalty (reference CLI default 6; 6.4 for dSprites).
        lr_disc: learning rate of the discriminator's Adam (reference CLI default 5e-5).
        disc_betas: its Adam betas (0.5, 0.9), as in Kim & Mnih (2018).
        disc_hidden, disc_layers: width and number of hidden layers of the discriminator (1000, 5).
        reg_anneal: linear warm-up of the γ·TC term (the reference's ``a``); the KL is never warmed up here.
        (The other arguments are :class:`VAE`'s.)

    Logged: ``tc`` (the density-ratio estimate), ``disc_loss`` (½ the sum of the two cross-entropies) and
    ``disc_acc`` (the discriminator's accuracy on both halves).
    """

    terms: tuple[str, ...] = ("loss", "rec", "kl", "tc", "disc_loss", "disc_acc")
    family = "disentangling"  # results group by family; vaeray.report reads it from this class only, not from subclasses

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        *,
        gamma: Annotated[float, Range(ge=0)] = 6.0,
        lr_disc: Annotated[float, Range(gt=0)] = 5e-5,
        disc_betas: tuple[Beta, Beta] = (0.5, 0.9),
        disc_hidden: Width = 1000,
        disc_layers: Depth = 5,
        **base: Any,  # VAE's arguments (latent_dim, net, likelihood, ...): part of the schema via the MRO
    ):
        super().__init__(observation_shape, dataset_size, **base)
        self.gamma = gamma
        self.lr_disc = lr_disc
        self.disc_betas = (float(disc_betas[0]), float(disc_betas[1]))
        self.discriminator = Discriminator(self.latent_dim, disc_hidden, disc_layers)

    def parameter_groups(self) -> dict[str, ParamGroup]:
        disc = list(self.discriminator.parameters())
        ids = {id(p) for p in disc}
        vae = [p for p in self.parameters() if id(p) not in ids]
        return {"loss": ParamGroup(vae), "disc_loss": ParamGroup(disc, lr=self.lr_disc, betas=self.disc_betas)}

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        first, second = split_halves(batch)
        first = dataclasses.replace(first, extra={**first.extra, _SECOND_HALF: second.x})
        return super().loss(first, step)  # the ELBO on x1; the regularizer adds γ·TC and the discriminator

    def regularizer(
        self, batch: Batch, q: Distribution, z: torch.Tensor, terms: dict[str, torch.Tensor], step: int
    ) -> torch.Tensor:
        tc = self.total_correlation(z)
        disc_loss, disc_acc = self.discriminator_loss(z.detach(), batch.extra[_SECOND_HALF])
        terms.update(tc=tc, disc_loss=disc_loss, disc_acc=disc_acc)
        return terms["kl"] + self.anneal(step) * self.gamma * tc

    def total_correlation(self, z: torch.Tensor) -> torch.Tensor:
        """Density-ratio estimate mean(logit_0 − logit_1) of D(z); differentiable in z, not in D's weights."""
        frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        logits = functional_call(self.discriminator, frozen, (z,))
        return (logits[:, 0] - logits[:, 1]).mean()

    def discriminator_loss(self, z1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """½[CE(D(z1), 0) + CE(D(perm(z2)), 1)] and D's accuracy; ``z1`` must come detached.

        z2 ~ q(z|x2) is drawn without a graph: the discriminator's loss never reaches the encoder.
        """
        with torch.no_grad():
            z_perm = permute_dims(self.encode(x2).sample())
        logits_q, logits_perm = self.discriminator(z1), self.discriminator(z_perm)
        zeros = torch.zeros(len(z1), dtype=torch.long, device=z1.device)
        ones = torch.ones(len(z_perm), dtype=torch.long, device=z1.device)
        loss = 0.5 * (F.cross_entropy(logits_q, zeros) + F.cross_entropy(logits_perm, ones))
        with torch.no_grad():
            acc = 0.5 * ((logits_q.argmax(1) == 0).float().mean() + (logits_perm.argmax(1) == 1).float().mean())
        return loss, acc
