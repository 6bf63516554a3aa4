"""Plots show what they claim: bar heights are seed means, error bars stds; traversals vary one latent per row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import Squares, tiny_config
from vaeray.config import validate
from vaeray.train import build_model
from vaeray.viz import plot_seed_means, traversal


def test_bars_are_seed_means_with_std_error_bars():
    df = pd.DataFrame(
        {
            "trial_id": ["a-s0", "a-s1", "b-s0", "b-s1", "b-s2"],
            "config_hash": ["a", "a", "b", "b", "b"],
            "seed": [0, 1, 0, 1, 2],
            "status": ["completed"] * 4 + ["error"],
            "model.beta": [1.0, 1.0, 4.0, 4.0, 4.0],
            "mig": [0.1, 0.3, 0.5, 0.7, np.nan],
        }
    )
    ax = plot_seed_means(df, "mig")
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.2, 0.6])  # the errored seed is left out
    (_, caps, bars), = [c for c in ax.containers if hasattr(c, "lines")]
    segments = bars[0].get_segments() if hasattr(bars, "__getitem__") else bars.get_segments()
    half_heights = [abs(s[1][1] - s[0][1]) / 2 for s in segments]
    assert half_heights == pytest.approx([np.std([0.1, 0.3], ddof=1), np.std([0.5, 0.7], ddof=1)])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["beta=1", "beta=4"]


def test_traversal_changes_one_latent_per_row():
    data = Squares()
    model = build_model(validate(tiny_config()), data)
    calls = []
    decode = model.decode

    def spy(z):
        calls.append(z.clone())
        return decode(z)

    model.decode = spy
    x = data.batch(torch.arange(1)).x
    out = traversal(model, x, span=1.5, steps=5)
    assert out.shape == (3, 5, 1, 32, 32)
    z = calls[0].reshape(3, 5, 3)
    code = model.represent(x)[0]
    for d in range(3):
        others = [e for e in range(3) if e != d]
        assert torch.allclose(z[d][:, others], code[others].expand(5, 2))
        assert torch.allclose(z[d][:, d], code[d] + torch.linspace(-1.5, 1.5, 5))


def test_image_grid_lays_out_rows_and_columns():
    from vaeray.viz import image_grid

    images = torch.zeros(2, 3, 1, 4, 4)
    images[1, 2] = 1.0  # second row, third column
    ax = image_grid(images)
    shown = ax.get_images()[0].get_array()
    assert shown.shape == (8, 12)
    assert shown[4:, 8:].min() == 1.0 and shown.sum() == 16
