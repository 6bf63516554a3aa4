"""MIG: disentanglement_lib's property tests, an independent implementation, and the whole-grid mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

from vaeray.metrics.disentanglement import discrete_entropy, discretize, mutual_info_matrix
from vaeray.metrics.mig import mig, mig_from_codes

# ---------------------------------------------------------------- an independent implementation ------------


def _entropy(*columns: np.ndarray) -> float:
    """Joint entropy (nats) of the given label columns by counting distinct rows with np.unique."""
    _, counts = np.unique(np.stack(columns, axis=1), axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def _bins(z: np.ndarray, num_bins: int) -> np.ndarray:
    """Equal-width bins over [min, max], the last bin closed (Chen et al. / dlib's histogram rule)."""
    lo, hi = float(z.min()), float(z.max())
    if lo == hi:
        return np.zeros(len(z), dtype=int)
    return np.minimum(np.floor((z - lo) / ((hi - lo) / num_bins)).astype(int), num_bins - 1)


def reference_mig(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> tuple[float, list[float]]:
    """MIG from the published formula: I(z;v) = H(z) + H(v) − H(z,v), plain loops, no sklearn."""
    gaps = []
    for k in range(factors.shape[1]):
        v = factors[:, k]
        mis = []
        for j in range(codes.shape[1]):
            z = _bins(codes[:, j], num_bins)
            mis.append(_entropy(z) + _entropy(v) - _entropy(z, v))
        first, second = sorted(mis, reverse=True)[:2]
        gaps.append((first - second) / _entropy(v))
    return float(np.mean(gaps)), gaps


def mixing(seed: int = 0):
    """A smooth entangled float64 representation: tanh of a random linear mix of the observation."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(4, 5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    return lambda x: torch.tanh(x.double() @ a + b)


# ---------------------------------------------------------------- agreement ----------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_independent_implementation(toy, seed):
    represent = mixing(seed)
    rng = np.random.default_rng(seed)  # the metric's documented draw: num_train factor rows from default_rng(seed)
    factors = toy.sample_factors(700, rng)
    codes = represent(toy.observations_from_factors(factors)).numpy()
    expected, _ = reference_mig(codes, factors)
    assert mig(toy, represent, seed=seed, num_train=700, batch_size=64)["mig"] == pytest.approx(expected, abs=1e-6)
    assert 0.0 < expected < 0.9  # an entangled code: the comparison is not between two trivial 0s or 1s


def test_mutual_info_matrix_and_entropy_match_sklearn():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 20, size=(3000, 6))
    codes[:, 0] = 7  # a single-valued code: sklearn returns exactly 0
    factors = np.stack([rng.integers(0, 5, 3000), rng.integers(-3, 3, 3000) * 1000, codes[:, 1] // 3], axis=1)
    expected = [[mutual_info_score(factors[:, k], codes[:, i]) for k in range(3)] for i in range(6)]
    np.testing.assert_allclose(mutual_info_matrix(codes, factors), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        discrete_entropy(factors), [mutual_info_score(f, f) for f in factors.T], rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_discretize_is_dlibs_histogram_rule(dtype):
    rng = np.random.default_rng(1)
    codes = np.concatenate([rng.normal(size=(500, 3)), np.full((500, 1), 2.5)], axis=1).astype(dtype)
    dlib = np.stack([np.digitize(z, np.histogram(z, 20)[1][:-1]) for z in codes.T], axis=1)
    np.testing.assert_array_equal(discretize(codes, 20), dlib - 1)
    wide = codes[:, :3].astype(np.float64)
    np.testing.assert_array_equal(discretize(wide, 20), np.stack([_bins(z, 20) for z in wide.T], axis=1))


# ---------------------------------------------------------------- properties (dlib's mig_test style) ---------


@pytest.mark.parametrize("name", ["identity", "permuted"])
def test_one_code_per_factor_scores_one(toy, name, request):
    represent = request.getfixturevalue(name)
    assert mig(toy, represent, num_train=1000)["mig"] >= 0.9
    # On the whole grid the other codes are exactly independent of each factor: MIG is exactly 1.
    assert mig(toy, represent, num_train=None)["mig"] == pytest.approx(1.0, abs=1e-12)


def test_constant_and_random_codes_score_zero(toy, constant, noise):
    assert mig(toy, constant, num_train=1000)["mig"] == 0.0
    assert mig(toy, noise, num_train=1000)["mig"] <= 0.05


def test_duplicated_factor_has_no_gap(toy):
    factors = toy.sample_factors(1000, np.random.default_rng(0))
    codes = toy.observations_from_factors(factors).numpy()
    score, per_factor = mig_from_codes(np.concatenate([codes[:, :1], codes], axis=1), factors)
    assert per_factor[0] == 0.0  # two identical codes carry the same information about factor 0
    assert np.all(per_factor[1:] >= 0.9)
    assert score == pytest.approx(per_factor.mean())
    everything_twice = mig(toy, lambda x: torch.cat([x, x], dim=1), num_train=1000)["mig"]
    assert everything_twice == 0.0


def test_monotone_transform_keeps_mig_high(toy):
    # sqrt keeps consecutive classes more than one bin width apart, so no two classes share a bin.
    assert mig(toy, lambda x: torch.sqrt(x + 0.1) * torch.tensor([1.0, -1.0, 2.0, 1.0]), num_train=1000)["mig"] >= 0.9


def test_squeezing_transform_lowers_mig(toy, identity):
    # Documented behaviour of equal-width bins: exp(8x) packs the low classes into one bin.
    squeezed = mig(toy, lambda x: torch.exp(8 * x), num_train=None)["mig"]
    assert squeezed < mig(toy, identity, num_train=None)["mig"] - 0.2


# ---------------------------------------------------------------- whole-grid mode, determinism ---------------


def test_whole_grid_mode(toy):
    represent = mixing(2)
    grid = mig(toy, represent, num_train=None)["mig"]
    assert mig(toy, represent, num_train=len(toy))["mig"] == grid
    assert mig(toy, represent, num_train=10**9, seed=5, batch_size=7)["mig"] == grid
    factors = toy.factors_from_index(np.arange(len(toy)))
    codes = represent(toy.observations(torch.arange(len(toy)))).numpy()
    assert grid == pytest.approx(reference_mig(codes, factors)[0], abs=1e-6)


def test_single_valued_factor_is_dropped(make_toy):
    with_colour = make_toy((1, 3, 6, 10))  # like dSprites' colour
    score = mig(with_colour, lambda x: x[:, 1:].clone(), num_train=None)["mig"]
    assert score == pytest.approx(1.0, abs=1e-12)


def test_deterministic_under_seed_and_leaves_torch_rng_alone(toy, noise):
    state = torch.get_rng_state()
    first = mig(toy, noise, seed=3, num_train=500)
    assert torch.equal(torch.get_rng_state(), state)
    assert mig(toy, noise, seed=3, num_train=500) == first
    assert mig(toy, noise, seed=4, num_train=500) != first


def test_bad_representations_raise(toy):
    with pytest.raises(ValueError, match="at least 2 codes"):
        mig(toy, lambda x: x[:, :1].clone(), num_train=100)
    with pytest.raises(ValueError, match="non-finite"):
        mig(toy, lambda x: x / 0.0, num_train=100)
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        mig(toy, lambda x: x[:, 0].clone(), num_train=100)
