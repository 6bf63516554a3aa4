"""log I_v(κ) and the ratio A_p(κ) = I_{p/2}(κ) / I_{p/2-1}(κ) in torch, on the tensor's device.

The von Mises–Fisher normaliser (Mardia & Jupp 2000, Eq. 9.3.4) on S^{p-1} ⊂ R^p is

    C_p(κ) = κ^{p/2-1} / ((2π)^{p/2} I_{p/2-1}(κ)),

and its mean resultant length is A_p(κ) = I_{p/2}(κ) / I_{p/2-1}(κ). The reference S-VAE code calls scipy's
``ive`` on the CPU, which underflows to 0 in float32 already at p = 64, κ = 0.1 (research notes §2.4). Here
log I_v(κ) is computed in float64 (whatever the input dtype, then cast back) from two expansions:

* the ascending series (DLMF 10.25.2) summed in log space,
  log I_v(κ) = v log(κ/2) + logsumexp_k [2k log(κ/2) − log k! − log Γ(v+k+1)],
  with :data:`SERIES_TERMS` terms, used where r = sqrt(v² + κ²) ≤ :data:`DEBYE_MIN_R` (so κ ≤ 40 and the
  terms have decayed below 1e-40 of the largest long before the last);
* the uniform asymptotic (Debye) expansion (DLMF 10.41.3), written in r = sqrt(v² + κ²) and t = v/r so
  that it stays finite at v = 0, where it becomes Hankel's large-argument expansion:
  log I_v(κ) = r + v log(κ/(v+r)) − ½ log(2πr) + log(1 + Σ_{k=1..5} u_k(t)/v^k);
  with u_k(t)/v^k = Σ_j c_kj t^j / v^k = Σ_j c_kj v^{j−k} / r^j the error is O(r⁻⁶) ≈ 1e-10 at r = 40.

Gradients are exact closed forms rather than autograd through the expansions:
d log C_p/dκ = −A_p(κ) and dA_p/dκ = 1 − A_p² − (p−1) A_p / κ (Mardia & Jupp §9.3; research notes §2.3).
"""

from __future__ import annotations

import math

import torch

SERIES_TERMS = 120
DEBYE_MIN_R = 40.0
KAPPA_MIN = 1e-30  # κ = 0 exactly would give 0·log 0; the uniform limit is reached long before

# Debye polynomials u_k(t) (DLMF 10.41.10; Abramowitz & Stegun 9.3.9-10) as (power of t, coefficient) over a
# common denominator.
_DEBYE = (
    ((1, 3.0), (3, -5.0), 24.0),
    ((2, 81.0), (4, -462.0), (6, 385.0), 1152.0),
    ((3, 30375.0), (5, -369603.0), (7, 765765.0), (9, -425425.0), 414720.0),
    ((4, 4465125.0), (6, -94121676.0), (8, 349922430.0), (10, -446185740.0), (12, 185910725.0), 39813120.0),
    (
        (5, 1519035525.0),
        (7, -49286948607.0),
        (9, 284499769554.0),
        (11, -614135872350.0),
        (13, 566098157625.0),
        (15, -188699385875.0),
        6688604160.0,
    ),
)


def _log_iv_series(v: float, kappa: torch.Tensor) -> torch.Tensor:
    k = torch.arange(SERIES_TERMS, dtype=kappa.dtype, device=kappa.device)
    const = torch.lgamma(k + 1) + torch.lgamma(v + k + 1)  # independent of κ: once per call, not per element
    log_half = torch.log(kappa / 2).unsqueeze(-1)
    terms = 2 * k * log_half - const
    return v * log_half.squeeze(-1) + torch.logsumexp(terms, dim=-1)


def _log_iv_debye(v: float, kappa: torch.Tensor) -> torch.Tensor:
    r = torch.sqrt(v * v + kappa * kappa)
    total = torch.ones_like(r)
    inv_r = 1.0 / r
    for k, poly in enumerate(_DEBYE, start=1):
        *pairs, denom = poly
        # u_k(t)/v^k = Σ_j c_j t^j / v^k = Σ_j c_j v^(j−k) / r^j  (j ≥ k, so finite at v = 0)
        term = torch.zeros_like(r)
        for power, coef in pairs:
            if v == 0 and power > k:
                continue
            term = term + coef * (v ** (power - k)) * inv_r**power
        total = total + term / denom
    return r + v * torch.log(kappa / (v + r)) - 0.5 * torch.log(2 * math.pi * r) + torch.log(total)


def log_iv(v: float, kappa: torch.Tensor) -> torch.Tensor:
    """log I_v(κ) for a scalar order v ≥ 0 and κ > 0, computed in float64 (no gradient; see the Functions)."""
    k64 = kappa.detach().to(torch.float64).clamp_min(KAPPA_MIN)
    r = torch.sqrt(v * v + k64 * k64)
    use_debye = r > DEBYE_MIN_R
    # each branch evaluated where it is accurate and on a safe dummy elsewhere, so neither produces inf/NaN
    series = _log_iv_series(v, torch.where(use_debye, torch.ones_like(k64), k64))
    debye = _log_iv_debye(v, torch.where(use_debye, k64, torch.full_like(k64, 2 * DEBYE_MIN_R)))
    return torch.where(use_debye, debye, series)


def _ratio64(p: int, k64: torch.Tensor) -> torch.Tensor:
    v = p / 2 - 1
    return torch.exp(log_iv(v + 1, k64) - log_iv(v, k64))


def _ratio_derivative64(p: int, k64: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return 1 - a * a - (p - 1) * a / k64


class _LogNormalizer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kappa64: torch.Tensor, p: int) -> torch.Tensor:  # type: ignore[override]
        k = kappa64.clamp_min(KAPPA_MIN)
        v = p / 2 - 1
        out = v * torch.log(k) - (p / 2) * math.log(2 * math.pi) - log_iv(v, k)
        ctx.save_for_backward(k)
        ctx.p = p
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (k,) = ctx.saved_tensors
        return -grad * _ratio64(ctx.p, k), None


class _Ratio(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kappa64: torch.Tensor, p: int) -> torch.Tensor:  # type: ignore[override]
        k = kappa64.clamp_min(KAPPA_MIN)
        a = _ratio64(p, k)
        ctx.save_for_backward(k, a)
        ctx.p = p
        return a

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        k, a = ctx.saved_tensors
        return grad * _ratio_derivative64(ctx.p, k, a), None


def log_vmf_normalizer(p: int, kappa: torch.Tensor) -> torch.Tensor:
    """log C_p(κ) in float64 (differentiable in κ: d/dκ = −A_p(κ)); cast the result yourself."""
    return _LogNormalizer.apply(kappa.to(torch.float64), p)


def bessel_ratio(p: int, kappa: torch.Tensor) -> torch.Tensor:
    """A_p(κ) = I_{p/2}(κ)/I_{p/2−1}(κ) = E[μᵀz] under vMF(μ, κ) on S^{p−1}, in float64, differentiable."""
    return _Ratio.apply(kappa.to(torch.float64), p)


def log_sphere_area(p: int) -> float:
    """log |S^{p−1}| = log 2 + (p/2) log π − log Γ(p/2), the surface area of the unit sphere in R^p."""
    return math.log(2.0) + (p / 2) * math.log(math.pi) - math.lgamma(p / 2)
