"""TVAE plots: capsule activations over a sequence and reconstructions beside the inputs."""

from __future__ import annotations

import numpy as np
import torch

from vaeray.registry import MODELS, load_all
from vaeray.viz_topographic import capsule_activations, plot_sequence, sequence_reconstructions

load_all()


def test_capsule_activations_show_the_roll_as_a_diagonal():
    s, dim = 5, 5
    t = torch.stack([torch.roll(torch.eye(dim)[0], l) for l in range(s)])[:, None, :].repeat(1, 3, 1)  # (S, 3, D)
    ax = capsule_activations(t, capsules=2)
    shown = np.asarray(ax.get_images()[0].get_array())
    assert shown.shape == (s, 2 * dim)
    assert np.array_equal(shown[:, :dim], np.eye(dim)) and len(ax.lines) == 1  # one separator between 2 capsules


def test_sequence_reconstructions_put_inputs_over_reconstructions():
    x, r = torch.zeros(4, 3, 6, 6), torch.ones(4, 3, 6, 6)
    shown = np.asarray(sequence_reconstructions(x, r).get_images()[0].get_array())
    assert shown.shape == (12, 24, 3) and shown[:6].max() == 0 and shown[6:].min() == 1


def test_plot_sequence_of_a_model():
    m = MODELS.build({"name": "tvae", "n_caps": 3, "cap_dim": 4, "k_time": 3, "net": "mlp", "hidden": [8]},
                     "model", observation_shape=(4, 1, 6, 6))
    fig = plot_sequence(m, torch.rand(4, 1, 6, 6), capsules=2)
    top, bottom = fig.axes
    assert np.asarray(top.get_images()[0].get_array()).shape == (4, 8)
    assert np.asarray(bottom.get_images()[0].get_array()).shape == (12, 24)
    fig.savefig(__import__("io").BytesIO(), format="png")  # renders headless
