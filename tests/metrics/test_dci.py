"""DCI: disentanglement and completeness in closed form on hand-made importance matrices, and properties of
the full metric with a small gradient-boosted classifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaeray.metrics.dci import dci, dci_completeness, dci_disentanglement

SMALL = dict(num_train=500, num_test=300, n_estimators=10)


def reference(importance: np.ndarray) -> tuple[float, float]:
    """Eastwood & Williams' D and C written out with math.log (no scipy), ignoring dlib's 1e-11."""

    def one_minus_entropy(weights, base):
        total = sum(weights)
        if total == 0:
            return 0.0
        p = [w / total for w in weights if w > 0]
        return 1.0 - (-sum(q * math.log(q) for q in p) / math.log(base))

    d_codes, k_factors = importance.shape
    total = importance.sum()
    d = sum(importance[i].sum() / total * one_minus_entropy(importance[i], k_factors) for i in range(d_codes))
    c = sum(importance[:, k].sum() / total * one_minus_entropy(importance[:, k], d_codes) for k in range(k_factors))
    return d, c


def test_closed_forms():
    assert dci_disentanglement(np.eye(3)) == pytest.approx(1.0, abs=1e-9)
    assert dci_completeness(np.eye(3)) == pytest.approx(1.0, abs=1e-9)
    assert dci_disentanglement(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-9)
    assert dci_completeness(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-9)
    # One code explains every factor: not disentangled, but each factor is complete in that code.
    one_code = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert dci_disentanglement(one_code) == pytest.approx(0.0, abs=1e-9)
    assert dci_completeness(one_code) == pytest.approx(1.0, abs=1e-9)
    # Factor 0 split evenly over two codes: C = 2/3 (1 − log 2 / log 3) + 1/3, D = 1.
    split = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert dci_disentanglement(split) == pytest.approx(1.0, abs=1e-9)
    assert dci_completeness(split) == pytest.approx(2 / 3 * (1 - math.log(2) / math.log(3)) + 1 / 3, abs=1e-9)
    # dlib: an all-zero importance matrix (nothing predicts anything) scores 0 on both.
    assert dci_disentanglement(np.zeros((3, 2))) == pytest.approx(0.0, abs=1e-9)
    assert dci_completeness(np.zeros((3, 2))) == pytest.approx(0.0, abs=1e-9)


def test_random_matrices_match_reference():
    rng = np.random.default_rng(0)
    for _ in range(20):
        importance = rng.exponential(size=(6, 4)) * (rng.random((6, 4)) < 0.7)
        d, c = reference(importance)
        assert dci_disentanglement(importance) == pytest.approx(d, abs=1e-8)
        assert dci_completeness(importance) == pytest.approx(c, abs=1e-8)


@pytest.mark.parametrize("name", ["identity", "permuted"])
def test_one_code_per_factor(toy, name, request):
    scores = dci(toy, request.getfixturevalue(name), **SMALL)
    assert scores["dci_disentanglement"] >= 0.9
    assert scores["dci_completeness"] >= 0.9
    assert scores["dci_informativeness_train"] == 1.0
    assert scores["dci_informativeness_test"] == 1.0


def test_constant_and_random_codes(toy, constant, noise):
    flat = dci(toy, constant, **SMALL)
    assert flat["dci_disentanglement"] == pytest.approx(0.0, abs=1e-6)
    assert flat["dci_completeness"] == pytest.approx(0.0, abs=1e-6)
    random = dci(toy, noise, **SMALL)
    assert random["dci_disentanglement"] <= 0.2
    assert random["dci_informativeness_test"] <= 0.35  # chance is 1/3, 1/6, 1/10, 1/8


def test_duplicated_factor_lowers_completeness_only(toy):
    scores = dci(toy, lambda x: torch.cat([x[:, :1], x], dim=1), **SMALL)
    assert scores["dci_disentanglement"] >= 0.9
    assert scores["dci_completeness"] < 0.97


def test_deterministic_under_seed(toy, noise):
    assert dci(toy, noise, seed=2, **SMALL) == dci(toy, noise, seed=2, **SMALL)
