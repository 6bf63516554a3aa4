"""Discrete VAEs with an RBM prior: DVAE (Rolfe, ICLR 2017), DVAE++ (Vahdat, Macready, Bian, Khoshaman & Andriyash,
ICML 2018) and DVAE# (Vahdat, Andriyash & Macready, NeurIPS 2018), as the eight baselines of the DVAE# experiments.

| baseline         | smoother r(ζ|z)                 | objective                                                 |
|------------------|---------------------------------|-----------------------------------------------------------|
| ``dvae_spike_exp`` | spike + exponential (Rolfe)     | ELBO, KL on the discrete z                                 |
| ``dvaepp_exp``     | overlapping exponentials        | ELBO, KL on the discrete z                                 |
| ``dvaepp_power``   | power-function                  | ELBO, KL on the discrete z                                 |
| ``dvaes_gi``       | Gaussian integral               | relaxed-prior ELBO (k = 1) or IW bound with k samples      |
| ``dvaes_gauss``    | Gaussian mixture                | relaxed-prior ELBO / IW bound, mean-field marginal prior   |
| ``dvaes_exp``      | exponential mixture             | same                                                       |
| ``dvaes_unexp``    | uniform + exponential mixture   | same                                                       |
| ``dvaes_power``    | power-function mixture          | same                                                       |

**DVAE / DVAE++** (DVAE++ Sec. 4, Eq. 9–10): loss = −log p(x|ζ) + κ(t)·[−H(q(z|x)) + E_q[E(z)] + log Z], averaged over
the k samples. With one latent level the cross-entropy is exact for the factorial posterior,
−b1ᵀq1 − b2ᵀq2 − q1ᵀWq2; with several it is −b1ᵀq1 − b2ᵀq2 − ν1ᵀWq2 with ν1 = E[z1|ζ1] = σ(l1 + log r(ζ1|1)/r(ζ1|0))
(DVAE++ Eq. 10), since the right half's posterior depends on the left half's ζ; for the spike-and-exponential,
whose ν1 is a step in ζ1, :func:`spike_boundary` adds the gradient term the pathwise derivative misses there
(docs/discrete.md, "The KL with a hierarchical posterior"). log Z is the PCD surrogate.
**DVAE#**: log w = log p(x|ζ) + κ(t)·(log p(ζ) − log q(ζ|x)) with p(ζ) the relaxed prior
(:mod:`vaeray.distributions.relaxed`); k = 1 minimises −log w, k > 1 the IW bound through
−Σ_k stopgrad(softmax(log w))_k log w_k (Burda et al. 2016, Eq. 14). κ(t) is the KL warm-up, a pure function of
the step (linear over ``kl_warmup`` steps, DVAE#: the first 30% of training).

Evaluation is of the **discrete** model (binary z to the encoder's later levels, the decoder and the RBM):
:meth:`DiscreteVAE.log_likelihood` is an importance-sampled log p(x) with log Z from AIS re-estimated whenever
the RBM's weights changed since the last estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent

from ..data.base import Batch
from ..distributions.ais import AISResult, ais_log_z
from ..distributions.boltzmann import RBM, RBMDistribution
from ..distributions.relaxed import GaussianIntegralRBM, MarginalRelaxedRBM
from ..distributions.smoothing import (
    LOG_EPS,
    GaussianMixture,
    OverlappingExponential,
    PowerFunction,
    SmoothedBernoulli,
    SpikeAndExponential,
    UniformExponential,
)
from ..nets.dvae import STRUCTURES, Decoder, HierarchicalEncoder
from ..registry import MODELS
from ..schedules import warmup
from ..schema import Range
from .base import Model, ParamGroup

Structure = Literal["1-layer-lin", "1-layer-nonlin", "2-layer-nonlin", "4-layer-nonlin"]
BASELINES: dict[str, tuple[type[SmoothedBernoulli], str]] = {  # name -> (smoother, prior: discrete | marginal | gi)
    "dvae_spike_exp": (SpikeAndExponential, "discrete"),
    "dvaepp_exp": (OverlappingExponential, "discrete"),
    "dvaepp_power": (PowerFunction, "discrete"),
    "dvaes_gi": (GaussianMixture, "gi"),
    "dvaes_gauss": (GaussianMixture, "marginal"),
    "dvaes_exp": (OverlappingExponential, "marginal"),
    "dvaes_unexp": (UniformExponential, "marginal"),
    "dvaes_power": (PowerFunction, "marginal"),
}
_ORDER = list(BASELINES)
# β per (dataset, structure), columns in the order of BASELINES (the DVAE# code's defaults; research notes 1.2)
BETAS: dict[tuple[str, str], tuple[float, ...]] = {
    ("mnist", "1-layer-lin"): (5, 12, 40, 40, 40, 12, 40, 40),
    ("mnist", "1-layer-nonlin"): (5, 14, 30, 30, 30, 12, 30, 40),
    ("mnist", "2-layer-nonlin"): (4, 10, 30, 30, 25, 10, 16, 30),
    ("mnist", "4-layer-nonlin"): (4, 10, 30, 30, 25, 10, 16, 30),
    ("omniglot", "1-layer-lin"): (4, 14, 40, 40, 40, 12, 40, 40),
    ("omniglot", "1-layer-nonlin"): (4, 12, 40, 30, 25, 10, 16, 30),
    ("omniglot", "2-layer-nonlin"): (4, 10, 30, 25, 25, 8, 16, 20),
    ("omniglot", "4-layer-nonlin"): (4, 10, 30, 25, 25, 8, 16, 20),
}


def default_beta(baseline: str, dataset: str, structure: str) -> float:
    return float(BETAS[(dataset, structure)][_ORDER.index(baseline)])


class DiscreteVAE(Model):
    """The shared model of the eight baselines; a registered subclass fixes ``baseline``.

    Args:
        structure: the DVAE# encoder/decoder structure (:data:`vaeray.nets.dvae.STRUCTURES`).
        beta: the smoother's β; None takes the paper's default for ``beta_table`` and ``structure``.
        beta_table: which dataset's β table the default comes from: ``mnist``, ``omniglot``, or ``auto``
            (``omniglot`` when training on the ``omniglot`` dataset, else ``mnist``).
        k: samples per example (DVAE#: IW bound; DVAE/DVAE++: the ELBO averaged over them).
        units, hidden: override the structure's latent units per level and hidden width (small test models).
        kl_warmup: steps of linear KL warm-up (DVAE#: 30% of 10⁶).
        weight_decay: the reference's 1e-4·½‖·‖² on dense kernels, batch-norm scales and the RBM's W.
        num_chains, sweeps: PCD chains and Gibbs sweeps per training step (DVAE#: 1000, 40).
        mf_iters: mean-field iterations for the marginal relaxed prior (DVAE#: 5).
        adam_eps: Adam's ε (DVAE#: 1e-3); the lr and its piecewise schedule are ``train.*`` settings.
        ais_temperatures, ais_particles, ais_repeats: AIS for log Z at evaluation (DVAE#: 1000, 1024).
        ais_upper: also run reverse AIS for the upper end of the log Z sandwich.
        ais_base: AIS base distribution: the zero-parameter RBM, or a factorial one at the PCD chains' means.
    """

    baseline: str = ""

    def __init__(
        self,
        observation_shape: Sequence[int],
        dataset_size: int | None = None,
        data_mean: torch.Tensor | None = None,
        data_name: str | None = None,
        structure: Structure = "1-layer-nonlin",
        beta: Annotated[float, Range(gt=0)] | None = None,
        beta_table: Literal["auto", "mnist", "omniglot"] = "auto",
        k: Annotated[int, Range(ge=1)] = 1,
        units: Annotated[int, Range(ge=2)] | None = None,
        hidden: Annotated[int, Range(ge=1)] = 200,
        kl_warmup: Annotated[int, Range(ge=0)] = 300_000,
        weight_decay: Annotated[float, Range(ge=0)] = 1e-4,
        num_chains: Annotated[int, Range(ge=1)] = 1000,
        sweeps: Annotated[int, Range(ge=1)] = 40,
        mf_iters: Annotated[int, Range(ge=1)] = 5,
        adam_eps: Annotated[float, Range(gt=0)] = 1e-3,
        ais_temperatures: Annotated[int, Range(ge=2)] = 1000,
        ais_particles: Annotated[int, Range(ge=1)] = 1024,
        ais_repeats: Annotated[int, Range(ge=1)] = 2,
        ais_upper: bool = True,
        ais_base: Literal["zero", "chains"] = "zero",
    ):
        super().__init__(observation_shape, dataset_size)
        self.smoother, self.prior_kind = BASELINES[self.baseline]
        self.structure = structure
        if beta_table == "auto":
            beta_table = "omniglot" if data_name == "omniglot" else "mnist"
        self.beta = float(beta) if beta is not None else default_beta(self.baseline, beta_table, structure)
        levels, default_units, layers = STRUCTURES[structure]
        self.levels, self.units = levels, units or default_units
        self.k, self.kl_warmup, self.weight_decay, self.mf_iters, self.adam_eps = k, kl_warmup, weight_decay, mf_iters, adam_eps
        self.ais = dict(temperatures=ais_temperatures, particles=ais_particles, repeats=ais_repeats, upper=ais_upper)
        self.ais_base = ais_base
        n_x = math.prod(self.observation_shape)
        n = self.levels * self.units
        mean = torch.full((n_x,), 0.5) if data_mean is None else data_mean.detach().float().reshape(n_x).cpu()
        self.register_buffer("data_mean", mean)
        heads = 2 if self.prior_kind == "gi" else 1
        self.encoder = HierarchicalEncoder(n_x, levels, self.units, layers, hidden, heads)
        self.decoder = Decoder(n, n_x, layers, hidden, mean)
        self.rbm = RBM(n // 2, n - n // 2, num_chains=num_chains, sweeps=sweeps)
        if self.prior_kind == "gi":  # DVAE#: a per-unit, input-independent scale s = |0.2 v| + 0.05, v₀ = 1
            self.gi_scale = nn.Parameter(torch.ones(n))
        self._partition: tuple[torch.Tensor, AISResult] | None = None

    # --- the distribution-typed surface ---
    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)

    def posterior(self, level: int, out: torch.Tensor) -> SmoothedBernoulli:
        """The relaxed posterior of one level from its encoder output."""
        logits = out[..., : self.units]
        if self.prior_kind == "gi":
            shift = 0.5 * (torch.sigmoid(out[..., self.units :]) - 0.5)  # in (−¼, ¼)
            s = self.gi_scale[level * self.units : (level + 1) * self.units]
            return GaussianMixture(logits, self.beta, shift=shift, scale=(0.2 * s).abs() + 0.05)
        return self.smoother(logits, self.beta)

    def encode(self, x: torch.Tensor) -> Distribution:
        """Factorial Bernoulli over all levels, each conditioned on the earlier levels' probabilities (a
        deterministic code for ``represent``; training and evaluation sample the hierarchy instead)."""
        xc = self._flat(x) - self.data_mean
        probs: list[torch.Tensor] = []
        logits = []
        for i in range(self.levels):
            lg = self.encoder.level(i, xc, probs)[..., : self.units]
            logits.append(lg)
            probs.append(torch.sigmoid(lg))
        return Independent(Bernoulli(logits=torch.cat(logits, -1), validate_args=False), 1)

    def decode(self, z: torch.Tensor) -> Distribution:
        logits = self.decoder(z).reshape(*z.shape[:-1], *self.observation_shape)
        return Independent(Bernoulli(logits=logits, validate_args=False), len(self.observation_shape))

    def prior(self) -> RBMDistribution:
        return self.rbm.distribution()

    def relaxed_prior(self, log_z: torch.Tensor) -> Distribution:
        if self.prior_kind == "gi":
            return GaussianIntegralRBM(self.rbm, self.beta, log_z)
        return MarginalRelaxedRBM(self.rbm, self.smoother, self.beta, log_z, self.mf_iters)

    def parameter_groups(self) -> dict[str, ParamGroup]:
        return {"loss": ParamGroup(list(self.parameters()), extra={"eps": self.adam_eps})}

    # --- training ---
    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        x = self._flat(batch.x)
        b = x.shape[0]
        if self.training:
            self.rbm.update_chains()  # PCD: advance the persistent chains (buffers, so checkpointed)
        log_z = self.rbm.log_z_surrogate()
        xk = x.repeat(self.k, 1)  # (k·B, D), sample-major
        xc = xk - self.data_mean
        zetas: list[torch.Tensor] = []
        posts: list[SmoothedBernoulli] = []
        for i in range(self.levels):
            q = self.posterior(i, self.encoder.level(i, xc, zetas))
            posts.append(q)
            zetas.append(q.rsample())
        zeta = torch.cat(zetas, -1)
        log_px = self.decode(zeta).log_prob(xk.reshape(-1, *self.observation_shape))
        coeff = warmup(step, self.kl_warmup)
        if self.prior_kind == "discrete":
            kl = self.discrete_kl(posts, zetas, log_z)
            loss = (-log_px + coeff * kl).mean()
            terms = {"rec": -log_px.mean(), "kl": kl.mean(), "elbo": (log_px - kl).mean()}
        else:
            log_q = sum(q.log_prob(z).sum(-1) for q, z in zip(posts, zetas))
            log_p = self.relaxed_prior(log_z).log_prob(zeta)
            log_w = (log_px + coeff * (log_p - log_q)).reshape(self.k, b)
            if self.k == 1:
                loss = -log_w.mean()
            else:  # IWAE gradient: normalised weights held constant
                loss = -(torch.softmax(log_w, 0).detach() * log_w).sum(0).mean()
            bound = torch.logsumexp(log_w, 0) - math.log(self.k)
            terms = {"rec": -log_px.mean(), "kl": (log_q - log_p).mean(), "bound": bound.mean()}
        terms["weight_decay"] = self.weight_decay * 0.5 * self.decayed_norm()
        terms["loss"] = loss + terms["weight_decay"]
        terms["log_z"] = log_z.detach()
        return terms

    def discrete_kl(
        self, posts: list[SmoothedBernoulli], zetas: list[torch.Tensor], log_z: torch.Tensor, boundary: bool = True
    ) -> torch.Tensor:
        """KL(q(z|x) ‖ p(z)) per sample: −H(q) + E_q[E(z)] + log Z (DVAE++ Eq. 9–10; see the module docstring).

        With several levels and the spike-and-exponential smoother, E[z1|ζ1] is the step function 1{ζ1 > 0},
        so the pathwise gradient misses the jump at the spike's boundary; ``boundary`` adds the term that
        restores it (:func:`spike_boundary`; docs/discrete.md). ``boundary=False`` is the estimator without it
        (biased for the spike; kept so the test can show the bias)."""
        logits = torch.cat([q.logits for q in posts], -1)
        probs = torch.sigmoid(logits)
        n1 = self.rbm.n1
        q1, q2 = probs[..., :n1], probs[..., n1:]
        if self.levels == 1:
            nu1 = q1  # one factorial posterior: the exact expectation
        else:  # E[z1 | ζ1] for the left half, on which the right half's posterior is conditioned
            nu1 = torch.cat([q.z_given_zeta(z) for q, z in zip(posts, zetas)], -1)[..., :n1]
        cross = -(q1 @ self.rbm.b1 + q2 @ self.rbm.b2 + ((nu1 @ self.rbm.w) * q2).sum(-1)) + log_z
        if boundary and self.levels > 1 and self.smoother is SpikeAndExponential:
            cross = cross - spike_boundary(q1, nu1, q2 @ self.rbm.w.t())
        entropy = Bernoulli(logits=logits, validate_args=False).entropy().sum(-1)
        return cross - entropy

    def decayed_norm(self) -> torch.Tensor:
        total = self.rbm.w.pow(2).sum()
        for mod in self.modules():
            if isinstance(mod, (nn.Linear, nn.BatchNorm1d)):
                total = total + mod.weight.pow(2).sum()
        return total

    # --- evaluation of the discrete model ---
    @torch.no_grad()
    def partition(self) -> AISResult:
        """AIS estimate of log Z for the current RBM weights (cached until they change); also stored in the
        RBM's ``log_z`` buffer, the value the training surrogate reports (as the reference does)."""
        key = torch.cat([p.detach().reshape(-1) for p in (self.rbm.b1, self.rbm.b2, self.rbm.w)]).cpu().clone()
        if self._partition is not None and torch.equal(self._partition[0], key):
            return self._partition[1]
        base = None
        if self.ais_base == "chains":
            m = torch.cat([self.rbm.chains1.mean(0), self.rbm.chains2.mean(0)]).clamp(1e-3, 1 - 1e-3)
            base = torch.logit(m)
        seed = int(torch.randint(0, 2**31 - 1, ()))  # from the caller's (seeded) generator
        result = ais_log_z(self.rbm.b1, self.rbm.b2, self.rbm.w, base_logits=base, seed=seed, **self.ais)
        self.rbm.log_z.fill_(result.log_z)
        self.rbm.log_z_std.fill_(result.log_z_std)
        self._partition = (key, result)
        return result

    @torch.no_grad()
    def discrete_log_likelihood(self, x: torch.Tensor, k: int = 4000, chunk: int = 100) -> torch.Tensor:
        """log p(x) ≈ log (1/k) Σ_s p(x|z_s) p(z_s)/q(z_s|x), z_s ~ q(z|x) binary, log Z from AIS; shape (B,)."""
        log_z = torch.tensor(self.partition().log_z, dtype=x.dtype, device=x.device)
        x = self._flat(x)
        b = x.shape[0]
        parts = []
        for start in range(0, k, chunk):
            c = min(chunk, k - start)
            xk = x.repeat(c, 1)
            xc = xk - self.data_mean
            zs: list[torch.Tensor] = []
            log_q = torch.zeros(c * b, dtype=x.dtype, device=x.device)
            for i in range(self.levels):
                logits = self.encoder.level(i, xc, zs)[..., : self.units]
                z = torch.bernoulli(torch.sigmoid(logits))
                log_q = log_q - F.binary_cross_entropy_with_logits(logits, z, reduction="none").sum(-1)
                zs.append(z)
            z = torch.cat(zs, -1)
            log_px = self.decode(z).log_prob(xk.reshape(-1, *self.observation_shape))
            log_w = log_px - self.rbm.energy(z) - log_z - log_q
            parts.append(torch.logsumexp(log_w.reshape(c, b), 0))
        return torch.logsumexp(torch.stack(parts), 0) - math.log(k)

    @property
    def log_likelihood(self) -> DiscreteLikelihood:  # type: ignore[override]
        return DiscreteLikelihood(self)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Means of p(x|z) for the first ``n`` persistent chains' states (samples of the RBM prior); fresh
        Gibbs chains when more are asked for than the PCD keeps."""
        if n > self.rbm.chains1.shape[0]:
            return self.decode(self.prior().sample((n,))).mean
        z = torch.cat([self.rbm.chains1[:n], self.rbm.chains2[:n]], -1)
        return self.decode(z).mean


def spike_boundary(q1: torch.Tensor, z1: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Zero-valued surrogate whose gradient is the boundary term of ∂/∂θ E_q[z1ᵀ W q2(ζ)] under the spike.

    With the spike-and-exponential, z1_i = 1{ρ_i > 1 − q1_i} jumps from 0 to 1 where ζ1_i leaves the spike
    (ζ1_i → 0⁺ on one side, = 0 on the other, so everything continuous in ζ is equal on both sides). Moving
    q1_i moves that boundary, which adds E[g_i(ζ)|ζ1_i = 0]·∂q1_i/∂θ to the gradient, g = W q2(ζ): the integrand
    z1ᵀ g jumps by g_i there. Given the earlier levels, ζ1_i = 0 exactly when z1_i = 0 (probability 1 − q1_i), so
    (1 − z1_i)/(1 − q1_i)·g_i(ζ) is an unbiased one-sample estimate of that conditional mean. Returned as
    S − sg(S) with S = Σ_i q1_i·sg[(1 − z1_i) g_i/(1 − q1_i)]: its value is 0, its gradient the boundary term.

    Args: ``q1`` the left units' probabilities (graph-connected), ``z1`` their samples (1{ζ > 0}), ``g`` = W q2.
    """
    q = q1.detach().clamp(LOG_EPS, 1 - LOG_EPS)  # rsample clamps q the same way
    s = (q1 * ((1 - z1) * g / (1 - q)).detach()).sum(-1)
    return s - s.detach()


class DiscreteLikelihood:
    """``log_likelihood(x, k)`` of the discrete model, carrying the AIS log Z it uses (``partition()``), so a
    metric can report the estimate and its sandwich without seeing the model."""

    def __init__(self, model: DiscreteVAE):
        self._model = model

    def __call__(self, x: torch.Tensor, k: int = 4000) -> torch.Tensor:
        return self._model.discrete_log_likelihood(x, k)

    def partition(self) -> AISResult:
        return self._model.partition()


for _name in BASELINES:
    MODELS.register(_name)(type(f"DiscreteVAE_{_name}", (DiscreteVAE,), {"baseline": _name, "__doc__": f"``{_name}``: see :class:`DiscreteVAE`."}))
