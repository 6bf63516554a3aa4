"""Report figures drawn from hand-made frames: each plotted point is the number it claims to be."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from vaeray.report import figures


def frames(scales: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A results frame and a history: per configuration two seeds, loss = scale·(1 + seed/10)/step·1000."""
    rows, hist = [], []
    for cell, scale in scales.items():
        for seed in (0, 1):
            rows.append({"sweep": "s", "config_hash": cell, "trial_id": f"{cell}-s{seed}", "seed": seed,
                         "family": "f", "model": cell, "dataset": "d", "status": "completed"})  # fmt: skip
            for step in (500, 1000, 1500):
                hist.append({"sweep": "s", "trial_id": f"{cell}-s{seed}", "config_hash": cell, "seed": seed,
                             "step": step, "loss": scale * (1 + seed / 10) * 1000 / step})  # fmt: skip
    return pd.DataFrame(hist), pd.DataFrame(rows)


def test_learning_curves_plot_seed_means_with_t_bands():
    history, frame = frames({"a": 200.0, "b": 300.0})
    ax = figures.learning_curves(history, frame, "loss").axes[0]
    assert ax.get_yscale() == "linear"  # 1.5x apart: one linear axis
    lines = {line.get_label(): line for line in ax.get_lines()}
    for cell, scale in (("a", 200.0), ("b", 300.0)):
        x, y = lines[cell].get_data()
        seeds = np.array([[scale * (1 + s / 10) * 1000 / step for s in (0, 1)] for step in (500, 1000, 1500)])
        assert list(x) == [500, 1000, 1500] and np.allclose(y, seeds.mean(1))
    band = ax.collections[0].get_paths()[0].vertices[:, 1]  # the first configuration's band
    a = np.array([[200.0 * (1 + s / 10) * 1000 / step for s in (0, 1)] for step in (500, 1000, 1500)])
    half = sps.t.ppf(0.975, 1) * a.std(1, ddof=1) / np.sqrt(2)
    assert band.max() == pytest.approx((a.mean(1) + half).max()) and band.min() == pytest.approx((a.mean(1) - half).min())


def test_learning_curves_of_different_scales_share_a_log_axis():
    history, frame = frames({"per_image": 200.0, "per_group": 20000.0})  # 100x apart (ML-VAE's per-group loss)
    ax = figures.learning_curves(history, frame, "loss").axes[0]
    assert ax.get_yscale() == "log" and "log scale" in ax.get_ylabel()
    history.loc[history["config_hash"] == "per_image", "loss"] *= -1  # a negative value: no log axis
    assert figures.learning_curves(history, frame, "loss").axes[0].get_yscale() == "linear"
