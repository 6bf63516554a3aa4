"""FactorVAE disentanglement score (Kim & Mnih, ICML 2018, "Disentangling by Factorising", Sec. 4).

Each vote fixes one factor k, draws ``batch_size`` observations that share its value and differ elsewhere,
divides each code's variance over that batch by its global variance, and votes ``(k, argmin_j)``. A
majority-vote classifier maps each code to the factor that voted for it most; the score is its accuracy.

We follow disentanglement_lib's ``factor_vae.py`` with the study's gin values (``batch_size=64,
num_train=10000, num_eval=5000, num_variance_estimate=10000, prune_dims.threshold=0.05``): global variances
with ``ddof=1`` from their own sample, codes with sqrt(variance) below the threshold pruned, local variances
with ``ddof=1``, fixed factor uniform, training votes fit the classifier, fresh evaluation votes score it.

Deliberate differences from dlib:

* dlib takes ``argmin`` over the *pruned* list of codes and uses that position as an index into *all* codes,
  so whenever a code before the winner is pruned the vote is booked on the wrong code. We map the position
  back to the code's own index (``active[argmin]``). The accuracies do not change (the position -> code map
  is injective and the same for training and evaluation votes, and majority-vote accuracy is invariant to
  relabelling codes), but the vote matrix and the learned code -> factor assignment do: ours say which code
  captures which factor, dlib's do not once a code is pruned.
* dlib reports ``num_active_dims = len(mask)`` (always D); ``factor_vae_active_dims`` is the number of
  unpruned codes.
* A code with zero global variance is pruned even at threshold 0 (dlib would divide 0 by 0).
* All votes' factor classes are drawn first, then encoded ``encode_batch_size`` observations at a time
  (dlib encodes one 64-point batch per vote); the draws do not depend on the encoding batch size.
"""

from __future__ import annotations

import numpy as np

from ..data.base import GroundTruthDataset
from ..registry import METRICS
from .common import AtLeastTwo, Count, NonNegative, Represent, seeded
from .disentanglement import encode, sample_codes, varying_factors


def draw_votes(
    dataset: GroundTruthDataset, num_votes: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """For each vote the fixed factor's position among the varying factors ``(num_votes,)`` and the factor
    classes of its batch ``(num_votes, batch_size, num_factors)``, the fixed factor shared within a batch."""
    varying = varying_factors(dataset)
    fixed = rng.integers(len(varying), size=num_votes)
    factors = dataset.sample_factors(num_votes * batch_size, rng).reshape(num_votes, batch_size, -1)
    columns = varying[fixed]
    votes, members = np.arange(num_votes)[:, None], np.arange(batch_size)[None, :]
    factors[votes, members, columns[:, None]] = factors[votes[:, 0], 0, columns][:, None]  # (num_votes, batch)
    return fixed, factors


def count_votes(
    fixed: np.ndarray, codes: np.ndarray, global_variance: np.ndarray, active: np.ndarray, num_factors: int
) -> np.ndarray:
    """Vote matrix ``(K, D)`` from batches of codes ``(num_votes, batch_size, D)``."""
    local = codes.var(axis=1, ddof=1, dtype=np.float64)  # (num_votes, D)
    winner = active[np.argmin(local[:, active] / global_variance[active], axis=1)]  # a full code index
    votes = np.zeros((num_factors, codes.shape[2]), dtype=np.int64)
    np.add.at(votes, (fixed, winner), 1)
    return votes


def majority_accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    """Fraction of votes whose code maps to their factor under ``classifier`` (code -> factor)."""
    total = votes.sum()
    return float(votes[classifier, np.arange(votes.shape[1])].sum() / total) if total else 0.0


@METRICS.register("factor_vae_score")
@seeded
def factor_vae_score(
    dataset: GroundTruthDataset,
    represent: Represent,
    *,
    seed: int = 0,
    batch_size: AtLeastTwo = 64,
    num_train: Count = 10000,
    num_eval: Count = 5000,
    num_variance_estimate: AtLeastTwo = 10000,
    prune_threshold: NonNegative = 0.05,
    encode_batch_size: Count = 1024,
) -> dict[str, float]:
    """FactorVAE majority-vote score (module docstring), dlib's definition with the pruned-index fix.

    Args:
        batch_size: observations per vote sharing the fixed factor (dlib: 64); not the encoding batch.
        num_train, num_eval: votes to fit and to evaluate the classifier (dlib: 10,000 / 5,000).
        num_variance_estimate: points for the global variances (dlib: 10,000).
        prune_threshold: codes with sqrt(global variance) below it are ignored (dlib study: 0.05).
        encode_batch_size: observations per ``represent`` call.

    Returns:
        ``factor_vae_score_train``, ``factor_vae_score_eval`` (accuracies in [0, 1]; 0 when every code is
        pruned) and ``factor_vae_active_dims`` (number of unpruned codes).
    """
    if batch_size < 2:
        raise ValueError("factor_vae_score needs batch_size >= 2 to compute a variance")
    rng = np.random.default_rng(seed)
    codes, _ = sample_codes(dataset, represent, num_variance_estimate, rng, encode_batch_size)
    global_variance = codes.var(axis=0, ddof=1, dtype=np.float64)
    active = np.flatnonzero((np.sqrt(global_variance) >= prune_threshold) & (global_variance > 0))
    if active.size == 0:
        return {"factor_vae_score_train": 0.0, "factor_vae_score_eval": 0.0, "factor_vae_active_dims": 0.0}

    num_factors = len(varying_factors(dataset))

    def votes(num_votes: int) -> np.ndarray:
        fixed, factors = draw_votes(dataset, num_votes, batch_size, rng)
        flat = factors.reshape(num_votes * batch_size, -1)
        batch_codes = encode(dataset, represent, flat, encode_batch_size).reshape(num_votes, batch_size, -1)
        return count_votes(fixed, batch_codes, global_variance, active, num_factors)

    train_votes = votes(num_train)
    classifier = np.argmax(train_votes, axis=0)  # code -> the factor that voted for it most
    eval_votes = votes(num_eval)
    return {
        "factor_vae_score_train": majority_accuracy(train_votes, classifier),
        "factor_vae_score_eval": majority_accuracy(eval_votes, classifier),
        "factor_vae_active_dims": float(active.size),
    }
