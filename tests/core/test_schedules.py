from __future__ import annotations

import pytest

from vaeray.schedules import linear, warmup


def test_linear_endpoints_and_midpoint():
    assert linear(0, 2.0, 10.0, 100) == 2.0
    assert linear(50, 2.0, 10.0, 100) == pytest.approx(6.0)
    assert linear(100, 2.0, 10.0, 100) == 10.0
    assert linear(10**6, 2.0, 10.0, 100) == 10.0
    assert linear(5, 2.0, 10.0, 0) == 10.0  # no annealing


def test_warmup_is_a_pure_function():
    values = [warmup(s, 4) for s in range(6)]
    assert values == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert values == [warmup(s, 4) for s in range(6)]
