"""SAP: agreement with a straightforward implementation of Kumar et al.'s formula, and dlib's property tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.svm import LinearSVC

from vaeray.metrics.sap import sap, sap_from_matrix


def reference_sap(train, test, *, continuous: bool, seed: int) -> float:
    """For each factor: score every single code, take best minus runner-up; average over factors.

    Discrete factors: test accuracy of a 1-D LinearSVC(C=0.01, balanced). Continuous: squared Pearson
    correlation on the training points, from np.corrcoef.
    """
    (z_train, v_train), (z_test, v_test) = train, test
    gaps = []
    for k in range(v_train.shape[1]):
        scores = []
        for j in range(z_train.shape[1]):
            if continuous:
                informative = z_train[:, j].var() > 1e-12
                scores.append(np.corrcoef(z_train[:, j], v_train[:, k])[0, 1] ** 2 if informative else 0.0)
            else:
                svm = LinearSVC(C=0.01, class_weight="balanced", random_state=seed).fit(z_train[:, [j]], v_train[:, k])
                scores.append(float(np.mean(svm.predict(z_test[:, [j]]) == v_test[:, k])))
        best = max(scores)
        rest = list(scores)
        rest.remove(best)
        gaps.append(best - max(rest))
    return float(np.mean(gaps))


def draw(dataset, represent, n_train, n_test, seed):
    """The metric's documented sampling: training factors, then test factors, from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for n in (n_train, n_test):
        factors = dataset.sample_factors(n, rng)
        out.append((represent(dataset.observations_from_factors(factors)).numpy(), factors))
    return out


def mixing(x: torch.Tensor) -> torch.Tensor:
    mix = torch.tensor([[1.0, 0.4, 0.0, -0.3], [0.2, 1.0, 0.5, 0.0], [0.0, -0.6, 1.0, 0.2], [0.3, 0.0, 0.1, 1.0]])
    return x.double() @ mix.double()


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("seed", [0, 3])
def test_matches_independent_implementation(toy, continuous, seed):
    train, test = draw(toy, mixing, 600, 400, seed)
    expected = reference_sap(train, test, continuous=continuous, seed=seed)
    got = sap(toy, mixing, seed=seed, num_train=600, num_test=400, continuous_factors=continuous)["sap"]
    assert got == pytest.approx(expected, abs=1e-6)
    assert expected > 0.01  # the codes are informative, not a 0 == 0 comparison


def test_gap_structure():
    score = np.array([[0.9, 0.2], [0.5, 0.6], [0.1, 0.6]])  # factor 1 has a tie at the top
    assert sap_from_matrix(score) == pytest.approx(((0.9 - 0.5) + 0.0) / 2)


def test_continuous_properties_as_dlib(toy, identity, constant):
    # dlib's sap_score_test: identity in [0.9, 1], zeros and a fully duplicated code in [0, 0.2].
    kwargs = dict(num_train=1000, num_test=500, continuous_factors=True)
    assert sap(toy, identity, **kwargs)["sap"] >= 0.9
    assert sap(toy, constant, **kwargs)["sap"] <= 0.2
    assert sap(toy, lambda x: torch.cat([x, x], dim=1), **kwargs)["sap"] <= 0.2


def test_discrete_identity_against_random(make_toy):
    # With discrete factors the best code's accuracy is capped by what a 1-D linear SVM can separate and the
    # runner-up scores about chance, so on binary factors a perfect code gives about 1 − 1/2.
    binary = make_toy((2, 2, 2, 2))
    kwargs = dict(num_train=1000, num_test=500)
    perfect = sap(binary, lambda x: x.clone(), **kwargs)["sap"]
    random = sap(binary, lambda x: torch.randn(x.shape[0], 4), **kwargs)["sap"]
    assert perfect >= 0.4
    assert random <= 0.05
    assert sap(binary, lambda x: torch.zeros(x.shape[0], 4), **kwargs)["sap"] == 0.0


def test_deterministic_under_seed(toy, noise):
    assert sap(toy, noise, seed=5, num_train=300, num_test=200) == sap(toy, noise, seed=5, num_train=300, num_test=200)
