"""Multi-Level VAE (Bouchacourt, Tomioka & Nowozin, AAAI 2018, arXiv:1705.08841): group-level content, per-image style.

Generative model (Sec. 3): a group G of images shares one content latent C_G ~ N(0, I); every member has its
own style S_i ~ N(0, I); x_i ~ p(x | C_G, S_i). Inference factorises as q(S_i | x_i) q(C_G | X_G), and the
content posterior is the **product** of the members' Gaussians ("evidence accumulation", Eq. 6-7):

    q(C_G | X_G) ∝ Π_i q(C | x_i)   ⇒   Λ_G = Σ_i Λ_i,   μ_G = Λ_G⁻¹ Σ_i Λ_i μ_i   (Λ = 1/σ²)

computed in log space (:func:`accumulate_evidence`) with gradients to every member. The loss is the negative
group ELBO (Eq. 5) averaged over the groups in the batch:

    L(G) = Σ_{i∈G} E_q[log p(x_i | C_G, S_i)] − Σ_{i∈G} KL(q(S_i|x_i) ‖ N(0,I)) − KL(q(C_G|X_G) ‖ N(0,I)).

Groups arrive as ``Batch.group`` ids in [0, B) (:mod:`vaeray.data.groups`); the segment sums run over B
slots, empty ones masked, so no step needs the number of groups on the host. docs/multilevel.md derives the
product and lists where we differ from the seed repository (whose content encoder never received a gradient).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal, kl_divergence

from ..data.base import Batch
from ..errors import ConfigError
from ..nets import MLP, BurgessDecoder, BurgessEncoder
from ..registry import MODELS
from ..schedules import warmup
from ..schema import Range
from .base import Model
from .likelihoods import LikelihoodName, likelihood

Accumulation = Literal["product", "dlib_average"]


def accumulate_evidence(
    mu: torch.Tensor, logvar: torch.Tensor, group: torch.Tensor, mode: Accumulation = "product"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Group posteriors from per-member diagonal Gaussians ``(B, D)`` and group ids ``group`` (B,) in [0, B).

    ``mode="product"`` is the paper's evidence accumulation: log Λ_G = logsumexp_i(−logvar_i) and
    μ_G = Σ_i w_i μ_i with w_i = Λ_i / Λ_G = exp(−logvar_i − log Λ_G) ∈ (0, 1], so no precision is ever
    formed outside log space. ``mode="dlib_average"`` is disentanglement_lib's MLVae variant (Locatello et al.,
    ICML 2020, ``weak_vae.py``): the natural parameters are *averaged* (for a pair, var = 2 v1 v2 / (v1 + v2),
    i.e. Λ_G = (Λ_1 + Λ_2) / 2) with the same precision-weighted mean; it is not the product of Gaussians.

    Returns ``(mean, logvar, counts)`` per slot: ``(B, D)``, ``(B, D)``, ``(B,)``; slot g holds group g, and
    slots no item uses have count 0 (mean 0, logvar 0; callers mask them).
    """
    n, d = mu.shape
    index = group.view(n, 1).expand(n, d)
    log_prec = -logvar
    # logsumexp per segment: shift by the (detached) segment max; the value and the gradient of a
    # logsumexp do not depend on the shift, so detaching it is exact and keeps exp() in range
    shift = torch.full((n, d), -math.inf, dtype=mu.dtype, device=mu.device)
    shift = shift.scatter_reduce(0, index, log_prec.detach(), reduce="amax", include_self=True)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    total = torch.zeros_like(mu).index_add(0, group, torch.exp(log_prec - shift[group]))
    counts = torch.zeros(n, dtype=mu.dtype, device=mu.device).index_add(0, group, torch.ones_like(mu[:, 0]))
    used = (counts > 0).unsqueeze(-1)
    group_log_prec = torch.where(used, shift + torch.log(torch.where(used, total, torch.ones_like(total))), 0.0)
    weights = torch.exp(log_prec - group_log_prec[group])  # Λ_i / Σ_{j∈G} Λ_j
    mean = torch.zeros_like(mu).index_add(0, group, weights * mu)
    if mode == "dlib_average":
        group_log_prec = group_log_prec - torch.log(counts.clamp_min(1.0)).unsqueeze(-1)
    elif mode != "product":
        raise ValueError(f"unknown accumulation '{mode}'")
    return mean, -group_log_prec, counts


