"""KL-reweighting disentangling VAEs as regularizers on the Gaussian VAE's ELBO.

Each class only replaces :meth:`VAE.regularizer` (the term added to the reconstruction loss) and adds its
hyperparameters to the constructor, which is its config schema:

* ``beta_vae_h``: a·β·KL (Higgins et al. 2017, Eq. 4);
* ``beta_vae_b``: a·γ·|KL − C(step)|, the capacity C rising linearly (Burgess et al. 2018, Eq. 8);
* ``beta_tcvae``: α·MI + β·TC + a·γ·DWKL (Chen et al. 2018, Eq. 4), estimated by :mod:`vaeray.models.tc`.

``a`` is the VAE's linear warm-up over ``reg_anneal`` steps (1 throughout when 0), a pure function of the step.
The defaults are the reference disentangling-vae command line's (docs/disentangling.md lists them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import torch
from torch.distributions import Distribution

from ..data.base import Batch
from ..registry import MODELS
from ..schedules import linear
from ..schema import Range
from . import tc as tc_estimators
from .gaussian import VAE


@MODELS.register("beta_vae_h")
class BetaVAEH(VAE):
    """β-VAE (Higgins et al. 2017): rec + a·β·KL; β > 1 pushes towards a factorised posterior.

    Args:
        beta: the KL weight β (reference default 4). With β = 1 this is exactly ``vae``.
        (The other arguments are :class:`VAE`'s.)
    """

    terms: tuple[str, ...] = ("loss", "rec", "kl")
    family = "disentangling"  # results group by family; vaeray.report reads it from this class only, not from subclasses
    batch_fields = ("x",)

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        *,
        beta: Annotated[float, Range(ge=0)] = 4.0,
        **base: Any,  # VAE's arguments (latent_dim, net, likelihood, ...): part of the schema via the MRO
    ):
        super().__init__(observation_shape, dataset_size, **base)
        self.beta = beta

    def regularizer(
        self, batch: Batch, q: Distribution, z: torch.Tensor, terms: dict[str, torch.Tensor], step: int
    ) -> torch.Tensor:
        return self.anneal(step) * self.beta * terms["kl"]


@MODELS.register("beta_vae_b")
class BetaVAEB(VAE):
    """β-VAE with controlled capacity (Burgess et al. 2018, Eq. 8): rec + γ·|KL − C|.

    The target KL ``C`` rises linearly from ``C_init`` at step 0 to ``C_fin`` at step ``C_steps`` and stays
    there (:meth:`capacity`, a pure function of the step). Defaults are the reference CLI's (0 → 25 nats,
    γ = 100) over its dSprites annealing length of 100,000 steps. ``reg_anneal`` (default 0, off) would
    additionally scale the whole term; the reference uses its anneal length for C instead.

    Args:
        gamma: weight γ of the capacity penalty.
        C_init, C_fin: capacity (nats) at step 0 and from step ``C_steps`` on.
        C_steps: length of the linear capacity schedule (0: ``C_fin`` from the start).
    """

    terms: tuple[str, ...] = ("loss", "rec", "kl", "capacity")
    family = "disentangling"  # results group by family; vaeray.report reads it from this class only, not from subclasses
    batch_fields = ("x",)

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        *,
        gamma: Annotated[float, Range(ge=0)] = 100.0,
        C_init: Annotated[float, Range(ge=0)] = 0.0,  # noqa: N803 (the paper's symbol)
        C_fin: Annotated[float, Range(ge=0)] = 25.0,  # noqa: N803
        C_steps: Annotated[int, Range(ge=0)] = 100_000,  # noqa: N803
        **base: Any,  # VAE's arguments (latent_dim, net, likelihood, ...): part of the schema via the MRO
    ):
        super().__init__(observation_shape, dataset_size, **base)
        self.gamma = gamma
        self.C_init, self.C_fin, self.C_steps = C_init, C_fin, C_steps

    def capacity(self, step: int) -> float:
        """C(step): ``C_init`` at 0, linear to ``C_fin`` at ``C_steps``, ``C_fin`` after."""
        return linear(step, self.C_init, self.C_fin, self.C_steps)

    def regularizer(
        self, batch: Batch, q: Distribution, z: torch.Tensor, terms: dict[str, torch.Tensor], step: int
    ) -> torch.Tensor:
        kl = terms["kl"]
        c = torch.as_tensor(self.capacity(step), dtype=kl.dtype, device=kl.device)
        terms["capacity"] = c
        return self.anneal(step) * self.gamma * (kl - c).abs()


@MODELS.register("beta_tcvae")
class BetaTCVAE(VAE):
    """β-TCVAE (Chen et al. 2018, Eq. 4): rec + α·MI + β·TC + a·γ·DWKL.

    MI, TC and the dimension-wise KL are minibatch estimates (:func:`vaeray.models.tc.decompose`) from the
    batch's own samples, with N = ``dataset_size``, the training-set size the loop injects. Their sum is the
    single-sample KL, so α = β = γ = 1 (and no warm-up) is a VAE with a Monte Carlo KL. As in the reference
    code, the warm-up ``reg_anneal`` scales only the γ·DWKL term. ``kl`` is still logged analytically.

    Args:
        alpha, beta, gamma: weights on MI, TC and the dimension-wise KL (reference defaults 1, 6, 1).
        estimator: ``mss`` (minibatch stratified sampling, default) or ``mws`` (minibatch weighted sampling,
            with its −log(N·M) constant).
    """

    terms: tuple[str, ...] = ("loss", "rec", "kl", "mi", "tc", "dwkl")
    family = "disentangling"  # results group by family; vaeray.report reads it from this class only, not from subclasses
    batch_fields = ("x",)  # the training loop assembles only x (no factor classes) for these losses

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        *,
        alpha: float = 1.0,  # may be negative: the reference's best_* experiments use α = −5, −10
        beta: Annotated[float, Range(ge=0)] = 6.0,
        gamma: Annotated[float, Range(ge=0)] = 1.0,
        estimator: tc_estimators.Estimator = "mss",
        **base: Any,  # VAE's arguments (latent_dim, net, likelihood, ...): part of the schema via the MRO
    ):
        super().__init__(observation_shape, dataset_size, **base)
        if dataset_size is None or dataset_size < 1:
            raise ValueError("beta_tcvae needs dataset_size, the number of training examples N")
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.estimator = estimator

    def regularizer(
        self, batch: Batch, q: Distribution, z: torch.Tensor, terms: dict[str, torch.Tensor], step: int
    ) -> torch.Tensor:
        parts = tc_estimators.decompose(q, z, self.prior().log_prob(z), self.dataset_size, self.estimator)
        terms.update(mi=parts["mi"], tc=parts["tc"], dwkl=parts["dwkl"])
        return self.alpha * parts["mi"] + self.beta * parts["tc"] + self.anneal(step) * self.gamma * parts["dwkl"]
