"""FactorVAE score: vote drawing, vote counting with pruned codes (dlib's index quirk fixed), properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaeray.metrics.factor_vae import count_votes, draw_votes, factor_vae_score, majority_accuracy

SMALL = dict(num_train=300, num_eval=200, num_variance_estimate=1000)


def test_draw_votes_fixes_one_varying_factor_per_batch(make_toy):
    data = make_toy((3, 1, 4, 5))  # factor 1 has a single value and is never the fixed one
    fixed, factors = draw_votes(data, 400, 16, np.random.default_rng(0))
    assert factors.shape == (400, 16, 4) and fixed.shape == (400,)
    varying = np.array([0, 2, 3])
    assert set(np.unique(fixed)) == {0, 1, 2}
    for vote, position in enumerate(fixed):
        column = varying[position]
        assert np.all(factors[vote, :, column] == factors[vote, 0, column])
        others = [c for c in varying if c != column]
        assert any(len(np.unique(factors[vote, :, c])) > 1 for c in others)  # the rest still vary
    assert np.all(factors[:, :, 1] == 0)


def test_count_votes_books_the_winner_on_its_own_code():
    # Code 0 is pruned. In vote 0 code 2 has the smallest normalised variance; dlib's argmin over the pruned
    # list returns position 1 and books it on code 1, we book it on code 2.
    global_variance = np.array([0.0, 1.0, 4.0])
    active = np.array([1, 2])
    codes = np.zeros((2, 4, 3))
    codes[0, :, 1] = [0.0, 1.0, 2.0, 3.0]  # variance 5/3 -> ratio 1.67
    codes[0, :, 2] = [0.0, 0.1, 0.0, 0.1]  # ratio tiny
    codes[1, :, 2] = [0.0, 2.0, 4.0, 6.0]  # vote 1: code 1 is constant -> it wins
    votes = count_votes(np.array([1, 0]), codes, global_variance, active, num_factors=2)
    np.testing.assert_array_equal(votes, [[0, 1, 0], [0, 0, 1]])


def test_majority_accuracy():
    votes = np.array([[5, 1, 0], [2, 3, 0]])
    classifier = np.argmax(votes, axis=0)
    assert majority_accuracy(votes, classifier) == pytest.approx(8 / 11)
    assert majority_accuracy(np.zeros((2, 3), dtype=int), classifier) == 0.0


@pytest.mark.parametrize("name", ["identity", "permuted"])
def test_one_code_per_factor_scores_one(toy, name, request):
    scores = factor_vae_score(toy, request.getfixturevalue(name), **SMALL)
    assert scores == {"factor_vae_score_train": 1.0, "factor_vae_score_eval": 1.0, "factor_vae_active_dims": 4.0}


def test_constant_codes_are_pruned(toy, constant):
    assert factor_vae_score(toy, constant, **SMALL) == {
        "factor_vae_score_train": 0.0,
        "factor_vae_score_eval": 0.0,
        "factor_vae_active_dims": 0.0,
    }


def test_random_codes_score_chance(toy, noise):
    # With independent codes each vote's winner is random: accuracy near 1/K = 0.25 on held-out votes.
    assert factor_vae_score(toy, noise, **SMALL)["factor_vae_score_eval"] <= 0.25 + 0.1


def test_prune_threshold(toy):
    # Code 0 copies factor 0 at scale 0.01 (std ~0.004 < 0.05): pruned, so 4 active codes remain.
    represent = lambda x: torch.cat([0.01 * x[:, :1], x], dim=1)  # noqa: E731
    assert factor_vae_score(toy, represent, **SMALL)["factor_vae_active_dims"] == 4.0
    kept = factor_vae_score(toy, represent, prune_threshold=0.0, **SMALL)
    assert kept["factor_vae_active_dims"] == 5.0 and kept["factor_vae_score_eval"] == 1.0


def test_duplication_is_not_penalised(toy):
    # A documented limitation of the score: a factor copied into two codes still votes consistently.
    assert factor_vae_score(toy, lambda x: torch.cat([x, x], dim=1), **SMALL)["factor_vae_score_eval"] == 1.0


def test_deterministic_and_independent_of_encoding_batch(toy, identity):
    noisy = lambda x: x + 0.5 * torch.randn_like(x)  # noqa: E731
    first = factor_vae_score(toy, noisy, seed=1, **SMALL)
    assert factor_vae_score(toy, noisy, seed=1, **SMALL) == first
    assert 0.5 < first["factor_vae_score_eval"] < 1.0  # not a trivial score
    # Factor draws do not depend on encode_batch_size (noise-free codes, so encoding order cannot matter).
    assert factor_vae_score(toy, identity, seed=1, encode_batch_size=100, **SMALL) == factor_vae_score(
        toy, identity, seed=1, **SMALL
    )
