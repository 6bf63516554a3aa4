"""AAM: the formula on hand-made MI matrices, and its properties on the toy dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaeray.metrics.aam import aam, aam_from_mi
from vaeray.metrics.disentanglement import discretize, mutual_info_matrix


def reference_aam(mi: np.ndarray) -> float:
    """disentangling-vae's AAM, written out per factor: (I_(1) − Σ_{d≥2} I_(d))⁺ / I_(1), 0/0 := 0."""
    values = []
    for k in range(mi.shape[1]):
        column = sorted(mi[:, k], reverse=True)
        first, rest = column[0], sum(column[1:])
        values.append(0.0 if first == 0 else max(0.0, first - rest) / first)
    return float(np.mean(values))


def test_formula_on_hand_made_matrices():
    # factor 0: one code; factor 1: split 0.6/0.4 -> (0.6-0.4)/0.6; factor 2: no information (0/0 := 0);
    # factor 3: the runner-ups outweigh the best -> 0.
    mi = np.array([[1.0, 0.6, 0.0, 0.5], [0.0, 0.4, 0.0, 0.3], [0.0, 0.0, 0.0, 0.3]])
    score, per_factor = aam_from_mi(mi)
    np.testing.assert_allclose(per_factor, [1.0, 1 / 3, 0.0, 0.0])
    assert score == pytest.approx(reference_aam(mi))
    # The axis is the codes (rows): the transposed matrix is a different question, not the same number.
    assert aam_from_mi(mi.T)[0] != pytest.approx(score)


def test_random_matrices_match_reference():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mi = rng.exponential(size=(5, 4)) * (rng.random((5, 4)) < 0.6)
        assert aam_from_mi(mi)[0] == pytest.approx(reference_aam(mi), abs=1e-12)


def test_identity_scores_one(toy, identity, permuted):
    assert aam(toy, identity, num_train=None)["aam"] == pytest.approx(1.0, abs=1e-12)
    assert aam(toy, permuted, num_train=1000)["aam"] >= 0.9


def test_duplicated_codes_score_zero(toy):
    assert aam(toy, lambda x: torch.cat([x, x], dim=1), num_train=1000)["aam"] == 0.0
    # One factor duplicated: that factor scores 0, the other three 1 on the whole grid.
    assert aam(toy, lambda x: torch.cat([x[:, :1], x], dim=1), num_train=None)["aam"] == pytest.approx(0.75)


def test_constant_and_random_codes(toy, constant, noise):
    assert aam(toy, constant, num_train=1000)["aam"] == 0.0
    assert aam(toy, noise, num_train=1000)["aam"] <= 0.1


def test_uses_the_same_mi_matrix_as_mig(toy, noise):
    rng = np.random.default_rng(7)
    factors = toy.sample_factors(800, rng)
    with torch.random.fork_rng():
        torch.manual_seed(7)
        codes = noise(toy.observations_from_factors(factors)).numpy()
    expected = reference_aam(mutual_info_matrix(discretize(codes, 20), factors))
    assert aam(toy, noise, seed=7, num_train=800)["aam"] == pytest.approx(expected, abs=1e-12)
