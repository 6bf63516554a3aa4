"""Importance-sampled log-likelihood: the IWAE bound (Burda, Grosse & Salakhutdinov, ICLR 2016, Eq. 8).

    log p(x) ≥ L_K(x) = E_{z_1..K ~ q(z|x)} [ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x) ],

with L_1 the ELBO, L_K non-decreasing in K and L_K → log p(x) as K → ∞ (Burda et al., Thm. 1). With
K = 5000 this is the standard "test NLL" of the VAE literature (Burda et al. Sec. 5; Rezende & Mohamed 2015).
If q(z|x) is the exact posterior every weight equals p(x), so the estimate is exact for every K.

Conventions of this module:

* ``encode(x)`` returns a ``torch.distributions.Distribution`` with batch shape ``(B,)`` and the latent as
  its event; ``prior`` is a Distribution with the latent as event (or a no-argument callable returning one).
* ``decode(z)`` receives latents **flattened to** ``(k*B, *event)`` — sample-major, so row ``s*B + b`` is
  sample s of example b — because decoders are ordinary networks taking a 2-D batch; it returns a
  Distribution whose ``log_prob`` of ``x`` repeated the same way gives one value per row.
* Results are per example, in nats; the bound is differentiable through ``rsample`` (IWAE training) unless
  called under ``torch.no_grad()`` as :func:`log_likelihood` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch.distributions import Distribution

from ..data.base import Dataset
from ..registry import METRICS
from .common import Count, LogLikelihood, seeded

Encode = Callable[[torch.Tensor], Distribution]
Decode = Callable[[torch.Tensor], Distribution]
Prior = Distribution | Callable[[], Distribution]


def _checked(log_prob: torch.Tensor, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if tuple(log_prob.shape) != shape:
        raise ValueError(
            f"{what}.log_prob gave shape {tuple(log_prob.shape)}, expected {shape}: one value per example "
            "(wrap per-dimension distributions in torch.distributions.Independent)"
        )
    return log_prob


def _log_weights(x: torch.Tensor, q: Distribution, decode: Decode, prior: Distribution, k: int) -> torch.Tensor:
    """``(k, B)`` log importance weights for a posterior ``q`` already computed from ``x``."""
    b = x.shape[0]
    z = q.rsample((k,)) if q.has_rsample else q.sample((k,))  # (k, B, *event)
    log_q = _checked(q.log_prob(z), (k, b), "q(z|x)")
    log_pz = _checked(prior.log_prob(z), (k, b), "prior")
    x_rep = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])  # sample-major, as z below
    log_px = _checked(decode(z.reshape(k * b, *z.shape[2:])).log_prob(x_rep), (k * b,), "p(x|z)")
    return log_px.reshape(k, b) + log_pz - log_q


def _prior(prior: Prior) -> Distribution:
    return prior if isinstance(prior, Distribution) else prior()


def log_importance_weights(x: torch.Tensor, encode: Encode, decode: Decode, prior: Prior, k: int) -> torch.Tensor:
    """``log p(x|z_s) + log p(z_s) − log q(z_s|x)`` for ``z_s ~ q(z|x)``, shape ``(k, B)`` (nats)."""
    return _log_weights(x, encode(x), decode, _prior(prior), k)


def iwae_bound(
    x: torch.Tensor, encode: Encode, decode: Decode, prior: Prior, k: int, chunk: int = 100
) -> torch.Tensor:
    """The K-sample bound ``logsumexp_s log w_s − log K`` per example ``(B,)``, ``chunk`` samples at a time.

    Memory is that of ``chunk`` samples (``chunk·B`` decoder rows), whatever K: each chunk's log-sum-exp is
    kept and the chunks are combined with one more log-sum-exp, which is exact.
    """
    if k < 1 or chunk < 1:
        raise ValueError(f"k and chunk must be positive, got k={k}, chunk={chunk}")
    q, p = encode(x), _prior(prior)
    partial = [
        torch.logsumexp(_log_weights(x, q, decode, p, min(chunk, k - start)), dim=0) for start in range(0, k, chunk)
    ]
    return torch.logsumexp(torch.stack(partial), dim=0) - math.log(k)


def log_likelihood(
    x: torch.Tensor, encode: Encode, decode: Decode, prior: Prior, k: int = 5000, chunk: int = 500
) -> torch.Tensor:
    """Estimate of log p(x) per example ``(B,)`` in nats: :func:`iwae_bound` with large K, without gradients."""
    with torch.no_grad():
        return iwae_bound(x, encode, decode, prior, k, chunk)


@METRICS.register("nll")
@seeded
def nll(
    dataset: Dataset,
    log_likelihood: LogLikelihood,
    *,
    seed: int = 0,
    k: Count = 1000,
    num_examples: Count | None = 1000,
    batch_size: Count = 100,
    elbo: bool = False,
) -> dict[str, float]:
    """Mean negative log-likelihood from the model's importance-sampled ``log_likelihood(x, k)``.

    Args:
        k: importance samples per example (the literature's test NLL uses 5000).
        num_examples: examples drawn without replacement with ``default_rng(seed)`` (sorted, so the order is
            the dataset's); None uses every example. A random subset, because datasets laid out on a
            factor grid (dSprites) would make "the first 1000" a single shape at a single scale.
        batch_size: examples per ``log_likelihood`` call (its memory is about ``batch_size × chunk`` decodes).
        elbo: also report ``elbo`` and ``elbo_se``, the ELBO (log-likelihood sign, nats) on the same examples:
            ``log_likelihood(x, 1)`` is one importance weight log p(x, z)/q(z|x), z ~ q(z|x), an unbiased
            single-sample estimate of each example's ELBO, so its mean over examples estimates the mean ELBO.

    Returns:
        ``nll`` (nats per example) and ``nll_se`` (its standard error over examples, ddof=1). For non-binary
        data also ``bits_per_dim = nll / (D ln 2)`` and ``bits_per_dim_se``, D = number of observed values.
        Observations live in [0, 1], so this is the density's bits/dim in [0, 1] units; the 8-bit-image
        literature measures densities on [0, 256)^D, which adds log2(256) = 8 bits per dimension (valid for
        dequantised models). For binary data (``dataset.binary``) the NLL in nats is the reported number.
    """
    n = len(dataset)
    if num_examples is None or num_examples >= n:
        index = torch.arange(n)
    else:
        index = torch.as_tensor(np.sort(np.random.default_rng(seed).choice(n, size=num_examples, replace=False)))
    values, bounds = [], []
    with torch.no_grad():
        for start in range(0, len(index), batch_size):
            x = dataset.batch(index[start : start + batch_size]).x
            values.append(log_likelihood(x, k).detach().to("cpu", torch.float64).reshape(-1))
            if elbo:
                bounds.append(log_likelihood(x, 1).detach().to("cpu", torch.float64).reshape(-1))
    negative = -torch.cat(values).numpy()
    if not np.all(np.isfinite(negative)):
        raise ValueError("log_likelihood returned non-finite values")
    se = float(negative.std(ddof=1) / np.sqrt(len(negative))) if len(negative) > 1 else float("nan")
    out = {"nll": float(negative.mean()), "nll_se": se}
    if elbo:
        b = torch.cat(bounds).numpy()
        out.update(elbo=float(b.mean()), elbo_se=float(b.std(ddof=1) / np.sqrt(len(b))) if len(b) > 1 else float("nan"))
    if not getattr(dataset, "binary", False):
        scale = float(np.prod(dataset.observation_shape)) * math.log(2.0)
        out.update(bits_per_dim=out["nll"] / scale, bits_per_dim_se=se / scale)
    return out
