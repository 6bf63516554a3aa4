"""Topographic VAE (Keller & Welling, "Topographic VAEs learn Equivariant Capsules", NeurIPS 2021,
arXiv 2109.01394) and its paper variants: BubbleVAE, L0, the non-topographic baseline and the 2-D TVAE.

Generative model (the paper's topographic generative model): per frame l, z_l, u_l ~ N(0, I) and

    t_l = (z_l + μ) / √(W u²_{l±·} + ε),       x_l ~ Bernoulli(g(t_l)),

a topographic Student-t-like variable whose variance is shared by a neighbourhood W over capsule dimensions
and time (:mod:`.grouper`). The paper writes z − μ; the reference code adds a single learned scalar,
initialised to ``mu_init``, and so do we (the sign is absorbed by the parameter). Inference: two
independent Gaussian encoders q(z_l|x_l), q(u_l|x_l) of the same shape, one frame at a time.

Objective: t has no closed-form density, so, as the paper does (t is a deterministic transform of the
Gaussian pair), the ELBO is taken over (z, u) — whose priors and posteriors are Gaussian — with t a deterministic
function of them:

    ELBO = E_q [ Σ_l log p(x_l | t_l(z, u)) ] − Σ_l KL(q(z_l|x_l) ‖ N(0,I)) − Σ_l KL(q(u_l|x_l) ‖ N(0,I)),

both KLs analytic. ``loss`` reports it **per frame** (the sum above divided by B·S), as the reference's
training loop does, so that with t = z (``nontvae``) it is exactly the project's ``vae`` loss on the frames.

Batches are sequences, ``x`` of shape ``(B, S, C, H, W)`` (:mod:`vaeray.data.sequences`); a dataset of single
images ``(B, C, H, W)`` is read as sequences of one frame (the 2-D TVAE on plain MNIST).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Annotated, Literal

import torch
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal, kl_divergence

from ..data.base import Batch
from ..errors import ConfigError
from ..registry import MODELS
from ..schema import Range
from .base import Model
from .gaussian import build_nets
from .grouper import Grouper

NetName = Literal["reference", "mlp", "burgess"]
Per = Literal["sequence", "frame"]


class _Topographic(Model):
    """Shared machinery; the registered classes below differ only in their grouper (or none)."""

    terms: tuple[str, ...] = ("loss", "rec", "kl", "kl_z", "kl_u")

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None,
        grouper: Grouper | None,
        n_caps: int,
        cap_dim: int,
        n_transforms: int | None,
        mu_init: float,
        eps: float,
        net: str,
        hidden: Sequence[int] | None,
    ):
        super().__init__(observation_shape, dataset_size)
        shape = self.observation_shape
        if len(shape) == 4:
            frames, self.frame_shape = shape[0], shape[1:]
        elif len(shape) == 3:
            frames, self.frame_shape = 1, shape
        else:
            raise ConfigError(f"expects images (C, H, W) or sequences (S, C, H, W), got shape {shape}", "model")
        if n_transforms is not None and n_transforms != frames:
            raise ConfigError(f"n_transforms={n_transforms} but the data's sequences have {frames} frames",
                              "model.n_transforms")
        self.n_transforms = frames
        self.n_caps, self.cap_dim = n_caps, cap_dim
        self.latent_dim = s = n_caps * cap_dim
        if net == "reference":  # the reference's "MLP as convolutions": dense 3s, 2s (Sec. 1.2 of the notes)
            net, hidden = "mlp", [3 * s, 2 * s]
        elif hidden is None:
            hidden = [512, 512]
        try:
            self.encoder, self.decoder = build_nets(net, self.frame_shape, s, 2 * s, hidden)
            self.u_encoder = build_nets(net, self.frame_shape, s, 2 * s, hidden)[0] if grouper is not None else None
        except ValueError as e:
            raise ConfigError(str(e), "model.net") from None
        self.grouper = grouper
        self.eps = eps
        self.mu = nn.Parameter(torch.tensor(float(mu_init))) if grouper is not None else None
        self.register_buffer("_zeros", torch.zeros(s), persistent=False)
        # the model as initialised, outside the module tree (not trained, not saved): the equivariance
        # metric reports its figure beside the trained one (represent(x, untrained=True))
        self._initial = [copy.deepcopy(self)]

    # --- shapes ---------------------------------------------------------------------------------------------
    def _sequences(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as ``(B, S, C, H, W)``."""
        return x.unsqueeze(1) if x.dim() == len(self.frame_shape) + 1 else x

    # --- the distributions ------------------------------------------------------------------------------------
    def _gaussian(self, net: nn.Module, x: torch.Tensor) -> Distribution:
        lead = x.shape[: x.dim() - len(self.frame_shape)]
        out = net(x.reshape(-1, *self.frame_shape))  # conv nets take (N, C, H, W)
        mu, logvar = out.reshape(*lead, out.shape[-1]).chunk(2, dim=-1)
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def encode(self, x: torch.Tensor) -> Distribution:
        """q(z_l|x_l) per frame: batch shape (B, S) for sequences, event (n_caps·cap_dim,)."""
        return self._gaussian(self.encoder, x)

    def encode_u(self, x: torch.Tensor) -> Distribution:
        """q(u_l|x_l) per frame, the same shape as :meth:`encode`."""
        if self.u_encoder is None:
            raise RuntimeError("the non-topographic model has no u")
        return self._gaussian(self.u_encoder, x)

    def prior(self) -> Distribution:
        return Independent(Normal(self._zeros, torch.ones_like(self._zeros)), 1)

    def decode(self, t: torch.Tensor) -> Distribution:
        """p(x_l|t_l): Bernoulli per pixel (the reference's, even for hue-coloured frames)."""
        return Independent(Bernoulli(logits=self.decoder(t), validate_args=False), len(self.frame_shape))

    def topographic(self, z: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        """t = (z + μ)/√(W u² + ε) for z, u of shape ``(..., S, n_caps·cap_dim)``; t = z without a grouper."""
        if self.grouper is None:
            return z
        lead = z.shape[:-2]
        caps = (-1, self.n_transforms, self.n_caps, self.cap_dim)  # (N, S, n_caps, cap_dim)
        v = self.grouper(u.reshape(caps).square())
        t = (z.reshape(caps) + self.mu) / torch.sqrt(v + self.eps)
        return t.reshape(*lead, self.n_transforms, self.latent_dim)

    # --- objective --------------------------------------------------------------------------------------------
    def _posteriors(self, x: torch.Tensor) -> tuple[Distribution, Distribution | None]:
        return self.encode(x), (self.encode_u(x) if self.u_encoder is not None else None)

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        x = self._sequences(batch.x)
        qz, qu = self._posteriors(x)
        z = qz.rsample()
        u = qu.rsample() if qu is not None else None
        rec = -self.decode(self.topographic(z, u)).log_prob(x).mean()  # per frame
        kl_z = kl_divergence(qz, self.prior()).mean()
        kl_u = kl_divergence(qu, self.prior()).mean() if qu is not None else torch.zeros_like(kl_z)
        kl = kl_z + kl_u
        return {"loss": rec + kl, "rec": rec, "kl": kl, "kl_z": kl_z, "kl_u": kl_u}

    @torch.no_grad()
    def represent(self, x: torch.Tensor, untrained: bool = False) -> torch.Tensor:
        """t at the posterior means of z and u: ``(B, S, n_caps, cap_dim)`` for sequences; for a batch of single
        images ``(B, n_caps·cap_dim)``, the flat code the disentanglement metrics take. ``untrained``: of the
        model as it was initialised (the equivariance metric's baseline)."""
        if untrained:
            initial = self._initial[0].to(x.device, x.dtype)
            return initial.represent(x)
        t = self._capsules(x)
        return t.flatten(1) if x.dim() == len(self.frame_shape) + 1 else t

    def _capsules(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, S, n_caps, cap_dim)``: t at the posterior means, frames as a sequence."""
        x = self._sequences(x)
        qz, qu = self._posteriors(x)
        t = self.topographic(qz.mean, qu.mean if qu is not None else None)
        return t.reshape(*t.shape[:-1], self.n_caps, self.cap_dim)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Bernoulli means of p(x|t) at the posterior means, the shape of ``x``."""
        t = self._capsules(x)
        return self.decode(t.flatten(-2)).mean.reshape(x.shape)

    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """``(k, B, S)`` per-frame log weights log p(x_l|t_l) + log p(z_l) + log p(u_l) − log q(z_l) − log q(u_l).

        One joint draw of (z, u) for the whole sequence per sample: t_l depends on u at neighbouring frames.
        """
        x = self._sequences(x)
        qz, qu = self._posteriors(x)
        p = self.prior()
        z = qz.sample((k,))
        lw = p.log_prob(z) - qz.log_prob(z)
        u = None
        if qu is not None:
            u = qu.sample((k,))
            lw = lw + p.log_prob(u) - qu.log_prob(u)
        return lw + self.decode(self.topographic(z, u)).log_prob(x.expand(k, *x.shape))

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, k: int = 1000, chunk: int = 100, per: Per = "sequence") -> torch.Tensor:
        """Importance-sampled log-likelihood with the −log K term (Burda et al. 2016, Eq. 8), nats.

        ``per="sequence"``: log (1/K) Σ_k Π_l w_lk, the IWAE bound on log p(x_1..S) of the whole sequence, shape
        (B,). ``per="frame"``: the paper's per-frame figure, log (1/K) Σ_k w_lk for each frame, shape (B, S). It
        is not a bound on any marginal of the sequence model (t_l depends on u at other frames, and w_lk
        ignores that), and the reference also omits −log K, which makes its number higher by log K per frame.
        For one-frame data the two coincide.
        """
        if per not in ("sequence", "frame"):
            raise ValueError(f"per must be 'sequence' or 'frame', not {per!r}")
        parts = []
        for start in range(0, k, chunk):
            lw = self.log_weights(x, min(chunk, k - start))  # (k', B, S)
            parts.append(torch.logsumexp(lw.sum(-1) if per == "sequence" else lw, dim=0))
        return torch.logsumexp(torch.stack(parts), dim=0) - math.log(k)


