"""Training each disentangling model for a few hundred steps on CPU lowers its loss and logs every term."""

from __future__ import annotations

import math

import pytest

from tests.models.conftest import run_config
from vaeray.registry import MODELS
from vaeray.train import fit

CASES = {
    "beta_vae_h": {"beta": 4.0, "reg_anneal": 100},
    "beta_vae_b": {"gamma": 20.0, "C_fin": 10.0, "C_steps": 200},
    "factor_vae": {"gamma": 6.4, "lr_disc": 1e-4, "disc_hidden": 256},
    "beta_tcvae": {"beta": 6.0, "reg_anneal": 100},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_lowers_the_loss_and_logs_every_term(name):
    rows = []
    fit(run_config(name, steps=300, **CASES[name]), report=lambda r, s: rows.append(r), device="cpu")
    terms = MODELS.get(name).terms
    assert [r["step"] for r in rows] == [50, 100, 150, 200, 250, 300]
    for r in rows:
        assert set(terms) <= set(r) and all(math.isfinite(r[k]) for k in terms)
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    assert rows[-1]["rec"] < 0.5 * rows[0]["rec"]
    if name == "beta_vae_b":
        assert rows[-1]["capacity"] == 10.0
        assert abs(rows[-1]["kl"] - 10.0) < 3.0  # the penalty pulls the KL to the capacity
    if name == "factor_vae":
        assert 0.0 <= rows[-1]["disc_acc"] <= 1.0 and rows[-1]["disc_loss"] < math.log(2) + 0.05
