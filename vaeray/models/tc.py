"""Minibatch estimators of the aggregate posterior and the KL decomposition of β-TCVAE (Chen et al. 2018).

With n uniform over the N training points and q(z, n) = q(z|n)/N, the KL term of the ELBO splits into three
parts (Chen et al. 2018, Eq. 2):

    E_n KL(q(z|n) ‖ p(z)) = I_q(z; n) + KL(q(z) ‖ Π_d q(z_d)) + Σ_d KL(q(z_d) ‖ p(z_d))
                             (index-code MI)  (total correlation)   (dimension-wise KL)

Each term needs log q(z) = log (1/N) Σ_n q(z|n) at a sample z ~ q(z|n_i), estimated from the minibatch
{n_1..n_M} as log Σ_j W_ij q(z_i|n_j) with importance weights W (Chen et al. 2018, Appendix C):

* **MWS**, minibatch weighted sampling (C.1): W_ij = 1/(N·M) for every pair. Its rows sum to 1/N, so it is a
  biased estimate whose log is too low by between log M (narrow posteriors) and log N (overlapping ones); the
  constant −log(N·M) is part of the estimator and is kept (the reference disentangling-vae code drops it).
* **MSS**, minibatch stratified sampling (C.2): split the N points into M−1 strata of N/(M−1) points and let
  n_i lie in stratum S. The batch is n_i, one more point from S∖{n_i} and one point from each other stratum.
  Writing q(z) = Σ_strata (|stratum|/N)·E_{n ∈ stratum} q(z|n), with {n_i} and S∖{n_i} as two strata, each
  batch element's weight is the size of the set it was drawn from over N:

      W_ii = 1/N,  W_i,partner = (N/(M−1) − 1)/N = (N−M+1)/(N(M−1)),  W_ij = (N/(M−1))/N = 1/(M−1) else;

  each row sums to one and, over *stratified* batches, Σ_j W_ij q(z|n_j) is exactly unbiased for q(z).
  Training draws batch indices i.i.d. *with replacement*, which is not that design: another element is n_i
  itself with probability 1/N, so E[q̂(z)] = q(z|n_i)/N + (1 − 1/N)·q(z), a bias of (q(z|n_i) − q(z))/N —
  relatively (q(z|n_i)/q(z) − 1)/N, about 1e-3 at dSprites size while posteriors overlap, growing towards a
  factor of 2 only when they are disjoint. Such batches are exchangeable, so
  which element plays the partner is a convention: we take the next one, (i+1) mod M. (The widely copied
  matrix writes 1/N and the partner weight with a stride of M, which lands on columns 0 and 1 of every row
  instead, and one row then sums to 1 + 1/(M−1) − 2/N.)

The weight multiplies the joint density q(z_i|n_j) = Π_d q(z_id|n_j), so its log is added **once per pair**,
after summing over dimensions. Each marginal q(z_d) = (1/N) Σ_n q(z_d|n) is an estimate of its own, so the
log weight is added once inside each dimension's logsumexp. Adding it per dimension before summing (as the
reference code does) counts it D times in log q(z) and offsets MI (up) and TC (down) by (D−1) times the log
weight of the pairs that dominate the logsumexp: about (D−1)·log(M−1) while posteriors overlap (many pairs
weighted 1/(M−1) contribute), approaching (D−1)·log N for the narrow posteriors of a trained model (only the
pair j = i, weighted 1/N, contributes): ≈ 122 nats at D = 10, N = 737,280.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch
from torch.distributions import Distribution, Independent

Estimator = Literal["mss", "mws"]


def per_dimension(posterior: Distribution) -> Distribution:
    """The factorised posterior with batch shape (M, D): the base of ``Independent(base, 1)`` or itself."""
    if isinstance(posterior, Independent):
        if posterior.reinterpreted_batch_ndims != 1:
            raise ValueError("expected a posterior factorised over one event dimension")
        return posterior.base_dist
    return posterior


def pairwise_log_density(posterior: Distribution, z: torch.Tensor) -> torch.Tensor:
    """log q(z_{i,d} | n_j) for every sample i, posterior j and dimension d: shape (M, M, D), indexed [i, j, d].

    Args:
        posterior: q(z|n_j) for the batch, factorised: batch shape (M, D), or ``Independent`` of that.
        z: (M, D) samples, z_i ~ q(z|n_i).
    """
    base = per_dimension(posterior)
    if z.dim() != 2 or tuple(base.batch_shape) != tuple(z.shape):
        raise ValueError(f"expected z of shape {tuple(base.batch_shape)} (M, D), got {tuple(z.shape)}")
    # z[:, None, :] is (M, 1, D); against the posterior's batch (M, D) it broadcasts to (M, M, D) = [i, j, d]
    return base.log_prob(z.unsqueeze(1))


def stratified_weights(batch_size: int, dataset_size: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """W (M, M) of minibatch stratified sampling (Chen et al. 2018, Appendix C.2; derivation in the module doc).

    Row i estimates q(z_i): W_ii = 1/N, W_{i,(i+1) mod M} = (N−M+1)/(N(M−1)), 1/(M−1) elsewhere.
    """
    m, n = int(batch_size), int(dataset_size)
    if m < 2:
        raise ValueError("minibatch stratified sampling needs a batch of at least 2")
    if n < m:
        raise ValueError(
            f"minibatch stratified sampling needs dataset_size >= batch size (got N={n} < M={m}); "
            "use estimator 'mws' or a smaller batch"
        )
    w = torch.full((m, m), 1.0 / (m - 1), dtype=torch.float64)
    rows = torch.arange(m)
    w[rows, (rows + 1) % m] = (n - m + 1) / (n * (m - 1))
    w[rows, rows] = 1.0 / n
    return w.to(dtype=dtype, device=device)


def log_weights(
    estimator: Estimator, batch_size: int, dataset_size: int, dtype=torch.float32, device=None
) -> torch.Tensor:
    """log W (M, M) of ``estimator``: ``mss`` (stratified) or ``mws`` (the constant −log(N·M)).

    Cached per (estimator, M, N, dtype, device): a training step reuses the same matrix instead of building
    it on the host and copying it to the device every step. The result is shared: do not modify it in place.
    """
    return _log_weights(estimator, int(batch_size), int(dataset_size), dtype, torch.device(device or "cpu"))


@functools.lru_cache(maxsize=16)
def _log_weights(estimator: str, batch_size: int, dataset_size: int, dtype, device: torch.device) -> torch.Tensor:
    if estimator == "mss":
        # the log is taken in float64 so log(1/N) for N ~ 10^6 keeps its digits before the cast
        return stratified_weights(batch_size, dataset_size).log().to(dtype=dtype, device=device)
    if estimator == "mws":
        return torch.full((batch_size, batch_size), -math.log(dataset_size * batch_size), dtype=dtype, device=device)
    raise ValueError(f"unknown estimator '{estimator}' (mss or mws)")


def log_aggregate(log_density: torch.Tensor, log_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Minibatch estimates of log q(z_i) and log Π_d q(z_{i,d}), each of shape (M,).

    Args:
        log_density: (M, M, D), ``[i, j, d] = log q(z_{i,d} | n_j)`` (:func:`pairwise_log_density`).
        log_w: (M, M) log importance weights.
    """
    # joint: log Σ_j W_ij Π_d q(z_id|n_j) — the weight once per pair, after the sum over dimensions
    log_qz = torch.logsumexp(log_density.sum(-1) + log_w, dim=1)
    # marginals: log Σ_j W_ij q(z_id|n_j) for each d — once per dimension, each marginal its own estimate
    log_qz_d = torch.logsumexp(log_density + log_w.unsqueeze(-1), dim=1)  # (M, D)
    return log_qz, log_qz_d.sum(-1)


