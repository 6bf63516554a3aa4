"""Hyperspherical plots: great-circle interpolation geometry, the Hammer projection at known points, and the
figures' content."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaeray.registry import MODELS, load_all
from vaeray.viz_sphere import (
    great_circle_codes,
    hammer,
    interpolation,
    plot_hammer,
    plot_interpolation,
    plot_samples,
    slerp,
)

load_all()


def test_slerp_walks_the_great_circle_at_equal_angles() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.nn.functional.normalize(torch.randn(2, 5, generator=g, dtype=torch.float64), dim=-1)
    path = slerp(a, b, 9)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(path.norm(dim=-1), torch.ones(9, dtype=torch.float64))
    steps = (path[1:] * path[:-1]).sum(-1)
    torch.testing.assert_close(steps, steps[0].expand(8))  # equal angles between neighbours
    # every point lies in the plane of a and b
    basis = torch.linalg.qr(torch.stack([a, b], 1))[0]
    torch.testing.assert_close(basis @ (basis.T @ path.T), path.T)
    anti = slerp(a, -a, 5)
    assert torch.isfinite(anti).all() and torch.allclose(anti[-1], -a, atol=1e-6)
    assert abs((anti[2] @ a).item()) < 1e-6  # halfway round is orthogonal to a


def test_product_codes_interpolate_each_factor() -> None:
    a = torch.tensor([1.0, 0, 0, 0, 1])
    b = torch.tensor([0.0, 1, 0, 1, 0])
    z = great_circle_codes(a, b, [3, 2], 3)
    torch.testing.assert_close(z[1], torch.tensor([math.sqrt(0.5), math.sqrt(0.5), 0, math.sqrt(0.5), math.sqrt(0.5)]))


def test_hammer_known_points_and_ellipse() -> None:
    pts = np.array([[1.0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, -1]])
    xy = hammer(pts)
    np.testing.assert_allclose(xy[0], [0, 0], atol=1e-12)
    np.testing.assert_allclose(xy[1], [0, math.sqrt(2)], atol=1e-12)
    np.testing.assert_allclose(xy[2], [2 / math.sqrt(1 + math.sqrt(0.5)), 0], atol=1e-12)
    np.testing.assert_allclose(xy[3], [0, -math.sqrt(2)], atol=1e-12)
    cloud = torch.nn.functional.normalize(torch.randn(500, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    proj = hammer(cloud)
    assert (proj[:, 0] ** 2 / 8 + proj[:, 1] ** 2 / 2 <= 1 + 1e-9).all()


def test_hammer_plot_colours_points_by_label() -> None:
    codes = torch.nn.functional.normalize(torch.randn(60, 3, generator=torch.Generator().manual_seed(1)), dim=-1)
    labels = torch.arange(60) % 3
    ax = plot_hammer(codes, labels, title="S²")
    scatter = ax.collections[0]
    np.testing.assert_allclose(scatter.get_offsets(), hammer(codes))
    np.testing.assert_array_equal(scatter.get_array(), labels.numpy())  # colour-mapped by label
    assert ax.get_title() == "S²"
    with pytest.raises(ValueError, match="S²"):
        plot_hammer(torch.zeros(4, 5))


def test_samples_and_interpolation_figures() -> None:
    torch.manual_seed(0)
    model = MODELS.build({"name": "svae", "spheres": [2, 1], "hidden": [16]}, "model", observation_shape=(1, 28, 28))
    ax = plot_samples(model, rows=2, cols=3)
    assert ax.images[0].get_array().shape == (56, 84)
    x = torch.rand(2, 1, 28, 28)
    ax = plot_interpolation(model, x[:1], x[1:], steps=5)
    strip = np.asarray(ax.images[0].get_array())
    assert strip.shape == (28, 140)
    ends = model.decode(model.represent(x)).mean[:, 0].detach().numpy()
    np.testing.assert_allclose(strip[:, :28], ends[0], atol=1e-5)  # the strip starts and ends at the two codes
    np.testing.assert_allclose(strip[:, -28:], ends[1], atol=1e-5)
    assert interpolation(model, x[:1], x[1:], 5).shape == (5, 1, 28, 28)