def _gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> Independent:
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


@MODELS.register("ml_vae")
class MLVAE(Model):
    """Multi-Level VAE (Bouchacourt et al., AAAI 2018): per-image style, group-level content (module docstring).

    Args:
        style_dim, content_dim: sizes of the style latent S_i and the content latent C_G (paper: 10 and 10).
        net: ``mlp`` (the paper's MNIST nets: 784-500-heads, tanh) or ``burgess`` (32×32 / 64×64 conv nets).
        hidden, activation: MLP hidden sizes (encoder order; the decoder mirrors them) and non-linearity.
        likelihood, obs_scale: p(x | C, S), as for :class:`vaeray.models.gaussian.VAE`.
        accumulate: train with the batch's groups (evidence accumulation); ``false`` treats every image as its
            own group, a two-latent VAE that ignores the grouping (the ablation). Test-time accumulation
            (:meth:`represent_parts` with group ids) pools either way.
        accumulation: ``product`` (the paper) or ``dlib_average`` (disentanglement_lib's pair-averaging variant).
        content_sample: ``member`` draws one content sample per member from q(C_G|X_G) (the author's
            corrected code), ``group`` one sample shared by the whole group (both "worked", footnote 1).
        noise_scale: std of the reparameterisation noise of the content sample, ε ~ N(0, noise_scale²); the
            seed repository hard-codes 0.1, the paper 1.
        kl_warmup: steps of linear warm-up of both KL terms from 0 (0: none, the paper). Not in the paper; it lets
            ML-VAE train under the same warm-up as the other families of a comparison (the cross-family study).
            It does not prevent the early style collapse seen on dSprites with large groups (docs/multilevel.md).
    """

    terms = ("loss", "rec", "kl_style", "kl_content", "group_size")

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        style_dim: Annotated[int, Range(ge=1)] = 10,
        content_dim: Annotated[int, Range(ge=1)] = 10,
        net: Literal["mlp", "burgess"] = "mlp",
        hidden: list[int] = (500,),  # type: ignore[assignment]
        activation: Literal["tanh", "relu", "leaky_relu", "elu"] = "tanh",
        likelihood: LikelihoodName = "bernoulli",
        obs_scale: Annotated[float, Range(gt=0)] = 0.1,
        accumulate: bool = True,
        accumulation: Accumulation = "product",
        content_sample: Literal["member", "group"] = "member",
        noise_scale: Annotated[float, Range(gt=0)] = 1.0,
        kl_warmup: Annotated[int, Range(ge=0)] = 0,
    ):
        super().__init__(observation_shape, dataset_size)
        self.style_dim, self.content_dim = style_dim, content_dim
        self.likelihood_name, self.obs_scale = likelihood, obs_scale
        self.accumulate, self.accumulation = accumulate, accumulation
        self.content_sample, self.noise_scale = content_sample, noise_scale
        self.kl_warmup = kl_warmup
        heads = 2 * (style_dim + content_dim)  # style μ, style log σ², content μ, content log σ²
        latent = style_dim + content_dim
        if net == "burgess":
            self.encoder: nn.Module = BurgessEncoder(self.observation_shape, heads)
            self.decoder: nn.Module = BurgessDecoder(latent, self.observation_shape)
        else:
            self.encoder = MLP(self.observation_shape, hidden, heads, activation)
            self.decoder = MLP(latent, list(hidden)[::-1], self.observation_shape, activation)
        self.register_buffer("_zeros", torch.zeros(latent), persistent=False)

    def heads(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The four encoder heads on ``x``: ``style_mu``, ``style_logvar``, ``content_mu``, ``content_logvar``."""
        s, c = self.style_dim, self.content_dim
        parts = self.encoder(x).split([s, s, c, c], dim=-1)
        return dict(zip(("style_mu", "style_logvar", "content_mu", "content_logvar"), parts))

    def encode(self, x: torch.Tensor) -> Distribution:
        """q(S|x) q(C|x) of single images, as one diagonal Gaussian over [style, content]."""
        h = self.heads(x)
        mu = torch.cat([h["style_mu"], h["content_mu"]], -1)
        return _gaussian(mu, torch.cat([h["style_logvar"], h["content_logvar"]], -1))

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x | [style, content])."""
        return likelihood(self.likelihood_name, self.decoder(z), len(self.observation_shape), self.obs_scale)

    def prior(self) -> Distribution:
        return _gaussian(self._zeros, self._zeros)

    def content_posterior(
        self, h: dict[str, torch.Tensor], group: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-slot q(C_G|X_G) (mean, logvar), its slot counts, and each member's slot (B,)."""
        mu, logvar = h["content_mu"], h["content_logvar"]
        if group is None or not self.accumulate:
            group = torch.arange(mu.shape[0], device=mu.device)
        mean, var_log, counts = accumulate_evidence(mu, logvar, group, self.accumulation)
        return mean, var_log, counts, group

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        """Negative group ELBO (Eq. 5) averaged over the batch's groups, both KLs scaled by the warm-up
        multiplier (1 from step ``kl_warmup`` on); the logged terms are per group and unscaled."""
        if self.accumulate and batch.group is None:
            raise ConfigError(
                "ml_vae needs grouped batches (Batch.group): use a grouped dataset such as mnist_groups, "
                "or set model.accumulate: false",
                "data.name",
            )
        h = self.heads(batch.x)
        q_style = _gaussian(h["style_mu"], h["style_logvar"])
        style = q_style.rsample()
        mean, logvar, counts, group = self.content_posterior(h, batch.group)
        std = torch.exp(0.5 * logvar)
        # grouped reparameterisation: one ε per slot (shared by its members) or one per member
        eps = torch.randn_like(mean)[group] if self.content_sample == "group" else torch.randn_like(h["content_mu"])
        content = mean[group] + self.noise_scale * std[group] * eps
        rec = -self.decode(torch.cat([style, content], -1)).log_prob(batch.x)  # (B,)
        zs, zc = torch.zeros_like(style), torch.zeros_like(mean)
        kl_style = kl_divergence(q_style, _gaussian(zs, zs))  # (B,)
        kl_content = kl_divergence(_gaussian(mean, logvar), _gaussian(zc, zc))  # (B slots,)
        kl_content = torch.where(counts > 0, kl_content, torch.zeros_like(kl_content))  # one KL per group
        n_groups = (counts > 0).sum().to(rec.dtype)
        terms = {
            "rec": rec.sum() / n_groups,
            "kl_style": kl_style.sum() / n_groups,
            "kl_content": kl_content.sum() / n_groups,
            "group_size": rec.new_tensor(float(rec.shape[0])) / n_groups,
        }
        terms["loss"] = terms["rec"] + warmup(step, self.kl_warmup) * (terms["kl_style"] + terms["kl_content"])
        return terms

    @torch.no_grad()
    def represent_parts(self, x: torch.Tensor, group: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Posterior means ``{"style": (B, S), "content": (B, C)}``; with ``group`` ids the content of every
        image is its group's accumulated posterior mean (test-time evidence accumulation), else its own."""
        h = self.heads(x)
        if group is None:
            return {"style": h["style_mu"], "content": h["content_mu"]}
        # test-time accumulation applies whatever ``accumulate`` was in training (the ablation can pool too)
        mean, _, _ = accumulate_evidence(h["content_mu"], h["content_logvar"], group, self.accumulation)
        return {"style": h["style_mu"], "content": mean[group]}

    @torch.no_grad()
    def swap(self, style_x: torch.Tensor, content_x: torch.Tensor) -> torch.Tensor:
        """Swap grid (Fig. 3): row i decodes the style of ``style_x[i]`` with the content of each ``content_x[j]``;
        (rows, cols, *observation_shape) means of p(x | S_i, C_j) at the posterior means."""
        s = self.represent_parts(style_x)["style"]
        c = self.represent_parts(content_x)["content"]
        rows, cols = s.shape[0], c.shape[0]
        z = torch.cat([s[:, None].expand(rows, cols, -1), c[None].expand(rows, cols, -1)], -1)
        return self.decode(z.reshape(rows * cols, -1)).mean.reshape(rows, cols, *self.observation_shape)
