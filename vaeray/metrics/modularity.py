"""Modularity and explicitness (Ridgeway & Mozer, NeurIPS 2018, "Learning Deep Disentangled Embeddings With
the F-Statistic Loss", Sec. 3).

* Modularity: a code is modular if it carries information about at most one factor. With m_ik the mutual
  information between code i and factor k and θ_i = max_k m_ik,
  δ_i = Σ_k (m_ik² − θ_i² [k = argmax]) / (θ_i² (K − 1)),  modularity_i = 1 − δ_i  (0 when θ_i = 0),
  averaged over codes.
* Explicitness: per factor, a logistic regression on all (standardised) codes; the one-vs-rest ROC-AUC
  averaged over classes, then over factors, on the training and on the test points.

We follow disentanglement_lib's ``modularity_explicitness.py`` (gin ``num_train=10000, num_test=5000``,
20 histogram bins): the MI matrix is the one MIG uses, standardisation uses the training mean and
(population) standard deviation, the classifier is ``LogisticRegression()`` with sklearn's defaults.
Differences, all in cases where dlib fails or depends on library versions:

* sklearn's default ``LogisticRegression`` has been lbfgs/multinomial since 0.22; dlib's study ran on an
  sklearn whose default was liblinear one-vs-rest, so explicitness values are not bit-comparable to it.
* A constant code (std 0) is left unscaled instead of divided by zero.
* dlib one-hot encodes labels with a ``MultiLabelBinarizer`` fitted on the evaluated labels, which breaks when
  they lack a class the classifier knows; we one-hot against the classifier's classes and average ROC-AUC
  over the classes that occur both as positive and negative (identical when every class occurs).
* With a single varying factor, δ has denominator 0; modularity is then 1 for every informative code.
"""

from __future__ import annotations

import numpy as np

from ..data.base import GroundTruthDataset
from ..registry import METRICS
from .common import Bins, Count, Represent, seeded
from .disentanglement import discretize, mutual_info_matrix, sample_codes


def modularity_from_mi(mi: np.ndarray) -> float:
    """Mean modularity over codes from an MI matrix ``(D codes, K factors)``."""
    squared = np.square(mi)
    top = squared.max(axis=1)
    if squared.shape[1] == 1:
        return float(np.mean(top > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (squared.sum(axis=1) - top) / (top * (squared.shape[1] - 1))
    return float(np.mean(np.where(top > 0, 1.0 - delta, 0.0)))


def _macro_roc_auc(labels: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score  # lazy: `vaeray list` and validation stay light

    onehot = labels[:, None] == classes[None, :]
    scorable = onehot.any(axis=0) & ~onehot.all(axis=0)
    return float(roc_auc_score(onehot[:, scorable], proba[:, scorable], average="macro"))


def explicitness(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    random_state: int = 0,
) -> tuple[float, float]:
    """Mean over factors of one-vs-rest ROC-AUC of a logistic regression on standardised codes (train, test)."""
    from sklearn.linear_model import LogisticRegression  # lazy: `vaeray list` and validation stay light

    mean, std = codes_train.mean(axis=0), codes_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_train, x_test = (codes_train - mean) / std, (codes_test - mean) / std
    train, test = [], []
    for k in range(factors_train.shape[1]):
        clf = LogisticRegression(random_state=random_state).fit(x_train, factors_train[:, k])
        train.append(_macro_roc_auc(factors_train[:, k], clf.predict_proba(x_train), clf.classes_))
        test.append(_macro_roc_auc(factors_test[:, k], clf.predict_proba(x_test), clf.classes_))
    return float(np.mean(train)), float(np.mean(test))


@METRICS.register("modularity_explicitness")
@seeded
def modularity_explicitness(
    dataset: GroundTruthDataset,
    represent: Represent,
    *,
    seed: int = 0,
    num_train: Count = 10000,
    num_test: Count = 5000,
    num_bins: Bins = 20,
    batch_size: Count = 1024,
) -> dict[str, float]:
    """Modularity (from the training points' histogram MI) and explicitness, as disentanglement_lib.

    Returns:
        ``modularity`` in [0, 1]; ``explicitness_train``, ``explicitness_test``: mean ROC-AUC in [0, 1]
        (0.5 is chance).
    """
    rng = np.random.default_rng(seed)
    codes_train, factors_train = sample_codes(dataset, represent, num_train, rng, batch_size)
    codes_test, factors_test = sample_codes(dataset, represent, num_test, rng, batch_size)
    mi = mutual_info_matrix(discretize(codes_train, num_bins), factors_train)
    train, test = explicitness(codes_train, factors_train, codes_test, factors_test, random_state=seed)
    return {"modularity": modularity_from_mi(mi), "explicitness_train": train, "explicitness_test": test}
