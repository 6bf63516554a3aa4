"""Disentanglement, Completeness and Informativeness (Eastwood & Williams, ICLR 2018, "A Framework for the
Quantitative Evaluation of Disentangled Representations", Sec. 2).

An importance matrix R (D codes × K factors) comes from one predictor per factor; then

* disentanglement  D = Σ_i ρ_i (1 − H_K(P_i·)),   P_ij = R_ij / Σ_k R_ik,   ρ_i = Σ_j R_ij / Σ R;
* completeness     C = Σ_j ρ_j (1 − H_D(P̃_·j)),   P̃_ij = R_ij / Σ_i R_ij,   ρ_j = Σ_i R_ij / Σ R;
* informativeness  = the predictors' accuracy,

with H_K the entropy in base K (number of factors) and H_D in base D (number of codes).

We follow disentanglement_lib's ``dci.py`` exactly (gin ``num_train=10000, num_test=5000``): one
``sklearn.ensemble.GradientBoostingClassifier`` per factor with sklearn's defaults (100 trees, depth 3,
learning rate 0.1) on the raw codes, R = |feature_importances_|, entropies via ``scipy.stats.entropy`` of
R + 1e-11, an all-zero R replaced by ones for the weights, and "informativeness" reported as mean
*accuracy* (dlib's keys say ``informativeness_*``, the paper uses prediction error). Differences: the tree
hyperparameters are exposed (defaults = dlib's) so tests can use few trees, and ``random_state=seed`` is
passed to the classifier (dlib leaves it unseeded, so its ties between equally good splits vary by run).

Cost: GBT fits K × (classes) trees per boosting stage; 10,000 points on dSprites take minutes on 2 cores.
"""

from __future__ import annotations

import numpy as np

from ..data.base import GroundTruthDataset
from ..registry import METRICS
from .common import Count, Positive, Represent, seeded
from .disentanglement import sample_codes


def importance_matrix_gbt(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    n_estimators: int = 100,
    max_depth: int = 3,
    learning_rate: float = 0.1,
    random_state: int = 0,
) -> tuple[np.ndarray, float, float]:
    """R ``(D, K)`` and the mean train/test accuracy of one gradient-boosted classifier per factor."""
    from sklearn.ensemble import GradientBoostingClassifier  # lazy: `vaeray list` and validation stay light

    num_factors = factors_train.shape[1]
    importance = np.zeros((codes_train.shape[1], num_factors))
    train_acc, test_acc = [], []
    for k in range(num_factors):
        model = GradientBoostingClassifier(
            n_estimators=n_estimators, max_depth=max_depth, learning_rate=learning_rate, random_state=random_state
        )
        model.fit(codes_train, factors_train[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        train_acc.append(np.mean(model.predict(codes_train) == factors_train[:, k]))
        test_acc.append(np.mean(model.predict(codes_test) == factors_test[:, k]))
    return importance, float(np.mean(train_acc)), float(np.mean(test_acc))


def _weighted_one_minus_entropy(importance: np.ndarray, axis: int) -> float:
    """Σ ρ (1 − H): ``axis=0`` scores each row (code) over factors, ``axis=1`` each column (factor) over codes.

    Entropies are in base = the number of entries in a row (K) or column (D), so 1 − H lies in [0, 1].
    """
    import scipy.stats  # lazy: `vaeray list` and validation stay light

    base = importance.shape[1 - axis]
    # scipy normalises each slice; +1e-11 as dlib so an all-zero slice has uniform (maximal) entropy.
    entropy = scipy.stats.entropy(importance + 1e-11, base=base, axis=1 - axis)
    weights_source = importance if importance.sum() > 0 else np.ones_like(importance)
    weights = weights_source.sum(axis=1 - axis) / weights_source.sum()
    return float(np.sum((1.0 - entropy) * weights))


def dci_disentanglement(importance: np.ndarray) -> float:
    """D: per code, one minus the base-K entropy of its importance over factors, weighted by code importance."""
    return _weighted_one_minus_entropy(importance, axis=0)


def dci_completeness(importance: np.ndarray) -> float:
    """C: per factor, one minus the base-D entropy of its importance over codes, weighted by factor importance."""
    return _weighted_one_minus_entropy(importance, axis=1)


@METRICS.register("dci")
@seeded
def dci(
    dataset: GroundTruthDataset,
    represent: Represent,
    *,
    seed: int = 0,
    num_train: Count = 10000,
    num_test: Count = 5000,
    batch_size: Count = 1024,
    n_estimators: Count = 100,
    max_depth: Count = 3,
    learning_rate: Positive = 0.1,
) -> dict[str, float]:
    """DCI with gradient-boosted trees, as disentanglement_lib (module docstring).

    Args:
        num_train, num_test: points sampled with replacement for fitting and for test accuracy (dlib: 10k/5k);
            the training draw comes first from ``default_rng(seed)``, then the test draw.
        n_estimators, max_depth, learning_rate: the classifier's (dlib: sklearn defaults 100, 3, 0.1).

    Returns:
        ``dci_disentanglement``, ``dci_completeness`` in [0, 1]; ``dci_informativeness_train`` and
        ``dci_informativeness_test``: mean classification accuracy over factors.
    """
    rng = np.random.default_rng(seed)
    codes_train, factors_train = sample_codes(dataset, represent, num_train, rng, batch_size)
    codes_test, factors_test = sample_codes(dataset, represent, num_test, rng, batch_size)
    importance, train_acc, test_acc = importance_matrix_gbt(
        codes_train,
        factors_train,
        codes_test,
        factors_test,
        n_estimators=n_estimators,
        max_depth=max_depth,
        learning_rate=learning_rate,
        random_state=seed,
    )
    return {
        "dci_disentanglement": dci_disentanglement(importance),
        "dci_completeness": dci_completeness(importance),
        "dci_informativeness_train": train_acc,
        "dci_informativeness_test": test_acc,
    }