Caps = Annotated[int, Range(ge=1)]
Positive = Annotated[float, Range(gt=0)]


@MODELS.register("tvae")
class TopographicVAE(_Topographic):
    """The TVAE with shifting temporal coherence (Keller & Welling 2021: W summed over a time window with Roll_δ).

    Args:
        n_caps, cap_dim: capsules and their size (the latent has n_caps·cap_dim units per frame).
        n_transforms: S, frames per sequence; None takes it from the data (a mismatch is an error).
        k_time: window over frames (the paper's 2L + 1; the run names' L fraction is k_time / 2S).
        n_off_diag: band half-width over capsule dimensions, K = 2·n_off_diag + 1.
        mu_init: initial value of the learned scalar μ (30 in the paper's capsule runs).
        eps: added under the square root.
        roll: False removes the roll (every time offset sees the same neighbourhood): BubbleVAE.
        band_clip: the reference's k × k band matrix (loses band entries at the extreme offsets; see grouper).
        net: ``reference`` (dense 3s–2s, s = n_caps·cap_dim, as the paper's code), ``mlp`` or ``burgess``.
        hidden: MLP hidden sizes for ``net: mlp``.
    """

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        n_caps: Caps = 18,
        cap_dim: Caps = 18,
        n_transforms: Caps | None = None,
        k_time: Caps = 13,
        n_off_diag: Annotated[int, Range(ge=0)] = 1,
        mu_init: float = 30.0,
        eps: Positive = 1e-6,
        roll: bool = True,
        band_clip: bool = False,
        net: NetName = "reference",
        hidden: list[int] | None = None,
    ):
        grouper = Grouper("shifting", k_time=k_time, n_off_diag=n_off_diag, roll=roll, band_clip=band_clip)
        super().__init__(observation_shape, dataset_size, grouper, n_caps, cap_dim, n_transforms, mu_init, eps,
                         net, hidden)


