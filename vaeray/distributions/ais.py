"""Annealed importance sampling (Neal 2001) for the log partition function of a bipartite RBM, with one side
summed out analytically (Salakhutdinov & Murray, ICML 2008, Sec. 4.1), and reverse AIS (Burda, Grosse &
Salakhutdinov, AISTATS 2015) for a stochastic upper estimate, so evaluation can state a sandwich.

The kept side ``x`` is the smaller one (the larger is summed out, which removes most of the variance). With a
factorial base ``p_0(x) ∝ exp(aᵀx)`` (``a = 0``: the zero-parameter RBM; or the data's base rate, Salakhutdinov &
Murray Sec. 4.2) the intermediate distributions are the x-marginals of the RBMs

    p_β(x, h) ∝ exp((1−β) aᵀx + β (b1ᵀx + b2ᵀh + xᵀWh)),
    f_β(x) = log Σ_h (…) = (1−β) aᵀx + β b1ᵀx + Σ_j softplus(β (b2_j + (xᵀW)_j)),

so log Z_0 = Σ softplus(a) + n_h log 2 exactly, and each transition is one block-Gibbs sweep of p_β. The forward
estimate log Z_0 + log mean_i w_i is a stochastic *lower* bound of log Z (Jensen); reverse AIS started from
(approximate) samples of the target, log Z_0 − log mean_i w_i^rev, a stochastic *upper* bound when those
samples are exact (Burda et al. 2015, Sec. 3). The defaults are the DVAE# evaluation's: 1000 linear β,
1024 particles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class AISResult:
    """``log_z``: all particles of all repeats pooled; ``log_z_std``: std of the per-repeat estimates (ddof=1;
    0 with one repeat); ``log_z_upper``: the reverse-AIS estimate (nan unless requested); ``trace``: the
    running estimate of log Z_β along the schedule (first repeat), for plots; ``repeats_upper``: the
    per-repeat reverse estimates."""

    log_z: float
    log_z_std: float
    repeats: list[float]
    log_z_upper: float = math.nan
    betas: list[float] = field(default_factory=list)
    trace: list[float] = field(default_factory=list)
    repeats_upper: list[float] = field(default_factory=list)


def _log_mean_exp(x: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(x, 0) - math.log(x.shape[0])


class _Path:
    """The annealing path on the kept side, everything in float64."""

    def __init__(self, b1: torch.Tensor, b2: torch.Tensor, w: torch.Tensor, base_logits: torch.Tensor | None):
        b1, b2, w = (t.detach().double() for t in (b1, b2, w))
        self.swapped = b1.numel() > b2.numel()
        if self.swapped:  # keep the smaller side, sum out the larger
            b1, b2, w = b2, b1, w.T
        self.b1, self.b2, self.w = b1, b2, w
        if base_logits is None:
            self.a = torch.zeros_like(b1)
        else:
            base = base_logits.detach().double().to(b1.device)
            n1 = b2.numel() if self.swapped else b1.numel()
            self.a = base[n1:] if self.swapped else base[:n1]
        self.log_z0 = float(F.softplus(self.a).sum() + b2.numel() * math.log(2.0))

    def f(self, x: torch.Tensor, h: torch.Tensor, beta: float) -> torch.Tensor:
        """f_β(x) given h = b2 + xW (computed once per step)."""
        return x @ ((1 - beta) * self.a + beta * self.b1) + F.softplus(beta * h).sum(-1)

    def transition(self, x: torch.Tensor, h: torch.Tensor, beta: float, gen: torch.Generator | None) -> torch.Tensor:
        hidden = torch.bernoulli(torch.sigmoid(beta * h), generator=gen)
        return torch.bernoulli(torch.sigmoid((1 - beta) * self.a + beta * (self.b1 + hidden @ self.w.T)), generator=gen)

    def base_sample(self, n: int, gen: torch.Generator | None) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(self.a).expand(n, -1).contiguous(), generator=gen)


def _forward(path: _Path, betas: torch.Tensor, particles: int, gen, trace: bool):
    x = path.base_sample(particles, gen)
    log_w = torch.zeros(particles, dtype=torch.float64, device=x.device)
    running = []
    bs = betas.tolist()
    for prev, beta in zip(bs[:-1], bs[1:]):
        h = path.b2 + x @ path.w
        log_w += path.f(x, h, beta) - path.f(x, h, prev)
        if trace:
            running.append(path.log_z0 + float(_log_mean_exp(log_w)))
        x = path.transition(x, h, beta, gen)  # leaves p_β invariant
    return x, log_w, running


def _reverse(path: _Path, betas: torch.Tensor, x: torch.Tensor, gen) -> torch.Tensor:
    log_w = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    bs = betas.tolist()
    for k in range(len(bs) - 1, 0, -1):
        h = path.b2 + x @ path.w
        log_w += path.f(x, h, bs[k - 1]) - path.f(x, h, bs[k])
        x = path.transition(x, h, bs[k - 1], gen)
    return log_w


def ais_log_z(
    b1: torch.Tensor,
    b2: torch.Tensor,
    w: torch.Tensor,
    *,
    temperatures: int = 1000,
    particles: int = 1024,
    repeats: int = 1,
    base_logits: torch.Tensor | None = None,
    upper: bool = False,
    burn_in: int = 100,
    seed: int | None = None,
    trace: bool = False,
) -> AISResult:
    """Estimate log Z of the RBM ``(b1, b2, w)`` by AIS over ``temperatures`` linearly spaced β in [0, 1].

    Args:
        temperatures: number of β values including 0 and 1 (DVAE#: 1000).
        particles: AIS runs per repeat (DVAE#: 1024).
        repeats: independent repeats; their spread is ``log_z_std``.
        base_logits: logits of the factorial base over all ``n1 + n2`` units (only the kept side's part is
            used), e.g. the data's base rate; None is the zero-parameter RBM.
        upper: also run reverse AIS, started from the forward particles resampled by their weights and then
            ``burn_in`` Gibbs sweeps at β = 1, for the upper end of the sandwich.
        seed: seeds a private generator (the global RNG is untouched); None draws from the global one.
    """
    if temperatures < 2 or particles < 1 or repeats < 1:
        raise ValueError("AIS needs temperatures >= 2, particles >= 1 and repeats >= 1")
    path = _Path(b1, b2, w, base_logits)
    device = path.b1.device
    gen = None
    if seed is not None:
        gen = torch.Generator(device=device).manual_seed(seed)
    betas = torch.linspace(0.0, 1.0, temperatures, dtype=torch.float64)
    estimates, uppers, all_w, all_rev, running = [], [], [], [], []
    for r in range(repeats):
        x, log_w, run = _forward(path, betas, particles, gen, trace and r == 0)
        running = running or run
        estimates.append(path.log_z0 + float(_log_mean_exp(log_w)))
        all_w.append(log_w)
        if upper:
            pick = torch.multinomial(torch.softmax(log_w, 0), particles, replacement=True, generator=gen)
            x = x[pick]
            for _ in range(burn_in):
                x = path.transition(x, path.b2 + x @ path.w, 1.0, gen)
            all_rev.append(_reverse(path, betas, x, gen))
            uppers.append(path.log_z0 - float(_log_mean_exp(all_rev[-1])))
    pooled = path.log_z0 + float(_log_mean_exp(torch.cat(all_w)))
    std = float(torch.tensor(estimates).std()) if repeats > 1 else 0.0
    up = path.log_z0 - float(_log_mean_exp(torch.cat(all_rev))) if upper else math.nan
    return AISResult(pooled, std, estimates, up, betas.tolist() if trace else [], running, uppers)