def decompose(
    posterior: Distribution,
    z: torch.Tensor,
    log_pz: torch.Tensor,
    dataset_size: int,
    estimator: Estimator = "mss",
) -> dict[str, torch.Tensor]:
    """The minibatch MI / TC / dimension-wise KL of Chen et al. (2018, Eq. 2), with their sum.

    Args:
        posterior: the batch's factorised q(z|n_j), batch shape (M, D) (or ``Independent`` of it).
        z: (M, D), z_i ~ q(z|n_i).
        log_pz: (M,), log p(z_i) under the (factorised) prior.
        dataset_size: N, the size of the training set the batch is drawn from.
        estimator: ``mss`` or ``mws``.

    Returns:
        ``mi``, ``tc``, ``dwkl`` (batch means) and ``kl`` = mean(log q(z_i|n_i) − log p(z_i)), the single-sample
        KL the three terms add up to (telescoping: exactly, up to float rounding).
    """
    log_density = pairwise_log_density(posterior, z)
    m = z.shape[0]
    # log q(z_i|n_i), the diagonal of log_density, recomputed on (M, D): the diagonal's backward would
    # allocate and scatter into a zero (M, M, D) tensor every step
    log_qz_x = per_dimension(posterior).log_prob(z).sum(-1)
    log_w = log_weights(estimator, m, dataset_size, dtype=z.dtype, device=z.device)
    log_qz, log_prod_qz = log_aggregate(log_density, log_w)
    return {
        "mi": (log_qz_x - log_qz).mean(),
        "tc": (log_qz - log_prod_qz).mean(),
        "dwkl": (log_prod_qz - log_pz).mean(),
        "kl": (log_qz_x - log_pz).mean(),
    }
