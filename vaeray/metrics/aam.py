"""Axis Alignment Metric (AAM), disentangling-vae's own metric (YannDubs/disentangling-vae, ``evaluate.py``).

    AAM = 1/K Σ_k max(0, I_(1)k − Σ_{d≥2} I_(d)k) / I_(1)k,        0/0 := 0,

with I_(d)k the d-th largest mutual information between a code and factor v_k. It asks whether each factor
is carried by a single code, whatever the amount of information: unlike MIG it does not divide by H(v_k),
and it subtracts the information in *all* other codes, not only the runner-up.

disentanglement_lib has no AAM. We keep disentangling-vae's formula but not its MI estimator: their
``_estimate_latent_entropies`` reshapes (``view``) where a transpose was meant, mixing latent dimensions
(disentangling-vae issues #64, #78), and uses the posterior means as "samples". We use the same MI matrix
as MIG (dlib's 20-bin histogram estimate), so AAM and MIG of one run are computed from the same numbers.
"""

from __future__ import annotations

import numpy as np

from ..data.base import GroundTruthDataset
from ..registry import METRICS
from .common import Bins, Count, Represent, seeded
from .disentanglement import discretize, mutual_info_matrix, train_codes


def aam_from_mi(mi: np.ndarray) -> tuple[float, np.ndarray]:
    """AAM and its per-factor values from an MI matrix ``(D codes, K factors)``."""
    top = np.sort(mi, axis=0)[::-1]  # per factor, codes in decreasing MI
    first, rest = top[0], top[1:].sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_factor = np.where(first > 0, np.maximum(first - rest, 0.0) / first, 0.0)
    return float(per_factor.mean()), per_factor


@METRICS.register("aam")
@seeded
def aam(
    dataset: GroundTruthDataset,
    represent: Represent,
    *,
    seed: int = 0,
    num_train: Count | None = 10000,
    num_bins: Bins = 20,
    batch_size: Count = 1024,
) -> dict[str, float]:
    """Axis Alignment Metric from the histogram MI matrix (module docstring); sampling as :func:`~.mig.mig`.

    Returns:
        ``{"aam": ...}`` in [0, 1].
    """
    codes, factors = train_codes(dataset, represent, num_train, np.random.default_rng(seed), batch_size)
    score, _ = aam_from_mi(mutual_info_matrix(discretize(codes, num_bins), factors))
    return {"aam": score}
