"""The piecewise-constant learning-rate schedule (a pure function of the step) and its train-config wiring."""

from __future__ import annotations

import pytest

from tests.conftest import tiny_config
from vaeray.config import validate
from vaeray.errors import ConfigError
from vaeray.schedules import piecewise
from vaeray.train import fit


def test_piecewise_values_and_edges():
    b, f = [0.02, 0.6, 0.75, 0.95], [0.1, 1.0, 1 / 3, 0.1, 1 / 33]  # the DVAE# schedule
    assert [piecewise(s, 100, b, f) for s in (0, 1, 2, 59, 60, 74, 75, 94, 95, 99)] == pytest.approx(
        [0.1, 0.1, 1.0, 1.0, 1 / 3, 1 / 3, 0.1, 0.1, 1 / 33, 1 / 33]
    )
    assert piecewise(7, 10, [], []) == 1.0
    with pytest.raises(ValueError, match="one more factor"):
        piecewise(0, 10, [0.5], [1.0])


def test_train_config_checks_the_schedule():
    with pytest.raises(ConfigError, match="one more factor"):
        validate(tiny_config(train={"lr_boundaries": [0.5], "lr_factors": [1.0]}))
    with pytest.raises(ConfigError, match="increasing"):
        validate(tiny_config(train={"lr_boundaries": [0.5, 0.2], "lr_factors": [1.0, 2.0, 3.0]}))
    with pytest.raises(ConfigError):
        validate(tiny_config(train={"lr_boundaries": [1.5], "lr_factors": [1.0, 2.0]}))


def test_fit_applies_the_schedule_per_step():
    rows = []
    cfg = tiny_config(train={"steps": 20, "log_every": 1, "lr": 1e-3, "lr_boundaries": [0.25, 0.5], "lr_factors": [0.1, 1.0, 0.5]})
    fit(cfg, report=lambda m, s: rows.append(m))
    lrs = {r["step"]: r["lr"] for r in rows}  # the lr of the step just taken (step index step - 1)
    assert lrs[1] == pytest.approx(1e-4) and lrs[5] == pytest.approx(1e-4)
    assert lrs[6] == pytest.approx(1e-3) and lrs[10] == pytest.approx(1e-3)
    assert lrs[11] == pytest.approx(5e-4) and lrs[20] == pytest.approx(5e-4)
