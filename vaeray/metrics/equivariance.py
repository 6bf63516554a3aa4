"""Equivariance error and capsule correlation of the Topographic VAE (Keller & Welling 2021).

**Equivariance error** (the paper's E_eq, in its units: a sum per sequence). With t̂ each capsule of t divided
by its norm over the capsule dimension, for a sequence of S frames,

    E_eq = ½ Σ_{τ=1}^{S−1} Σ_l Σ_{c,d} | t̂[(l−τ) mod S, c, (d−τ) mod D] − t̂[l, c, d] |,

i.e. every frame compared with every other frame rolled by their distance, both directions, halved. For
D = S this is the sum over unordered pairs of ‖Roll_δ(t̂_l) − t̂_{l+δ}‖₁. A capsule that rolls by one
position per frame with the input gives 0.

Baselines, always reported beside it, because the raw number also rewards invariance (a constant capsule
gives 0) and offsets (positive activations lower it): the same figure for the *untrained* model (from
``represent(x, untrained=True)`` where the model offers it, NaN otherwise) and the expectation for i.i.d.
uniformly random unit capsules. For the latter every |·| compares coordinates a, b of two independent uniform
unit vectors in R^D; a² ~ Beta(½, (D−1)/2) with a symmetric, so with F its distribution function
E|a − b| = 2 ∫ F(1 − F) da, and

    E[E_eq] = ½ (S − 1) S · n_caps · D · E|a − b|    (13,270.7 for 18×18×18; 6,936.5 for 15×15×15).

**CapCorr** (dSprites): for each held-out sequence the moving factor k starts at class c₀; at a frame l₀
where it is back at class 0 an equivariant capsule is t_{l₀} = Roll_{l₀}(t₀), so the circular
cross-correlation of t₀ and t_{l₀} (FFT, per capsule, argmax) gives a roll ρ per capsule; their mode ρ̂ gives
the estimate ĉ₀ = (−ρ̂) mod size_k. CapCorr_k is the Pearson correlation of ĉ₀ with c₀ over the sequences
moving factor k. We use the first frame with class 0; ``optimistic=True`` reproduces the reference's choice,
among all such frames, of the one whose estimate is closest to the truth (biased upwards; off by default).
The reference computes it on training batches; the training loop hands metrics the held-out split.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..data.base import Dataset
from ..errors import ConfigError
from ..registry import METRICS
from .common import Count, Represent, seeded, to_numpy


def equivariance_error(t: torch.Tensor) -> torch.Tensor:
    """E_eq per sequence for capsules ``(B, S, n_caps, D)``: shape (B,)."""
    if t.dim() != 4:
        raise ValueError(f"expected capsules (B, S, n_caps, cap_dim), got shape {tuple(t.shape)}")
    unit = t / t.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    s = t.shape[1]
    total = torch.zeros(t.shape[0], dtype=t.dtype, device=t.device)
    for tau in range(1, s):  # S − 1 whole-batch rolls, not a per-frame loop
        total = total + (torch.roll(unit, shifts=(tau, tau), dims=(1, 3)) - unit).abs().sum(dim=(1, 2, 3))
    return total / 2


@functools.lru_cache(maxsize=None)
def mean_abs_coordinate_difference(dim: int) -> float:
    """E|a − b| for coordinates a, b of two independent uniform unit vectors in R^dim (quadrature)."""
    from scipy import integrate, special  # here, not at import: `vaeray list` and validation stay light

    if dim == 1:
        return 1.0  # a, b = ±1 independently
    cdf = lambda a: 0.5 + 0.5 * np.sign(a) * special.betainc(0.5, (dim - 1) / 2, a * a)  # noqa: E731
    return 2 * integrate.quad(lambda a: cdf(a) * (1 - cdf(a)), -1, 1, limit=200)[0]


def random_capsule_error(s: int, n_caps: int, dim: int) -> float:
    """The expected E_eq of i.i.d. uniform random unit capsules (module docstring)."""
    return 0.5 * (s - 1) * s * n_caps * dim * mean_abs_coordinate_difference(dim)


def _sequences(dataset: Dataset, num: int | None) -> torch.Tensor:
    n = len(dataset) if num is None else min(num, len(dataset))
    return torch.arange(n)


def _untrained(represent: Represent, x: torch.Tensor) -> torch.Tensor | None:
    try:
        return represent(x, untrained=True)  # type: ignore[call-arg]
    except TypeError:
        return None


@METRICS.register("equivariance")
@seeded
def equivariance(
    dataset: Dataset,
    represent: Represent,
    *,
    seed: int = 0,
    num_sequences: Count | None = 1000,
    batch_size: Count = 50,
) -> dict[str, float]:
    """Mean E_eq per sequence on the first ``num_sequences`` sequences, with its two baselines.

    Returns ``equivariance_error``, ``equivariance_error_untrained`` (NaN where ``represent`` has no untrained
    variant), ``equivariance_error_random`` (the closed-form i.i.d. expectation for this layout) and
    ``equivariance_error_ratio`` = error / random.
    """
    errors, untrained, shape = [], [], None
    index = _sequences(dataset, num_sequences)
    with torch.no_grad():
        for start in range(0, len(index), batch_size):
            x = dataset.batch(index[start : start + batch_size]).x
            t = represent(x)
            shape = tuple(t.shape[1:])
            errors.append(to_numpy(equivariance_error(t.double())))
            u = _untrained(represent, x)
            if u is not None:
                untrained.append(to_numpy(equivariance_error(u.double())))
    if shape is None:
        raise ConfigError("the dataset has no sequences to evaluate", "eval.metrics.equivariance")
    error = float(np.concatenate(errors).mean())
    random = random_capsule_error(*shape)
    return {
        "equivariance_error": error,
        "equivariance_error_untrained": float(np.concatenate(untrained).mean()) if untrained else float("nan"),
        "equivariance_error_random": random,
        "equivariance_error_ratio": error / random,
    }


equivariance.needs_ground_truth = False  # type: ignore[attr-defined]  (sequences, not a factor grid)


def circular_offsets(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmax_r Σ_d a[..., d] · b[..., (d + r) mod D]: the roll taking ``a`` to ``b``, per capsule (FFT)."""
    corr = np.fft.irfft(np.conj(np.fft.rfft(a, axis=-1)) * np.fft.rfft(b, axis=-1), n=a.shape[-1], axis=-1)
    return corr.argmax(-1)