@MODELS.register("bubble_vae")
class BubbleVAE(_Topographic):
    """BubbleVAE (Keller & Welling 2021): stationary temporal coherence, a k_time × k_space box of u²
    with no roll (the reference's ``Stationary_Capsules_1d``). Arguments as :class:`TopographicVAE`."""

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        n_caps: Caps = 18,
        cap_dim: Caps = 18,
        n_transforms: Caps | None = None,
        k_time: Caps = 5,
        k_space: Caps = 3,
        mu_init: float = 30.0,
        eps: Positive = 1e-6,
        net: NetName = "reference",
        hidden: list[int] | None = None,
    ):
        grouper = Grouper("stationary", k_time=k_time, k_space=k_space)
        super().__init__(observation_shape, dataset_size, grouper, n_caps, cap_dim, n_transforms, mu_init, eps,
                         net, hidden)


@MODELS.register("tvae_l0")
class TVAEL0(BubbleVAE):
    """TVAE with L = 0 (Table 1/2 "TVAE L=0"): topographic over capsule dimensions only, K = ``k_space``,
    no temporal coherence (the reference's stationary grouper with kernel (1, K, 1))."""

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        n_caps: Caps = 18,
        cap_dim: Caps = 18,
        n_transforms: Caps | None = None,
        k_space: Caps = 3,
        mu_init: float = 30.0,
        eps: Positive = 1e-6,
        net: NetName = "reference",
        hidden: list[int] | None = None,
    ):
        super().__init__(observation_shape, dataset_size, n_caps, cap_dim, n_transforms, 1, k_space, mu_init, eps,
                         net, hidden)


@MODELS.register("nontvae")
class NonTopographicVAE(_Topographic):
    """The non-topographic baseline (Table 1/2 "NonT-VAE"): t = z, no u and no μ, i.e. a Gaussian VAE on the
    frames with the capsule layout kept for the equivariance metric."""

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        n_caps: Caps = 18,
        cap_dim: Caps = 18,
        n_transforms: Caps | None = None,
        net: NetName = "reference",
        hidden: list[int] | None = None,
    ):
        super().__init__(observation_shape, dataset_size, None, n_caps, cap_dim, n_transforms, 0.0, 1.0, net, hidden)


@MODELS.register("tvae_2d")
class TopographicVAE2D(_Topographic):
    """The 2-D TVAE (Keller & Welling 2021, Fig. 3): each capsule of ``cap_dim`` = side² units is a side × side
    torus and W sums u² over a k × k box on it; no temporal coherence (the paper's run: one capsule of 324
    units, k = 5, μ_init = 10, plain MNIST)."""

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        n_caps: Caps = 1,
        cap_dim: Caps = 324,
        n_transforms: Caps | None = None,
        k: Caps = 5,
        mu_init: float = 10.0,
        eps: Positive = 1e-6,
        net: NetName = "reference",
        hidden: list[int] | None = None,
    ):
        if round(cap_dim**0.5) ** 2 != cap_dim:
            raise ConfigError(f"cap_dim must be a square (a side × side torus), got {cap_dim}", "model.cap_dim")
        super().__init__(observation_shape, dataset_size, Grouper("torus", k_space=k), n_caps, cap_dim,
                         n_transforms, mu_init, eps, net, hidden)
