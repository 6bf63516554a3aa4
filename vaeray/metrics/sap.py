"""Separated Attribute Predictability (Kumar et al., ICLR 2018, "Variational Inference of Disentangled Latent
Concepts from Unlabeled Observations", Sec. 3).

A score matrix S (D codes × K factors) holds how well each single code predicts each factor; SAP is the mean
over factors of the gap between the best and second-best code:

    SAP = 1/K Σ_k [ S_(1)k − S_(2)k ].

We follow disentanglement_lib's ``sap_score.py`` exactly (gin ``num_train=10000, num_test=5000,
continuous_factors=False``): for discrete factors S_ik is the test accuracy of
``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")`` fitted on the one-dimensional code i; for
continuous factors S_ik = Cov(z_i, v_k)² / (Var z_i · Var v_k) on the training points (0 if Var z_i ≤ 1e-12).
The only difference is ``random_state=seed`` on the SVM. Note that sklearn ≥ 1.5 picks LinearSVC's primal or
dual solver automatically (``dual="auto"``); both solve the same strongly convex problem, so the fitted
classifier agrees with dlib's up to solver tolerance.
"""

from __future__ import annotations

import numpy as np

from ..data.base import GroundTruthDataset
from ..registry import METRICS
from .common import Count, Represent, seeded
from .disentanglement import require_codes, sample_codes


def sap_score_matrix(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    continuous_factors: bool = False,
    random_state: int = 0,
) -> np.ndarray:
    """S ``(D, K)``: per (code, factor), test accuracy of a 1-D linear SVM, or squared correlation."""
    from sklearn.svm import LinearSVC  # lazy: `vaeray list` and validation stay light

    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
    score = np.zeros((num_codes, num_factors))
    for i in range(num_codes):
        z, z_test = codes_train[:, i : i + 1], codes_test[:, i : i + 1]  # (n, 1): the SVM sees one code
        for k in range(num_factors):
            if continuous_factors:
                cov = np.cov(z[:, 0], factors_train[:, k], ddof=1)
                score[i, k] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1]) if cov[0, 0] > 1e-12 else 0.0
            else:
                svm = LinearSVC(C=0.01, class_weight="balanced", random_state=random_state)
                svm.fit(z, factors_train[:, k])
                score[i, k] = np.mean(svm.predict(z_test) == factors_test[:, k])
    return score


def sap_from_matrix(score: np.ndarray) -> float:
    """Mean over factors of (best − second-best) score across codes."""
    top = np.sort(score, axis=0)[::-1]
    return float(np.mean(top[0] - top[1]))


@METRICS.register("sap")
@seeded
def sap(
    dataset: GroundTruthDataset,
    represent: Represent,
    *,
    seed: int = 0,
    num_train: Count = 10000,
    num_test: Count = 5000,
    continuous_factors: bool = False,
    batch_size: Count = 1024,
) -> dict[str, float]:
    """SAP score as disentanglement_lib (module docstring).

    Args:
        num_train, num_test: sampled points to fit the SVMs and to score them (dlib: 10k / 5k); training draw
            first from ``default_rng(seed)``, then the test draw (drawn also when ``continuous_factors``).
        continuous_factors: treat factor classes as continuous values (squared correlation, no SVM).

    Returns:
        ``{"sap": ...}`` in [0, 1].
    """
    rng = np.random.default_rng(seed)
    codes_train, factors_train = sample_codes(dataset, represent, num_train, rng, batch_size)
    codes_test, factors_test = sample_codes(dataset, represent, num_test, rng, batch_size)
    require_codes(codes_train, "sap")
    score = sap_score_matrix(
        codes_train,
        factors_train,
        codes_test,
        factors_test,
        continuous_factors=continuous_factors,
        random_state=seed,
    )
    return {"sap": sap_from_matrix(score)}