def estimated_starts(t: np.ndarray, factors: np.ndarray, moving: np.ndarray, sizes, optimistic: bool) -> np.ndarray:
    """ĉ₀ for each sequence (module docstring); t ``(B, S, n_caps, D)``, factors ``(B, S, K)``, moving ``(B,)``."""
    from scipy import stats  # here, not at import: `vaeray list` and validation stay light

    out = np.full(len(t), -1, dtype=np.int64)
    for b in range(len(t)):  # per sequence: candidate frames differ in number
        k = moving[b]
        frames = np.flatnonzero(factors[b, :, k] == 0)
        if frames.size == 0:
            continue
        truth = factors[b, 0, k]
        candidates = frames if optimistic else frames[:1]
        rolls = circular_offsets(t[b, 0][None], t[b, candidates])  # (n_candidates, n_caps)
        modes = stats.mode(rolls, axis=1, keepdims=False).mode  # scipy ≥ 1.11 returns arrays here
        estimates = np.mod(-np.atleast_1d(modes), sizes[k])
        out[b] = estimates[np.argmin(np.abs(estimates - truth))]
    return out


@METRICS.register("capcorr")
@seeded
def capcorr(
    dataset: Dataset,
    represent: Represent,
    *,
    seed: int = 0,
    num_sequences: Count | None = 1000,
    batch_size: Count = 50,
    optimistic: bool = False,
) -> dict[str, float]:
    """Capsule correlation per moving factor (``capcorr_<factor>``) and their mean (``capcorr``).

    Needs a sequence dataset with per-frame ``factors`` and ``extra["transform"]`` (``dsprites_sequences``).
    """
    names = getattr(dataset, "transform_names", None)
    if names is None or not hasattr(dataset, "factor_names"):
        raise ConfigError("capcorr needs a sequence dataset with factor labels (dsprites_sequences)",
                          "eval.metrics.capcorr")
    factor_index = [dataset.factor_names.index(n) for n in names]
    codes, factors, moving = [], [], []
    index = _sequences(dataset, num_sequences)
    with torch.no_grad():
        for start in range(0, len(index), batch_size):
            batch = dataset.batch(index[start : start + batch_size])
            codes.append(to_numpy(represent(batch.x)).astype(np.float64))
            factors.append(to_numpy(batch.factors))
            moving.append(np.asarray(factor_index)[to_numpy(batch.extra["transform"])])
    t, f, m = np.concatenate(codes), np.concatenate(factors), np.concatenate(moving)
    est = estimated_starts(t, f, m, dataset.factor_sizes, optimistic)
    out = {}
    for name, k in zip(names, factor_index):
        sel = (m == k) & (est >= 0)
        truth = f[sel, 0, k]
        ok = sel.sum() > 1 and np.ptp(est[sel]) > 0 and np.ptp(truth) > 0
        out[f"capcorr_{name}"] = float(np.corrcoef(est[sel], truth)[0, 1]) if ok else float("nan")
    out["capcorr"] = float(np.nanmean(list(out.values()))) if any(np.isfinite(list(out.values()))) else float("nan")
    return out


capcorr.needs_ground_truth = False  # type: ignore[attr-defined]
