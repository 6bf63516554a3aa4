"""Modularity (closed forms) and explicitness (ROC-AUC recomputed by the Mann–Whitney rank formula)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression

from vaeray.metrics.modularity import _macro_roc_auc, explicitness, modularity_explicitness, modularity_from_mi


def test_modularity_closed_forms():
    assert modularity_from_mi(np.eye(3)) == 1.0
    # A code informative about two factors equally: δ = (1 + 1 − 1) / (1 · (3 − 1)) = 1/2.
    assert modularity_from_mi(np.array([[1.0, 1.0, 0.0]])) == pytest.approx(0.5)
    # Ridgeway & Mozer's δ uses squared MI: [2, 1] -> δ = 1/4 / 1 = 1/4 with K − 1 = 1.
    assert modularity_from_mi(np.array([[2.0, 1.0]])) == pytest.approx(0.75)
    assert modularity_from_mi(np.array([[0.0, 0.0], [1.0, 0.0]])) == pytest.approx(0.5)  # an empty code scores 0
    assert modularity_from_mi(np.array([[0.3], [0.0]])) == pytest.approx(0.5)  # one factor: informative codes are 1


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC as the Mann–Whitney U statistic with mid-ranks for ties."""
    ranks = rankdata(scores)
    positives = labels.astype(bool)
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return (ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def test_explicitness_matches_rank_formula():
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, 3, 900), rng.integers(0, 5, 900)], axis=1)
    codes = np.stack([factors[:, 0] + rng.normal(0, 0.8, 900), factors[:, 1] * 0.3 + rng.normal(0, 1, 900)], 1)
    (z_train, z_test), (v_train, v_test) = np.split(codes, [600]), np.split(factors, [600])
    mean, std = z_train.mean(0), z_train.std(0)
    expected = []
    for z_eval, v_eval in ((z_train, v_train), (z_test, v_test)):
        per_factor = []
        for k in range(2):
            clf = LogisticRegression(random_state=0).fit((z_train - mean) / std, v_train[:, k])
            proba = clf.predict_proba((z_eval - mean) / std)
            per_factor.append(np.mean([_auc(v_eval[:, k] == c, proba[:, i]) for i, c in enumerate(clf.classes_)]))
        expected.append(np.mean(per_factor))
    got = explicitness(z_train, v_train, z_test, v_test, random_state=0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert 0.6 < expected[1] < 0.95  # informative but not perfect


def test_roc_auc_skips_classes_absent_from_the_labels():
    labels = np.array([0, 0, 1, 1])  # class 2 never occurs: dlib's MultiLabelBinarizer would misalign columns
    proba = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1]])
    assert _macro_roc_auc(labels, proba, np.array([0, 1, 2])) == pytest.approx(1.0)


def test_properties(toy, identity, constant, noise):
    kwargs = dict(num_train=1000, num_test=500)
    good = modularity_explicitness(toy, identity, **kwargs)
    assert good["modularity"] >= 0.9
    assert good["explicitness_train"] >= 0.95 and good["explicitness_test"] >= 0.95
    flat = modularity_explicitness(toy, constant, **kwargs)
    assert flat == {"modularity": 0.0, "explicitness_train": 0.5, "explicitness_test": 0.5}
    random = modularity_explicitness(toy, noise, **kwargs)
    assert random["explicitness_test"] <= 0.6
    mixed = modularity_explicitness(toy, lambda x: x @ torch.ones(4, 4), **kwargs)  # every code sees everything
    assert mixed["modularity"] < good["modularity"] - 0.3


def test_deterministic_under_seed(toy, noise):
    kwargs = dict(num_train=300, num_test=200, seed=9)
    assert modularity_explicitness(toy, noise, **kwargs) == modularity_explicitness(toy, noise, **kwargs)
